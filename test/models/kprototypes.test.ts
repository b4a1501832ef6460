/**
 * k-prototypes on hand-worked cases (cost, prototypes, modes and labels after one, two and all
 * iterations, worked out in the comments), Huang's γ in closed form, the k-modes and K-Means
 * special cases, Cao's seeding by hand, on every usable backend; then the one-line errors.
 */
import { describe, expect, it } from 'vitest';
import type { Matrix } from '../../src/core/matrix.js';
import {
  encodeCategories,
  fitKPrototypes,
  huangGamma,
  initCao,
  initHuang,
  looksCategorical,
  predictKPrototypes,
  type KPrototypesModel,
} from '../../src/models/kprototypes.js';
import { KMeans } from '../../src/models/kmeans.js';
import { SegtensorError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';
import { ALWAYS, usableBackends } from '../helpers/backends.js';
import { adjustedRand, blobs } from '../helpers/reference.js';

const backends = await usableBackends();

const col = (...v: number[]): Int32Array => Int32Array.from(v);
const num = (rows: number[][]): Matrix => ({ data: Float32Array.from(rows.flat()), nRows: rows.length, nFeatures: rows[0].length });

/**
 * Mixed case: one numeric and one categorical column (a = 0, b = 1), γ = 4, k = 2, starting
 * from rows 0 and 1.
 *   row  x  cat
 *   0    0  a
 *   1    1  a
 *   2    3  b
 *   3    6  b
 *   4    7  b
 *   5    2  a
 */
const MIXED_X = num([[0], [1], [3], [6], [7], [2]]);
const MIXED_CAT = [col(0, 0, 1, 1, 1, 0)];

/**
 * Pure categorical case: three columns, code -1 missing, k = 2.
 *   row  codes
 *   0    0  0  1
 *   1    0  0  0
 *   2    2  1  2
 *   3    1  1  2
 *   4    1  2  1
 *   5    0  2  2
 *   6    1 -1  2
 */
const MODES_CAT = { codes: Int32Array.from([0, 0, 1, 0, 0, 0, 2, 1, 2, 1, 1, 2, 1, 2, 1, 0, 2, 2, 1, -1, 2]), nRows: 7, nColumns: 3 };

it('runs on the backends every machine has', () => {
  for (const name of ALWAYS) expect(backends.map((b) => b.name)).toContain(name);
});

describe.each(backends.map((b) => [b.name, b] as const))('k-prototypes on %s', (_n, be) => {
  describe('mixed hand-worked case (γ = 4, start rows 0 and 1)', () => {
    const fit = (maxIter: number) => fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, gamma: 4, init: [0, 1], maxIter });

    it('after one iteration', async () => {
      // Iteration 1, against P0 = (0, a), P1 = (1, a): cost = (x − c)² + 4·[cat ≠ mode]
      //   row 0: 0 | 1          -> 0
      //   row 1: 1 | 0          -> 1
      //   row 2: 9+4 = 13 | 4+4 = 8  -> 1
      //   row 3: 36+4 | 25+4    -> 1
      //   row 4: 49+4 | 36+4    -> 1
      //   row 5: 4 | 1          -> 1
      // Update: cluster 0 = {0}: (0, a); cluster 1 = {1, 2, 3, 4, 5}: x̄ = 19/5 = 3.8,
      // cats a, b, b, b, a -> mode b.
      // maxIter = 1 stops here; the final labels are against (0, a), (3.8, b):
      //   row 0: 0 | 14.44+4      -> 0, cost 0
      //   row 1: 1 | 7.84+4       -> 0, cost 1
      //   row 2: 9+4 | 0.64       -> 1, cost 0.64
      //   row 3: 36+4 | 4.84      -> 1, cost 4.84
      //   row 4: 49+4 | 10.24     -> 1, cost 10.24
      //   row 5: 4 | 3.24+4 = 7.24 -> 0, cost 4
      // total 20.72
      const r = await fit(1);
      expect(r.history[0].cost).toBeCloseTo(0 + 0 + 8 + 29 + 40 + 1, 4);
      expect(r.history[0].changed).toBe(6);
      expect(r.centroids[0][0]).toBe(0);
      expect(r.centroids[1][0]).toBeCloseTo(3.8, 12);
      expect(r.modes).toEqual([[0], [1]]);
      expect([...r.labels]).toEqual([0, 0, 1, 1, 1, 0]);
      expect(r.cost).toBeCloseTo(20.72, 9);
      expect([...r.costs].map((v) => +v.toFixed(9))).toEqual([0, 1, 0.64, 4.84, 10.24, 4]);
      expect(r.nIter).toBe(1);
      expect(r.converged).toBe(false);
    });

    it('after two iterations', async () => {
      // Iteration 2 gives the labels above (rows 1 and 5 changed), cost 20.72. Update:
      // cluster 0 = {0, 1, 5}: x̄ = 1, mode a; cluster 1 = {2, 3, 4}: x̄ = 16/3, mode b.
      // Final labels against (1, a), (16/3, b):
      //   row 0: 1 | (16/3)²+4    -> 0, cost 1
      //   row 1: 0                -> 0, cost 0
      //   row 2: 4+4 | (7/3)²     -> 1, cost 49/9
      //   row 3: 25+4 | (2/3)²    -> 1, cost 4/9
      //   row 4: 36+4 | (5/3)²    -> 1, cost 25/9
      //   row 5: 1 | (10/3)²+4    -> 0, cost 1
      // total 2 + 78/9 = 32/3
      const r = await fit(2);
      expect(r.history.map((h) => h.changed)).toEqual([6, 2]);
      expect(r.history[1].cost).toBeCloseTo(20.72, 4);
      expect(r.centroids.map((c) => c[0])).toEqual([1, 16 / 3]);
      expect(r.modes).toEqual([[0], [1]]);
      expect([...r.labels]).toEqual([0, 0, 1, 1, 1, 0]);
      expect(r.cost).toBeCloseTo(32 / 3, 9);
      expect(r.nIter).toBe(2);
      expect(r.converged).toBe(false);
    });

    it('to convergence', async () => {
      // Iteration 3 assigns as above: no label changes, so the run stops with nIter = 3.
      const r = await fit(100);
      expect(r.nIter).toBe(3);
      expect(r.converged).toBe(true);
      expect(r.history.map((h) => h.changed)).toEqual([6, 2, 0]);
      expect(r.history[2].cost).toBeCloseTo(32 / 3, 4);
      expect([...r.labels]).toEqual([0, 0, 1, 1, 1, 0]);
      expect(r.cost).toBeCloseTo(32 / 3, 9);
      expect(r.gamma).toBe(4);
      expect(r.init).toBe('rows');
      expect(r.runs).toHaveLength(1);
    });

    it('predicts the fit from the saved model, on the host and through the backend', async () => {
      const r = await fit(100);
      const saved: KPrototypesModel = JSON.parse(JSON.stringify(r.model));
      expect(saved).toEqual({ formatVersion: 1, k: 2, nNumeric: 1, nCategorical: 1, gamma: 4, centroids: [[1], [16 / 3]], modes: [[0], [1]] });
      for (const p of [predictKPrototypes(saved, MIXED_X, MIXED_CAT), await predictKPrototypes(saved, MIXED_X, MIXED_CAT, be)]) {
        expect([...p.labels]).toEqual([...r.labels]);
        expect(p.cost).toBeCloseTo(r.cost, 9);
      }
      // An unseen or missing category mismatches both modes: only the number decides.
      const p = predictKPrototypes(saved, num([[2], [4]]), [col(7, -1)]);
      expect([...p.labels]).toEqual([0, 1]);
      expect([...p.costs]).toEqual([1 + 4, (4 - 16 / 3) ** 2 + 4]);
    });
  });

  describe('pure categorical reduces to k-modes', () => {
    // Start from rows 0 and 4: M0 = [0 0 1], M1 = [1 2 1]. Mismatches (missing always counts):
    // Iteration 1:  row 0: 0|2 -> 0;  1: 1|3 -> 0;  2: 3|3 -> 0 (tie, lower);  3: 3|2 -> 1;
    //               4: 2|0 -> 1;  5: 2|2 -> 0 (tie);  6: 3|2 -> 1.   Cost 0+1+3+2+0+2+2 = 10.
    //   Modes: cluster 0 = {0,1,2,5}: col0 {0,0,2,0} -> 0, col1 {0,0,1,2} -> 0, col2 {1,0,2,2} -> 2;
    //          cluster 1 = {3,4,6}: col0 {1,1,1} -> 1, col1 {1,2,missing} -> tie, lowest code 1,
    //          col2 {2,1,2} -> 2.  M0 = [0 0 2], M1 = [1 1 2].
    // Iteration 2:  row 0: 1|3 -> 0;  1: 1|3 -> 0;  2: 2|1 -> 1;  3: 2|0 -> 1;  4: 3|2 -> 1;
    //               5: 1|2 -> 0;  6: 2|1 -> 1.   Cost 1+1+1+0+2+1+1 = 7; row 2 changed.
    //   Modes: cluster 0 = {0,1,5}: col2 {1,0,2} three-way tie -> 0, so M0 = [0 0 0];
    //          cluster 1 = {2,3,4,6}: col0 {2,1,1,1} -> 1, col1 {1,1,2,missing} -> 1,
    //          col2 {2,2,1,2} -> 2, M1 = [1 1 2].
    // Iteration 3:  row 0: 1|3;  1: 0|3;  2: 3|1;  3: 3|0;  4: 3|2;  5: 2|2 (tie -> 0);
    //               6: 3|1.  Same labels: converged, nIter 3, cost 1+0+1+0+2+2+1 = 7.
    const expectKModes = (r: Awaited<ReturnType<typeof fitKPrototypes>>, gamma: number) => {
      expect(r.history.map((h) => h.changed)).toEqual([7, 1, 0]);
      expect(r.history.map((h) => h.cost / gamma)).toEqual([10, 7, 7]);
      expect([...r.labels]).toEqual([0, 0, 1, 1, 1, 0, 1]);
      expect(r.modes).toEqual([
        [0, 0, 0],
        [1, 1, 2],
      ]);
      expect(r.cost).toBe(7 * gamma);
      expect([...r.costs]).toEqual([1, 0, 1, 0, 2, 2, 1].map((v) => v * gamma));
      expect(r.nIter).toBe(3);
      expect(r.converged).toBe(true);
    };

    it('with no numeric part (γ defaults to 1: the cost counts mismatches)', async () => {
      const r = await fitKPrototypes(be, null, MODES_CAT, null, { k: 2, init: [0, 4] });
      expect(r.gamma).toBe(1);
      expect(r.centroids).toEqual([[], []]);
      expectKModes(r, 1);
    });

    it('with a numeric part that γ = 100 outweighs (a constant column)', async () => {
      const x: Matrix = { data: new Float32Array(7).fill(5), nRows: 7, nFeatures: 1 };
      const r = await fitKPrototypes(be, x, MODES_CAT, null, { k: 2, init: [0, 4], gamma: 100 });
      expectKModes(r, 100);
      expect(r.centroids).toEqual([[5], [5]]);
    });

    it("from Cao's seeding, worked by hand", async () => {
      // Densities (Σ of each code's frequency over 7 rows × 3 columns, missing adds 0):
      //   col0: 0 ×3, 1 ×3, 2 ×1; col1: 0 ×2, 1 ×2, 2 ×2; col2: 1 ×2, 0 ×1, 2 ×4.
      //   rows 0..6: 7, 6, 7, 9, 7, 9, 7 (/21) -> row 3 first (the lower of the 9s).
      // Second pick: density × mismatches to row 3 [1 1 2]:
      //   row 0: 7·3 = 21, 1: 6·3 = 18, 2: 7·1, 4: 7·2, 5: 9·2 = 18, 6: 7·1 -> row 0.
      // Third pick: density × min(mismatches to row 3, to row 0 [0 0 1]):
      //   row 1: 6·min(3,1), 2: 7·min(1,3), 4: 7·min(2,2) = 14, 5: 9·min(2,2) = 18, 6: 7·1 -> row 5.
      expect(initCao(MODES_CAT, 3)).toEqual([3, 0, 5]);
      // From M0 = [1 1 2], M1 = [0 0 1]:
      // Iteration 1: rows 0..6 mismatches 3|0, 3|1, 1|3, 0|3, 2|2, 2|2, 1|3
      //   -> labels [1 1 0 0 0 0 0] (ties to 0), cost 0+1+1+0+2+2+1 = 7.
      //   Modes: cluster 0 = {2..6}: col0 {2,1,1,0,1} -> 1, col1 {1,1,2,2,missing} -> 1, col2 -> 2;
      //          cluster 1 = {0,1}: [0 0 (tie 1|0 -> 0)] = [0 0 0].
      // Iteration 2: rows 0..6: 3|1, 3|0, 1|3, 0|3, 2|3, 2|2, 1|3: the same labels, cost 7.
      const r = await fitKPrototypes(be, null, MODES_CAT, null, { k: 2, init: 'cao', nInit: 5 });
      expect(r.runs).toHaveLength(1);
      expect(r.runs[0].initRows).toEqual([3, 0]);
      expect([...r.labels]).toEqual([1, 1, 0, 0, 0, 0, 0]);
      expect(r.modes).toEqual([
        [1, 1, 2],
        [0, 0, 0],
      ]);
      expect(r.cost).toBe(7);
      expect(r.nIter).toBe(2);
    });
  });

  it('pure numeric with γ = 0 follows K-Means’ Lloyd iterations from the same start', async () => {
    const n = 3000;
    const d = 4;
    const { data } = blobs(n, d, 5, 4, 21);
    const x: Matrix = { data, nRows: n, nFeatures: d };
    const codes = new Int32Array(n).map((_, i) => (i * 7919) % 3);
    const rows = [0, 1, 2, 3, 10];
    const init = new Float32Array(5 * d);
    rows.forEach((r, j) => init.set(data.subarray(r * d, r * d + d), j * d));
    const km = await new KMeans({ k: 5, init, tol: 0, maxIter: 300, nInit: 1 }).fit(be, x);
    const kp = await fitKPrototypes(be, x, [codes], null, { k: 5, gamma: 0, init: rows, maxIter: 300 });
    expect(kp.converged).toBe(true);
    expect(kp.nIter).toBe(km.nIter);
    expect(adjustedRand(kp.labels, km.labels)).toBe(1);
    expect([...kp.labels]).toEqual([...km.labels]);
    for (let j = 0; j < 5; j++) for (let f = 0; f < d; f++) expect(kp.centroids[j][f]).toBeCloseTo(km.centroids[j * d + f], 4);
    expect(Math.abs(kp.cost / km.inertia - 1)).toBeLessThan(1e-5);
  });

  it("Huang's γ in closed form: 0.5 × mean population std of the numeric columns", async () => {
    // Columns [1 2 3 4] (mean 2.5, variance (2.25+0.25+0.25+2.25)/4 = 1.25) and
    // [0 0 10 10] (mean 5, variance 25): γ = 0.5 · (√1.25 + 5) / 2.
    const x = num([
      [1, 0],
      [2, 0],
      [3, 10],
      [4, 10],
    ]);
    const want = (0.5 * (Math.sqrt(1.25) + 5)) / 2;
    expect(huangGamma(x)).toBeCloseTo(want, 14);
    const r = await fitKPrototypes(be, x, [col(0, 1, 0, 1)], null, { k: 2 });
    expect(r.gamma).toBeCloseTo(want, 14);
    // Unweighted, as kmodes: weights do not move it.
    const rw = await fitKPrototypes(be, x, [col(0, 1, 0, 1)], Float32Array.from([5, 1, 1, 1]), { k: 2 });
    expect(rw.gamma).toBe(r.gamma);
  });

  it('refills an empty cluster with the costliest row (worked by hand)', async () => {
    // x = 0, 1, 2, 10 (all category 0), γ = 1, prototypes (1, 0) and (100, 0).
    // Iteration 1: everything goes to P0 (costs 1, 0, 1, 81); cluster 1 is empty and takes
    //   row 3 (cost 81): P0 = mean(0, 1, 2) = 1, P1 = 10.
    // Iteration 2: labels [0 0 0 1] (1 change); iteration 3: no change. Cost 1+0+1+0 = 2.
    const x = num([[0], [1], [2], [10]]);
    const r = await fitKPrototypes(be, x, [col(0, 0, 0, 0)], null, { k: 2, gamma: 1, init: { centroids: [1, 100], modes: [0, 0] } });
    expect(r.history.map((h) => h.emptyClusters)).toEqual([1, 0, 0]);
    expect(r.history.map((h) => h.changed)).toEqual([4, 1, 0]);
    expect([...r.labels]).toEqual([0, 0, 0, 1]);
    expect(r.centroids).toEqual([[1], [10]]);
    expect(r.cost).toBe(2);
    expect(r.nIter).toBe(3);
    expect(r.init).toBe('array');
  });

  it('integer weights equal duplicated rows', async () => {
    const n = 400;
    const { data } = blobs(n, 2, 3, 3, 5);
    const codes = new Int32Array(n).map((_, i) => (i % 4 === 0 ? -1 : i % 3));
    const w = new Float32Array(n).map((_, i) => 1 + (i % 3));
    const dupX: number[] = [];
    const dupC: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < w[i]; c++) {
        dupX.push(data[2 * i], data[2 * i + 1]);
        dupC.push(codes[i]);
      }
    }
    const init = { centroids: Array.from(data.subarray(0, 6)), modes: [0, 1, 2] };
    const a = await fitKPrototypes(be, { data, nRows: n, nFeatures: 2 }, [codes], w, { k: 3, gamma: 0.7, init });
    const b = await fitKPrototypes(be, { data: Float32Array.from(dupX), nRows: dupX.length / 2, nFeatures: 2 }, [Int32Array.from(dupC)], null, {
      k: 3,
      gamma: 0.7,
      init,
    });
    expect(a.nIter).toBe(b.nIter);
    expect(a.modes).toEqual(b.modes);
    for (let j = 0; j < 3; j++) for (let f = 0; f < 2; f++) expect(a.centroids[j][f]).toBeCloseTo(b.centroids[j][f], 9);
    expect(Math.abs(a.cost / b.cost - 1)).toBeLessThan(1e-9);
  });

  it('Huang and random seedings: reproducible by seed, every cost non-increasing, the best run kept', async () => {
    const { x, codes } = mixed(2000, 31);
    for (const init of ['huang', 'random'] as const) {
      const a = await fitKPrototypes(be, x, codes, null, { k: 4, init, nInit: 3, seed: 7 });
      const b = await fitKPrototypes(be, x, codes, null, { k: 4, init, nInit: 3, seed: 7 });
      expect([...a.labels]).toEqual([...b.labels]);
      expect(a.runs).toHaveLength(3);
      expect(a.cost).toBe(Math.min(...a.runs.map((r) => r.cost)));
      for (const r of a.runs) expect(new Set(r.initRows).size).toBe(4);
      for (let t = 1; t < a.history.length; t++) expect(a.history[t].cost).toBeLessThanOrEqual(a.history[t - 1].cost * (1 + 1e-6));
      expect(a.converged).toBe(true);
    }
  });
});

/**
 * nRows rows of 3 numeric features around 4 centres and 2 categorical columns that mostly
 * follow the centre (10 % noise, 2 % missing).
 */
function mixed(n: number, seed: number): { x: Matrix; codes: Int32Array[]; truth: Int32Array } {
  const { data, truth } = blobs(n, 3, 4, 10, seed);
  const rng = new Random(seed);
  const codes = [0, 1].map((t) =>
    Int32Array.from(truth, (g) => {
      const u = rng.next();
      return u < 0.02 ? -1 : u < 0.12 ? rng.int(4 + t) : (g + t) % (4 + t);
    }),
  );
  return { x: { data, nRows: n, nFeatures: 3 }, codes, truth };
}

describe('backends agree', () => {
  it('on labels, prototypes and cost from the same seed', async () => {
    const { x, codes, truth } = mixed(5000, 4);
    const fits = await Promise.all(backends.map((be) => fitKPrototypes(be, x, codes, null, { k: 4, init: 'huang', nInit: 2, seed: 2 })));
    expect(adjustedRand(fits[0].labels, truth)).toBeGreaterThan(0.99);
    for (const r of fits.slice(1)) {
      expect([...r.labels]).toEqual([...fits[0].labels]);
      expect(r.modes).toEqual(fits[0].modes);
      expect(Math.abs(r.cost / fits[0].cost - 1)).toBeLessThan(1e-9);
      expect(r.nIter).toBe(fits[0].nIter);
    }
  });
});

describe('seedings and helpers', () => {
  it("Huang's seeding picks rows whose codes differ while it can, reproducibly", () => {
    const cat = { codes: Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 2, 2]), nRows: 5, nColumns: 2 };
    const a = initHuang(cat, 3, null, new Random(4));
    expect(initHuang(cat, 3, null, new Random(4))).toEqual(a);
    // Rows 0 and 1 share [0 0]: at most one of them while other codes remain.
    expect(new Set(a.map((r) => (r <= 1 ? 0 : r))).size).toBe(3);
    // Five rows, k = 5: every row once, identical codes or not.
    expect([...initHuang(cat, 5, null, new Random(1))].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('encodes categories as sorted dense codes, missing and unseen as -1', () => {
    expect(encodeCategories(['b', 'a', null, 'b', '', undefined, Number.NaN, 3])).toEqual({ codes: Int32Array.from([2, 1, -1, 2, -1, -1, -1, 0]), levels: ['3', 'a', 'b'] });
    expect(encodeCategories(['c', 'a'], ['a', 'b'])).toEqual({ codes: Int32Array.from([-1, 0]), levels: ['a', 'b'] });
  });

  it('tells categorical columns from numeric ones', () => {
    expect(looksCategorical(['1', '2.5', null, '', -3])).toBe(false);
    expect(looksCategorical(['gold', 'silver'])).toBe(true);
    expect(looksCategorical([1, true])).toBe(true);
  });
});

describe('errors', () => {
  const be = backends[0];
  async function err(p: Promise<unknown>): Promise<string | undefined> {
    try {
      await p;
    } catch (e) {
      return e instanceof SegtensorError ? `${e.code}: ${e.message}` : String(e);
    }
    return undefined;
  }

  it.each([-1, Number.NaN, Infinity, '0.5'])('--gamma %s is a one-line BAD_OPTION', async (g) => {
    expect(await err(fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, gamma: g as number }))).toBe(`BAD_OPTION: --gamma must be a number >= 0; got ${g}`);
  });

  it('needs a categorical column', async () => {
    expect(await err(fitKPrototypes(be, MIXED_X, [], null, { k: 2 }))).toBe('BAD_OPTION: kprototypes needs at least one categorical column');
    expect(await err(fitKPrototypes(be, MIXED_X, { codes: new Int32Array(0), nRows: 6, nColumns: 0 }, null, { k: 2 }))).toBe(
      'BAD_OPTION: kprototypes needs at least one categorical column',
    );
  });

  it.each([0, 7, 2.5])('k = %s outside [1, nRows] is a BAD_OPTION', async (k) => {
    expect(await err(fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k }))).toBe(`BAD_OPTION: --k must be an integer in [1, 6] (the number of rows); got ${k}`);
  });

  it('names the seeding, the start rows, the shapes, the codes and the numbers', async () => {
    expect(await err(fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, init: 'k-means++' as never }))).toBe(
      'BAD_OPTION: --init must be one of cao, huang, random for kprototypes; got k-means++',
    );
    expect(await err(fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, init: [0, 6] }))).toBe(
      "BAD_OPTION: kprototypes: 'init' rows must be k = 2 integers in [0, 6); got [0, 6]",
    );
    expect(await err(fitKPrototypes(be, MIXED_X, [col(0, 1)], null, { k: 2 }))).toBe('BAD_INPUT: kprototypes: the numeric part has 6 rows and the categorical part 2');
    expect(await err(fitKPrototypes(be, MIXED_X, [col(0, 1, -2, 0, 0, 0)], null, { k: 2 }))).toBe(
      'BAD_INPUT: kprototypes: categorical column 0 holds code -2 at data row 3; codes are >= 0, or -1 for missing',
    );
    expect(await err(fitKPrototypes(be, num([[0], [Number.NaN]]), [col(0, 1)], null, { k: 1 }))).toBe('NON_FINITE: kprototypes: numeric feature 0 is NaN at data row 2');
    expect(await err(fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, nInit: 0 }))).toBe("BAD_OPTION: kprototypes: 'nInit' must be an integer in [1, 1000]; got 0");
  });

  it('predict refuses a model of another shape or version', async () => {
    const r = await fitKPrototypes(be, MIXED_X, MIXED_CAT, null, { k: 2, gamma: 4, init: [0, 1] });
    expect(() => predictKPrototypes(r.model, null, MIXED_CAT)).toThrow(
      'kprototypes: the model was fitted on 1 numeric and 1 categorical columns; the input has 0 and 1',
    );
    expect(() => predictKPrototypes({ ...r.model, formatVersion: 2 as 1 }, MIXED_X, MIXED_CAT)).toThrow(/model format version 2/);
  });
});
