/**
 * DBSCAN against scikit-learn's labels and core rows (test/fixtures/make-dbscan-fixtures.py:
 * iris, wine, their 2-D/3-D projections, integer lattices with ties at eps, a weighted case per
 * index), the grid and blocked indexes against each other, every usable backend, prediction,
 * eps auto's k-distance curve and knee, and the option errors.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Matrix } from '../../src/core/matrix.js';
import { SegtensorError } from '../../src/errors.js';
import { DBSCAN, DBSCAN_DEFAULTS, epsAuto, kneeOfCurve, predictDbscan, dbscanModel, type DBSCANOptions, type DBSCANResult } from '../../src/models/dbscan.js';
import { usableBackends } from '../helpers/backends.js';
import { blobs, rng, samePartition } from '../helpers/reference.js';

const backends = await usableBackends();
const be = backends[0];
const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-dbscan.json', import.meta.url), 'utf8'));

interface Case {
  table: string;
  eps: number;
  min_samples: number;
  sample_weight: number[] | null;
  labels: number[];
  core_sample_indices: number[];
  n_clusters: number;
  n_noise: number;
}
const cases: Case[] = fx.cases;
const caseName = (c: Case) => `${c.table} eps=${+c.eps.toFixed(4)} min_samples=${c.min_samples}${c.sample_weight ? ' weighted' : ''}`;

function table(name: string): Matrix {
  const t = fx.tables[name];
  return { data: Float32Array.from(t.data), nRows: t.n_rows, nFeatures: t.n_features };
}

function fitCase(c: Case, o: Partial<DBSCANOptions>, backend = be): Promise<DBSCANResult> {
  const w = c.sample_weight ? Float32Array.from(c.sample_weight) : null;
  return new DBSCAN({ eps: c.eps, minSamples: c.min_samples, ...o }).fit(backend, table(c.table), w);
}

function sqDist(x: Matrix, i: number, j: number): number {
  let s = 0;
  for (let f = 0; f < x.nFeatures; f++) s += (x.data[i * x.nFeatures + f] - x.data[j * x.nFeatures + f]) ** 2;
  return s;
}

/** The brief's checks: core and noise rows as scikit-learn's, core partition up to renumbering, borders in a neighbouring core's cluster. */
function expectSklearn(r: DBSCANResult, c: Case): void {
  const x = table(c.table);
  const n = x.nRows;
  const core = new Uint8Array(n);
  for (const i of c.core_sample_indices) core[i] = 1;
  expect([...r.core]).toEqual([...core]);
  expect([...r.labels].map((l) => l < 0)).toEqual(c.labels.map((l) => l < 0));
  const coreRows = c.core_sample_indices;
  expect(samePartition(coreRows.map((i) => r.labels[i]), coreRows.map((i) => c.labels[i]))).toBe(true);
  const eps2 = c.eps * c.eps;
  for (let i = 0; i < n; i++) {
    if (core[i] || r.labels[i] < 0) continue;
    let ok = false;
    for (const j of coreRows) if (r.labels[j] === r.labels[i] && sqDist(x, i, j) <= eps2) ok = true;
    expect(ok, `border row ${i} lies within eps of a core row of its cluster`).toBe(true);
  }
  expect(r.nClusters).toBe(c.n_clusters);
  expect(r.nNoise).toBe(c.n_noise);
}

describe('DBSCAN against scikit-learn, grid index (host)', () => {
  const gridCases = cases.filter((c) => fx.tables[c.table].n_features <= 12);
  it.each(gridCases.map((c) => [caseName(c), c] as const))('%s', async (_n, c) => {
    const r = await fitCase(c, { index: 'grid' });
    expect(r.index).toBe('grid');
    expectSklearn(r, c);
    // scikit-learn numbers clusters by their lowest core row and gives a border row the first cluster that reaches it: labels agree exactly.
    expect([...r.labels]).toEqual(c.labels);
  });

  it("auto picks the grid up to 6 features and the blocked index beyond", async () => {
    const iris = cases.find((c) => c.table === 'iris')!;
    const wine = cases.find((c) => c.table === 'wine')!;
    expect((await fitCase(iris, {})).index).toBe('grid');
    expect((await fitCase(wine, {})).index).toBe('blocked');
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('DBSCAN blocked index on %s', (_n, backend) => {
  it('matches scikit-learn on every case (several blocks; neighbour lists kept and not kept)', async () => {
    let kept = 0;
    for (const [k, c] of cases.entries()) {
      const n = fx.tables[c.table].n_rows;
      // 16 centers per block; every other case with no room for the neighbour lists (three passes).
      const r = await fitCase(c, { index: 'blocked', blockBytes: 4 * n * 16, neighbourBytes: k % 2 ? 0 : DBSCAN_DEFAULTS.neighbourBytes }, backend);
      expect(r.index).toBe('blocked');
      expect(r.stats.blockRows).toBe(16);
      expect(r.stats.passes).toBe(k % 2 ? 3 : 1);
      if (r.stats.keptNeighbours) kept++;
      expectSklearn(r, c);
      expect([...r.labels], caseName(c)).toEqual(c.labels);
    }
    expect(kept).toBe(Math.ceil(cases.length / 2));
  });

  it('ties at eps: the float32 distances of the unit cube near eps = 1 are rechecked in float64', async () => {
    const c = cases.find((q) => q.table === 'cube9')!;
    const r = await fitCase(c, { index: 'blocked' }, backend);
    expect(r.stats.rechecked).toBeGreaterThan(0);
    expect([...r.labels]).toEqual(c.labels);
  });
});

describe('DBSCAN grid and blocked indexes, every backend', () => {
  it('agree on a 2,000 × 3 table of blobs with noise, weighted and not', async () => {
    const { data } = blobs(2000, 3, 5, 8, 21);
    const r = rng(5);
    for (let i = 0; i < 2000; i += 7) for (let f = 0; f < 3; f++) data[i * 3 + f] = (r() * 2 - 1) * 12;
    const x = { data, nRows: 2000, nFeatures: 3 };
    const w = new Float32Array(2000).map((_, i) => [1, 0.5, 2][i % 3]);
    for (const weights of [null, w]) {
      const grid = await new DBSCAN({ eps: 0.6, minSamples: 8, index: 'grid' }).fit(be, x, weights);
      expect(grid.nClusters).toBeGreaterThan(2);
      expect(grid.nNoise).toBeGreaterThan(100);
      for (const b of backends) {
        const blocked = await new DBSCAN({ eps: 0.6, minSamples: 8, index: 'blocked', neighbourBytes: 0 }).fit(b, x, weights);
        expect(blocked.stats.passes).toBe(3);
        expect([...blocked.labels], b.name).toEqual([...grid.labels]);
        expect([...blocked.core], b.name).toEqual([...grid.core]);
      }
    }
  });

  it('agree on a 1,500 × 10 table (grid asked for by name)', async () => {
    const { data } = blobs(1500, 10, 4, 5, 8);
    const x = { data, nRows: 1500, nFeatures: 10 };
    const grid = await new DBSCAN({ eps: 2.8, minSamples: 6, index: 'grid' }).fit(be, x);
    expect(grid.nClusters).toBeGreaterThan(1);
    expect(grid.nNoise).toBeGreaterThan(0);
    for (const b of backends) {
      const blocked = await new DBSCAN({ eps: 2.8, minSamples: 6 }).fit(b, x);
      expect(blocked.index).toBe('blocked');
      expect([...blocked.labels], b.name).toEqual([...grid.labels]);
    }
  });

  it('the projection window gives the same clusters as comparing every pair, from far fewer pairs', async () => {
    // 16 features (the blocked index), 12 blobs, noise; ranges of 64 rows so there are many windows.
    const { data } = blobs(3000, 16, 12, 10, 33);
    const r = rng(9);
    for (let i = 0; i < 3000; i += 11) for (let f = 0; f < 16; f++) data[i * 16 + f] = (r() * 2 - 1) * 30;
    const x = { data, nRows: 3000, nFeatures: 16 };
    const w = new Float32Array(3000).map((_, i) => [1, 2, 4][i % 3]); // dyadic: sums exact in any grouping
    for (const weights of [null, w]) {
      for (const neighbourBytes of [DBSCAN_DEFAULTS.neighbourBytes, 0]) {
        const opts = { eps: 4.5, minSamples: 6, blockBytes: 4 * 3000 * 64, neighbourBytes };
        for (const b of backends) {
          const all = await new DBSCAN({ ...opts, projectionWindow: false }).fit(b, x, weights);
          const win = await new DBSCAN(opts).fit(b, x, weights);
          const what = `${b.name} ${weights ? 'weighted' : 'unweighted'} neighbourBytes=${neighbourBytes}`;
          expect(all.nClusters, what).toBeGreaterThan(3);
          expect([...win.labels], what).toEqual([...all.labels]);
          expect([...win.core], what).toEqual([...all.core]);
          expect(win.stats.neighbourPairs, what).toBe(all.stats.neighbourPairs);
          // Without the window every query range is given every row (passes 2 and 3 ask for fewer ranges).
          expect(all.stats.candidatePairs, what).toBeGreaterThanOrEqual(3000 * 3000);
          expect(all.stats.candidatePairs, what).toBeLessThanOrEqual(all.stats.passes * 3000 * 3000);
          expect(win.stats.candidatePairs, what).toBeLessThan(all.stats.candidatePairs / 2);
        }
      }
    }
  });

  it('integer weights equal duplicated rows', async () => {
    const x = table('iris');
    const w = new Float32Array(150).map((_, i) => 1 + (i % 3));
    const dup: number[] = [];
    const first: number[] = [];
    for (let i = 0; i < 150; i++) {
      first.push(dup.length / 4);
      for (let c = 0; c < w[i]; c++) dup.push(...x.data.subarray(i * 4, i * 4 + 4));
    }
    const a = await new DBSCAN({ eps: 0.5, minSamples: 9 }).fit(be, x, w);
    const b = await new DBSCAN({ eps: 0.5, minSamples: 9 }).fit(be, { data: Float32Array.from(dup), nRows: dup.length / 4, nFeatures: 4 });
    expect(first.map((p) => b.labels[p])).toEqual([...a.labels]);
    expect(first.map((p) => b.core[p])).toEqual([...a.core]);
  });
});

describe('predictDbscan', () => {
  it.each([
    ['iris (grid)', cases[1]],
    ['wine (sorted on one feature)', cases[5]],
  ] as const)('%s: core rows get their own cluster, border rows a core neighbour\'s, far rows −1', async (_n, c) => {
    const x = table(c.table);
    const d = x.nFeatures;
    const r = await fitCase(c, {});
    expect(r.corePoints.length).toBe(c.core_sample_indices.length * d);
    const cores = { data: r.corePoints, nRows: r.coreLabels.length, nFeatures: d };
    expect([...predictDbscan(r, cores)]).toEqual([...r.coreLabels]);
    // Through model.json: the saved state survives JSON.
    const saved = JSON.parse(JSON.stringify(dbscanModel(r)));
    expect(saved.formatVersion).toBe(1);
    const all = predictDbscan(saved, x);
    const eps2 = r.eps * r.eps;
    for (let i = 0; i < x.nRows; i++) {
      // Nearest core row within eps, by brute force.
      let best = -1;
      let bestD = Infinity;
      for (const j of c.core_sample_indices) {
        const s = sqDist(x, i, j);
        if (s <= eps2 && s < bestD) (bestD = s), (best = j);
      }
      expect(all[i]).toBe(best < 0 ? -1 : r.labels[best]);
      if (r.core[i]) expect(all[i]).toBe(r.labels[i]);
    }
    const far = new Float32Array(3 * d).map((_, p) => (p % d === 0 ? 1e3 * (1 + Math.floor(p / d)) : 0));
    far[2 * d] = -1e30;
    expect([...predictDbscan(saved, { data: far, nRows: 3, nFeatures: d })]).toEqual([-1, -1, -1]);
  });

  it('refuses a model of another format version', () => {
    expect(() => predictDbscan({ formatVersion: 2, eps: 1, nFeatures: 1, corePoints: [0], coreLabels: [0] }, { data: new Float32Array(1), nRows: 1, nFeatures: 1 })).toThrow(
      /format version 2/,
    );
  });
});

describe('eps auto', () => {
  it('kneeOfCurve finds the knee of a hand-made curve', () => {
    // Flat then steep: 90 points rising 0.01 each, then 10 rising 1 each; the knee is the last flat point.
    const curve = Array.from({ length: 100 }, (_, i) => (i < 90 ? 0.01 * i : 0.89 + (i - 89)));
    expect(kneeOfCurve(curve)).toEqual({ index: 89, value: curve[89] });
    expect(kneeOfCurve([0, 0.1, 0.2, 0.3, 5])).toEqual({ index: 3, value: 0.3 });
    expect(kneeOfCurve([2, 2, 2]).index).toBe(2);
  });

  it("takes scikit-learn's k-distances on iris and picks the knee of that curve", async () => {
    const kd: number[] = fx.kdist5.iris;
    const a = await epsAuto(be, table('iris'), 5);
    expect(a.nSample).toBe(150);
    expect(a.curve.length).toBe(101);
    a.curve.forEach((v, q) => expect(v).toBeCloseTo(kd[Math.round((q / 100) * 149)], 6));
    const knee = kneeOfCurve(kd);
    expect(a.kneeIndex).toBe(knee.index);
    expect(a.eps).toBeCloseTo(knee.value, 6);
    const r = await new DBSCAN({ eps: 'auto', minSamples: 5 }).fit(be, table('iris'));
    expect(r.eps).toBe(a.eps);
    expect(r.epsAuto).toEqual(a);
  });

  it('windowed along the principal direction, gives the k-distances of comparing every row', async () => {
    const { data } = blobs(6000, 16, 10, 8, 3);
    const r = rng(4);
    for (let i = 0; i < 6000; i += 13) for (let f = 0; f < 16; f++) data[i * 16 + f] = (r() * 2 - 1) * 25;
    const x = { data, nRows: 6000, nFeatures: 16 };
    for (const b of backends) {
      // 4 × 6000 × 4096 bytes: one block of every row (not windowed); 4 × 6000 × 16: blocks of 16 rows, windowed.
      const all = await epsAuto(b, x, 8, { sample: 1500, blockBytes: 4 * 6000 * 4096 });
      const win = await epsAuto(b, x, 8, { sample: 1500, blockBytes: 4 * 6000 * 16 });
      expect(win.curve, b.name).toEqual(all.curve);
      expect(win.eps, b.name).toBe(all.eps);
    }
  });

  it('samples rows with its seed', async () => {
    const kd: number[] = fx.kdist5.wine;
    const a = await epsAuto(be, table('wine'), 5, { sample: 60, seed: 3 });
    const b = await epsAuto(be, table('wine'), 5, { sample: 60, seed: 3 });
    expect(a.nSample).toBe(60);
    expect(a).toEqual(b);
    // Each sampled k-distance is one of the whole table's.
    for (const v of a.curve) expect(kd.some((u) => Math.abs(u - v) < 1e-6)).toBe(true);
  });
});

describe('DBSCAN options', () => {
  const x = table('iris');
  const err = async (o: Partial<DBSCANOptions>, message: string) => {
    const p = new DBSCAN(o).fit(be, x);
    await expect(p).rejects.toThrow(SegtensorError);
    await expect(p).rejects.toMatchObject({ code: 'BAD_OPTION', message });
  };

  it('refuses bad eps and min-samples with one line naming the flag', async () => {
    await err({ eps: 0 }, '--eps must be a number > 0 or auto; got 0');
    await err({ eps: -1 }, '--eps must be a number > 0 or auto; got -1');
    await err({ eps: NaN }, '--eps must be a number > 0 or auto; got NaN');
    await err({ eps: 'big' as unknown as number }, '--eps must be a number > 0 or auto; got big');
    await err({ minSamples: 0 }, '--min-samples must be an integer >= 1; got 0');
    await err({ minSamples: 2.5 }, '--min-samples must be an integer >= 1; got 2.5');
    await err({ eps: 'auto', minSamples: 1 }, expect.stringContaining('--eps auto needs --min-samples >= 2') as unknown as string);
    await err({ eps: 'auto', minSamples: 151 }, expect.stringContaining('--eps auto needs --min-samples <= the number of rows (150)') as unknown as string);
  });

  it('refuses unknown indexes and a grid in too many dimensions', async () => {
    await err({ index: 'kd' as 'grid' }, "DBSCAN: 'index' must be one of auto, grid, blocked; got kd");
    const wide = { data: new Float32Array(13 * 4), nRows: 4, nFeatures: 13 };
    await expect(new DBSCAN({ index: 'grid' }).fit(be, wide)).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('at most 12 features; got 13') });
  });

  it('refuses NaN rows', async () => {
    const bad = { data: Float32Array.from([0, 1, NaN, 2]), nRows: 2, nFeatures: 2 };
    await expect(new DBSCAN().fit(be, bad)).rejects.toMatchObject({ code: 'NON_FINITE', message: 'DBSCAN: row 1, feature 0 is NaN' });
  });
});
