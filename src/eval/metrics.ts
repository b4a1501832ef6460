/**
 * Cluster-quality metrics on the preprocessed matrix, matching scikit-learn's definitions
 * (unweighted, Euclidean): silhouette (on a seeded sample), Calinski-Harabasz, Davies-Bouldin.
 *
 * @example
 * const q = await clusterQuality(be, x, labels, k, { sampleSize: 20000, seed: 0 });
 */
import type { Backend } from '../engine/backend.js';
import { chunkedMatrix, hostRows, isChunked, type ChunkedMatrix, type HostMatrix, type Matrix } from '../core/matrix.js';
import { clusterDistanceSums } from '../engine/ops/cluster-distance-sums.js';
import { distances } from '../engine/ops/distances.js';
import { nativeHelper } from '../util/native-addon.js';
import { Random } from '../util/random.js';

type ClusterDispersionFn = (x: Float32Array, nRows: number, d: number, labels: Int32Array, k: number) => Float64Array;

/** Unweighted cluster means and sizes from labels, in float64. */
export function clusterMeans(x: Matrix, labels: Int32Array, k: number): { means: Float64Array; sizes: Float64Array } {
  const d = x.nFeatures;
  const means = new Float64Array(k * d);
  const sizes = new Float64Array(k);
  for (let i = 0; i < x.nRows; i++) {
    const l = labels[i];
    sizes[l]++;
    for (let f = 0; f < d; f++) means[l * d + f] += x.data[i * d + f];
  }
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) if (sizes[j] > 0) means[j * d + f] /= sizes[j];
  return { means, sizes };
}

/**
 * Within-cluster dispersion from one pass over the rows: W = Σ‖x − μ_l‖² and, per cluster, the
 * mean distance (not squared) of its rows to its mean. Shared by Calinski-Harabasz and
 * Davies-Bouldin so a fit computes it once.
 */
export interface Dispersion {
  means: Float64Array;
  sizes: Float64Array;
  within: number;
  scatter: Float64Array;
}

export function dispersion(x: Matrix, labels: Int32Array, k: number): Dispersion {
  const d = x.nFeatures;
  // The addon's twin of the loops below (the same additions in the same order, ~10× faster).
  const native = nativeHelper<ClusterDispersionFn>('clusterDispersion');
  if (native) {
    const out = native(x.data, x.nRows, d, labels, k);
    return { means: out.subarray(0, k * d), sizes: out.subarray(k * d, k * d + k), scatter: out.subarray(k * d + k, k * d + 2 * k), within: out[k * d + 2 * k] };
  }
  return dispersionJs(x, labels, k);
}

/**
 * {@link dispersion} of a matrix held in blocks (out-of-core, issue 17): the same sums in the
 * same row order as {@link dispersionJs}, one pass for the means and one for the scatter.
 */
export function dispersionChunked(x: ChunkedMatrix, labels: Int32Array, k: number): Dispersion {
  const d = x.nFeatures;
  const means = new Float64Array(k * d);
  const sizes = new Float64Array(k);
  for (let c = 0, row = 0; c < x.nChunks; c++) {
    const data = x.chunk(c);
    for (let i = 0; i < data.length / d; i++, row++) {
      const l = labels[row];
      sizes[l]++;
      for (let f = 0; f < d; f++) means[l * d + f] += data[i * d + f];
    }
  }
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) if (sizes[j] > 0) means[j * d + f] /= sizes[j];
  const scatter = new Float64Array(k);
  let within = 0;
  for (let c = 0, row = 0; c < x.nChunks; c++) {
    const data = x.chunk(c);
    for (let i = 0; i < data.length / d; i++, row++) {
      const l = labels[row];
      let s = 0;
      for (let f = 0; f < d; f++) {
        const t = data[i * d + f] - means[l * d + f];
        s += t * t;
      }
      within += s;
      scatter[l] += Math.sqrt(s);
    }
  }
  for (let j = 0; j < k; j++) if (sizes[j] > 0) scatter[j] /= sizes[j];
  return { means, sizes, within, scatter };
}

/** {@link dispersion} of a matrix in either form. */
export function dispersionOf(x: HostMatrix, labels: Int32Array, k: number): Dispersion {
  return isChunked(x) ? dispersionChunked(x, labels, k) : dispersion(x, labels, k);
}

/** {@link dispersion} in JavaScript: the fallback without the addon, and its reference in tests. */
export function dispersionJs(x: Matrix, labels: Int32Array, k: number): Dispersion {
  if (x.nRows === 0) return { means: new Float64Array(k * x.nFeatures), sizes: new Float64Array(k), within: 0, scatter: new Float64Array(k) };
  return dispersionChunked(chunkedMatrix([x.data], x.nFeatures), labels, k);
}

/**
 * Calinski-Harabasz index: (B / (k − 1)) / (W / (n − k)), B and W the between- and within-cluster
 * dispersions. Null when fewer than 2 clusters are populated or n equals their number.
 */
export function calinskiHarabasz(x: Matrix | ChunkedMatrix, labels: Int32Array, k: number, disp = dispersionOf(x, labels, k)): number | null {
  const d = x.nFeatures;
  const n = x.nRows;
  const { means, sizes, within } = disp;
  const used = sizes.filter((s) => s > 0).length;
  if (used < 2 || n === used) return null;
  const mu = new Float64Array(d);
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) mu[f] += means[j * d + f] * sizes[j];
  for (let f = 0; f < d; f++) mu[f] /= n;
  let between = 0;
  for (let j = 0; j < k; j++) {
    for (let f = 0; f < d; f++) between += sizes[j] * (means[j * d + f] - mu[f]) ** 2;
  }
  if (within === 0) return 1;
  return (between * (n - used)) / (within * (used - 1));
}

/**
 * Davies-Bouldin index: mean over clusters of max over others of (sᵢ + sⱼ) / ‖cᵢ − cⱼ‖, with sᵢ the
 * mean distance of a cluster's rows to its mean. Lower is better. Null with fewer than 2 clusters.
 *
 * All k × k centroid distances in float64 on the host, O(k²·d): each pair once (the ratio is
 * symmetric), four pairs per pass over a mean. At d = 128 that is 0.07–0.28 s for k = 1,024 and
 * 1.4–2.3 s for k = 4,096 (a shared 2-core machine; the loop before issue 13 took 0.14–0.36 s at
 * k = 1,024): {@link daviesBouldinOn} gives the same value with the distances screened on a
 * backend, 0.04–0.15 s and 0.42–0.76 s there with the native one.
 */
export function daviesBouldin(x: Matrix | ChunkedMatrix, labels: Int32Array, k: number, disp = dispersionOf(x, labels, k)): number | null {
  const d = x.nFeatures;
  const live = liveMeans(disp, d);
  if (!live) return null;
  const { c, s, m } = live;
  const worst = new Float64Array(m);
  const ratio = (a: number, b: number, sq: number): void => {
    const r = dbRatio(s[a] + s[b], sq);
    if (r > worst[a]) worst[a] = r;
    if (r > worst[b]) worst[b] = r;
  };
  for (let a = 0; a < m; a++) {
    const ao = a * d;
    let b = a + 1;
    for (; b + 3 < m; b += 4) {
      const b0 = b * d;
      const b1 = b0 + d;
      const b2 = b1 + d;
      const b3 = b2 + d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let f = 0; f < d; f++) {
        const v = c[ao + f];
        const t0 = v - c[b0 + f];
        const t1 = v - c[b1 + f];
        const t2 = v - c[b2 + f];
        const t3 = v - c[b3 + f];
        s0 += t0 * t0;
        s1 += t1 * t1;
        s2 += t2 * t2;
        s3 += t3 * t3;
      }
      ratio(a, b, s0);
      ratio(a, b + 1, s1);
      ratio(a, b + 2, s2);
      ratio(a, b + 3, s3);
    }
    for (; b < m; b++) {
      const bo = b * d;
      ratio(a, b, sqDist(c, ao, bo, d));
    }
  }
  let total = 0;
  for (let a = 0; a < m; a++) total += worst[a];
  return total / m;
}

/** The means and scatters of the populated clusters, contiguous; null when fewer than 2. */
function liveMeans(disp: Dispersion, d: number): { c: Float64Array; s: Float64Array; m: number } | null {
  const { means, sizes, scatter } = disp;
  const live: number[] = [];
  for (let j = 0; j < sizes.length; j++) if (sizes[j] > 0) live.push(j);
  const m = live.length;
  if (m < 2) return null;
  const c = new Float64Array(m * d);
  const s = new Float64Array(m);
  live.forEach((j, a) => {
    c.set(means.subarray(j * d, (j + 1) * d), a * d);
    s[a] = scatter[j];
  });
  return { c, s, m };
}

/** Σ(cₐ − c_b)² in float64, as daviesBouldin's 1-pair tail loop computes it. */
function sqDist(c: Float64Array, ao: number, bo: number, d: number): number {
  let sq = 0;
  for (let f = 0; f < d; f++) {
    const t = c[ao + f] - c[bo + f];
    sq += t * t;
  }
  return sq;
}

function dbRatio(num: number, sq: number): number {
  const dist = Math.sqrt(sq);
  // Coincident centres: scikit-learn sets the ratio to inf, then to 0 where the numerator is 0 too.
  return dist === 0 ? (num === 0 ? 0 : Infinity) : num / dist;
}

/**
 * {@link daviesBouldin} with the k × k centroid distances screened on a backend: its float32
 * `distances` op gives every pair's squared distance d̃² (on means centred on their average,
 * which keeps the norms, and so the float32 error, small), and only the pairs that could hold
 * a cluster's maximum ratio are recomputed exactly in float64. With E = ε·(‖cₐ‖² + ‖c_b‖²),
 * ε = max(1e-3, (2d + 16)·2⁻²³) (the float32 expansion's error with rounding of the means, with
 * room for a backend that multiplies in lower precision), d² ≥ d̃² − E bounds each ratio from
 * above; for each cluster, the pair with the largest estimated ratio is computed exactly, then
 * every pair whose bound reaches it. Each cluster's maximum is an exact float64 ratio of the
 * same pairs daviesBouldin compares, so the index is the same; where the means are too close
 * for the bound to prune, it does the same work as daviesBouldin.
 *
 * With `exactBelow` (default 256) or fewer populated clusters, it is daviesBouldin itself.
 *
 * @example
 * const db = await daviesBouldinOn(be, x, labels, 1024);
 */
export async function daviesBouldinOn(
  be: Backend,
  x: Matrix | ChunkedMatrix,
  labels: Int32Array,
  k: number,
  disp = dispersionOf(x, labels, k),
  { exactBelow = 256 }: { exactBelow?: number } = {},
): Promise<number | null> {
  const d = x.nFeatures;
  const live = liveMeans(disp, d);
  if (!live) return null;
  const { c, s, m } = live;
  if (m <= exactBelow) return daviesBouldin(x, labels, k, disp);
  const centre = new Float64Array(d);
  for (let a = 0; a < m; a++) for (let f = 0; f < d; f++) centre[f] += c[a * d + f] / m;
  const c32 = new Float32Array(m * d);
  const norm = new Float64Array(m);
  for (let a = 0; a < m; a++) {
    let n = 0;
    for (let f = 0; f < d; f++) {
      const v = (c32[a * d + f] = c[a * d + f] - centre[f]);
      n += v * v;
    }
    norm[a] = n;
  }
  const eps = (2 * d + 16) * 2 ** -23;
  // Row blocks of the m × m matrix, so the float32 buffer stays ≤ 16 MiB whatever k is.
  const block = Math.max(1, Math.min(m, Math.floor((4 << 20) / m)));
  const buf = new Float32Array(block * m);
  let total = 0;
  for (let start = 0; start < m; start += block) {
    const rows = Math.min(block, m - start);
    const dx = be.upload({ data: c32.subarray(start * d, (start + rows) * d), nRows: rows, nFeatures: d });
    let est: Float32Array;
    try {
      est = await distances(be, dx, c32, m, buf.subarray(0, rows * m));
    } finally {
      be.release(dx);
    }
    for (let i = 0; i < rows; i++) {
      const a = start + i;
      const row = i * m;
      let best = -1;
      let bestEst = -1;
      for (let b = 0; b < m; b++) {
        if (b === a) continue;
        const num = s[a] + s[b];
        const r2 = (num * num) / est[row + b];
        if (r2 > bestEst || best < 0) {
          bestEst = r2;
          best = b;
        }
      }
      let worst = dbRatio(s[a] + s[best], sqDist(c, a * d, best * d, d));
      const w2 = worst * worst;
      for (let b = 0; b < m; b++) {
        if (b === a || b === best) continue;
        const num = s[a] + s[b];
        const lower = est[row + b] - eps * (norm[a] + norm[b]);
        // The bound (s_a + s_b)² / lower ≥ worst², written without a division.
        if (lower <= 0 || num * num >= w2 * lower) {
          const r = dbRatio(num, sqDist(c, a * d, b * d, d));
          if (r > worst) worst = r;
        }
      }
      total += worst;
    }
  }
  return total / m;
}

/** A seeded sample of `size` distinct row indices (all rows when size >= nRows), sorted. */
export function sampleRows(nRows: number, size: number, seed: number): Int32Array {
  if (size >= nRows) return Int32Array.from({ length: nRows }, (_, i) => i);
  // Partial Fisher–Yates over a lazily materialised permutation.
  const rng = new Random(seed);
  const swapped = new Map<number, number>();
  const out = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const j = i + rng.int(nRows - i);
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out[i] = vj;
  }
  return out.sort();
}

/** The most memory the silhouette's per-row cluster sums take at once (in row blocks). */
export const SILHOUETTE_BLOCK_BYTES = 64 << 20;

/**
 * Mean silhouette coefficient over `rows` (all rows if omitted). The pairwise distance sums run
 * on the backend (quadratic: keep `rows` to a sample). Rows in singleton
 * clusters score 0, as in scikit-learn. Null with fewer than 2 populated clusters.
 */
export async function silhouette(be: Backend, x: HostMatrix, labels: Int32Array, k: number, rows?: Int32Array): Promise<number | null> {
  const d = x.nFeatures;
  const idx = rows ?? Int32Array.from({ length: x.nRows }, (_, i) => i);
  const s = idx.length;
  const sub = hostRows(x, idx);
  const lab = new Int32Array(s);
  idx.forEach((r, i) => (lab[i] = labels[r]));
  const size = new Float64Array(k);
  for (const l of lab) size[l]++;
  if (size.filter((c) => c > 0).length < 2) return null;
  // sumDist[(i − r0) * k + j]: Σ distance from sample row i to the sample rows of cluster j, for
  // the rows of one block: blocks of at most SILHOUETTE_BLOCK_BYTES of sums, so the buffer stays
  // bounded at large k (20,000 rows × 4,096 clusters would be 655 MB at once).
  const dx = be.upload({ data: sub, nRows: s, nFeatures: d });
  const block = Math.max(1, Math.min(s, Math.floor(SILHOUETTE_BLOCK_BYTES / (8 * k))));
  let total = 0;
  try {
    for (let r0 = 0; r0 < s; r0 += block) {
      const r1 = Math.min(s, r0 + block);
      const sumDist = await clusterDistanceSums(be, dx, lab, k, { start: r0, end: r1 });
      for (let i = r0; i < r1; i++) {
        const own = lab[i];
        if (size[own] <= 1) continue;
        const o = (i - r0) * k;
        const a = sumDist[o + own] / (size[own] - 1);
        let b = Infinity;
        for (let j = 0; j < k; j++) if (j !== own && size[j] > 0) b = Math.min(b, sumDist[o + j] / size[j]);
        const m = Math.max(a, b);
        total += m > 0 ? (b - a) / m : 0;
      }
    }
  } finally {
    be.release(dx);
  }
  return total / s;
}

/** The three indices `fit` and `sweep` report. */
export interface ClusterQuality {
  /** Mean silhouette over `sample` (null with fewer than 2 populated clusters). */
  silhouette: number | null;
  calinskiHarabasz: number | null;
  daviesBouldin: number | null;
}

/**
 * Silhouette on the rows of `sample` (a seeded sample: the pairwise sums are quadratic),
 * Calinski-Harabasz and Davies-Bouldin on every row, from one dispersion pass.
 *
 * @example
 * const q = await clusterQuality(be, x, labels, k, sampleRows(x.nRows, 20000, seed));
 */
export async function clusterQuality(be: Backend, x: HostMatrix, labels: Int32Array, k: number, sample: Int32Array): Promise<ClusterQuality> {
  const disp = dispersionOf(x, labels, k);
  return {
    silhouette: await silhouette(be, x, labels, k, sample),
    calinskiHarabasz: calinskiHarabasz(x, labels, k, disp),
    daviesBouldin: await daviesBouldinOn(be, x, labels, k, disp),
  };
}
