import type { Backend, DeviceMatrix } from '../backend.js';
import { checkCentroids } from './check.js';

/**
 * k-means++ potentials: for each of `m` candidates, Σ w·min(closest, ‖x − c‖²) over all rows.
 *
 * @example
 * const pots = await potentials(be, x, closest, candidates, 4);
 */
export function potentials(be: Backend, x: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
  checkCentroids('potentials', x, candidates, m, 'candidates');
  if (!(closest instanceof Float32Array) || closest.length !== x.nRows) {
    throw new RangeError(`potentials: 'closest' must be a Float32Array of nRows = ${x.nRows} values; got ${closest?.length}`);
  }
  return be.potentials(x, closest, candidates, m);
}
