/**
 * Cluster-quality metrics on the preprocessed matrix, matching scikit-learn's definitions
 * (unweighted, Euclidean): silhouette (on a seeded sample), Calinski-Harabasz, Davies-Bouldin.
 *
 * @example
 * const q = await clusterQuality(be, x, labels, k, { sampleSize: 20000, seed: 0 });
 */
import type { Backend, Matrix } from '../engine/backend.js';
import { clusterDistanceSums } from '../engine/ops/cluster-distance-sums.js';
import { Random } from '../util/random.js';

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
  const { means, sizes } = clusterMeans(x, labels, k);
  const scatter = new Float64Array(k);
  let within = 0;
  const data = x.data;
  for (let i = 0; i < x.nRows; i++) {
    const l = labels[i];
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = data[i * d + f] - means[l * d + f];
      s += t * t;
    }
    within += s;
    scatter[l] += Math.sqrt(s);
  }
  for (let j = 0; j < k; j++) if (sizes[j] > 0) scatter[j] /= sizes[j];
  return { means, sizes, within, scatter };
}

/**
 * Calinski-Harabasz index: (B / (k − 1)) / (W / (n − k)), B and W the between- and within-cluster
 * dispersions. Null when fewer than 2 clusters are populated or n equals their number.
 */
export function calinskiHarabasz(x: Matrix, labels: Int32Array, k: number, disp = dispersion(x, labels, k)): number | null {
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
 */
export function daviesBouldin(x: Matrix, labels: Int32Array, k: number, disp = dispersion(x, labels, k)): number | null {
  const d = x.nFeatures;
  const { means, sizes, scatter } = disp;
  const live = [...sizes.keys()].filter((j) => sizes[j] > 0);
  if (live.length < 2) return null;
  let total = 0;
  for (const i of live) {
    let worst = 0;
    for (const j of live) {
      if (i === j) continue;
      let m = 0;
      for (let f = 0; f < d; f++) m += (means[i * d + f] - means[j * d + f]) ** 2;
      m = Math.sqrt(m);
      // Coincident centres: scikit-learn sets the ratio to inf, then to 0 where the numerator is 0 too.
      const r = m === 0 ? (scatter[i] + scatter[j] === 0 ? 0 : Infinity) : (scatter[i] + scatter[j]) / m;
      if (r > worst) worst = r;
    }
    total += worst;
  }
  return total / live.length;
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

/**
 * Mean silhouette coefficient over `rows` (all rows if omitted). The pairwise distance sums run
 * on the backend (quadratic: keep `rows` to a sample). Rows in singleton
 * clusters score 0, as in scikit-learn. Null with fewer than 2 populated clusters.
 */
export async function silhouette(be: Backend, x: Matrix, labels: Int32Array, k: number, rows?: Int32Array): Promise<number | null> {
  const d = x.nFeatures;
  const idx = rows ?? Int32Array.from({ length: x.nRows }, (_, i) => i);
  const s = idx.length;
  const sub = new Float32Array(s * d);
  const lab = new Int32Array(s);
  idx.forEach((r, i) => {
    sub.set(x.data.subarray(r * d, (r + 1) * d), i * d);
    lab[i] = labels[r];
  });
  const size = new Float64Array(k);
  for (const l of lab) size[l]++;
  if (size.filter((c) => c > 0).length < 2) return null;
  // sumDist[i * k + j]: Σ distance from sample row i to the sample rows of cluster j.
  const dx = be.upload({ data: sub, nRows: s, nFeatures: d });
  let sumDist: Float64Array;
  try {
    sumDist = await clusterDistanceSums(be, dx, lab, k);
  } finally {
    be.release(dx);
  }
  let total = 0;
  for (let i = 0; i < s; i++) {
    const own = lab[i];
    if (size[own] <= 1) continue;
    const a = sumDist[i * k + own] / (size[own] - 1);
    let b = Infinity;
    for (let j = 0; j < k; j++) if (j !== own && size[j] > 0) b = Math.min(b, sumDist[i * k + j] / size[j]);
    const m = Math.max(a, b);
    total += m > 0 ? (b - a) / m : 0;
  }
  return total / s;
}
