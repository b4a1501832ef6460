/**
 * K-Means seeding (issue 13, "seeding at large k"): k-means‖ against its own properties on every
 * backend, and its final inertia after Lloyd against scikit-learn's greedy k-means++ on a
 * Gaussian mixture and on the digits data (test/fixtures/make-kmeans-init-fixtures.py).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { autoInit, KMeans, kmeansParallel, kmeansPlusPlus } from '../../src/models/kmeans.js';
import type { Backend, Matrix } from '../../src/engine/backend.js';
import { Random } from '../../src/util/random.js';
import { usableBackends } from '../helpers/backends.js';
import { blobs, gmm } from '../helpers/reference.js';

const backends = await usableBackends();
const fixture = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-kmeans-init.json', import.meta.url), 'utf8'));

async function parallel(be: Backend, x: Matrix, k: number, seed: number, weights: Float32Array | null = null): Promise<Float32Array> {
  const dx = be.upload(x, weights);
  try {
    return await kmeansParallel(be, dx, x, k, new Random(seed));
  } finally {
    be.release(dx);
  }
}

/** For each center, the index of the data row equal to it, or -1. */
function rowIndexOf(x: Matrix, centers: Float32Array): number[] {
  const d = x.nFeatures;
  const byKey = new Map<string, number>();
  for (let i = 0; i < x.nRows; i++) byKey.set(x.data.subarray(i * d, (i + 1) * d).join(','), i);
  return Array.from({ length: centers.length / d }, (_, j) => byKey.get(centers.subarray(j * d, (j + 1) * d).join(',')) ?? -1);
}

describe.each(backends.map((b) => [b.name, b] as const))('k-means‖ on %s', (_n, be) => {
  const { data } = blobs(4000, 4, 12, 6, 31);
  const x = { data, nRows: 4000, nFeatures: 4 };

  it('is reproducible for a seed, and seeds differ', async () => {
    const a = await parallel(be, x, 40, 7);
    expect(await parallel(be, x, 40, 7)).toEqual(a);
    expect(await parallel(be, x, 40, 8)).not.toEqual(a);
  });

  it('returns k distinct rows of the data', async () => {
    const c = await parallel(be, x, 40, 1);
    expect(c.length).toBe(40 * 4);
    const ids = rowIndexOf(x, c);
    expect(ids).not.toContain(-1);
    expect(new Set(ids).size).toBe(40);
  });

  it('never picks a row of weight 0', async () => {
    const w = new Float32Array(4000).map((_, i) => (i % 2 === 0 ? 0 : 1 + (i % 5)));
    for (const seed of [1, 2, 3]) {
      const ids = rowIndexOf(x, await parallel(be, x, 40, seed, w));
      expect(ids.filter((i) => i < 0 || w[i] === 0)).toEqual([]);
    }
  });

  it('with k = nRows distinct rows, picks each row once (greedy steps top up the rounds)', async () => {
    const small = { data: data.slice(0, 60 * 4), nRows: 60, nFeatures: 4 };
    const ids = rowIndexOf(small, await parallel(be, small, 60, 4));
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('gives the same centers as the first backend', async (ctx) => {
    if (be === backends[0]) ctx.skip(); // the reference itself
    const w = new Float32Array(4000).map((_, i) => 0.5 + (i % 7) / 2);
    for (const weights of [null, w]) {
      expect(await parallel(be, x, 48, 11, weights)).toEqual(await parallel(backends[0], x, 48, 11, weights));
    }
  });

  it("KMeans records the seeding it ran: 'auto' resolves by k and nRows", async () => {
    expect((await new KMeans({ k: 40, nInit: 1, maxIter: 2 }).fit(be, x)).init).toBe('k-means||');
    expect((await new KMeans({ k: 8, nInit: 1, maxIter: 2 }).fit(be, x)).init).toBe('k-means++');
    expect((await new KMeans({ k: 40, nInit: 1, maxIter: 2, init: 'k-means++' }).fit(be, x)).init).toBe('k-means++');
    expect((await new KMeans({ k: 8, nInit: 1, maxIter: 2, init: 'k-means||' }).fit(be, x)).init).toBe('k-means||');
    expect((await new KMeans({ k: 8, nInit: 1, maxIter: 2, init: 'random' }).fit(be, x)).init).toBe('random');
    expect((await new KMeans({ k: 2, maxIter: 2, init: data.slice(0, 8) }).fit(be, x)).init).toBe('array');
  });
});

describe('the auto rule', () => {
  it('picks k-means‖ from k = 32 when nRows >= 4k, greedy k-means++ otherwise', () => {
    expect(autoInit(200_000, 1024)).toBe('k-means||');
    expect(autoInit(200_000, 32)).toBe('k-means||');
    expect(autoInit(200_000, 31)).toBe('k-means++');
    expect(autoInit(1000, 256)).toBe('k-means++');
  });

  it("rejects an unknown 'init' naming the choices", async () => {
    const x = { data: new Float32Array(20), nRows: 10, nFeatures: 2 };
    await expect(new KMeans({ k: 2, init: 'kmeans||' as 'k-means||' }).fit(backends[0], x)).rejects.toThrow(
      "KMeans: 'init' must be one of auto, k-means++, k-means||, random or a Float32Array",
    );
  });
});

describe("final inertia after Lloyd against scikit-learn's greedy k-means++", () => {
  // One backend: the quality is a property of the algorithm; the suite above shows every
  // backend gives the same centers.
  const be = backends[0];
  const sets: Record<string, Matrix> = {
    gmm: { data: gmm(16384, 8, 64, 2024), nRows: 16384, nFeatures: 8 },
    digits: {
      data: Float32Array.from(fixture.digits.pixels as string, (ch) => parseInt(ch, 17) / 16),
      nRows: fixture.digits.nRows,
      nFeatures: fixture.digits.nFeatures,
    },
  };

  it('regenerates the fixture Gaussian mixture bit for bit (its sum)', () => {
    let s = 0;
    for (const v of sets.gmm.data) s += v;
    expect(s).toBe(fixture.gmm.sum);
  });

  const cases = ['gmm', 'digits'].flatMap((set) => [16, 256, 1024].map((k) => [set, k] as const));
  // At k = 16 single runs differ by ~1.3 % (local minima), so even the mean of 20 seeds moves
  // by ~0.5 %: 2 % there, 1 % from k = 256 on, where runs differ by ~0.3 %. Measured ratios
  // (k-means‖ / greedy): gmm 1.009 / 1.004, 0.994 / 0.997, 1.000 / 1.001; digits 1.005 / 1.004,
  // 1.003 / 1.004, 0.994 / 0.997 at k = 16, 256, 1024.
  it.each(cases)('%s, k = %i: k-means‖ within 1 % (2 % at k = 16) of scikit-learn (mean over the seeds)', async (set, k, ctx) => {
    const ref: number[] | undefined = fixture[set].inertia[String(k)];
    if (!ref) ctx.skip(); // k > nRows: the fixture has no reference
    const x = sets[set];
    const seeds: number[] = fixture.seeds[String(k)];
    const mean = async (init: 'k-means||' | 'k-means++') => {
      let s = 0;
      for (const seed of seeds) s += (await new KMeans({ k, init, seed, nInit: 1 }).fit(be, x)).inertia;
      return s / seeds.length;
    };
    const sk = ref.reduce((a, b) => a + b, 0) / ref.length;
    const par = (await mean('k-means||')) / sk;
    // Control: our greedy k-means++ against the same reference, so a failure points at the seeding.
    const greedy = (await mean('k-means++')) / sk;
    const tol = k <= 16 ? 0.02 : 0.01;
    expect(greedy).toBeGreaterThan(1 - 2 * tol);
    expect(greedy).toBeLessThan(1 + tol);
    expect(par).toBeGreaterThan(1 - 2 * tol);
    expect(par).toBeLessThan(1 + tol);
  });
});
