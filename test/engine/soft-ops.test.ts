/**
 * The mixture and PCA steps (`project`, `softSums`, `scatter`) on every backend usable here, and on
 * the cuda backend over its CPU twin (kernels/cuda/emulate.cc, `soft` mode: the phase functions
 * of kernels/cuda/soft.cuh run thread by thread), against a float64 brute force written in this
 * file. Also: the native kernels on every instruction set, their independence of the thread
 * count, and the checked wrappers' errors.
 *
 * Tolerances follow the contract's precision: x·W within 1e-5 of each output's Σ|x·w| (float32
 * terms); the float64 sums within 1e-10 of Σ|terms| (the scale their cancellation is measured in).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, DeviceMatrix, RowRange } from '../../src/engine/backend.js';
import { cudaBackendFrom, type CudaAddon } from '../../src/engine/backends/cuda.js';
import { NATIVE_ADDON_PATH, loadNativeAddon, type NativeAddon } from '../../src/engine/backends/native.js';
import { project, scatter, softSums } from '../../src/engine/ops/project.js';
import { perIsa, usableBackends } from '../helpers/backends.js';
import { rng } from '../helpers/reference.js';

const root = join(import.meta.dirname, '..', '..');

// ---------------------------------------------------------------------------------------------
// Float64 brute force: each output with the magnitude of its terms, Σ|term|.

interface Ref {
  val: Float64Array;
  mag: Float64Array;
}

function bfProject(x: Float32Array, d: number, w: Float32Array, m: number, r0: number, r1: number): Ref {
  const val = new Float64Array((r1 - r0) * m);
  const mag = new Float64Array((r1 - r0) * m);
  for (let i = r0; i < r1; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      let a = 0;
      for (let f = 0; f < d; f++) {
        const t = x[i * d + f] * w[f * m + j];
        s += t;
        a += Math.abs(t);
      }
      val[(i - r0) * m + j] = s;
      mag[(i - r0) * m + j] = a;
    }
  return { val, mag };
}

/** Sums (m × d) then counts (m), as one array. */
function bfSoftSums(x: Float32Array, d: number, wts: Float32Array | null, r: Float32Array, m: number, r0: number, r1: number): Ref {
  const val = new Float64Array(m * d + m);
  const mag = new Float64Array(m * d + m);
  for (let i = r0; i < r1; i++)
    for (let j = 0; j < m; j++) {
      const c = (wts ? wts[i] : 1) * r[(i - r0) * m + j];
      for (let f = 0; f < d; f++) {
        val[j * d + f] += c * x[i * d + f];
        mag[j * d + f] += Math.abs(c * x[i * d + f]);
      }
      val[m * d + j] += c;
      mag[m * d + j] += Math.abs(c);
    }
  return { val, mag };
}

function bfScatter(x: Float32Array, d: number, wts: Float32Array | null, r: Float32Array | null, m: number, mu: Float64Array, r0: number, r1: number): Ref {
  const val = new Float64Array(m * d * d);
  const mag = new Float64Array(m * d * d);
  for (let i = r0; i < r1; i++)
    for (let j = 0; j < m; j++) {
      const c = (wts ? wts[i] : 1) * (r ? r[(i - r0) * m + j] : 1);
      for (let a = 0; a < d; a++)
        for (let b = 0; b < d; b++) {
          const t = c * (x[i * d + a] - mu[j * d + a]) * (x[i * d + b] - mu[j * d + b]);
          val[j * d * d + a * d + b] += t;
          mag[j * d * d + a * d + b] += Math.abs(t);
        }
    }
  return { val, mag };
}

function expectNear(what: string, got: ArrayLike<number>, ref: Ref, rel: number): void {
  expect(got.length, what).toBe(ref.val.length);
  for (let e = 0; e < ref.val.length; e++) {
    const tol = rel * ref.mag[e] + 1e-300;
    if (!(Math.abs(got[e] - ref.val[e]) <= tol)) expect.fail(`${what}: element ${e}: got ${got[e]}, want ${ref.val[e]} (±${tol})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Data.

/** n × d rows around 3 (so centring matters), weights in [0.5, 2.5) with a few zeros. */
function problem(n: number, d: number, m: number, seed: number) {
  const g = rng(seed);
  const x = new Float32Array(n * d).map(() => 3 + (g() - 0.5) * 4);
  const weights = new Float32Array(n).map((_, i) => (i % 37 === 5 ? 0 : 0.5 + 2 * g()));
  // Responsibilities for all n rows (a range takes its own rows), a fifth exactly zero.
  const resp = new Float32Array(n * m).map(() => (g() < 0.2 ? 0 : g()));
  const w = new Float32Array(d * m).map(() => g() * 2 - 1);
  return { x, weights, resp, w, g };
}

/** Column means of the range's responsibilities (weighted), off by a little, as μ for scatter. */
function meansFor(x: Float32Array, d: number, wts: Float32Array | null, r: Float32Array | null, m: number, r0: number, r1: number, g: () => number): Float64Array {
  const mu = new Float64Array(m * d);
  for (let j = 0; j < m; j++) {
    let tot = 0;
    for (let i = r0; i < r1; i++) {
      const c = (wts ? wts[i] : 1) * (r ? r[(i - r0) * m + j] : 1);
      tot += c;
      for (let f = 0; f < d; f++) mu[j * d + f] += c * x[i * d + f];
    }
    for (let f = 0; f < d; f++) mu[j * d + f] = (tot > 0 ? mu[j * d + f] / tot : 3) + (g() - 0.5) * 0.1;
  }
  return mu;
}

const N = 1200;
/** All rows, a range across the native kernels' 1024-row blocks and the twin's 512-row chunks, and an empty one. */
const RANGES: (RowRange | undefined)[] = [undefined, { start: 250, end: 1100 }, { start: 7, end: 7 }];
/** (m, d): m ∈ {1, 3, 17} × d ∈ {1, 7, 32}, and one past the CUDA tiles (32 columns, 32 features). */
const SHAPES: [number, number][] = [1, 3, 17].flatMap((m) => [1, 7, 32].map((d): [number, number] => [m, d]));
SHAPES.push([40, 45]);

const span = (rows: RowRange | undefined): [number, number] => [rows?.start ?? 0, rows?.end ?? N];
const rangeName = (rows: RowRange | undefined) => (rows ? `[${rows.start}, ${rows.end})` : 'all');

// ---------------------------------------------------------------------------------------------
// The cuda backend over its CPU twin.

interface TwinHandle {
  x: Float32Array;
  n: number;
  d: number;
  w: Float32Array | null;
}

/** Rows per streamed chunk the twin also runs (a power of two ≥ kSoftMinRows in soft.cuh). */
const TWIN_CHUNK = 512;

/**
 * A cuda addon whose mixture steps run on the emulated device: each call sends the problem to
 * `emulate soft` and reads its result, with whether the streamed run (chunks of TWIN_CHUNK rows)
 * gave the same bits. The Lloyd methods are not used here.
 */
function twinAddon(exe: string, log: { calls: number; streamed: number[] }): CudaAddon {
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const run = (op: number, h: unknown, m: number, r0: number, r1: number, flags: number, tail: ArrayBufferView[]): Buffer => {
    const t = h as TwinHandle;
    const hdr = Int32Array.of(op, t.d, m, flags | (t.w ? 1 : 0));
    const hdr64 = BigInt64Array.of(BigInt(t.n), BigInt(r0), BigInt(r1), BigInt(TWIN_CHUNK));
    const parts = [hdr, hdr64, t.x, ...(t.w ? [t.w] : []), ...tail].map(bytes);
    const out = execFileSync(exe, ['soft'], { input: Buffer.concat(parts), maxBuffer: 1 << 28 });
    log.calls++;
    log.streamed.push(out.readInt32LE(0));
    return out.subarray(4);
  };
  const f64 = (b: Buffer) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  const unused = () => {
    throw new Error('not used here');
  };
  return {
    probe: () => ({ ok: true, name: 'emulated GPU (kernels/cuda/emulate.cc)', freeBytes: 2 ** 34, totalBytes: 2 ** 34 }),
    upload: (x, nRows, d, weights): TwinHandle => ({ x: x.slice(0, nRows * d), n: nRows, d, w: weights ? weights.slice() : null }),
    release: () => {},
    assign: unused,
    resident: unused,
    read: unused,
    segmentSum: unused,
    distances: unused,
    potentials: unused,
    clusterDistanceSums: unused,
    project(h, w, m, r0, r1, out) {
      const b = run(0, h, m, r0, r1, 0, [w]);
      out.set(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
    },
    softSums(h, r, m, r0, r1, sums, counts) {
      const v = f64(run(1, h, m, r0, r1, 2, [r]));
      const d = (h as TwinHandle).d;
      sums.set(v.subarray(0, m * d));
      counts.set(v.subarray(m * d));
    },
    scatter(h, r, m, means, r0, r1, out) {
      out.set(f64(run(2, h, m, r0, r1, r ? 2 : 0, [...(r ? [r] : []), means])));
    },
  };
}

const hasGxx = spawnSync('sh', ['-c', 'command -v g++']).status === 0;
const twinDir = mkdtempSync(join(tmpdir(), 'segtensor-soft-twin-'));
afterAll(() => rmSync(twinDir, { recursive: true, force: true }));
const twinLog = { calls: 0, streamed: [] as number[] };
let twin: Backend | null = null;
if (hasGxx) {
  const exe = join(twinDir, 'emulate');
  execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
  twin = cudaBackendFrom(twinAddon(exe, twinLog));
}

const nativeBuilt = existsSync(join(root, NATIVE_ADDON_PATH));
const nativeAddon: NativeAddon | null = nativeBuilt ? loadNativeAddon() : null;
const defaultThreads = nativeAddon ? nativeAddon.info().threads : 1;

const found = await usableBackends();
const backends: [string, Backend][] = found.map((b) => [b.name, b]);
if (twin) backends.push(['cuda (emulated)', twin]);

/** Once per instruction set on native (the emulated CUDA twin is not native), see perIsa. */
const perIsaOf = (be: Backend, fn: (isa: string) => Promise<void>) => perIsa(be, be === twin ? null : nativeAddon, fn);

describe.each(backends)('backend %s', (_name, be) => {
  it.each(SHAPES)('project matches the float64 product (m=%i, d=%i)', async (m, d) => {
    const { x, weights, w } = problem(N, d, m, 100 * m + d);
    for (const wts of [null, weights]) {
      const dx = be.upload({ data: x, nRows: N, nFeatures: d }, wts);
      try {
        for (const rows of RANGES) {
          const [r0, r1] = span(rows);
          const ref = bfProject(x, d, w, m, r0, r1);
          await perIsaOf(be, async (isa) => {
            const what = `project${isa} rows ${rangeName(rows)} ${wts ? 'weighted' : 'unweighted'}`;
            expectNear(what, await be.project(dx, w, m, rows), ref, 1e-5);
            // Into a caller's buffer: the same values, in that very array.
            const out = new Float32Array((r1 - r0) * m).fill(NaN);
            const got = await be.project(dx, w, m, rows, out);
            expect(got).toBe(out);
            expectNear(`${what} (out)`, out, ref, 1e-5);
          });
        }
      } finally {
        be.release(dx);
      }
    }
  });

  it.each(SHAPES)('softSums match the float64 sums (m=%i, d=%i)', async (m, d) => {
    const { x, weights, resp } = problem(N, d, m, 200 * m + d);
    for (const wts of [null, weights]) {
      const dx = be.upload({ data: x, nRows: N, nFeatures: d }, wts);
      try {
        for (const rows of RANGES) {
          const [r0, r1] = span(rows);
          const r = resp.slice(r0 * m, r1 * m);
          const ref = bfSoftSums(x, d, wts, r, m, r0, r1);
          await perIsaOf(be, async (isa) => {
            const s = await be.softSums(dx, r, m, rows);
            expect(s.sums.length).toBe(m * d);
            expect(s.counts.length).toBe(m);
            const both = new Float64Array(m * d + m);
            both.set(s.sums);
            both.set(s.counts, m * d);
            expectNear(`softSums${isa} rows ${rangeName(rows)} ${wts ? 'weighted' : 'unweighted'}`, both, ref, 1e-10);
          });
        }
      } finally {
        be.release(dx);
      }
    }
  });

  it.each(SHAPES)('scatter matches the float64 scatter matrices (m=%i, d=%i)', async (m, d) => {
    const { x, weights, resp, g } = problem(N, d, m, 300 * m + d);
    for (const wts of [null, weights]) {
      const dx = be.upload({ data: x, nRows: N, nFeatures: d }, wts);
      try {
        for (const rows of RANGES) {
          const [r0, r1] = span(rows);
          // With responsibilities, and (m = 1) without: one column of ones.
          for (const withR of m === 1 ? [true, false] : [true]) {
            const r = withR ? resp.slice(r0 * m, r1 * m) : null;
            const mu = meansFor(x, d, wts, r, m, r0, r1, g);
            const ref = bfScatter(x, d, wts, r, m, mu, r0, r1);
            await perIsaOf(be, async (isa) => {
              const got = await be.scatter(dx, r, m, mu, rows);
              expectNear(`scatter${isa} rows ${rangeName(rows)} ${wts ? 'weighted' : 'unweighted'}${withR ? '' : ' r = null'}`, got, ref, 1e-10);
            });
          }
        }
      } finally {
        be.release(dx);
      }
    }
  });

  // tfjs uploads chunks of 65,536 rows: a range across two of them.
  it('project over a range that crosses upload chunks', async () => {
    const n = 70_000;
    const d = 5;
    const m = 3;
    const { x, w } = problem(n, d, m, 7);
    const dx = be.upload({ data: x, nRows: n, nFeatures: d });
    try {
      const rows = { start: 60_000, end: 69_990 };
      expectNear('project across chunks', await be.project(dx, w, m, rows), bfProject(x, d, w, m, rows.start, rows.end), 1e-5);
    } finally {
      be.release(dx);
    }
  });
});

const gpu = found.find((b) => b.name === 'cuda') ?? null;

describe.skipIf(!gpu)('cuda backend on a GPU, data streamed from the host', () => {
  it('gives the resident results bit for bit (SEGTENSOR_CUDA_STREAM_ROWS)', async () => {
    const be = gpu!;
    const n = 10_000; // chunks of 2,048 rows from the range's start, the last one short
    const d = 19;
    const m = 5;
    const { x, weights, resp, w, g } = problem(n, d, m, 21);
    const rows = { start: 1_000, end: 9_500 };
    const r = resp.slice(rows.start * m, rows.end * m);
    const mu = new Float64Array(m * d).map(() => 3 + g() - 0.5);
    const run = async () => {
      const dx = be.upload({ data: x, nRows: n, nFeatures: d }, weights);
      try {
        return {
          proj: await be.project(dx, w, m, rows),
          all: await be.project(dx, w, m),
          soft: await be.softSums(dx, r, m, rows),
          scat: await be.scatter(dx, r, m, mu, rows),
          cov: await be.scatter(dx, null, 1, mu.subarray(0, d)),
        };
      } finally {
        be.release(dx);
      }
    };
    const resident = await run();
    process.env.SEGTENSOR_CUDA_STREAM_ROWS = '2048';
    try {
      expect(await run()).toEqual(resident);
    } finally {
      delete process.env.SEGTENSOR_CUDA_STREAM_ROWS;
    }
    expectNear('softSums on the GPU', Float64Array.of(...resident.soft.sums, ...resident.soft.counts), bfSoftSums(x, d, weights, r, m, rows.start, rows.end), 1e-10);
  });
});

describe.skipIf(!twin)('cuda backend over its CPU twin', () => {
  it('ran every step on the twin, and its streamed runs gave the resident bits', () => {
    // Set after the suites above (vitest runs the describe blocks in order).
    expect(twinLog.calls).toBeGreaterThan(100);
    // 1: same bits; 2: not comparable (blocks cut smaller by the chunk); 0 would be a bug.
    expect(twinLog.streamed).not.toContain(0);
    expect(twinLog.streamed.filter((s) => s === 1).length).toBeGreaterThan(twinLog.calls / 2);
  });
});

describe.skipIf(!nativeAddon)('native soft kernels', () => {
  afterAll(() => {
    nativeAddon!.setIsa('auto');
    nativeAddon!.setThreads(defaultThreads);
  });

  it('give bit-identical results with 1, 2 and 3 threads, on every instruction set', () => {
    const a = nativeAddon!;
    // 40,000 rows: 40 blocks of 1,024 (softSums, scatter) and 20 of 2,048 (project).
    const n = 40_000;
    const d = 9;
    const m = 5;
    const { x, weights, resp, w, g } = problem(n, d, m, 11);
    const r0 = 1_234;
    const r1 = 39_000;
    const r = resp.slice(r0 * m, r1 * m);
    const mu = new Float64Array(m * d).map(() => 3 + g() - 0.5);
    for (const isa of a.info().isas) {
      a.setIsa(isa as 'baseline' | 'avx2' | 'avx512');
      const runs = [1, 2, 3].map((t) => {
        a.setThreads(t);
        return {
          proj: a.project(x, n, d, w, m, r0, r1, null),
          soft: a.softSums(x, n, d, r, m, weights, r0, r1),
          scat: a.scatter(x, n, d, r, m, mu, weights, r0, r1),
          cov: a.scatter(x, n, d, null, 1, mu.subarray(0, d), null, 0, n),
        };
      });
      const [one, ...rest] = runs;
      for (const o of rest) {
        expect(Array.from(o.proj), isa).toEqual(Array.from(one.proj));
        expect(Array.from(o.soft.sums), isa).toEqual(Array.from(one.soft.sums));
        expect(Array.from(o.soft.counts), isa).toEqual(Array.from(one.soft.counts));
        expect(Array.from(o.scat), isa).toEqual(Array.from(one.scat));
        expect(Array.from(o.cov), isa).toEqual(Array.from(one.cov));
      }
      // And right: against the brute force once per instruction set.
      expectNear(`softSums (${isa})`, Float64Array.of(...one.soft.sums, ...one.soft.counts), bfSoftSums(x, d, weights, r, m, r0, r1), 1e-10);
    }
  });

  it('merges large scatter partials per worker in block order: the same bits for 1 and 3 threads', () => {
    const a = nativeAddon!;
    // 3 blocks of 1,024 rows × 840² doubles: past the 2 Mi doubles that get one slot per block,
    // so the partials go through one slot per worker, merged as each block ends (BlockSums).
    const n = 3_072;
    const d = 840;
    const { x, weights, g } = problem(n, d, 1, 14);
    const mu = new Float64Array(d).map(() => 3 + g() - 0.5);
    a.setIsa('auto');
    const runs = [1, 3].map((t) => {
      a.setThreads(t);
      return a.scatter(x, n, d, null, 1, mu, weights, 0, n);
    });
    a.setThreads(defaultThreads);
    expect(runs[1].length).toBe(d * d);
    let same = true;
    for (let e = 0; e < d * d; e++) same &&= runs[1][e] === runs[0][e];
    expect(same).toBe(true);
    // A sample of entries against the brute force.
    for (let s = 0; s < 40; s++) {
      const p = Math.floor(g() * d);
      const q = Math.floor(g() * d);
      let want = 0;
      let mag = 0;
      for (let i = 0; i < n; i++) {
        const t = weights[i] * (x[i * d + p] - mu[p]) * (x[i * d + q] - mu[q]);
        want += t;
        mag += Math.abs(t);
      }
      expect(Math.abs(runs[0][p * d + q] - want)).toBeLessThanOrEqual(1e-10 * mag);
    }
  });

  it('computes x·W in float64: the float64 product rounded once to float32, bit for bit', () => {
    const a = nativeAddon!;
    const n = 500;
    const d = 32;
    const m = 17;
    const { x, w } = problem(n, d, m, 12);
    const ref = bfProject(x, d, w, m, 0, n);
    for (const isa of a.info().isas) {
      a.setIsa(isa as 'baseline' | 'avx2' | 'avx512');
      expect(Array.from(a.project(x, n, d, w, m, 0, n, null)), isa).toEqual(Array.from(Float32Array.from(ref.val)));
    }
  });

  it('returns exactly symmetric scatter matrices', () => {
    const a = nativeAddon!;
    const n = 3000;
    const d = 13;
    const m = 3;
    const { x, weights, resp, g } = problem(n, d, m, 13);
    const mu = new Float64Array(m * d).map(() => 3 + g() - 0.5);
    const s = a.scatter(x, n, d, resp, m, mu, weights, 0, n);
    for (let j = 0; j < m; j++)
      for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) expect(s[j * d * d + p * d + q]).toBe(s[j * d * d + q * d + p]);
  });

  it('refuses a bad row range', () => {
    const a = nativeAddon!;
    const x = new Float32Array(30);
    expect(() => a.project(x, 10, 3, new Float32Array(6), 2, 4, 11, null)).toThrow(RangeError);
    expect(() => a.softSums(x, 10, 3, new Float32Array(2), 2, null, 5, 4)).toThrow(RangeError);
    expect(() => a.scatter(x, 10, 3, null, 2, new Float64Array(6), null, 0, 10)).toThrow(/without r, m must be 1/);
  });
});

describe('checked wrappers (engine/ops/project.ts)', () => {
  // A backend that must never be reached: every bad call stops at the wrapper.
  const unreachable = new Proxy({} as Backend, {
    get: () => () => {
      throw new Error('reached the backend');
    },
  });
  const x: DeviceMatrix = { nRows: 10, nFeatures: 3, weights: null, totalWeight: 10 };
  const w = new Float32Array(6);
  const r = new Float32Array(20);
  const mu = new Float64Array(6);

  it('project: m, w, rows and out', () => {
    for (const bad of [0, -1, 1.5, NaN]) expect(() => project(unreachable, x, w, bad)).toThrow(/^project: 'm' must be an integer >= 1; got/);
    expect(() => project(unreachable, x, new Float32Array(5), 2)).toThrow(RangeError);
    expect(() => project(unreachable, x, new Float32Array(5), 2)).toThrow(/'w' must be a Float32Array of nFeatures × m = 6 values; got 5/);
    expect(() => project(unreachable, x, new Float64Array(6) as unknown as Float32Array, 2)).toThrow(RangeError);
    for (const rows of [
      { start: -1, end: 5 },
      { start: 0, end: 11 },
      { start: 6, end: 5 },
      { start: 0.5, end: 5 },
    ])
      expect(() => project(unreachable, x, w, 2, rows)).toThrow(/^project: 'rows' must satisfy 0 <= start <= end <= nRows = 10; got/);
    expect(() => project(unreachable, x, w, 2, { start: 2, end: 5 }, new Float32Array(7))).toThrow(/'out' must hold rows × m = 6 values; got 7/);
  });

  it('softSums: m, r and rows', () => {
    expect(() => softSums(unreachable, x, r, 0)).toThrow(/^softSums: 'm' must be an integer >= 1; got 0/);
    expect(() => softSums(unreachable, x, new Float32Array(19), 2)).toThrow(/^softSums: 'r' must hold rows × m = 10 × 2 = 20 values; got 19/);
    // The range sets how many rows r must hold.
    expect(() => softSums(unreachable, x, r, 2, { start: 2, end: 5 })).toThrow(/rows × m = 3 × 2 = 6 values; got 20/);
    expect(() => softSums(unreachable, x, r, 2, { start: 0, end: 12 })).toThrow(RangeError);
    expect(() => softSums(unreachable, x, new Float64Array(20) as unknown as Float32Array, 2)).toThrow(TypeError);
  });

  it('scatter: m, r, means and rows', () => {
    expect(() => scatter(unreachable, x, null, 2, new Float64Array(6))).toThrow(/^scatter: without 'r', 'm' must be 1; got 2/);
    expect(() => scatter(unreachable, x, r, 2, new Float64Array(5))).toThrow(/^scatter: 'means' must be a Float64Array of m × nFeatures = 6 values; got 5/);
    expect(() => scatter(unreachable, x, r, 2, new Float32Array(6) as unknown as Float64Array)).toThrow(RangeError);
    expect(() => scatter(unreachable, x, new Float32Array(19), 2, mu)).toThrow(/^scatter: 'r' must hold/);
    expect(() => scatter(unreachable, x, r, 2, mu, { start: 3, end: 2 })).toThrow(/^scatter: 'rows' must satisfy/);
    expect(() => scatter(unreachable, x, r, 0, mu)).toThrow(/^scatter: 'm' must be an integer >= 1; got 0/);
  });

  it('dispatches a valid call to the backend once', async () => {
    const calls: string[] = [];
    const be = { project: async () => (calls.push('project'), new Float32Array(6)) } as unknown as Backend;
    await project(be, x, w, 2, { start: 4, end: 7 });
    expect(calls).toEqual(['project']);
  });
});
