import type { Backend, DeviceMatrix } from '../backend.js';

/**
 * Σ‖xᵢ − xⱼ‖ per row i and cluster l of the rows j (nRows × k), for the silhouette.
 *
 * @example
 * const sums = await clusterDistanceSums(be, sample, labels, k);
 */
export function clusterDistanceSums(be: Backend, x: DeviceMatrix, labels: Int32Array, k: number): Promise<Float64Array> {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`clusterDistanceSums: 'k' must be an integer >= 1; got ${k}`);
  if (!(labels instanceof Int32Array) || labels.length !== x.nRows) {
    throw new RangeError(`clusterDistanceSums: 'labels' must be an Int32Array of nRows = ${x.nRows} values; got ${labels?.length}`);
  }
  return be.clusterDistanceSums(x, labels, k);
}
