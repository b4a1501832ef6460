import type { Assignment, Backend, DeviceMatrix, SegmentSums } from '../backend.js';

/**
 * Weighted per-cluster sums Σw·x (k × nFeatures) and Σw (k) for the labels of `a`.
 *
 * @example
 * const { sums, counts } = await segmentSum(be, x, a, 16);
 */
export function segmentSum(be: Backend, x: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`segmentSum: 'k' must be an integer >= 1; got ${k}`);
  return be.segmentSum(x, a, k);
}
