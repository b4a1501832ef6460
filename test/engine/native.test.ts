/**
 * The native C++ kernels against the float64 brute-force reference, on every instruction set
 * this CPU can run (baseline, AVX2, AVX-512), plus thread-count determinism. Skipped when the
 * addon is not built (`node scripts/build-native.mjs`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/engine/backend.js';
import { NATIVE_ADDON_PATH, createNativeBackend, loadNativeAddon, type NativeAddon } from '../../src/engine/backends/native.js';
import { blobs, refAssign, refSegmentSum, rng } from '../helpers/reference.js';

const built = existsSync(join(import.meta.dirname, '..', '..', NATIVE_ADDON_PATH));
const addon: NativeAddon | null = built ? loadNativeAddon() : null;
const isas = addon ? addon.info().isas : [];
const defaultThreads = addon ? addon.info().threads : 1;

function uniform(n: number, seed: number, scale = 10): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map(() => (r() - 0.5) * scale);
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs = 0) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = rel * Math.abs(want[i]) + abs;
    if (!(Math.abs(got[i] - want[i]) <= tol)) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]} (±${tol})`);
  }
}

/** The reference's best and runner-up differ by less than 1e-4 relative: either label is right. */
function nearTie(ref: { dist: Float64Array; second: Float64Array }, i: number): boolean {
  return Number.isFinite(ref.second[i]) && ref.second[i] - ref.dist[i] <= 1e-4 * ref.second[i];
}

/** Runs one assignment through the addon with the fused sums, as the backend does. */
function assignFused(a: NativeAddon, x: Float32Array, n: number, d: number, c: Float32Array, k: number, w: Float32Array | null) {
  const labels = new Int32Array(n);
  const dist = new Float32Array(n);
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  const shift = a.columnMeans(x, n, d);
  const r = a.assign(x, n, d, c, k, w, null, labels, dist, shift, sums, counts);
  return { ...r, labels, dist, sums, counts };
}

// (nRows, d, k): every k in {1, 2, 7, 16, 300} and every d in {1, 2, 3, 17, 32, 130}.
const shapes: [number, number, number][] = [
  [2000, 1, 1],
  [3000, 2, 2],
  [2500, 3, 7],
  [4000, 17, 16],
  [1500, 32, 300],
  [1200, 130, 16],
  [600, 130, 300],
  [3000, 32, 2],
  [1000, 2, 300],
];

describe.skipIf(!built)('native kernels', () => {
  const a = addon!;
  afterAll(() => {
    a.setIsa('auto');
    a.setThreads(defaultThreads);
  });

  describe.each(isas)('isa %s', (isa) => {
    it.each(shapes)('assign (fused sums) matches the reference: n=%i d=%i k=%i', (n, d, k) => {
      a.setIsa(isa as 'baseline');
      const x = uniform(n * d, n * 31 + d * 7 + k);
      // Centroids near data rows, so that distances are small next to ‖x‖ (cancellation).
      const c = x.slice(0, k * d).map((v, i) => v + ((i % 5) - 2) * 0.01);
      const w = new Float32Array(n).map((_, i) => 0.5 + (i % 4));
      const got = assignFused(a, x, n, d, c, k, w);
      const ref = refAssign(x, n, d, c, k);
      let refInertia = 0;
      let ties = 0;
      for (let i = 0; i < n; i++) {
        if (!nearTie(ref, i)) {
          if (got.labels[i] !== ref.labels[i]) expect.fail(`row ${i}: label ${got.labels[i]}, reference ${ref.labels[i]}`);
        } else ties++;
        refInertia += w[i] * ref.dist[i];
      }
      expect(ties).toBeLessThan(n / 20);
      // The reported distance is the exact one for the label chosen, near-tie or not.
      const exact = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let f = 0; f < d; f++) s += (x[i * d + f] - c[got.labels[i] * d + f]) ** 2;
        exact[i] = s;
      }
      expectClose(got.dist, exact, 1e-5, 1e-30);
      expect(relErr(got.inertia, refInertia)).toBeLessThanOrEqual(1e-5);
      expect(got.nChanged).toBe(n);
      const refSums = refSegmentSum(x, n, d, got.labels, k, w);
      expectClose(got.sums, refSums.sums, 1e-9, 1e-9);
      expectClose(got.counts, refSums.counts, 1e-12);
    });

    it('breaks ties toward the lowest index and counts changes', () => {
      a.setIsa(isa as 'baseline');
      const d = 5;
      const n = 700;
      const x = uniform(n * d, 3);
      // 40 centroids: 20 distinct ones, each twice (indices j and j + 20).
      const base = uniform(20 * d, 4);
      const c = new Float32Array(40 * d);
      c.set(base, 0);
      c.set(base, 20 * d);
      const labels = new Int32Array(n);
      const dist = new Float32Array(n);
      a.assign(x, n, d, c, 40, null, null, labels, dist);
      const ref = refAssign(x, n, d, base, 20);
      for (let i = 0; i < n; i++) {
        expect(labels[i]).toBeLessThan(20);
        if (!nearTie(ref, i)) expect(labels[i]).toBe(ref.labels[i]);
      }
      const prev = labels.slice();
      prev[0] = (prev[0] + 1) % 20;
      prev[5] = (prev[5] + 1) % 20;
      const r = a.assign(x, n, d, c, 40, null, prev, new Int32Array(n), new Float32Array(n));
      expect(r.nChanged).toBe(2);
    });

    it('breaks ties toward the lowest index with k ≤ lanes (the tiled small-k path, 4, 8 or all lanes scored), tail rows included', () => {
      a.setIsa(isa as 'baseline');
      // kk centroids: kk / 2 distinct ones, each twice (j and j + kk / 2); 16 and 32 features
      // (whole and split transposes), 5 (a masked tail), a row count that leaves a partial tile.
      for (const kk of [4, 8, 12]) {
        const half = kk / 2;
        for (const d of [16, 32, 5]) {
          const n = 1037;
          const x = uniform(n * d, 11 + d + kk);
          const base = uniform(half * d, 12 + d + kk);
          const c = new Float32Array(kk * d);
          c.set(base, 0);
          c.set(base, half * d);
          const labels = new Int32Array(n);
          const dist = new Float32Array(n);
          const sums = new Float64Array(kk * d);
          const counts = new Float64Array(kk);
          const r0 = a.assign(x, n, d, c, kk, null, null, labels, dist, null, sums, counts);
          const ref = refAssign(x, n, d, base, half);
          for (let i = 0; i < n; i++) {
            expect(labels[i]).toBeLessThan(half);
            if (!nearTie(ref, i)) expect(labels[i]).toBe(ref.labels[i]);
            expect(dist[i]).toBeCloseTo(ref.dist[i], 3);
          }
          expect(r0.nChanged).toBe(n);
          const refSums = refSegmentSum(x, n, d, labels, kk, null);
          expectClose(sums, refSums.sums, 1e-9, 1e-9);
          expect(Array.from(counts)).toEqual(Array.from(refSums.counts));
          // Changes counted against prev, in the last (partial) tile too.
          const prev = labels.slice();
          prev[3] = (prev[3] + 1) % half;
          prev[n - 1] = (prev[n - 1] + 1) % half;
          const r = a.assign(x, n, d, c, kk, null, prev, new Int32Array(n), new Float32Array(n));
          expect(r.nChanged).toBe(2);
        }
      }
    });

    it('segmentSum matches the reference, with and without weights', () => {
      a.setIsa(isa as 'baseline');
      for (const [n, d, k] of [
        [5000, 3, 7],
        [3000, 130, 300],
        [10, 17, 16],
      ]) {
        const x = uniform(n * d, n + d);
        const r = rng(k);
        const labels = new Int32Array(n).map(() => Math.floor(r() * k));
        const w = new Float32Array(n).map(() => r() * 3);
        for (const weights of [null, w]) {
          const got = a.segmentSum(x, n, d, labels, k, weights);
          const ref = refSegmentSum(x, n, d, labels, k, weights);
          expectClose(got.sums, ref.sums, 1e-9, 1e-9);
          expectClose(got.counts, ref.counts, 1e-12);
        }
      }
    });

    it('distances matches direct float64 sums', () => {
      a.setIsa(isa as 'baseline');
      for (const [n, d, m] of [
        [1000, 1, 1],
        [700, 17, 3],
        [300, 130, 5],
      ]) {
        const x = uniform(n * d, n * m);
        const centers = uniform(m * d, d);
        const got = a.distances(x, n, d, centers, m);
        const want = new Float64Array(n * m);
        for (let i = 0; i < n; i++)
          for (let j = 0; j < m; j++) {
            let s = 0;
            for (let f = 0; f < d; f++) s += (x[i * d + f] - centers[j * d + f]) ** 2;
            want[i * m + j] = s;
          }
        expectClose(got, want, 1e-5);
        // Into a caller's buffer: the same values, the same array back.
        const out = new Float32Array(n * m + 3).fill(-1);
        expect(a.distances(x, n, d, centers, m, out)).toBe(out);
        expect(out.subarray(0, n * m)).toEqual(got);
        expect(out[n * m]).toBe(-1);
      }
    });

    it('potentials match Σ w·min(closest, ‖x − c‖²) in float64', () => {
      a.setIsa(isa as 'baseline');
      for (const [n, d, m] of [
        [1000, 1, 1],
        [40_000, 17, 4],
        [3000, 32, 5],
        [700, 130, 3],
      ]) {
        const x = uniform(n * d, n + d * 3 + m);
        const r = rng(n * m);
        const cands = x.slice(0, m * d).map((v) => v + (r() - 0.5));
        // closest on the scale of the distances, so both sides of the min are taken.
        const closest = new Float32Array(n).map(() => r() * d * 16);
        const w = new Float32Array(n).map(() => 0.25 + r() * 2);
        for (const weights of [null, w]) {
          const got = a.potentials(x, n, d, closest, cands, m, weights);
          const want = new Float64Array(m);
          for (let j = 0; j < m; j++)
            for (let i = 0; i < n; i++) {
              let s = 0;
              for (let f = 0; f < d; f++) s += (x[i * d + f] - cands[j * d + f]) ** 2;
              want[j] += (weights ? weights[i] : 1) * Math.min(closest[i], s);
            }
          expectClose(got, want, 1e-6);
        }
      }
    });

    it('clusterDistanceSums match Σ‖xᵢ − xⱼ‖ per cluster in float64, duplicates exactly 0', () => {
      a.setIsa(isa as 'baseline');
      // Shapes cross tile edges (4, 8, 16 lanes), runs of 64 tiles, task blocks of 64 rows,
      // mixed tiles (k close to n) and empty clusters.
      for (const [n, d, k] of [
        [1, 3, 1],
        [17, 1, 2],
        [300, 7, 5],
        [2100, 5, 2],
        [640, 33, 300],
        [200, 130, 9],
      ]) {
        const x = uniform(n * d, n * 13 + d + k);
        const r = rng(k + 5);
        // Labels skewed toward low indices, so some clusters are large and some empty.
        const labels = Int32Array.from({ length: n }, () => Math.floor(r() * r() * k));
        const got = a.clusterDistanceSums(x, n, d, labels, k);
        expect(got.length).toBe(n * k);
        const want = new Float64Array(n * k);
        for (let i = 0; i < n; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let f = 0; f < d; f++) s += (x[i * d + f] - x[j * d + f]) ** 2;
            want[i * k + labels[j]] += Math.sqrt(s);
          }
        expectClose(got, want, 2e-6, 1e-12);
      }
      // Rows 0 and 2 are equal and alone in cluster 0: exactly 0, not the root of a rounding error.
      const x = Float32Array.from([1000.5, -3.25, 7, 0.1, 1000.5, -3.25]);
      const got = a.clusterDistanceSums(x, 3, 2, Int32Array.from([0, 1, 0]), 2);
      expect(got[0]).toBe(0);
      expect(got[4]).toBe(0);
    });
  });

  it('refuses labels outside [0, k) in clusterDistanceSums', () => {
    const x = uniform(30, 1);
    expect(() => a.clusterDistanceSums(x, 10, 3, new Int32Array(10).fill(2), 2)).toThrow(/labels must be in \[0, 2\); got 2 at row 0/);
    expect(() => a.clusterDistanceSums(x, 10, 3, new Int32Array(10).fill(-1), 2)).toThrow(RangeError);
  });

  it('gives bit-identical results with 1, 2 and 3 threads', () => {
    a.setIsa('auto');
    const n = 40_000;
    const d = 9;
    const k = 12;
    const x = uniform(n * d, 77);
    const c = x.slice(0, k * d);
    const w = new Float32Array(n).map((_, i) => 1 + ((i * 7) % 11) / 3);
    const runs = [1, 2, 3].map((t) => {
      a.setThreads(t);
      const fused = assignFused(a, x, n, d, c, k, w);
      const sep = a.segmentSum(x, n, d, fused.labels, k, w);
      const means = a.columnMeans(x, n, d);
      const pots = a.potentials(x, n, d, fused.dist.map((v) => v * 0.7), x.slice(9 * d, 13 * d), 4, w);
      const sil = a.clusterDistanceSums(x.subarray(0, 1500 * d), 1500, d, fused.labels.subarray(0, 1500), k);
      return { fused, sep, means, pots, sil };
    });
    a.setThreads(defaultThreads);
    const [one, ...rest] = runs;
    for (const r of rest) {
      expect(r.fused.inertia).toBe(one.fused.inertia);
      expect(r.fused.labels).toEqual(one.fused.labels);
      expect(r.fused.dist).toEqual(one.fused.dist);
      expect(r.fused.sums).toEqual(one.fused.sums);
      expect(r.sep.sums).toEqual(one.sep.sums);
      expect(r.sep.counts).toEqual(one.sep.counts);
      expect(r.means).toEqual(one.means);
      expect(r.pots).toEqual(one.pots);
      expect(r.sil).toEqual(one.sil);
    }
    // The fused step and segmentSum use the same blocks and order: identical sums.
    expect(one.fused.sums).toEqual(one.sep.sums);
    expect(one.fused.counts).toEqual(one.sep.counts);
  });
});

describe.skipIf(!built)('native backend', () => {
  it('implements the contract, and segmentSum reuses the fused sums', async () => {
    const be = await createNativeBackend();
    expect(be.name).toBe('native');
    expect(be.description).toMatch(/native C\+\+ kernels \((baseline|avx2|avx512), \d+ threads?\)/);
    const n = 5000;
    const { data } = blobs(n, 6, 5, 8, 11);
    const w = new Float32Array(n).map((_, i) => 1 + (i % 3));
    const x = be.upload({ data, nRows: n, nFeatures: 6 }, w);
    expect(x.totalWeight).toBe(w.reduce((s, v) => s + v, 0));
    const c = data.slice(0, 30);
    const a1 = await be.assign(x, c, 5);
    const { labels, distances } = await a1.read();
    expect(labels.length).toBe(n);
    expect(distances.length).toBe(n);
    const s1 = await be.segmentSum(x, a1, 5);
    const ref = refSegmentSum(data, n, 6, labels, 5, w);
    expectClose(s1.sums, ref.sums, 1e-9, 1e-9);
    // A second call returns fresh arrays, so in-place updates by a caller do not leak.
    s1.sums.fill(0);
    expectClose((await be.segmentSum(x, a1, 5)).sums, ref.sums, 1e-9, 1e-9);
    const again = await be.assign(x, c, 5, a1);
    expect(again.nChanged).toBe(0);
    expect(again.inertia).toBe(a1.inertia);
    const dists = await be.distances(x, c.subarray(0, 12), 2);
    expect(dists.length).toBe(n * 2);
    be.release(x);
    await expect(be.assign(x, c, 5)).rejects.toThrow(/released/);
  });

  it('recycles the buffers of assignments the Lloyd loop has let go, and recomputes them if read later', async () => {
    const be = await createNativeBackend();
    const n = 3000;
    const d = 4;
    const k = 5;
    const { data } = blobs(n, d, k, 10, 31);
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const cs = [0, 1, 2, 3, 4, 5].map((s) => data.slice(s * 40 * d, s * 40 * d + k * d));
    const fresh = async (c: Float32Array) => (await be.assign(x, c, k)).read();
    // a[t] = assign(c[t], previous a[t − 1]): a Lloyd chain. Nobody has read a0 or a1.
    const a = [await be.assign(x, cs[0], k)];
    for (let t = 1; t < 6; t++) a.push(await be.assign(x, cs[t], k, a[t - 1]));
    const internal = (v: unknown) => v as { labels: Int32Array | null };
    // a2 took a0's buffers, a3 took a1's, ... so a0..a3 are recycled and a4, a5 hold buffers.
    expect(internal(a[0]).labels).toBeNull();
    expect(internal(a[3]).labels).toBeNull();
    expect(internal(a[5]).labels).not.toBeNull();
    for (let t = 0; t < 6; t++) {
      const want = await fresh(cs[t]);
      const got = await a[t].read();
      expect(got.labels).toEqual(want.labels);
      expect(got.distances).toEqual(want.distances);
    }
    // Read arrays escaped: continuing the chain from a5 must not overwrite them.
    const seen = await a[4].read();
    const copy = seen.labels.slice();
    const b1 = await be.assign(x, cs[1], k, a[5]);
    await be.assign(x, cs[2], k, b1); // would take a5's buffers if a5 had not been read
    await be.assign(x, cs[3], k, await be.assign(x, cs[0], k, a[4]));
    expect(seen.labels).toEqual(copy);
    expect((await a[5].read()).labels).toEqual((await fresh(cs[5])).labels);
    be.release(x);
  });

  it('is not fooled by data far from the origin (cancellation in ‖x‖² − 2x·c + ‖c‖²)', async () => {
    const be = await createNativeBackend();
    const n = 4000;
    const d = 8;
    const k = 6;
    const { data } = blobs(n, d, k, 3, 21);
    for (let i = 0; i < data.length; i++) data[i] += 5000;
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const c = data.slice(0, k * d);
    const a = await be.assign(x, c, k);
    const { labels } = await a.read();
    const ref = refAssign(data, n, d, c, k);
    let refInertia = 0;
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      refInertia += ref.dist[i];
      if (!nearTie(ref, i) && labels[i] !== ref.labels[i]) wrong++;
    }
    expect(wrong).toBe(0);
    expect(relErr(a.inertia, refInertia)).toBeLessThanOrEqual(1e-5);
  });
});

describe('native backend without the addon', () => {
  it('throws BackendUnavailableError with a one-line reason', async () => {
    const { vi } = await import('vitest');
    vi.resetModules();
    const saved = process.env.SEGTENSOR_NATIVE_ADDON;
    process.env.SEGTENSOR_NATIVE_ADDON = '/nonexistent/segtensor_native.node';
    try {
      const fresh = await import('../../src/engine/backends/native.js');
      const err = await fresh.createNativeBackend().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as BackendUnavailableError).code).toBe('BACKEND_UNAVAILABLE');
      expect((err as BackendUnavailableError).reason).toMatch(/not built/);
      expect((err as BackendUnavailableError).reason).not.toContain('\n');
    } finally {
      if (saved === undefined) delete process.env.SEGTENSOR_NATIVE_ADDON;
      else process.env.SEGTENSOR_NATIVE_ADDON = saved;
    }
  });
});
