/** Shape checks shared by the ops. @internal */
import type { DeviceMatrix } from '../backend.js';

export function checkCentroids(op: string, x: DeviceMatrix, centroids: Float32Array, k: number, arg = 'centroids'): void {
  if (!(centroids instanceof Float32Array)) {
    throw new TypeError(`${op}: '${arg}' must be a Float32Array; got ${Object.prototype.toString.call(centroids)}`);
  }
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`${op}: 'k' must be an integer >= 1; got ${k}`);
  if (centroids.length !== k * x.nFeatures) {
    throw new RangeError(
      `${op}: '${arg}' must hold k × nFeatures = ${k} × ${x.nFeatures} = ${k * x.nFeatures} values; got ${centroids.length}`,
    );
  }
}
