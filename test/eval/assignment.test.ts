/**
 * Minimum-cost assignment against two independent references: brute force over every injective
 * matching on small matrices, and SciPy's linear_sum_assignment on larger ones
 * (test/fixtures/make-assignment-fixtures.py).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { linearSumAssignment } from '../../src/eval/assignment.js';
import { rng } from '../helpers/reference.js';

/** The least total over every way to match min(r, c) rows and columns one to one. */
function bruteForce(cost: number[][]): number {
  const r = cost.length;
  const c = cost[0].length;
  let best = Infinity;
  if (r <= c) {
    const go = (i: number, used: boolean[], sum: number) => {
      if (i === r) return void (best = Math.min(best, sum));
      for (let j = 0; j < c; j++) {
        if (used[j]) continue;
        used[j] = true;
        go(i + 1, used, sum + cost[i][j]);
        used[j] = false;
      }
    };
    go(0, new Array(c).fill(false), 0);
    return best;
  }
  return bruteForce(cost[0].map((_, j) => cost.map((row) => row[j])));
}

/** Each row and column at most once, min(r, c) pairs, rows ascending, total = the pairs' sum. */
function checkValid(cost: number[][], a: ReturnType<typeof linearSumAssignment>): void {
  const pairs = Math.min(cost.length, cost[0]?.length ?? 0);
  expect(a.rows.length).toBe(pairs);
  expect(new Set(a.rows).size).toBe(pairs);
  expect(new Set(a.cols).size).toBe(pairs);
  for (let i = 1; i < pairs; i++) expect(a.rows[i]).toBeGreaterThan(a.rows[i - 1]);
  let total = 0;
  a.rows.forEach((r, i) => (total += cost[r][a.cols[i]]));
  expect(a.total).toBeCloseTo(total, 9);
}

describe('linearSumAssignment', () => {
  it('finds the optimum of every small matrix, square, wide and tall, with ties (brute force)', () => {
    const r = rng(11);
    for (let t = 0; t < 300; t++) {
      const rows = 1 + Math.floor(r() * 6);
      const cols = 1 + Math.floor(r() * 6);
      const ints = t % 3 === 0; // many ties
      const cost = Array.from({ length: rows }, () => Array.from({ length: cols }, () => (ints ? Math.floor(r() * 3) : r() * 10 - 5)));
      const a = linearSumAssignment(cost);
      checkValid(cost, a);
      expect(a.total).toBeCloseTo(bruteForce(cost), 9);
    }
  });

  it("reaches SciPy's total on larger matrices", () => {
    const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/scipy-assignment.json', import.meta.url), 'utf8'));
    for (const c of fx.cases as { name: string; cost: number[][]; total: number }[]) {
      const a = linearSumAssignment(c.cost);
      checkValid(c.cost, a);
      expect(a.total, c.name).toBeCloseTo(c.total, 6);
    }
  });

  it('matches a permutation back exactly and handles empty and non-finite input', () => {
    // Distances between a set of points and the same points permuted: the permutation is the
    // unique zero-cost matching.
    const pts = [0, 3, 7, 12, 20, 31];
    const perm = [4, 0, 5, 2, 1, 3];
    const cost = pts.map((p) => perm.map((q) => (p - pts[q]) ** 2));
    const a = linearSumAssignment(cost);
    expect(a.total).toBe(0);
    a.rows.forEach((row, i) => expect(perm[a.cols[i]]).toBe(row));
    expect(linearSumAssignment([]).rows.length).toBe(0);
    expect(() => linearSumAssignment([[1, NaN]])).toThrow('cost[0][1] is NaN');
    expect(() => linearSumAssignment([[1, 2], [3]])).toThrow('row 1 has 1 costs');
  });
});
