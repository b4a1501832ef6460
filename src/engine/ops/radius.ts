import type { Backend, DeviceMatrix, RadiusNeighbours, RowRange } from '../backend.js';

const MODES: readonly string[] = ['count', 'list'];

/**
 * The eps-neighbourhoods of the rows in `queries` within x itself ({@link Backend.radiusNeighbours}):
 * the rows at squared distance ≤ eps·eps (float64, in feature order), each query included.
 * `count` gives the summed sample weights per query; `list` also the neighbours, as CSR with
 * each list ascending. Output is up to (queries × nRows) indices: keep the range small on big data.
 *
 * @example
 * const { counts, offsets, indices } = await radiusNeighbours(be, x, { start: 0, end: 256 }, 0.5, 'list');
 * indices.subarray(offsets[3], offsets[4]); // row 3's neighbours
 */
export function radiusNeighbours(be: Backend, x: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list'): Promise<RadiusNeighbours> {
  if (typeof queries !== 'object' || queries === null) {
    throw new TypeError(`radiusNeighbours: 'queries' must be a row range { start, end }; got ${String(queries)}`);
  }
  const { start, end } = queries;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > x.nRows || start > end) {
    throw new RangeError(`radiusNeighbours: 'queries' must satisfy 0 <= start <= end <= nRows = ${x.nRows}; got [${start}, ${end})`);
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`radiusNeighbours: 'eps' must be a finite number >= 0; got ${String(eps)}`);
  }
  if (!MODES.includes(mode)) throw new TypeError(`radiusNeighbours: 'mode' must be 'count' or 'list'; got ${String(mode)}`);
  return be.radiusNeighbours(x, queries, eps, mode);
}
