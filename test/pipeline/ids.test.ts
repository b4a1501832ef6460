/**
 * The id check's fast path: a sorted id column is proved unique in one pass, 64-bit ids compared
 * by their 32-bit halves; anything else takes the sorting path (duplicates named by the row).
 */
import { describe, expect, it } from 'vitest';
import { strictlyIncreasing } from '../../src/pipeline/ids.js';
import { rng } from '../helpers/reference.js';

/** The reference: BigInt (or number) comparison of neighbours. */
function brute(v: BigInt64Array | Float64Array | Int32Array): boolean {
  for (let i = 1; i < v.length; i++) if (!(v[i] > v[i - 1])) return false;
  return v.length === 0 || v[0] === v[0];
}

describe('strictlyIncreasing', () => {
  it('agrees with BigInt comparison on 64-bit ids across sign and 32-bit boundaries', () => {
    const r = rng(5);
    const edges = [-(2n ** 63n), -(2n ** 32n) - 1n, -(2n ** 32n), -1n, 0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n - 1n];
    const cases: bigint[][] = [edges, [...edges].reverse(), [0n, 0n], [5n, 2n ** 32n + 5n, 2n ** 32n + 4n], [-3n, -2n, -2n], []];
    for (let t = 0; t < 200; t++) {
      const base = [...edges].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      // Sorted with occasional swaps or repeats of a neighbour.
      const v = base.map((x) => x);
      const i = 1 + Math.floor(r() * (v.length - 1));
      if (r() < 0.5) v[i] = v[i - 1];
      else [v[i], v[i - 1]] = [v[i - 1], v[i]];
      cases.push(v, base);
    }
    for (const c of cases) {
      const v = BigInt64Array.from(c);
      expect(strictlyIncreasing(v), c.join(',')).toBe(brute(v));
    }
    // A subarray view (non-zero byte offset) reads the right halves.
    const big = BigInt64Array.from([9n, 1n, 2n, 3n]);
    expect(strictlyIncreasing(big.subarray(1))).toBe(true);
    expect(strictlyIncreasing(big)).toBe(false);
  });

  it('treats NaN as not increasing and equal numbers as repeats', () => {
    expect(strictlyIncreasing(Float64Array.from([NaN, 1, 2]))).toBe(false);
    expect(strictlyIncreasing(Float64Array.from([1, NaN, 2]))).toBe(false);
    expect(strictlyIncreasing(Float64Array.from([1, 2, 2]))).toBe(false);
    expect(strictlyIncreasing(Float64Array.from([-0, 0]))).toBe(false);
    expect(strictlyIncreasing(Int32Array.from([-5, 0, 7]))).toBe(true);
    expect(strictlyIncreasing(new Float64Array(0))).toBe(true);
  });
});
