import type { Assignment, Backend, DeviceMatrix } from '../backend.js';
import { checkCentroids } from './check.js';

/**
 * Nearest centroid for every row of `x` (labels, squared distances, weighted inertia).
 * Validates, then makes one call to the backend.
 *
 * @example
 * const a = await assign(be, x, centroids, 16);
 */
export function assign(
  be: Backend,
  x: DeviceMatrix,
  centroids: Float32Array,
  k: number,
  previous?: Assignment,
): Promise<Assignment> {
  checkCentroids('assign', x, centroids, k);
  return be.assign(x, centroids, k, previous);
}
