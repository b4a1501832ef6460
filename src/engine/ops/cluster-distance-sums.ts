import type { Backend, DeviceMatrix, RowRange } from '../backend.js';

/**
 * Σ‖xᵢ − xⱼ‖ per row i and cluster l of the rows j, for the silhouette: (end − start) × k for
 * the rows in `rows` (default all nRows).
 *
 * @example
 * const sums = await clusterDistanceSums(be, sample, labels, k, { start: 0, end: 1000 });
 */
export function clusterDistanceSums(be: Backend, x: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`clusterDistanceSums: 'k' must be an integer >= 1; got ${k}`);
  if (!(labels instanceof Int32Array) || labels.length !== x.nRows) {
    throw new RangeError(`clusterDistanceSums: 'labels' must be an Int32Array of nRows = ${x.nRows} values; got ${labels?.length}`);
  }
  if (rows && !(Number.isInteger(rows.start) && Number.isInteger(rows.end) && rows.start >= 0 && rows.start <= rows.end && rows.end <= x.nRows)) {
    throw new RangeError(`clusterDistanceSums: 'rows' must satisfy 0 <= start <= end <= nRows = ${x.nRows}; got [${rows.start}, ${rows.end})`);
  }
  return be.clusterDistanceSums(x, labels, k, rows);
}
