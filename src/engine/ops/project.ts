import type { Backend, DeviceMatrix, RowRange, SegmentSums } from '../backend.js';

/** Rows [start, end) of `x` checked, all rows by default. @internal */
function span(op: string, x: DeviceMatrix, rows?: RowRange): number {
  const r0 = rows?.start ?? 0;
  const r1 = rows?.end ?? x.nRows;
  if (!Number.isInteger(r0) || !Number.isInteger(r1) || r0 < 0 || r1 > x.nRows || r0 > r1) {
    throw new RangeError(`${op}: 'rows' must satisfy 0 <= start <= end <= nRows = ${x.nRows}; got [${r0}, ${r1})`);
  }
  return r1 - r0;
}

function checkWidth(op: string, m: number): void {
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`${op}: 'm' must be an integer >= 1; got ${m}`);
}

function checkRows(op: string, r: Float32Array, n: number, m: number): void {
  if (!(r instanceof Float32Array)) throw new TypeError(`${op}: 'r' must be a Float32Array`);
  if (r.length !== n * m) throw new RangeError(`${op}: 'r' must hold rows × m = ${n} × ${m} = ${n * m} values; got ${r.length}`);
}

/**
 * x·w for the rows in range: (rows × m) float32, `w` nFeatures × m row-major.
 *
 * @example
 * const y = await project(be, x, components, 2); // PCA scores
 */
export function project(be: Backend, x: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
  checkWidth('project', m);
  const n = span('project', x, rows);
  if (!(w instanceof Float32Array) || w.length !== x.nFeatures * m) {
    throw new RangeError(`project: 'w' must be a Float32Array of nFeatures × m = ${x.nFeatures * m} values; got ${w?.length}`);
  }
  if (out && out.length !== n * m) throw new RangeError(`project: 'out' must hold rows × m = ${n * m} values; got ${out.length}`);
  return be.project(x, w, m, rows, out);
}

/**
 * Σ w·r·x and Σ w·r per column of the responsibilities `r` (rows × m).
 *
 * @example
 * const { sums, counts } = await softSums(be, x, resp, k); // means = sums / counts
 */
export function softSums(be: Backend, x: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
  checkWidth('softSums', m);
  checkRows('softSums', r, span('softSums', x, rows), m);
  return be.softSums(x, r, m, rows);
}

/**
 * Centred weighted scatter matrices per column of `r` (null: one, all ones), m × d × d float64.
 *
 * @example
 * const cov = await scatter(be, x, null, 1, mean); // divide by the total weight
 */
export function scatter(be: Backend, x: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
  checkWidth('scatter', m);
  const n = span('scatter', x, rows);
  if (r) checkRows('scatter', r, n, m);
  else if (m !== 1) throw new RangeError(`scatter: without 'r', 'm' must be 1; got ${m}`);
  if (!(means instanceof Float64Array) || means.length !== m * x.nFeatures) {
    throw new RangeError(`scatter: 'means' must be a Float64Array of m × nFeatures = ${m * x.nFeatures} values; got ${means?.length}`);
  }
  return be.scatter(x, r, m, means, rows);
}
