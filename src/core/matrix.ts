/**
 * The host matrix every layer shares: `io` and `preprocess` make it, the engine uploads it,
 * models and metrics read it. It lives below all of them so that none imports a higher layer
 * for it.
 *
 * @example
 * const x: Matrix = { data: new Float32Array(6), nRows: 2, nFeatures: 3 };
 */

/** A dense row-major float32 matrix on the host. `data.length === nRows * nFeatures`. */
export interface Matrix {
  data: Float32Array;
  nRows: number;
  nFeatures: number;
}
