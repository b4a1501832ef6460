import type { Backend, DeviceMatrix } from '../backend.js';
import { checkCentroids } from './check.js';

/**
 * Squared distances from each row to each of `m` centers, nRows × m row-major.
 * Meant for small m (k-means++ candidates).
 *
 * @example
 * const d2 = await distances(be, x, candidates, 3);
 */
export function distances(be: Backend, x: DeviceMatrix, centers: Float32Array, m: number, out?: Float32Array): Promise<Float32Array> {
  checkCentroids('distances', x, centers, m, 'centers');
  if (out && out.length !== x.nRows * m) {
    throw new RangeError(`distances: 'out' must hold nRows × m = ${x.nRows * m} values; got ${out.length}`);
  }
  return be.distances(x, centers, m, out);
}
