/**
 * K-Means against closed forms, the float64 Lloyd reference and scikit-learn's results, on
 * every usable backend.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KMeans, kmeansPlusPlus } from '../../src/models/kmeans.js';
import { SegtensorError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';
import { usableBackends } from '../helpers/backends.js';
import { adjustedRand, blobs, refLloyd } from '../helpers/reference.js';

const backends = await usableBackends();
const fixture = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-wine.json', import.meta.url), 'utf8'));

/** wine.csv standardised with scikit-learn's fitted mean and scale, as float32 rows. */
function wineScaled(): { data: Float32Array; nRows: number; nFeatures: number } {
  const lines = fs.readFileSync(new URL('../fixtures/wine.csv', import.meta.url), 'utf8').trim().split('\n').slice(1);
  const d = fixture.features.length;
  const data = new Float32Array(lines.length * d);
  lines.forEach((l, i) => {
    const v = l.split(',').slice(1).map(Number);
    for (let f = 0; f < d; f++) data[i * d + f] = (v[f] - fixture.mean[f]) / fixture.scale[f];
  });
  return { data, nRows: lines.length, nFeatures: d };
}

describe.each(backends.map((b) => [b.name, b] as const))('KMeans on %s', (_n, be) => {
  it("reproduces scikit-learn's weighted toy example exactly (test_kmeans_results)", async () => {
    const data = Float32Array.from([0, 0, 0.5, 0, 0.5, 1, 1, 1]);
    const w = Float32Array.from([3, 1, 1, 3]);
    const r = await new KMeans({ k: 2, init: Float32Array.from([0, 0, 1, 1]), nInit: 1 }).fit(be, { data, nRows: 4, nFeatures: 2 }, w);
    expect([...r.labels]).toEqual([0, 0, 1, 1]);
    expect(r.inertia).toBeCloseTo(0.375, 6);
    expect([...r.centroids].map((v) => +v.toFixed(6))).toEqual([0.125, 0, 0.875, 1]);
    expect(r.nIter).toBe(2);
  });

  it('k = 1 gives the weighted mean and the weighted total squared deviation', async () => {
    const { data } = blobs(999, 3, 4, 5, 11);
    const w = new Float32Array(999).map((_, i) => 1 + (i % 4));
    const r = await new KMeans({ k: 1, nInit: 1 }).fit(be, { data, nRows: 999, nFeatures: 3 }, w);
    let tw = 0;
    const mean = [0, 0, 0];
    for (let i = 0; i < 999; i++) {
      tw += w[i];
      for (let f = 0; f < 3; f++) mean[f] += w[i] * data[i * 3 + f];
    }
    for (let f = 0; f < 3; f++) mean[f] /= tw;
    let ss = 0;
    for (let i = 0; i < 999; i++) for (let f = 0; f < 3; f++) ss += w[i] * (data[i * 3 + f] - mean[f]) ** 2;
    for (let f = 0; f < 3; f++) expect(r.centroids[f]).toBeCloseTo(mean[f], 4);
    expect(Math.abs(r.inertia - ss) / ss).toBeLessThan(1e-5);
  });

  it('integer weights equal duplicated rows', async () => {
    const { data } = blobs(400, 2, 3, 4, 2);
    const w = new Float32Array(400).map((_, i) => 1 + (i % 3));
    const dup: number[] = [];
    for (let i = 0; i < 400; i++) for (let c = 0; c < w[i]; c++) dup.push(data[i * 2], data[i * 2 + 1]);
    const init = data.slice(0, 6);
    const a = await new KMeans({ k: 3, init }).fit(be, { data, nRows: 400, nFeatures: 2 }, w);
    const b = await new KMeans({ k: 3, init }).fit(be, { data: Float32Array.from(dup), nRows: dup.length / 2, nFeatures: 2 });
    expect(a.nIter).toBe(b.nIter);
    for (let i = 0; i < 6; i++) expect(a.centroids[i]).toBeCloseTo(b.centroids[i], 4);
    expect(Math.abs(a.inertia - b.inertia) / b.inertia).toBeLessThan(1e-5);
  });

  it('recovers well-separated blobs exactly (adjusted Rand index 1)', async () => {
    const { data, truth } = blobs(6000, 5, 6, 30, 4);
    const r = await new KMeans({ k: 6, seed: 3 }).fit(be, { data, nRows: 6000, nFeatures: 5 });
    expect(adjustedRand(r.labels, truth)).toBe(1);
    expect(r.converged).toBe(true);
  });

  it('matches the float64 Lloyd reference from the same initial centroids', async () => {
    const { data } = blobs(5000, 8, 7, 3, 8);
    const init = data.slice(0, 7 * 8);
    const tol = 1e-4;
    const r = await new KMeans({ k: 7, init, tol, maxIter: 100 }).fit(be, { data, nRows: 5000, nFeatures: 8 });
    const ref = refLloyd(data, 5000, 8, init, 7, 100, r.tolAbs, null);
    expect(r.nIter).toBe(ref.nIter);
    expect(adjustedRand(r.labels, ref.labels)).toBeGreaterThan(0.999);
    expect(Math.abs(r.inertia - ref.inertia) / ref.inertia).toBeLessThan(1e-5);
  });

  it('never increases inertia from one iteration to the next', async () => {
    const { data } = blobs(4000, 4, 10, 2, 6);
    const r = await new KMeans({ k: 10, nInit: 1, seed: 1, tol: 0 }).fit(be, { data, nRows: 4000, nFeatures: 4 });
    for (let i = 1; i < r.history.length; i++) expect(r.history[i].inertia).toBeLessThanOrEqual(r.history[i - 1].inertia * (1 + 1e-6));
    expect(r.inertia).toBeLessThanOrEqual(r.history[r.history.length - 1].inertia * (1 + 1e-6));
  });

  it('gives lower inertia for larger k', async () => {
    const { data } = blobs(3000, 3, 5, 3, 12);
    let last = Infinity;
    for (const k of [1, 2, 4, 8]) {
      const r = await new KMeans({ k, seed: 2 }).fit(be, { data, nRows: 3000, nFeatures: 3 });
      expect(r.inertia).toBeLessThan(last);
      last = r.inertia;
    }
  });

  it('repairs an empty cluster by moving it to the farthest row', async () => {
    const data = Float32Array.from([0, 0, 1, 0, 0, 1, 10, 10, 11, 10]);
    // The third centroid is far from everything: empty after the first assignment.
    const init = Float32Array.from([0, 0, 10, 10, 1000, 1000]);
    const r = await new KMeans({ k: 3, init }).fit(be, { data, nRows: 5, nFeatures: 2 });
    expect(r.history[0].emptyClusters).toBe(1);
    expect(new Set(r.labels).size).toBe(3);
  });

  it('is reproducible for a seed, and seeds differ', async () => {
    const { data } = blobs(3000, 4, 8, 1.5, 21);
    const m = { data, nRows: 3000, nFeatures: 4 };
    const a = await new KMeans({ k: 8, seed: 5 }).fit(be, m);
    const b = await new KMeans({ k: 8, seed: 5 }).fit(be, m);
    expect(b.inertia).toBe(a.inertia);
    expect([...b.labels]).toEqual([...a.labels]);
    const c = await new KMeans({ k: 8, seed: 6, nInit: 1 }).fit(be, m);
    const d = await new KMeans({ k: 8, seed: 5, nInit: 1 }).fit(be, m);
    expect([...c.centroids]).not.toEqual([...d.centroids]);
  });

  it("is within 1% of scikit-learn's best-of-10 inertia on the wine data, k = 2..6", async () => {
    const x = wineScaled();
    for (const [k, ref] of Object.entries(fixture.kmeans) as [string, { inertia: number }][]) {
      const r = await new KMeans({ k: Number(k), nInit: 10, seed: 0 }).fit(be, x);
      expect(r.inertia / ref.inertia).toBeLessThan(1.01);
      expect(r.inertia / ref.inertia).toBeGreaterThan(0.99);
    }
  });

  it("follows scikit-learn's Lloyd path from fixed initial centres on wine", async () => {
    const x = wineScaled();
    const init = new Float32Array(3 * x.nFeatures);
    fixture.fixedInit.rows.forEach((row: number, j: number) => init.set(x.data.subarray(row * x.nFeatures, (row + 1) * x.nFeatures), j * x.nFeatures));
    const r = await new KMeans({ k: 3, init }).fit(be, x);
    expect([...r.labels]).toEqual(fixture.fixedInit.labels);
    expect(r.nIter).toBe(fixture.fixedInit.nIter);
    expect(Math.abs(r.inertia - fixture.fixedInit.inertia) / fixture.fixedInit.inertia).toBeLessThan(1e-5);
  });
});

describe('KMeans validation', () => {
  const m = { data: new Float32Array(10), nRows: 5, nFeatures: 2 };
  it.each([
    [{ k: 0 }, "'k' must be an integer in [1, nRows = 5]; got 0"],
    [{ k: 6 }, "'k' must be an integer in [1, nRows = 5]; got 6"],
    [{ k: 2, nInit: 0 }, "'nInit' must be an integer"],
    [{ k: 2, tol: -1 }, "'tol' must be a finite number >= 0; got -1"],
  ])('rejects %o', async (o, msg) => {
    const be = backends[0];
    await expect(new KMeans(o as { k: number }).fit(be, m)).rejects.toThrow(msg);
    await expect(new KMeans(o as { k: number }).fit(be, m)).rejects.toBeInstanceOf(SegtensorError);
  });

  it('rejects negative weights naming the row', async () => {
    const w = Float32Array.from([1, 1, -2, 1, 1]);
    await expect(new KMeans({ k: 2 }).fit(backends[0], m, w)).rejects.toThrow('weight of row 2');
  });
});

describe('k-means++', () => {
  it('picks distinct, well-spread seeds on separated blobs', async () => {
    const be = backends[0];
    const { data, truth } = blobs(3000, 2, 5, 50, 13);
    const x = { data, nRows: 3000, nFeatures: 2 };
    const dx = be.upload(x);
    const c = await kmeansPlusPlus(be, dx, x, 5, new Random(1));
    be.release(dx);
    // Each seed is one of the rows, and the 5 seeds fall in 5 different true blobs.
    const blobOf = (j: number) => {
      for (let i = 0; i < 3000; i++) if (data[i * 2] === c[j * 2] && data[i * 2 + 1] === c[j * 2 + 1]) return truth[i];
      return -1;
    };
    expect(new Set([0, 1, 2, 3, 4].map(blobOf)).size).toBe(5);
  });

  it('gives the same seeds when runs on one matrix overlap (each gets its own working arrays)', async () => {
    const be = backends[0];
    const { data } = blobs(5000, 4, 6, 8, 5);
    const x = { data, nRows: 5000, nFeatures: 4 };
    const dx = be.upload(x);
    const one = await kmeansPlusPlus(be, dx, x, 6, new Random(1));
    const two = await kmeansPlusPlus(be, dx, x, 6, new Random(2));
    const both = await Promise.all([kmeansPlusPlus(be, dx, x, 6, new Random(1)), kmeansPlusPlus(be, dx, x, 6, new Random(2))]);
    be.release(dx);
    expect(both[0]).toEqual(one);
    expect(both[1]).toEqual(two);
    expect(two).not.toEqual(one);
  });

  it.each(backends.filter((b) => b.updateClosest).map((b) => [b.name, b] as const))(
    "%s: the fused closest update picks the same seeds as distances and the host loop",
    async (_, be) => {
      const { data } = blobs(20000, 6, 12, 8, 21);
      const x = { data, nRows: 20000, nFeatures: 6 };
      const w = new Float32Array(20000).map((_, i) => 0.5 + ((i * 37) % 10) / 4);
      for (const weights of [null, w]) {
        const dx = be.upload(x, weights);
        const fused = await kmeansPlusPlus(be, dx, x, 12, new Random(3));
        const plain = { ...be, updateClosest: undefined };
        const host = await kmeansPlusPlus(plain, dx, x, 12, new Random(3));
        be.release(dx);
        expect(fused).toEqual(host);
      }
    },
  );
});
