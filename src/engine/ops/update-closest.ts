import type { Backend, DeviceMatrix } from '../backend.js';
import { checkCentroids } from './check.js';

/**
 * k-means++'s step once a center is chosen: `closest[i] = min(closest[i], ‖xᵢ − center‖²)` in
 * place, then `cum[i] = Σ_{r ≤ i} w_r·closest[r]` in float64, one running sum in row order (the
 * next draw searches it). Uses the backend's fused `updateClosest` when it has one, else
 * {@link updateClosestImpl}: `distances` and a host loop with the same arithmetic, so both give
 * the same bits. `scratch` (nRows floats) spares the fallback an allocation.
 *
 * @example
 * closest.fill(Infinity);
 * await updateClosest(be, x, firstCenter, closest, cum); // closest = distances to it, cum = their running sum
 */
export async function updateClosest(
  be: Backend,
  x: DeviceMatrix,
  center: Float32Array,
  closest: Float32Array,
  cum: Float64Array,
  scratch?: Float32Array,
): Promise<void> {
  checkCentroids('updateClosest', x, center, 1, 'center');
  if (!(closest instanceof Float32Array) || closest.length !== x.nRows) {
    throw new RangeError(`updateClosest: 'closest' must be a Float32Array of nRows = ${x.nRows} values; got ${closest?.length}`);
  }
  if (!(cum instanceof Float64Array) || cum.length !== x.nRows) {
    throw new RangeError(`updateClosest: 'cum' must be a Float64Array of nRows = ${x.nRows} values; got ${cum?.length}`);
  }
  if (scratch && scratch.length !== x.nRows) {
    throw new RangeError(`updateClosest: 'scratch' must hold nRows = ${x.nRows} values; got ${scratch.length}`);
  }
  if (be.updateClosest) return be.updateClosest(x, center, closest, cum);
  return updateClosestImpl(be, x, center, closest, cum, scratch);
}

/** The host fallback of {@link updateClosest}, for backends without the fused op. @internal */
export async function updateClosestImpl(
  be: Backend,
  x: DeviceMatrix,
  center: Float32Array,
  closest: Float32Array,
  cum: Float64Array,
  scratch?: Float32Array,
): Promise<void> {
  const toNew = await be.distances(x, center, 1, scratch);
  const w = x.weights;
  let acc = 0;
  for (let i = 0; i < x.nRows; i++) {
    const v = toNew[i] < closest[i] ? toNew[i] : closest[i];
    closest[i] = v;
    acc += w ? w[i] * v : v;
    cum[i] = acc;
  }
}
