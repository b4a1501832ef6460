import type { Backend, DeviceMatrix, RadiusNeighbours, RowRange } from '../backend.js';

const MODES: readonly string[] = ['count', 'list'];

/**
 * The eps-neighbourhoods of the rows in `queries` within x itself ({@link Backend.radiusNeighbours}):
 * the rows at squared distance ≤ eps·eps (float64, in feature order), each query included.
 * `count` gives the summed sample weights per query; `list` also the neighbours, as CSR with
 * each list ascending. Output is up to (queries × nRows) indices: keep the range small on big data.
 * `candidates` limits the rows looked at to a range (default every row).
 *
 * @example
 * const { counts, offsets, indices } = await radiusNeighbours(be, x, { start: 0, end: 256 }, 0.5, 'list');
 * indices.subarray(offsets[3], offsets[4]); // row 3's neighbours
 */
export function radiusNeighbours(be: Backend, x: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours> {
  checkRange('queries', queries, x.nRows);
  if (candidates !== undefined) checkRange('candidates', candidates, x.nRows);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`radiusNeighbours: 'eps' must be a finite number >= 0; got ${String(eps)}`);
  }
  if (!MODES.includes(mode)) throw new TypeError(`radiusNeighbours: 'mode' must be 'count' or 'list'; got ${String(mode)}`);
  return be.radiusNeighbours(x, queries, eps, mode, candidates);
}

function checkRange(name: string, r: RowRange, nRows: number): void {
  if (typeof r !== 'object' || r === null) {
    throw new TypeError(`radiusNeighbours: '${name}' must be a row range { start, end }; got ${String(r)}`);
  }
  const { start, end } = r;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > nRows || start > end) {
    throw new RangeError(`radiusNeighbours: '${name}' must satisfy 0 <= start <= end <= nRows = ${nRows}; got [${start}, ${end})`);
  }
}
