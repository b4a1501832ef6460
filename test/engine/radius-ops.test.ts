/**
 * `radiusNeighbours` (DBSCAN's eps-neighbourhoods) on every backend usable here, and on the cuda
 * backend over a stand-in addon (its host fallback over `distances`), against a float64 brute
 * force written in this file: Σ_f (x[i, f] − x[q, f])² ≤ eps·eps in feature order, the contract's
 * arithmetic. Exact ties at eps (integer lattices, where squared distances are whole numbers and
 * eps² may round just above them), rows within float32 rounding of eps, weights, sub-ranges,
 * data far from the origin; the native kernel on every instruction set and with 1, 2 and 3
 * threads (the same bits); DBSCAN's blocked sweep over the op against its grid index, with the
 * non-core lists kept, overflowing during the sweep, and with no budget; and the checked
 * wrapper's errors.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, RadiusNeighbours, RowRange } from '../../src/engine/backend.js';
import { cudaBackendFrom, type CudaAddon } from '../../src/engine/backends/cuda.js';
import { NATIVE_ADDON_PATH, loadNativeAddon, type NativeAddon } from '../../src/engine/backends/native.js';
import { radiusNeighbours } from '../../src/engine/ops/radius.js';
import { DBSCAN } from '../../src/models/dbscan.js';
import { perIsa, usableBackends } from '../helpers/backends.js';
import { blobs, rng } from '../helpers/reference.js';

const root = join(import.meta.dirname, '..', '..');

// ---------------------------------------------------------------------------------------------
// Float64 brute force.

function bruteForce(x: Float32Array, n: number, d: number, w: Float32Array | null, q0: number, q1: number, eps: number, c0 = 0, c1 = n) {
  const eps2 = eps * eps;
  const counts = new Float64Array(q1 - q0);
  const offsets = new Int32Array(q1 - q0 + 1);
  const indices: number[] = [];
  for (let q = q0; q < q1; q++) {
    for (let i = c0; i < c1; i++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const t = x[i * d + f] - x[q * d + f];
        s += t * t;
      }
      if (s <= eps2) {
        indices.push(i);
        counts[q - q0] += w ? w[i] : 1;
      }
    }
    offsets[q - q0 + 1] = indices.length;
  }
  return { counts, offsets, indices: Int32Array.from(indices) };
}

// ---------------------------------------------------------------------------------------------
// Data.

interface Case {
  name: string;
  x: Float32Array;
  n: number;
  d: number;
  eps: number[];
  w: Float32Array | null;
  /** Whether some pairs must have been decided in float64. */
  ties: boolean;
  /** Whether the weighted counts are exact in any order (dyadic weights): then compared bit for bit. */
  exact: boolean;
}

/** Every point of {0, …, side − 1}^d, in order. */
function lattice(side: number, d: number): Float32Array {
  const n = side ** d;
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let f = 0, v = i; f < d; f++, v = Math.floor(v / side)) x[i * d + f] = v % side;
  return x;
}

/** The largest double below v. */
function nextDown(v: number): number {
  const b = new Float64Array([v]);
  const i = new BigInt64Array(b.buffer);
  i[0] -= 1n;
  return b[0];
}

/**
 * d = 16 rows around 3 and, for each of a few query rows, rows at distance eps·(1 + δ) with
 * |δ| ≤ 2e-7, within the float32 rounding of eps²: the screen cannot tell them apart.
 */
function nearEps(seed: number): { x: Float32Array; n: number; d: number; eps: number } {
  const d = 16;
  const g = rng(seed);
  const eps = 1.25;
  const nBase = 600;
  const perQuery = 40;
  const queries = [0, 7, 311, 599];
  const n = nBase + queries.length * perQuery;
  const x = new Float32Array(n * d);
  for (let p = 0; p < nBase * d; p++) x[p] = 3 + (g() - 0.5) * 6;
  let at = nBase;
  for (const q of queries) {
    for (let k = 0; k < perQuery; k++, at++) {
      const dir = Float64Array.from({ length: d }, () => g() - 0.5);
      const norm = Math.hypot(...dir);
      const r = eps * (1 + (g() - 0.5) * 4e-7);
      for (let f = 0; f < d; f++) x[at * d + f] = x[q * d + f] + (dir[f] / norm) * r;
    }
  }
  return { x, n, d, eps };
}

function cases(): Case[] {
  const out: Case[] = [];
  // Integer lattices: squared distances are whole numbers; Math.SQRT2² and Math.sqrt(5)² round
  // above 2 and 5 in float64, so those pairs are in; nextDown(√2)² is below 2, so they are out.
  const l3 = lattice(4, 3);
  out.push({ name: 'lattice 4^3', x: l3, n: 64, d: 3, eps: [1, Math.SQRT2, nextDown(Math.SQRT2), 2, Math.sqrt(5), 0], w: null, ties: true, exact: true });
  const l2 = lattice(40, 2);
  out.push({ name: 'lattice 40^2', x: l2, n: 1600, d: 2, eps: [1, Math.SQRT2, 3], w: null, ties: true, exact: true });
  const l9 = lattice(2, 9);
  const w9 = new Float32Array(512).map((_, i) => [1, 0.5, 2, 0, -1][i % 5]);
  out.push({ name: 'lattice 2^9, weighted', x: l9, n: 512, d: 9, eps: [1, Math.SQRT2, Math.sqrt(3)], w: w9, ties: true, exact: true });
  const l1 = lattice(300, 1);
  out.push({ name: 'lattice 300^1', x: l1, n: 300, d: 1, eps: [1, 2.5], w: null, ties: true, exact: true });
  const near = nearEps(3);
  out.push({ name: 'rows within float32 rounding of eps (d=16)', x: near.x, n: near.n, d: near.d, eps: [near.eps], w: null, ties: true, exact: true });
  const nearW = new Float32Array(near.n).map((_, i) => 0.25 + (i % 7) * 0.5);
  out.push({ name: 'the same, weighted', x: near.x, n: near.n, d: near.d, eps: [near.eps], w: nearW, ties: true, exact: true });
  // Blobs past the native kernel's blocks (1024 rows) and query groups (128), random weights.
  const b = blobs(2600, 13, 6, 6, 11);
  const g = rng(5);
  const wb = new Float32Array(2600).map(() => 0.1 + 3 * g());
  out.push({ name: 'blobs 2600 × 13, random weights', x: b.data, n: 2600, d: 13, eps: [1.5, 3], w: wb, ties: false, exact: false });
  // Far from the origin: the host fallback's float32 bound grows with ‖x‖² (more rechecks, same answer).
  const far = blobs(700, 33, 3, 3, 4).data.map((v) => v + 500);
  out.push({ name: 'blobs 700 × 33 around 500', x: far, n: 700, d: 33, eps: [3, 6.5], w: null, ties: false, exact: true });
  return out;
}

const CASES = cases();

/** Ranges: all rows, one across blocks and query groups, a single row, an empty one. */
function ranges(n: number): RowRange[] {
  return [
    { start: 0, end: n },
    { start: Math.floor(n / 7), end: Math.min(n, Math.floor(n / 7) + 300) },
    { start: n - 1, end: n },
    { start: Math.floor(n / 2), end: Math.floor(n / 2) },
  ];
}

function expectSame(what: string, got: RadiusNeighbours, ref: ReturnType<typeof bruteForce>, mode: 'count' | 'list', exactCounts: boolean): void {
  expect(got.counts.length, what).toBe(ref.counts.length);
  for (let q = 0; q < ref.counts.length; q++) {
    const want = ref.counts[q];
    const ok = exactCounts ? got.counts[q] === want : Math.abs(got.counts[q] - want) <= 1e-12 * Math.max(1, Math.abs(want));
    if (!ok) expect.fail(`${what}: counts[${q}] = ${got.counts[q]}, want ${want}`);
  }
  if (mode === 'count') {
    expect(got.offsets, what).toBeNull();
    expect(got.indices, what).toBeNull();
    return;
  }
  expect(Array.from(got.offsets!), what).toEqual(Array.from(ref.offsets));
  // Compared as one array: a mismatch reports its first position.
  const gi = got.indices!;
  expect(gi.length, what).toBe(ref.indices.length);
  for (let p = 0; p < gi.length; p++) if (gi[p] !== ref.indices[p]) expect.fail(`${what}: indices[${p}] = ${gi[p]}, want ${ref.indices[p]}`);
}

// ---------------------------------------------------------------------------------------------
// Backends: every usable one, and cuda over a stand-in addon whose `distances` is the host's.

/** A cuda addon with only what the host fallback uses: upload, release and float32 `distances`. */
function standInCuda(): CudaAddon {
  const unused = () => {
    throw new Error('not used here');
  };
  return {
    probe: () => ({ ok: true, name: 'stand-in GPU', freeBytes: 2 ** 34, totalBytes: 2 ** 34 }),
    upload: (x, nRows, d) => ({ x: x.slice(0, nRows * d), n: nRows, d }),
    release: () => {},
    distances(h, centers, m, out) {
      const { x, n, d } = h as { x: Float32Array; n: number; d: number };
      for (let i = 0; i < n; i++)
        for (let j = 0; j < m; j++) {
          // Float32 arithmetic throughout, as the device computes it.
          let s = 0;
          for (let f = 0; f < d; f++) {
            const t = Math.fround(x[i * d + f] - centers[j * d + f]);
            s = Math.fround(s + Math.fround(t * t));
          }
          out[i * m + j] = s;
        }
    },
    assign: unused,
    resident: unused,
    read: unused,
    segmentSum: unused,
    potentials: unused,
    clusterDistanceSums: unused,
    project: unused,
    softSums: unused,
    scatter: unused,
  };
}

const nativeBuilt = existsSync(join(root, NATIVE_ADDON_PATH));
const nativeAddon: NativeAddon | null = nativeBuilt ? loadNativeAddon() : null;
const defaultThreads = nativeAddon ? nativeAddon.info().threads : 1;

const found = await usableBackends();
const backends: [string, Backend][] = found.map((b) => [b.name, b]);
backends.push(['cuda (stand-in addon, host fallback)', cudaBackendFrom(standInCuda())]);

const perIsaOf = (be: Backend, fn: (isa: string) => Promise<void>) => perIsa(be, nativeAddon, fn);

describe.each(backends)('radiusNeighbours on %s', (_name, be) => {
  it.each(CASES.map((c) => [c.name, c] as const))('matches the float64 brute force: %s', async (_n, c) => {
    const dx = be.upload({ data: c.x, nRows: c.n, nFeatures: c.d }, c.w);
    let rechecked = 0;
    try {
      for (const eps of c.eps) {
        for (const rows of ranges(c.n)) {
          const ref = bruteForce(c.x, c.n, c.d, c.w, rows.start, rows.end, eps);
          await perIsaOf(be, async (isa) => {
            for (const mode of ['count', 'list'] as const) {
              const what = `${c.name}${isa} eps=${eps} [${rows.start}, ${rows.end}) ${mode}`;
              const got = await radiusNeighbours(be, dx, rows, eps, mode);
              expectSame(what, got, ref, mode, c.exact);
              rechecked += got.rechecked;
            }
          });
        }
      }
    } finally {
      be.release(dx);
    }
    // Pairs at eps, or within float32 rounding of it, went to the float64 test.
    if (c.ties) expect(rechecked).toBeGreaterThan(0);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('with candidates, looks at those rows only: %s', async (_n, c) => {
    const dx = be.upload({ data: c.x, nRows: c.n, nFeatures: c.d }, c.w);
    try {
      const candidates = { start: Math.floor(c.n / 5), end: Math.floor((4 * c.n) / 5) };
      for (const rows of ranges(c.n).slice(0, 2)) {
        const ref = bruteForce(c.x, c.n, c.d, c.w, rows.start, rows.end, c.eps[0], candidates.start, candidates.end);
        for (const mode of ['count', 'list'] as const) {
          const got = await radiusNeighbours(be, dx, rows, c.eps[0], mode, candidates);
          expectSame(`${c.name} eps=${c.eps[0]} [${rows.start}, ${rows.end}) among [${candidates.start}, ${candidates.end}) ${mode}`, got, ref, mode, c.exact);
        }
      }
      expect(() => radiusNeighbours(be, dx, { start: 0, end: 1 }, c.eps[0], 'count', { start: 2, end: 1 })).toThrow(/'candidates' must satisfy 0 <= start <= end <= nRows/);
    } finally {
      be.release(dx);
    }
  });

  it('lists every pair when eps covers the whole table', async () => {
    const { data } = blobs(300, 5, 2, 1, 9);
    const dx = be.upload({ data, nRows: 300, nFeatures: 5 });
    try {
      const r = await radiusNeighbours(be, dx, { start: 0, end: 300 }, 1e3, 'list');
      expect(r.offsets![300]).toBe(300 * 300);
      expect(Array.from(r.counts)).toEqual(new Array(300).fill(300));
      expect(Array.from(r.indices!.subarray(r.offsets![17], r.offsets![18]))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    } finally {
      be.release(dx);
    }
  });
});

describe.skipIf(!nativeAddon)('native radius kernel', () => {
  afterAll(() => {
    nativeAddon!.setIsa('auto');
    nativeAddon!.setThreads(defaultThreads);
  });

  it('gives bit-identical results with 1, 2 and 3 threads, on every instruction set', () => {
    const a = nativeAddon!;
    // 5,000 rows: 5 blocks of ≥ 1024 rows for a few queries, 40 groups of 128 for all of them.
    const n = 5000;
    const d = 16;
    const { data: x } = blobs(n, d, 8, 4, 21);
    const g = rng(8);
    const w = new Float32Array(n).map(() => 0.1 + 2 * g());
    const eps2 = 2.2 * 2.2;
    const ranges: [number, number][] = [
      [0, n],
      [123, 4567],
      [4000, 4010],
    ];
    type Plain = { counts: number[]; offsets: number[] | null; indices: number[] | null; rechecked: number };
    let first: Plain[] | null = null;
    for (const isa of a.info().isas) {
      a.setIsa(isa as 'baseline' | 'avx2' | 'avx512');
      let one: Plain[] | null = null;
      for (const t of [1, 2, 3]) {
        a.setThreads(t);
        const runs = ranges.flatMap(([q0, q1]) => [
          a.radiusNeighbours(x, n, d, w, q0, q1, eps2, true),
          a.radiusNeighbours(x, n, d, null, q0, q1, eps2, false),
        ]);
        const plain = runs.map((r) => ({
          counts: Array.from(r.counts),
          offsets: r.offsets ? Array.from(r.offsets) : null,
          indices: r.indices ? Array.from(r.indices) : null,
          rechecked: r.rechecked,
        }));
        if (one === null) one = plain;
        else expect(plain, `${isa}, ${t} threads`).toEqual(one);
      }
      // Across instruction sets the decisions and sums are the same too (only the float32
      // screen's rounding, and so the number of rechecks, may differ: FMA or not).
      const noChecks = one!.map((p) => ({ ...p, rechecked: 0 }));
      if (first === null) first = noChecks;
      else expect(noChecks, isa).toEqual(first);
    }
    // And right, once.
    const ref = bruteForce(x, n, d, w, 123, 4567, 2.2);
    expect(first![2].offsets).toEqual(Array.from(ref.offsets));
    expect(first![2].indices).toEqual(Array.from(ref.indices));
    expect(first![3].counts).toEqual(Array.from(bruteForce(x, n, d, null, 123, 4567, 2.2).counts));
  });
});

describe.each(backends)('DBSCAN blocked index through radiusNeighbours on %s', (_name, be) => {
  it('gives the grid index\'s labels with its lists kept (1 pass), overflowing during the sweep (2) and with no budget (3)', async () => {
    const { data } = blobs(1500, 3, 4, 6, 31);
    const g = rng(2);
    for (let i = 0; i < 1500; i += 9) for (let f = 0; f < 3; f++) data[i * 3 + f] = (g() * 2 - 1) * 14;
    const x = { data, nRows: 1500, nFeatures: 3 };
    const w = new Float32Array(1500).map((_, i) => [1, 0.5, 2][i % 3]);
    for (const weights of [null, w]) {
      const grid = await new DBSCAN({ eps: 0.7, minSamples: 7, index: 'grid' }).fit(be, x, weights);
      expect(grid.nNoise).toBeGreaterThan(50);
      // 32 rows per range; 100 entries of lists: fewer than the non-core rows' own rows.
      for (const [neighbourBytes, passes] of [[2 ** 28, 1], [400, 2], [0, 3]] as const) {
        const r = await new DBSCAN({ eps: 0.7, minSamples: 7, index: 'blocked', blockBytes: 4 * 1500 * 32, neighbourBytes }).fit(be, x, weights);
        const what = `${weights ? 'weighted' : 'unweighted'}, neighbourBytes ${neighbourBytes}`;
        expect(r.stats.passes, what).toBe(passes);
        expect(r.stats.keptNeighbours, what).toBe(passes === 1);
        expect(r.stats.blockRows, what).toBe(32);
        expect(r.stats.neighbourPairs, what).toBe(grid.stats.neighbourPairs);
        expect([...r.labels], what).toEqual([...grid.labels]);
        expect([...r.core], what).toEqual([...grid.core]);
      }
    }
  });
});

describe('radiusNeighbours (checked wrapper)', () => {
  const calls: string[] = [];
  const fake = {
    radiusNeighbours: async () => (calls.push('radiusNeighbours'), { counts: new Float64Array(0), offsets: null, indices: null, rechecked: 0 }),
  } as unknown as Backend;
  const x = { nRows: 10, nFeatures: 2, weights: null, totalWeight: 10 };

  it.each([
    [{ start: -1, end: 3 }, 0.5, 'count', RangeError, "radiusNeighbours: 'queries' must satisfy 0 <= start <= end <= nRows = 10; got [-1, 3)"],
    [{ start: 4, end: 11 }, 0.5, 'count', RangeError, "radiusNeighbours: 'queries' must satisfy 0 <= start <= end <= nRows = 10; got [4, 11)"],
    [{ start: 5, end: 4 }, 0.5, 'list', RangeError, "radiusNeighbours: 'queries' must satisfy 0 <= start <= end <= nRows = 10; got [5, 4)"],
    [{ start: 0.5, end: 4 }, 0.5, 'list', RangeError, "radiusNeighbours: 'queries' must satisfy 0 <= start <= end <= nRows = 10; got [0.5, 4)"],
    [{ start: 0, end: 4 }, -1, 'list', RangeError, "radiusNeighbours: 'eps' must be a finite number >= 0; got -1"],
    [{ start: 0, end: 4 }, NaN, 'list', RangeError, "radiusNeighbours: 'eps' must be a finite number >= 0; got NaN"],
    [{ start: 0, end: 4 }, Infinity, 'list', RangeError, "radiusNeighbours: 'eps' must be a finite number >= 0; got Infinity"],
    [{ start: 0, end: 4 }, 0.5, 'all', TypeError, "radiusNeighbours: 'mode' must be 'count' or 'list'; got all"],
    [null, 0.5, 'list', TypeError, "radiusNeighbours: 'queries' must be a row range { start, end }; got null"],
  ] as const)('refuses %j, eps %s, mode %s', (rows, eps, mode, type, message) => {
    expect(() => radiusNeighbours(fake, x, rows as unknown as RowRange, eps, mode as 'list')).toThrow(type);
    expect(() => radiusNeighbours(fake, x, rows as unknown as RowRange, eps, mode as 'list')).toThrow(message);
    expect(calls).toEqual([]);
  });

  it('calls the backend once when the arguments are right', async () => {
    await radiusNeighbours(fake, x, { start: 2, end: 2 }, 0, 'count');
    expect(calls).toEqual(['radiusNeighbours']);
  });
});
