/**
 * Adjusted Rand index (issue 4: segment recovery on the generated population) against values
 * worked out by hand from the contingency table, and against scikit-learn's
 * `adjusted_rand_score` (test/fixtures/make-ari-fixtures.py).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { adjustedRandIndex } from '../../src/eval/agreement.js';

const fixtures = JSON.parse(fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '../fixtures/sklearn-ari.json'), 'utf8')) as {
  cases: { name: string; a: number[]; b: number[]; ari: number }[];
};

describe('adjustedRandIndex: hand-computed', () => {
  it('gives 1 for the same partition under renamed labels, whatever the label type', () => {
    expect(adjustedRandIndex([0, 0, 1, 1, 2], [2, 2, 0, 0, 1])).toBe(1);
    expect(adjustedRandIndex(['x', 'x', 'y'], [7n, 7n, 3n])).toBe(1);
  });

  it('matches the Hubert-Arabie formula on a 2 x 3 table', () => {
    // Contingency [[2, 1, 0], [0, 1, 2]]: Σ C(nᵢⱼ, 2) = 2, rows Σ C(3, 2) = 6, columns Σ C(2, 2) = 3,
    // C(6, 2) = 15: expected 6·3/15 = 1.2, max (6 + 3)/2 = 4.5, ARI = (2 − 1.2)/(4.5 − 1.2) = 8/33.
    expect(adjustedRandIndex([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2])).toBeCloseTo(8 / 33, 14);
    // Symmetric in its arguments.
    expect(adjustedRandIndex([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1])).toBeCloseTo(8 / 33, 14);
  });

  it('is negative when worse than chance: [[1, 1], [1, 1]]', () => {
    // Σ C(nᵢⱼ, 2) = 0, rows 1 + 1, columns 1 + 1, C(4, 2) = 6: expected 2·2/6 = 2/3, max 2, ARI = −(2/3)/(4/3) = −1/2.
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1])).toBeCloseTo(-0.5, 14);
  });

  it('treats 1 and "1" as different labels', () => {
    expect(adjustedRandIndex([1, '1', 1, '1'], [0, 1, 0, 1])).toBe(1);
  });

  it('names the function and both lengths when they differ', () => {
    expect(() => adjustedRandIndex([0, 1], [0])).toThrow(/adjustedRandIndex: the labelings must have one label per row each; got 2 and 1/);
  });
});

describe('adjustedRandIndex: against scikit-learn adjusted_rand_score', () => {
  it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(adjustedRandIndex(c.a, c.b)).toBeCloseTo(c.ari, 12);
    // Segment labels (Int32Array, small non-negative) take the dense contingency path: the same
    // value as the map path, which counts the same integers.
    const small = (v: unknown[]) => v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 4096);
    if (small(c.a) && small(c.b)) {
      expect(adjustedRandIndex(Int32Array.from(c.a as number[]), Int32Array.from(c.b as number[]))).toBe(adjustedRandIndex(c.a, c.b));
    }
  });
});
