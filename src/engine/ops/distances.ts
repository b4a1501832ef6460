import type { Backend, DeviceMatrix } from '../backend.js';
import { checkCentroids } from './check.js';

/**
 * Squared distances from each row to each of `m` centers, nRows × m row-major.
 * Meant for small m (k-means++ candidates).
 *
 * @example
 * const d2 = await distances(be, x, candidates, 3);
 */
export function distances(be: Backend, x: DeviceMatrix, centers: Float32Array, m: number): Promise<Float32Array> {
  checkCentroids('distances', x, centers, m, 'centers');
  return be.distances(x, centers, m);
}
