/**
 * The native C++ kernels against the float64 brute-force reference, on every instruction set
 * this CPU can run (baseline, AVX2, AVX-512), plus thread-count determinism. Skipped when the
 * addon is not built (`node scripts/build-native.mjs`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/engine/backend.js';
import { NATIVE_ADDON_PATH, advanceChain, boundsPay, centroidMoves, createNativeBackend, loadNativeAddon, type NativeAddon } from '../../src/engine/backends/native.js';
import { KMeans } from '../../src/models/kmeans.js';
import { blobs, refAssign, refSegmentSum, rng } from '../helpers/reference.js';
import { bothPaths } from '../helpers/native-paths.js';

const built = existsSync(join(import.meta.dirname, '..', '..', NATIVE_ADDON_PATH));
const addon: NativeAddon | null = built ? loadNativeAddon() : null;
const isas = addon ? addon.info().isas : [];
const defaultThreads = addon ? addon.info().threads : 1;

function uniform(n: number, seed: number, scale = 10): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map(() => (r() - 0.5) * scale);
}

/** Equal bit for bit (NaN payloads and signed zeros included). */
function sameBits(a: Float32Array | Float64Array, b: Float32Array | Float64Array): boolean {
  if (a.length !== b.length || a.constructor !== b.constructor) return false;
  const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const v = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  return true;
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

    it('potentials keeps each candidate\'s distances with updateClosest\'s bits, and k-means++ updates from them exactly', async () => {
      a.setIsa(isa as 'baseline');
      const { closestFrom } = await import('../../src/models/kmeans-init.js');
      // n mod 4 from 0 to 3 (the last rows take distRows' single-row arithmetic), blocks of
      // 4096 and 16384 crossed, d with and without a vector tail, m from 1 to 9 (groups of four
      // and the one- or two-candidate remainder).
      for (const [n, d] of [
        [1000, 1],
        [1001, 5],
        [4099, 17],
        [16_387, 32],
        [20_002, 33],
        [703, 130],
      ]) {
        for (const m of [1, 2, 3, 4, 5, 6, 9]) {
          const x = uniform(n * d, n * 7 + d + m);
          const r = rng(n + m);
          const cands = x.slice(0, m * d).map((v) => v + (r() - 0.5));
          const closest = new Float32Array(n).map(() => r() * d * 16);
          const w = new Float32Array(n).map(() => 0.25 + r() * 2);
          for (const weights of [null, w]) {
            const keep = new Float32Array(m * n).fill(NaN);
            const pots = a.potentials(x, n, d, closest, cands, m, weights, keep);
            // The sums are the ones without keeping, bit for bit.
            expect(Array.from(pots)).toEqual(Array.from(a.potentials(x, n, d, closest, cands, m, weights)));
            for (let j = 0; j < m; j++) {
              const want = a.distances(x, n, d, cands.subarray(j * d, (j + 1) * d), 1);
              const got = keep.subarray(j * n, (j + 1) * n);
              for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) expect.fail(`n ${n} d ${d} m ${m} candidate ${j} row ${i}: kept ${got[i]}, distances ${want[i]}`);
            }
            // The update from a kept column is updateClosest's, closest and running sums alike.
            const j = m - 1;
            const c1 = closest.slice();
            const cum1 = new Float64Array(n);
            a.updateClosest(x, n, d, cands.slice(j * d, (j + 1) * d), c1, weights, cum1);
            // Both ways: the addon's closestFrom and the JavaScript loop.
            for (const [c2, cum2] of bothPaths(() => {
              const c = closest.slice();
              const cm = new Float64Array(n);
              closestFrom(keep.subarray(j * n, (j + 1) * n), c, weights, cm);
              return [c, cm] as const;
            })) {
              expect(sameBits(c2, c1)).toBe(true);
              expect(sameBits(cum2, cum1)).toBe(true);
            }
          }
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

/**
 * A Lloyd loop straight on the addon, without bounds: each step's assignment against the
 * previous labels, the centroids moved to the means of the fused sums.
 */
function lloydLoop(a: NativeAddon, x: Float32Array, n: number, d: number, c0: Float32Array, k: number, w: Float32Array | null, iters: number) {
  const shift = a.columnMeans(x, n, d);
  let c = c0.slice();
  let prev: Int32Array | null = null;
  const steps = [];
  for (let it = 0; it < iters; it++) {
    const labels = new Int32Array(n);
    const dist = new Float32Array(n);
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    const r = a.assign(x, n, d, c, k, w, prev, labels, dist, shift, sums, counts);
    steps.push({ ...r, labels, dist, sums, counts, c });
    c = c.slice();
    for (let j = 0; j < k; j++) if (counts[j] > 0) for (let f = 0; f < d; f++) c[j * d + f] = sums[j * d + f] / counts[j];
    prev = labels;
  }
  return steps;
}

/**
 * The same steps with Hamerly bounds, as the backend chains them: the first writes the bounds,
 * later ones read them with each centroid's move since, and advanceChain turns the kernel's
 * changes into the new sums and inertia. `cs`: the centroids of each step.
 */
function boundedLoop(a: NativeAddon, x: Float32Array, n: number, d: number, cs: Float32Array[], k: number, w: Float32Array | null) {
  const shift = a.columnMeans(x, n, d);
  let bnd = new Float32Array(2 * n);
  let prev: Int32Array | null = null;
  let before: Float32Array | null = null;
  let state = { sums: new Float64Array(0), acc: new Float64Array(0), inertia: 0 };
  const steps = [];
  for (const c of cs) {
    const labels = new Int32Array(n);
    const dist = new Float32Array(n);
    const dSums = new Float64Array(k * d);
    const dAcc = new Float64Array(3 * k);
    const drift = before ? centroidMoves(before, c, k, d) : null;
    const r = a.assign(x, n, d, c, k, w, prev, labels, dist, shift, dSums, dAcc, bnd, drift);
    state = drift ? advanceChain(state.sums, state.acc, before!, c, dSums, dAcc, k, d) : { sums: dSums, acc: dAcc, inertia: r.inertia };
    steps.push({ ...r, inertia: state.inertia, labels, dist, sums: state.sums, counts: state.acc.slice(0, k), acc: state.acc, raw: { dSums, dAcc } });
    before = c;
    prev = labels;
    bnd = bnd.slice(); // a fresh array each step: the kernel must not rely on aliasing
  }
  return steps;
}

/**
 * Bounded steps against plain ones: the same labels and changes; distances the same wherever
 * the row was read (unread rows keep the fresh array's 0, at most nPruned of them); sums,
 * counts and inertia within float64 rounding of the fresh ones (the inertia within float32's,
 * since the plain one adds float32 distances); rows of nonzero weight per label exact.
 */
function expectSameSteps(got: ReturnType<typeof boundedLoop>, want: ReturnType<typeof lloydLoop>, x: Float32Array, d: number, w: Float32Array | null) {
  expect(got.length).toBe(want.length);
  const n = x.length / d;
  const colAbs = new Float64Array(d);
  let wAbs = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i] : 1;
    wAbs += wi;
    for (let f = 0; f < d; f++) colAbs[f] += Math.abs(wi * x[i * d + f]);
  }
  for (let s = 0; s < want.length; s++) {
    const g = got[s];
    const r = want[s];
    const k = r.counts.length;
    const rows = new Float64Array(k);
    let stale = 0;
    for (let i = 0; i < n; i++) {
      if (g.labels[i] !== r.labels[i]) expect.fail(`step ${s}, row ${i}: label ${g.labels[i]} with bounds, ${r.labels[i]} without`);
      if (!Object.is(g.dist[i], r.dist[i])) {
        if (g.dist[i] !== 0) expect.fail(`step ${s}, row ${i}: distance ${g.dist[i]} with bounds, ${r.dist[i]} without`);
        stale++;
      }
      if (!w || w[i] !== 0) rows[r.labels[i]]++;
    }
    expect(stale).toBeLessThanOrEqual(g.nPruned);
    expect(g.nChanged).toBe(r.nChanged);
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < d; f++) {
        const e = Math.abs(g.sums[j * d + f] - r.sums[j * d + f]);
        if (!(e <= 1e-12 * colAbs[f])) expect.fail(`step ${s}: sum ${j},${f} is ${g.sums[j * d + f]} with bounds, ${r.sums[j * d + f]} without`);
      }
      if (!(Math.abs(g.counts[j] - r.counts[j]) <= (w ? 1e-13 * wAbs : 0))) expect.fail(`step ${s}: count ${j} is ${g.counts[j]} with bounds, ${r.counts[j]} without`);
    }
    expect(Array.from(g.acc.subarray(2 * k))).toEqual(Array.from(rows));
    expect(Math.abs(g.inertia - r.inertia)).toBeLessThanOrEqual(1e-6 * r.inertia + 1e-30);
  }
}

/** Plain steps, then bounded ones over the same centroids, compared (expectSameSteps). */
function compareLoops(a: NativeAddon, x: Float32Array, n: number, d: number, c0: Float32Array, k: number, w: Float32Array | null, iters: number) {
  const plain = lloydLoop(a, x, n, d, c0, k, w, iters);
  const bounded = boundedLoop(a, x, n, d, plain.map((s) => s.c), k, w);
  expectSameSteps(bounded, plain, x, d, w);
  return { plain, bounded };
}

describe.skipIf(!built)('native kernels: Hamerly bounds', () => {
  const a = addon!;
  afterAll(() => a.setIsa('auto'));

  // (nRows, d, k, spread): k on each side of the 4-, 8- and lanes-wide small-k kernels.
  const cases: [number, number, number, number][] = [
    [3000, 1, 2, 8],
    [3001, 3, 3, 6],
    [2999, 32, 5, 4],
    [4000, 33, 8, 5],
    [4003, 32, 16, 4],
    [3000, 7, 6, 1],
  ];
  describe.each(isas)('isa %s', (isa) => {
    it.for(cases)('a Lloyd loop with bounds gives the same labels and, to rounding, sums and inertia, and skips rows: n=%i d=%i k=%i', ([n, d, k, spread], ctx) => {
      a.setIsa(isa as 'baseline');
      // Issue 13: this case used to return early and pass without checking anything.
      ctx.skip(k > a.info().lanes, `k = ${k} > ${a.info().lanes} lanes (${isa}): the general kernels take no bounds`);
      const { data: x } = blobs(n, d, k + 2, spread, n + d + k);
      const w = new Float32Array(n).map((_, i) => 0.5 + (i % 3));
      const { plain, bounded } = compareLoops(a, x, n, d, x.slice(0, k * d), k, w, 12);
      expect(plain.every((s) => s.nPruned === 0)).toBe(true);
      expect(bounded[0].nPruned).toBe(0);
      // Not vacuous: once the centroids settle, most rows keep their label unread.
      if (spread >= 4) expect(bounded[11].nPruned).toBeGreaterThan(n / 2);
    });
  });

  it('never prunes a row that the scores would move: far from the origin, near-duplicate centroids, exact ties', () => {
    a.setIsa('auto');
    const lanes = a.info().lanes;
    const n = 6000;
    // 1. Two groups 2e4 apart, clusters 2 apart within each: the scores' rounding (γ·R² ≈ 100)
    //    is large next to the gaps, and the bounds written from the scores must allow for it.
    const d1 = 4;
    const far = blobs(n, d1, 4, 1, 5).data.map((v, i) => v + (i % d1 === 0 ? (Math.floor(i / d1) % 2 ? 1e4 : -1e4) : 0));
    compareLoops(a, far, n, d1, far.slice(0, 4 * d1), 4, null, 10);
    // 2. Two centroids 1e-6 apart and the rest far: rows between them tie to a rounding.
    const d2 = 2;
    const x2 = uniform(n * d2, 9, 2);
    compareLoops(a, x2, n, d2, new Float32Array([0, 0, 1e-6, 0, 50, 50, -50, 50, 50, -50]), 5, null, 6);
    // 3. Integer grid with centroids at ±1: every row at 0 is an exact tie (lowest index wins).
    const x3 = new Float32Array(n).map((_, i) => (i % 5) - 2);
    const c3 = new Float32Array(Math.min(lanes, 3)).map((_, j) => [-1, 1, 7][j]);
    compareLoops(a, x3, n, 1, c3, c3.length, null, 5);
  });

  it('prunes only with a margin: tightest valid bounds on rows at and near the bisectors, any previous label', () => {
    const d = 3;
    const n = 20_000;
    const r = rng(41);
    const exact = (x: Float32Array, i: number, c: Float32Array, j: number) => {
      let s = 0;
      for (let f = 0; f < d; f++) s += (x[i * d + f] - c[j * d + f]) ** 2;
      return Math.sqrt(s);
    };
    const down = (v: number) => {
      const b = Math.fround(v);
      return b > v ? Math.fround(b * (1 - 2 ** -23)) : b;
    };
    const up = (v: number) => {
      const b = Math.fround(v);
      return b < v ? Math.fround(b * (1 + 2 ** -23)) : b;
    };
    // Spread-out centroids, then centroids 1 apart in two groups 2e4 apart, where the scores'
    // rounding (about γ·R² ≈ 100) swamps the gaps near a bisector. Rows near a bisector are a
    // third of the table (the bounds test, then the exact distance, then the scores, for the
    // rows in doubt) or two thirds (most rows in doubt: each sub-block scored whole).
    for (const [far, doubtful] of [[false, 1], [false, 2], [true, 1], [true, 2]] as const) {
      for (const isa of isas) {
        a.setIsa(isa as 'baseline');
        const k = Math.min(a.info().lanes, 5); // the kernels that take bounds
        const c = new Float32Array(k * d).map((_, i) => {
          const j = Math.floor(i / d);
          if (!far) return (r() - 0.5) * 8;
          return i % d === 0 ? (j % 2 ? -1e4 : 1e4) + j : i % d === 1 ? j % 3 : 0;
        });
        const x = new Float32Array(n * d);
        const prev = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const p = Math.floor(r() * k);
          const q = (p + 1 + Math.floor(r() * (k - 1))) % k;
          // Rows near a centroid (labelled with it), the rest at or within 1e-7 … 1e-3 of a
          // bisector (either side's label).
          const near = i % 3 >= doubtful;
          const eps = near ? 0.3 : [0, 1e-7, 1e-5, 1e-3][i % 4];
          for (let f = 0; f < d; f++) {
            const mid = near ? c[p * d + f] : (c[p * d + f] + c[q * d + f]) / 2;
            x[i * d + f] = mid + eps * (r() - 0.5);
          }
          prev[i] = near || r() < 0.5 ? p : q;
        }
        // The tightest valid bounds, no centroid moved: the exact distance to the nearest
        // centroid but prev rounded down, and to prev rounded up.
        const bounds = new Float32Array(2 * n);
        for (let i = 0; i < n; i++) {
          let best = Infinity;
          for (let j = 0; j < k; j++) if (j !== prev[i]) best = Math.min(best, exact(x, i, c, j));
          bounds[i] = down(best);
          bounds[n + i] = up(exact(x, i, c, prev[i]));
        }
        const shift = a.columnMeans(x, n, d);
        const labels = new Int32Array(n);
        const got = a.assign(x, n, d, c, k, null, prev, labels, new Float32Array(n), shift, new Float64Array(k * d), new Float64Array(3 * k), bounds, new Float64Array(k));
        const want = new Int32Array(n);
        a.assign(x, n, d, c, k, null, prev, want, new Float32Array(n), shift, null, null);
        for (let i = 0; i < n; i++) {
          if (labels[i] !== want[i]) expect.fail(`${isa}, far ${far}, ${doubtful}/3 doubtful, row ${i}: label ${labels[i]} with bounds, ${want[i]} without`);
        }
        // Not vacuous: rows near their centroid are skipped where the gaps exceed the rounding
        // (far: nowhere, and the labels near a bisector are the rounding's choice).
        if (!far && doubtful === 1) expect(got.nPruned).toBeGreaterThan(n / 2);
      }
    }
    a.setIsa('auto');
  });

  it('handles tables shorter than a tile, k = 1 and zero weights', () => {
    a.setIsa('auto');
    for (const n of [1, 3, 17, 33]) {
      const d = 64;
      const x = uniform(n * d, n);
      const w = new Float32Array(n).map((_, i) => (i % 3 === 0 ? 0 : 1));
      for (const k of [1, Math.min(2, n)]) compareLoops(a, x, n, d, x.slice(0, k * d), k, w, 4);
    }
  });

  it('moves rows between labels: sums and counts of a step with bounds are the fresh ones, a label emptied to exact zeros', () => {
    a.setIsa('auto');
    // Rows of weight 0.1 and 0.2 leave a label that keeps only a row of weight 0: a fresh pass
    // gives it Σw = 0 exactly, and so must the chain (0.1 + 0.2 − 0.1 − 0.2 is not 0 in float64).
    const d = 2;
    const x = new Float32Array([0, 0, 0.1, 0, -30, 0, 10, 0, 10.1, 0, 10.2, 0]);
    const w = new Float32Array([0.1, 0.2, 0, 1, 1, 1]);
    const n = 6;
    const c0 = new Float32Array([0, 0, 10, 0]);
    const c1 = new Float32Array([-20, 0, 10, 0]); // rows 0 and 1 are now nearer centroid 1
    const plain = [lloydLoop(a, x, n, d, c0, 2, w, 1)[0], lloydLoop(a, x, n, d, c1, 2, w, 1)[0]];
    expect(Array.from(plain[0].labels)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(Array.from(plain[1].labels)).toEqual([1, 1, 0, 1, 1, 1]);
    plain[1].nChanged = 2;
    const bounded = boundedLoop(a, x, n, d, [c0, c1], 2, w);
    expectSameSteps(bounded, plain, x, d, w);
    expect(bounded[1].counts[0]).toBe(0);
    expect(Array.from(bounded[1].sums.subarray(0, d))).toEqual([0, 0]);
    expect(bounded[1].acc[2 * 2]).toBe(0);
  });

  it('gives the same steps, pruning included, with 1 and 3 threads', () => {
    a.setIsa('auto');
    const n = 50_000;
    const d = 32;
    const k = Math.min(a.info().lanes, 12);
    const { data: x } = blobs(n, d, k + 3, 5, 21);
    const cs = lloydLoop(a, x, n, d, x.slice(0, k * d), k, null, 8).map((s) => s.c);
    const runs = [1, 3].map((t) => {
      a.setThreads(t);
      return boundedLoop(a, x, n, d, cs, k, null);
    });
    a.setThreads(defaultThreads);
    for (let s = 0; s < cs.length; s++) {
      const [one, three] = [runs[0][s], runs[1][s]];
      expect(three.labels).toEqual(one.labels);
      expect(three.dist).toEqual(one.dist);
      expect(three.raw.dSums).toEqual(one.raw.dSums);
      expect(three.raw.dAcc).toEqual(one.raw.dAcc);
      expect(three.inertia).toBe(one.inertia);
      expect([three.nPruned, three.nChanged]).toEqual([one.nPruned, one.nChanged]);
    }
    expect(runs[0][7].nPruned).toBeGreaterThan(n / 2);
  });

  it('refuses a bad drift, a drift without previous labels, and bounds without sums', () => {
    const n = 10;
    const x = uniform(n * 2, 3);
    const call = (prev: Int32Array | null, sums: boolean, drift: Float64Array | null) =>
      a.assign(x, n, 2, x.slice(0, 4), 2, null, prev, new Int32Array(n), new Float32Array(n), null, sums ? new Float64Array(4) : null, sums ? new Float64Array(6) : null, new Float32Array(2 * n), drift);
    const prev = new Int32Array(n);
    expect(() => call(prev, true, new Float64Array([0.5, -1]))).toThrow(/drift/);
    expect(() => call(prev, true, new Float64Array([NaN, 0]))).toThrow(/drift/);
    expect(() => call(prev, true, new Float64Array([Infinity, 0]))).toThrow(/drift/);
    expect(() => call(null, true, new Float64Array(2))).toThrow(/prevLabels/);
    expect(() => call(prev, false, null)).toThrow(/outSums/);
    expect(() => call(prev, true, new Float64Array(2))).not.toThrow();
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

  it('keeps Hamerly bounds along a Lloyd chain: the same fit as without them to rounding, with rows pruned, and exact distances when read', async () => {
    const n = 5000;
    const d = 40;
    const k = 7;
    const { data } = blobs(n, d, 9, 3, 17);
    const fit = async (bounds: boolean) => {
      const be = await createNativeBackend({ bounds });
      const x = be.upload({ data, nRows: n, nFeatures: d });
      const r = await new KMeans({ k, seed: 3, nInit: 2 }).fit(be, { data, nRows: n, nFeatures: d });
      // The same chain by hand, to see the pruning.
      let c = data.slice(0, k * d);
      let prev = await be.assign(x, c, k);
      for (let t = 0; t < 10; t++) {
        const { sums, counts } = await be.segmentSum(x, prev, k);
        c = c.map((v, i) => (counts[Math.floor(i / d)] > 0 ? sums[i] / counts[Math.floor(i / d)] : v));
        prev = await be.assign(x, c, k, prev);
      }
      const last = await prev.read();
      be.release(x);
      return { r, pruned: (prev as unknown as { nPruned: number }).nPruned, last };
    };
    const on = await fit(true);
    const off = await fit(false);
    // The chain carries its sums from step to step: the same to float64 rounding, so centroids
    // may differ in their last bit, and these well-separated blobs keep every label.
    expectClose(on.r.centroids, off.r.centroids, 1e-6, 1e-6);
    expect(on.r.labels).toEqual(off.r.labels);
    expect(relErr(on.r.inertia, off.r.inertia)).toBeLessThanOrEqual(1e-6);
    expect(on.r.nIter).toBe(off.r.nIter);
    expect(on.last.labels).toEqual(off.last.labels);
    expect(on.last.distances).toEqual(off.last.distances);
    expect(off.pruned).toBe(0);
    if (k <= loadNativeAddon().info().lanes) {
      expect(boundsPay(k, d, loadNativeAddon().info().lanes)).toBe(true);
      expect(on.pruned).toBeGreaterThan(n / 2);
    }
    // Where they do not pay (few multiply-adds a row), no bounds are kept.
    expect(boundsPay(4, 4, 16)).toBe(false);
    expect(boundsPay(17, 64, 16)).toBe(false);
    expect(boundsPay(16, 16, 16)).toBe(true);
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

  it("gives a new chain's first steps the buffers of earlier unread assignments, never the previous one being read", async () => {
    const be = await createNativeBackend();
    const n = 3000;
    const d = 4;
    const k = 5;
    const { data } = blobs(n, d, k, 10, 33);
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const cs = [0, 1, 2, 3].map((s) => data.slice(s * 50 * d, s * 50 * d + k * d));
    const fresh = async (c: Float32Array) => (await be.assign(x, c, k)).read();
    const internal = (v: unknown) => v as { labels: Int32Array | null };
    const a0 = await be.assign(x, cs[0], k);
    const a1 = await be.assign(x, cs[1], k, a0);
    expect(internal(a0).labels).not.toBeNull(); // a1 read a0's labels: never its buffers
    // A new chain: its first step takes a0's buffers (the oldest), its second a1's.
    const b0 = await be.assign(x, cs[2], k);
    expect(internal(a0).labels).toBeNull();
    expect(internal(a1).labels).not.toBeNull();
    const b1 = await be.assign(x, cs[3], k, b0);
    expect(internal(a1).labels).toBeNull();
    expect(internal(b0).labels).not.toBeNull(); // the previous being read is never taken
    for (const [a, c] of [[a0, cs[0]], [a1, cs[1]], [b0, cs[2]], [b1, cs[3]]] as const) {
      const want = await fresh(c);
      const got = await a.read();
      expect(got.labels).toEqual(want.labels);
      expect(got.distances).toEqual(want.distances);
    }
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
