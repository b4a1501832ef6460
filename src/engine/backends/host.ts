/**
 * Host-side helpers shared by backends. @internal
 */
import type { Matrix } from '../backend.js';

/**
 * Exact squared distance of each row to its labelled centroid, Σ(x − c)² accumulated in float64,
 * written to `out`; returns the weighted inertia.
 */
export function exactDistances(
  x: Matrix,
  centroids: Float32Array,
  labels: Int32Array,
  weights: Float32Array | null,
  out: Float32Array,
): number {
  const d = x.nFeatures;
  const data = x.data;
  let inertia = 0;
  for (let i = 0; i < x.nRows; i++) {
    const base = i * d;
    const cb = labels[i] * d;
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = data[base + f] - centroids[cb + f];
      s += t * t;
    }
    out[i] = s;
    inertia += weights ? weights[i] * s : s;
  }
  return inertia;
}
