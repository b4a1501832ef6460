/**
 * Every backend against the float64 brute-force reference, and so against each other.
 */
import { describe, expect, it } from 'vitest';
import { ALWAYS, GPU_PACK, usableBackends } from '../helpers/backends.js';
import { blobs, refAssign, refSegmentSum, rng } from '../helpers/reference.js';
import { clusterDistanceSums } from '../../src/engine/ops/cluster-distance-sums.js';
import { updateClosest } from '../../src/engine/ops/update-closest.js';

const backends = await usableBackends();

function randomData(nRows: number, d: number, seed: number) {
  const r = rng(seed);
  return new Float32Array(nRows * d).map(() => (r() - 0.5) * 10);
}

describe('backends available', () => {
  it.skipIf(GPU_PACK)('include cpu and wasm on every machine (not in the GPU pack, which carries no tfjs)', () => {
    const names = backends.map((b) => b.name);
    for (const n of ALWAYS) expect(names).toContain(n);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('backend %s', (_name, be) => {
  const shapes: [number, number, number][] = [
    [1000, 1, 1],
    [777, 3, 7],
    [5000, 17, 16],
    [2000, 32, 300],
    [1500, 9, 40], // three vectors of centroids per tile on AVX-512
    [300, 130, 5],
    // k = 1024 over 10,000 rows: the tfjs backends cut their chunks into runs of 4,096 rows here.
    [10000, 3, 1024],
  ];

  it.each(shapes)('assign matches the float64 reference (n=%i, d=%i, k=%i)', async (n, d, k) => {
    const data = randomData(n, d, n + d + k);
    const centroids = data.slice(0, k * d).map((v, i) => v + (i % 3) * 0.01);
    const w = new Float32Array(n).map((_, i) => 1 + (i % 5));
    const x = be.upload({ data, nRows: n, nFeatures: d }, w);
    const a = await be.assign(x, centroids, k);
    const { labels, distances } = await a.read();
    const ref = refAssign(data, n, d, centroids, k);
    let refInertia = 0;
    for (let i = 0; i < n; i++) {
      refInertia += w[i] * ref.dist[i];
      // Near-ties (best and runner-up within fp32 error) may go either way.
      if (ref.second[i] - ref.dist[i] > 1e-4 * (ref.dist[i] + 1)) expect(labels[i]).toBe(ref.labels[i]);
      expect(distances[i]).toBeCloseTo(refAssignDist(data, centroids, d, i, labels[i]), 3);
    }
    expect(Math.abs(a.inertia - refInertia) / refInertia).toBeLessThan(1e-5);
    expect(a.nChanged).toBe(n);
    be.release(x);
  });

  it('counts changed labels against a previous assignment', async () => {
    const { data } = blobs(3000, 4, 3, 20, 5);
    const x = be.upload({ data, nRows: 3000, nFeatures: 4 });
    const c1 = data.slice(0, 12);
    const a1 = await be.assign(x, c1, 3);
    const again = await be.assign(x, c1, 3, a1);
    expect(again.nChanged).toBe(0);
    const c2 = data.slice(12, 24);
    const a2 = await be.assign(x, c2, 3, a1);
    const l1 = (await a1.read()).labels;
    const l2 = (await a2.read()).labels;
    expect(a2.nChanged).toBe(l1.filter((v, i) => v !== l2[i]).length);
    be.release(x);
  });

  it('segmentSum matches the float64 reference, weighted and not', async () => {
    const n = 20000;
    const d = 9;
    const k = 11;
    const data = randomData(n, d, 3);
    const w = new Float32Array(n).map((_, i) => (i % 7) * 0.5);
    for (const weights of [null, w]) {
      const x = be.upload({ data, nRows: n, nFeatures: d }, weights);
      const a = await be.assign(x, data.slice(0, k * d), k);
      const { labels } = await a.read();
      const got = await be.segmentSum(x, a, k);
      const ref = refSegmentSum(data, n, d, labels, k, weights);
      for (let j = 0; j < k; j++) {
        expect(got.counts[j]).toBeCloseTo(ref.counts[j], 6);
        for (let f = 0; f < d; f++) {
          // fp32 products summed in chunks: relative 1e-5 of the cluster's total mass
          const scale = Math.max(1, Math.abs(ref.sums[j * d + f]), ref.counts[j]);
          expect(Math.abs(got.sums[j * d + f] - ref.sums[j * d + f]) / scale).toBeLessThan(1e-5);
        }
      }
      be.release(x);
    }
  });

  it('distances match the float64 reference', async () => {
    const n = 500;
    const d = 6;
    const m = 4;
    const data = randomData(n, d, 9);
    const centers = randomData(m, d, 10);
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const got = await be.distances(x, centers, m);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const ref = refAssignDist(data, centers, d, i, j);
        expect(Math.abs(got[i * m + j] - ref)).toBeLessThan(1e-4 * (ref + 1));
      }
    }
    be.release(x);
  });

  it('potentials match Σ w·min(closest, d²) computed in float64', async () => {
    const n = 3001;
    const d = 5;
    const m = 4;
    const data = randomData(n, d, 31);
    const w = new Float32Array(n).map((_, i) => 0.5 + (i % 3));
    const closest = new Float32Array(n).map((_, i) => (i % 10) * 3);
    const cand = randomData(m, d, 32);
    const x = be.upload({ data, nRows: n, nFeatures: d }, w);
    const got = await be.potentials(x, closest, cand, m);
    for (let j = 0; j < m; j++) {
      let ref = 0;
      for (let i = 0; i < n; i++) ref += w[i] * Math.min(closest[i], refAssignDist(data, cand, d, i, j));
      expect(Math.abs(got[j] - ref) / ref).toBeLessThan(1e-5);
    }
    be.release(x);
  });

  it('updateClosest (op) takes the minimum and the weighted running sum, as the float64 reference', async () => {
    const n = 2500;
    const d = 6;
    const data = randomData(n, d, 51);
    const w = new Float32Array(n).map((_, i) => 0.25 + (i % 4));
    const center = randomData(1, d, 52);
    const x = be.upload({ data, nRows: n, nFeatures: d }, w);
    const closest = new Float32Array(n).map((_, i) => (i % 9) * 12);
    const before = closest.slice();
    const cum = new Float64Array(n);
    await updateClosest(be, x, center, closest, cum);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.min(before[i], refAssignDist(data, center, d, i, 0));
      expect(Math.abs(closest[i] - want)).toBeLessThanOrEqual(1e-5 * (want + 1));
      acc += w[i] * closest[i];
      expect(cum[i]).toBe(acc); // the running sum of what it left in closest, in row order
    }
    await expect(updateClosest(be, x, center.subarray(0, d - 1), closest, cum)).rejects.toThrow(/updateClosest/);
    await expect(updateClosest(be, x, center, closest.subarray(1), cum)).rejects.toThrow(
      `updateClosest: 'closest' must be a Float32Array of nRows = ${n} values; got ${n - 1}`,
    );
    await expect(updateClosest(be, x, center, closest, new Float64Array(3))).rejects.toThrow(/'cum' must be a Float64Array/);
    be.release(x);
  });

  it('clusterDistanceSums match Σ‖xᵢ − xⱼ‖ per cluster in float64', async () => {
    const n = 700;
    const d = 7;
    const k = 5;
    const data = randomData(n, d, 41);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % k);
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const got = await be.clusterDistanceSums(x, labels, k);
    for (let i = 0; i < n; i += 37) {
      const ref = new Float64Array(k);
      for (let j = 0; j < n; j++) if (j !== i) ref[labels[j]] += Math.sqrt(refAssignDist(data, data, d, i, j));
      for (let l = 0; l < k; l++) expect(Math.abs(got[i * k + l] - ref[l]) / ref[l]).toBeLessThan(1e-4);
    }
    // A row range gives those rows' sums, the same bits as the whole call (the silhouette runs
    // in row blocks at large k).
    for (const [start, end] of [[0, 1], [13, 77], [650, 700], [700, 700]]) {
      const part = await clusterDistanceSums(be, x, labels, k, { start, end });
      expect(part.length).toBe((end - start) * k);
      expect([...part]).toEqual([...got.subarray(start * k, end * k)]);
    }
    expect(() => clusterDistanceSums(be, x, labels, k, { start: 5, end: 701 })).toThrow("'rows' must satisfy 0 <= start <= end <= nRows = 700; got [5, 701)");
    be.release(x);
  });
});

function refAssignDist(data: Float32Array, c: Float32Array, d: number, i: number, j: number): number {
  let s = 0;
  for (let f = 0; f < d; f++) s += (data[i * d + f] - c[j * d + f]) ** 2;
  return s;
}
