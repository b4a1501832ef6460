/**
 * Scoring helpers shared by the backends, defined once (backends do not import each other): the
 * origin the expanded distance ‖x − c‖² = ‖x̃‖² − 2x̃·c̃ + ‖c̃‖² is computed around, and a matrix's
 * total weight. The C++ twin of this module is kernels/common/scoring.h (centroid packing).
 *
 * @example
 * const shift = columnMeans(x.data, x.nRows, x.nFeatures); // the origin for x̃ = x − shift
 * @internal
 */
import { loadNativeModule } from '../util/native-addon.js';

/**
 * Column means of the nRows × nFeatures row-major matrix, as float32: the origin the kernels
 * shift rows and centroids to before expanding ‖x − c‖², which keeps the expansion's
 * cancellation relative to the spread of the data rather than to its distance from zero.
 * Computed by the native addon when it is built (multithreaded), else in float64 here.
 */
export function columnMeans(data: Float32Array, nRows: number, nFeatures: number): Float32Array {
  const r = loadNativeModule();
  const native = 'module' in r ? (r.module as { columnMeans?: (x: Float32Array, n: number, d: number) => Float32Array }).columnMeans : undefined;
  if (native) return native(data, nRows, nFeatures);
  const d = nFeatures;
  const s = new Float64Array(d);
  for (let i = 0; i < nRows; i++) for (let f = 0; f < d; f++) s[f] += data[i * d + f];
  return Float32Array.from(s, (v) => (nRows ? v / nRows : 0));
}

/** Σ weights, or nRows when there are none (every row weighs 1). */
export function totalWeight(nRows: number, weights: Float32Array | null): number {
  if (!weights) return nRows;
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i];
  return total;
}
