/**
 * Benchmark data: deterministic Gaussian blobs (32 centres, spread 4, unit noise), float32 rows.
 *
 * @example
 * const x = benchData(1_000_000, 32); // Float32Array of 32M values
 */
import { Random } from '../src/util/random.js';

export function benchData(nRows: number, d: number, seed = 1): Float32Array {
  const r = new Random(seed);
  const centres = Float32Array.from({ length: 32 * d }, () => r.gauss() * 4);
  const data = new Float32Array(nRows * d);
  for (let i = 0; i < nRows; i++) {
    const c = r.int(32);
    for (let f = 0; f < d; f++) data[i * d + f] = centres[c * d + f] + r.gauss();
  }
  return data;
}
