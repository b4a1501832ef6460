/**
 * Float64 brute-force references, written as plain loops and sharing no code with src/, so
 * every backend and algorithm can be checked against something independent.
 */

/** Nearest centroid by direct Σ(x − c)² in float64; ties go to the lowest index. */
export function refAssign(
  x: ArrayLike<number>,
  nRows: number,
  d: number,
  c: ArrayLike<number>,
  k: number,
): { labels: Int32Array; dist: Float64Array; second: Float64Array } {
  const labels = new Int32Array(nRows);
  const dist = new Float64Array(nRows);
  const second = new Float64Array(nRows); // runner-up distance, to recognise near-ties
  for (let i = 0; i < nRows; i++) {
    let best = Infinity;
    let next = Infinity;
    let arg = 0;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const t = x[i * d + f] - c[j * d + f];
        s += t * t;
      }
      if (s < best) {
        next = best;
        best = s;
        arg = j;
      } else if (s < next) next = s;
    }
    labels[i] = arg;
    dist[i] = best;
    second[i] = next;
  }
  return { labels, dist, second };
}

/** Weighted per-cluster sums and counts in float64. */
export function refSegmentSum(
  x: ArrayLike<number>,
  nRows: number,
  d: number,
  labels: ArrayLike<number>,
  k: number,
  w?: ArrayLike<number> | null,
): { sums: Float64Array; counts: Float64Array } {
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  for (let i = 0; i < nRows; i++) {
    const wi = w ? w[i] : 1;
    const l = labels[i];
    counts[l] += wi;
    for (let f = 0; f < d; f++) sums[l * d + f] += wi * x[i * d + f];
  }
  return { sums, counts };
}

/**
 * Plain Lloyd iterations from given initial centroids, with scikit-learn's stopping rules
 * (labels unchanged, or squared centre shift <= tol) and a final E-step.
 */
export function refLloyd(
  x: ArrayLike<number>,
  nRows: number,
  d: number,
  init: ArrayLike<number>,
  k: number,
  maxIter: number,
  tol: number,
  w?: ArrayLike<number> | null,
): { centroids: Float64Array; labels: Int32Array; inertia: number; nIter: number } {
  let c = Float64Array.from(init);
  let prev: Int32Array | null = null;
  let it = 0;
  for (it = 1; it <= maxIter; it++) {
    const { labels } = refAssign(x, nRows, d, c, k);
    const { sums, counts } = refSegmentSum(x, nRows, d, labels, k, w);
    const next = new Float64Array(k * d);
    let shift = 0;
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < d; f++) {
        next[j * d + f] = counts[j] > 0 ? sums[j * d + f] / counts[j] : c[j * d + f];
        shift += (next[j * d + f] - c[j * d + f]) ** 2;
      }
    }
    c = next;
    if (prev && prev.every((v, i) => v === labels[i])) {
      break;
    }
    prev = labels;
    if (shift <= tol) break;
  }
  const final = refAssign(x, nRows, d, c, k);
  let inertia = 0;
  for (let i = 0; i < nRows; i++) inertia += (w ? w[i] : 1) * final.dist[i];
  return { centroids: c, labels: final.labels, inertia, nIter: Math.min(it, maxIter) };
}

/** Deterministic pseudo-random numbers (mulberry32) for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian blobs: `k` centres spread by `spread`, unit noise. Returns data and true labels. */
export function blobs(nRows: number, d: number, k: number, spread: number, seed: number) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centres = new Float64Array(k * d).map(() => (r() * 2 - 1) * spread);
  const data = new Float32Array(nRows * d);
  const truth = new Int32Array(nRows);
  for (let i = 0; i < nRows; i++) {
    const j = i % k;
    truth[i] = j;
    for (let f = 0; f < d; f++) data[i * d + f] = centres[j * d + f] + gauss();
  }
  return { data, truth, centres };
}

/** Adjusted Rand index of two labelings (closed form over the contingency table). */
export function adjustedRand(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  const table = new Map<string, number>();
  const ra = new Map<number, number>();
  const rb = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const key = `${a[i]},${b[i]}`;
    table.set(key, (table.get(key) ?? 0) + 1);
    ra.set(a[i], (ra.get(a[i]) ?? 0) + 1);
    rb.set(b[i], (rb.get(b[i]) ?? 0) + 1);
  }
  const c2 = (m: number) => (m * (m - 1)) / 2;
  let sumTable = 0;
  for (const v of table.values()) sumTable += c2(v);
  let sumA = 0;
  for (const v of ra.values()) sumA += c2(v);
  let sumB = 0;
  for (const v of rb.values()) sumB += c2(v);
  const expected = (sumA * sumB) / c2(n);
  const max = (sumA + sumB) / 2;
  return max === expected ? 1 : (sumTable - expected) / (max - expected);
}

/**
 * The fixtures' Gaussian mixture (make-kmeans-init-fixtures.py, make-minibatch-fixtures.py
 * generate the same rows): `comps` components in d dimensions, unequal weights 1/(j+1) and
 * spreads in [0.5, 2].
 */
export function gmm(nRows: number, d: number, comps: number, seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: comps }, () => Array.from({ length: d }, () => (r() * 2 - 1) * 10));
  const sigma = Array.from({ length: comps }, () => 0.5 + 1.5 * r());
  const cum: number[] = [];
  let s = 0;
  for (let j = 0; j < comps; j++) cum.push((s += 1 / (j + 1)));
  const x = new Float32Array(nRows * d);
  for (let i = 0; i < nRows; i++) {
    const u = r() * s;
    let j = 0;
    while (!(cum[j] > u)) j++;
    for (let f = 0; f < d; f++) x[i * d + f] = centres[j][f] + sigma[j] * gauss();
  }
  return x;
}

/** Same partition up to renumbering: a bijection between the labels of a and b. */
export function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const ab = new Map<number, number>();
  const ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((ab.get(a[i]) ?? b[i]) !== b[i] || (ba.get(b[i]) ?? a[i]) !== a[i]) return false;
    ab.set(a[i], b[i]);
    ba.set(b[i], a[i]);
  }
  return true;
}
