/**
 * Host-side helpers shared by backends. @internal
 */
import type { Backend, DeviceMatrix, Matrix, RadiusNeighbours, RowRange, SegmentSums } from '../backend.js';

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

/**
 * Per uploaded matrix, for {@link radiusNeighboursHost}: each row's share of the float32
 * rounding bound (k·‖xᵢ‖², float64) and the largest. Kept for the matrix's lifetime, since DBSCAN
 * asks for many small ranges of one matrix.
 */
const radiusBands = new WeakMap<DeviceMatrix, { band: Float64Array; maxBand: number }>();

function radiusBand(x: DeviceMatrix, host: Float32Array): { band: Float64Array; maxBand: number } {
  let b = radiusBands.get(x);
  if (b) return b;
  const n = x.nRows;
  const d = x.nFeatures;
  // A float32 squared distance from `distances`, direct (Σ(x − c)², native and CUDA) or through
  // ‖x‖² − 2x·c + ‖c‖² (tfjs), is within (d + 4)u·2(‖x‖² + ‖c‖²) of the exact one (u = 2⁻²⁴, the
  // d + 2 roundings of the sum and those of the stored norms; for the direct form ‖x − c‖² ≤
  // 2(‖x‖² + ‖c‖²)); the float64 sum is within d·2⁻⁵³ of it. Twice that, split per row.
  const k = (4 * d + 16) * 2 ** -24;
  const band = new Float64Array(n);
  let maxBand = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let f = 0; f < d; f++) s += host[i * d + f] * host[i * d + f];
    band[i] = k * s + 1e-30;
    if (band[i] > maxBand) maxBand = band[i];
  }
  b = { band, maxBand };
  radiusBands.set(x, b);
  return b;
}

/**
 * {@link Backend.radiusNeighbours} from the backend's `distances`, for backends without a
 * kernel: the query rows as centers in blocks of B = min(4096, ⌊2²⁴ / nRows⌋) (an nRows × B
 * float32 scratch of at most 64 MiB, kept with the matrix), and a host scan of each block. A
 * float32 distance within its rounding bound of eps² (see radiusBand) is recomputed as
 * Σ_f (x[i, f] − x[q, f])² in float64, feature order, from the host copy, so the decision is the
 * float64 one. The weighted counts are summed in row order; lists come out ascending.
 * `candidates` limits the rows scanned (and computed too, given `rowDistances`) to a range. Time:
 * queries × nRows × d flops on the backend plus a queries × nRows host scan. The bound grows
 * with ‖x‖², so data far from the origin gets more rechecks (slower, never wrong).
 */
export async function radiusNeighboursHost(
  be: Pick<Backend, 'distances'>,
  x: DeviceMatrix,
  host: Float32Array,
  queries: RowRange,
  eps: number,
  mode: 'count' | 'list',
  candidates?: RowRange,
  /**
   * The backend's distances for rows [r0, r1) only ((r1 − r0) × m into out), where it has them:
   * then only the candidate rows are computed, not just scanned.
   */
  rowDistances?: (centers: Float32Array, m: number, r0: number, r1: number, out: Float32Array) => Promise<Float32Array>,
): Promise<RadiusNeighbours> {
  const n = x.nRows;
  const r0 = candidates?.start ?? 0;
  const r1 = candidates?.end ?? n;
  // The distance blocks hold rows [base, base + rows): the candidates alone, or every row.
  const windowed = rowDistances !== undefined && (r0 > 0 || r1 < n);
  const base = windowed ? r0 : 0;
  const rows = windowed ? r1 - r0 : n;
  const d = x.nFeatures;
  const q0 = queries.start;
  const nq = queries.end - q0;
  const w = x.weights;
  const eps2 = eps * eps;
  const list = mode === 'list';
  const counts = new Float64Array(nq);
  const offsets = list ? new Int32Array(nq + 1) : null;
  let indices: Int32Array = new Int32Array(list ? 1024 : 0);
  let rechecked = 0;
  if (nq === 0) return { counts, offsets, indices: list ? indices.subarray(0, 0) : null, rechecked };
  const { band, maxBand } = radiusBand(x, host);
  const block = Math.max(1, Math.min(nq, 4096, Math.floor(2 ** 24 / Math.max(1, rows))));
  const scratch = scratchFor(x, Math.max(1, rows) * block);
  let pr: Int32Array = new Int32Array(list ? 1 << 16 : 0);
  let pc: Int32Array = new Int32Array(list ? 1 << 16 : 0);
  const fill = new Int32Array(block + 1);
  let total = 0;
  for (let b0 = 0; b0 < nq; b0 += block) {
    const m = Math.min(block, nq - b0);
    const c0 = q0 + b0;
    const centers = host.subarray(c0 * d, (c0 + m) * d);
    const d2 = windowed ? await rowDistances!(centers, m, r0, r1, scratch.subarray(0, rows * m)) : await be.distances(x, centers, m, scratch.subarray(0, n * m));
    let hiC = 0;
    for (let c = 0; c < m; c++) hiC = Math.max(hiC, band[c0 + c]);
    // One comparison per entry in the common case: nothing above this is a neighbour.
    const reject = eps2 + maxBand + hiC;
    let np = 0;
    for (let r = r0, at = (r0 - base) * m; r < r1; r++, at += m) {
      for (let c = 0; c < m; c++) {
        const v = d2[at + c];
        if (v > reject) continue;
        const bnd = band[r] + band[c0 + c];
        if (v > eps2 + bnd) continue;
        if (v >= eps2 - bnd) {
          rechecked++;
          if (sqDist64(host, r * d, (c0 + c) * d, d) > eps2) continue;
        }
        // Rows ascend in this loop: each query's weights are summed, and its list filled, in row order.
        counts[b0 + c] += w ? w[r] : 1;
        if (!list) continue;
        if (np === pr.length) {
          pr = growInt32(pr, np);
          pc = growInt32(pc, np);
        }
        pr[np] = r;
        pc[np++] = c;
      }
    }
    if (!list) continue;
    // Bucket the block's pairs by query, rows staying ascending.
    fill.fill(0);
    for (let p = 0; p < np; p++) fill[pc[p] + 1]++;
    for (let c = 0; c < m; c++) {
      fill[c + 1] += fill[c];
      offsets![b0 + c + 1] = total + fill[c + 1];
    }
    if (total + np > 2 ** 31 - 1) throw new RangeError(`radiusNeighbours: more than 2^31 − 1 neighbour pairs in one call; query fewer rows at a time`);
    if (indices.length < total + np) {
      const grown = new Int32Array(Math.max(total + np, 2 * indices.length));
      grown.set(indices.subarray(0, total));
      indices = grown;
    }
    for (let p = 0; p < np; p++) indices[total + fill[pc[p]]++] = pr[p];
    total += np;
  }
  return { counts, offsets, indices: list ? indices.subarray(0, total) : null, rechecked };
}

/** Σ_f (a_f − b_f)² in float64, feature order, rows of one matrix. @internal */
function sqDist64(data: Float32Array, ia: number, ib: number, d: number): number {
  let s = 0;
  for (let f = 0; f < d; f++) {
    const t = data[ia + f] - data[ib + f];
    s += t * t;
  }
  return s;
}

function growInt32(a: Int32Array, used: number): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a.subarray(0, used));
  return b;
}
