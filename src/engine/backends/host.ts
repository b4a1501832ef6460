/**
 * Host-side helpers shared by backends. @internal
 */
import type { Backend, DeviceMatrix, Matrix, RowRange, SegmentSums } from '../backend.js';

/**
 * Exact squared distance of each row to its labelled centroid, Σ(x − c)² accumulated in float64,
 * written to `out`; returns the weighted inertia.
 */
export function exactDistances(
  x: Matrix,
  centroids: Float32Array,
  labels: Int32Array,
  weights: Float32Array | null,
  out: Float32Array,
): number {
  const d = x.nFeatures;
  const data = x.data;
  let inertia = 0;
  for (let i = 0; i < x.nRows; i++) {
    const base = i * d;
    const cb = labels[i] * d;
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = data[base + f] - centroids[cb + f];
      s += t * t;
    }
    out[i] = s;
    inertia += weights ? weights[i] * s : s;
  }
  return inertia;
}

/**
 * {@link Backend.potentials} from a full nRows × m distance matrix: the fallback for backends
 * without a fused kernel. Σ w·min(closest, d) per candidate, in float64.
 */
export function potentialsFromDistances(dc: Float32Array, closest: Float32Array, w: Float32Array | null, m: number): Float64Array {
  const pots = new Float64Array(m);
  const n = closest.length;
  for (let i = 0; i < n; i++) {
    const ci = closest[i];
    const wi = w ? w[i] : 1;
    for (let t = 0; t < m; t++) {
      const v = dc[i * m + t];
      pots[t] += wi * (v < ci ? v : ci);
    }
  }
  return pots;
}

/** A per-matrix scratch buffer reused across calls, so k-means++ does not allocate per step. */
export function scratchFor(owner: object, size: number): Float32Array {
  let buf = scratch.get(owner);
  if (!buf || buf.length < size) {
    buf = new Float32Array(size);
    scratch.set(owner, buf);
  }
  return buf.subarray(0, size);
}
const scratch = new WeakMap<object, Float32Array>();

/**
 * {@link Backend.clusterDistanceSums} from the backend's `distances`, 256 columns at a time.
 * The sqrt and accumulation run on the host.
 */
export async function clusterDistanceSumsImpl(
  be: Pick<Backend, 'distances' | 'upload' | 'release'>,
  x: DeviceMatrix,
  host: Float32Array,
  labels: Int32Array,
  k: number,
  rows?: RowRange,
): Promise<Float64Array> {
  const s = x.nRows;
  const d = x.nFeatures;
  const r0 = rows?.start ?? 0;
  const r1 = rows?.end ?? s;
  const n = r1 - r0;
  const out = new Float64Array(n * k);
  // The rows in range as their own matrix (all of x when the range is everything).
  const whole = r0 === 0 && r1 === s;
  const xr = whole ? x : be.upload({ data: host.subarray(r0 * d, r1 * d), nRows: n, nFeatures: d });
  try {
    const block = 256;
    const buf = new Float32Array(n * block);
    for (let start = 0; start < s; start += block) {
      const m = Math.min(block, s - start);
      const d2 = await be.distances(xr, host.subarray(start * d, (start + m) * d), m, buf.subarray(0, n * m));
      for (let i = 0; i < n; i++) {
        const row = i * k;
        for (let j = 0; j < m; j++) {
          const v = r0 + i === start + j ? 0 : d2[i * m + j];
          out[row + labels[start + j]] += v > 0 ? Math.sqrt(v) : 0;
        }
      }
    }
  } finally {
    if (!whole) be.release(xr);
  }
  return out;
}

/** Rows [start, end) of a range, all rows by default. */
export function rowSpan(nRows: number, rows?: RowRange): [number, number] {
  return [rows?.start ?? 0, rows?.end ?? nRows];
}

/**
 * {@link Backend.project} on the host: float64 accumulation, row by row. The reference every
 * kernel is tested against, and the implementation of backends without a kernel.
 */
export function projectHost(x: Matrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Float32Array {
  const d = x.nFeatures;
  const [r0, r1] = rowSpan(x.nRows, rows);
  const res = out ?? new Float32Array((r1 - r0) * m);
  const acc = new Float64Array(m);
  const data = x.data;
  for (let i = r0; i < r1; i++) {
    acc.fill(0);
    const base = i * d;
    for (let f = 0; f < d; f++) {
      const v = data[base + f];
      if (v === 0) continue;
      const wf = f * m;
      for (let j = 0; j < m; j++) acc[j] += v * w[wf + j];
    }
    const o = (i - r0) * m;
    for (let j = 0; j < m; j++) res[o + j] = acc[j];
  }
  return res;
}

/** {@link Backend.softSums} on the host, float64 in row order. */
export function softSumsHost(x: Matrix, weights: Float32Array | null, r: Float32Array, m: number, rows?: RowRange): SegmentSums {
  const d = x.nFeatures;
  const [r0, r1] = rowSpan(x.nRows, rows);
  const sums = new Float64Array(m * d);
  const counts = new Float64Array(m);
  const data = x.data;
  for (let i = r0; i < r1; i++) {
    const wi = weights ? weights[i] : 1;
    const base = i * d;
    const ro = (i - r0) * m;
    for (let j = 0; j < m; j++) {
      const c = wi * r[ro + j];
      if (c === 0) continue;
      counts[j] += c;
      const sj = j * d;
      for (let f = 0; f < d; f++) sums[sj + f] += c * data[base + f];
    }
  }
  return { sums, counts };
}

/** {@link Backend.scatter} on the host, float64 in row order. */
export function scatterHost(x: Matrix, weights: Float32Array | null, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Float64Array {
  const d = x.nFeatures;
  const [r0, r1] = rowSpan(x.nRows, rows);
  const out = new Float64Array(m * d * d);
  const diff = new Float64Array(d);
  const data = x.data;
  for (let i = r0; i < r1; i++) {
    const wi = weights ? weights[i] : 1;
    const base = i * d;
    for (let j = 0; j < m; j++) {
      const c = wi * (r ? r[(i - r0) * m + j] : 1);
      if (c === 0) continue;
      const mj = j * d;
      for (let f = 0; f < d; f++) diff[f] = data[base + f] - means[mj + f];
      const oj = j * d * d;
      for (let a = 0; a < d; a++) {
        const ca = c * diff[a];
        if (ca === 0) continue;
        const oa = oj + a * d;
        for (let b = 0; b < d; b++) out[oa + b] += ca * diff[b];
      }
    }
  }
  return out;
}
