/**
 * Issue 17, "GPU and memory limits": on device out-of-memory the cuda backend retries the ops
 * that can shrink in smaller pieces, and resolveBackend's wrapper (src/engine/fallback.ts) moves
 * the run to native with one warning and a record in the manifest, instead of dying.
 *
 * No GPU is needed: the cuda backend runs over a stand-in addon with a pretend device memory
 * (./cuda-standin.cjs; float64 on the host, the addon's own out-of-memory error), directly or
 * loaded by the registry through SEGTENSOR_CUDA_ADDON for the pipeline test. What is checked is
 * the TypeScript side: which calls retry and how their pieces are put together, when and how the
 * run moves to native, and what it records. That the real kernels raise this error, and give
 * the same bits over fewer centers, candidates or rows, is argued in src/engine/backends/cuda.ts
 * and needs a GPU to observe.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import '../../src/engine/backends/index.js';
import { isDeviceOutOfMemory, type Backend } from '../../src/engine/backend.js';
import { cudaBackendFrom, MIN_RETRY_ROWS, retryInPieces, type CudaAddon } from '../../src/engine/backends/cuda.js';
import { backendFallback, withNativeFallback } from '../../src/engine/fallback.js';
import { getBackend, resolveBackend } from '../../src/engine/registry.js';
import { SegtensorError } from '../../src/errors.js';
import { KMeans, type KMeansResult } from '../../src/models/kmeans.js';
import { blobs, rng, samePartition } from '../helpers/reference.js';

interface StandInStats {
  calls: Record<string, number>;
  pieces: Record<string, number[]>;
  ooms: { op: string; need: number; free: number }[];
  used: number;
  peak: number;
}
type StandIn = CudaAddon & { stats: StandInStats; failNext(op: string, count?: number): void };
interface StandInSettings {
  budgetBytes?: number;
  maxPiece?: Record<string, number>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const STANDIN = path.join(here, 'cuda-standin.cjs');
const standInModule = createRequire(import.meta.url)(STANDIN) as { create(s: StandInSettings): StandIn };
const standIn = (s: StandInSettings = {}): StandIn => standInModule.create(s);

let native: Backend | null = null;
try {
  native = await getBackend('native');
} catch {
  // not built here: the tests that compare with native skip
}
const withNative = native ? it : it.skip;

const N = 1200;
const D = 6;
const K = 4;
const data = blobs(N, D, K, 12, 7).data;
const weights = Float32Array.from({ length: N }, (_, i) => 0.5 + ((i * 7919) % 13) / 8);
const X = { data, nRows: N, nFeatures: D };

/** The same fit each time: k-means++ seeding (potentials, distances), three restarts. */
const fit = (be: Backend, w: Float32Array | null = null): Promise<KMeansResult> => new KMeans({ k: K, nInit: 3, seed: 5, init: 'k-means++' }).fit(be, X, w);

/** The warnings a run logged. */
function logger(): { log: (line: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { log: (l) => lines.push(l), lines };
}

const bits = (a: Float32Array | Float64Array | Int32Array) => Array.from(a);

describe('device out-of-memory errors', () => {
  it('are recognised by their code or the addon\'s text, and nothing else is', () => {
    const coded = Object.assign(new Error('anything'), { code: 'CUDA_OOM' });
    expect(isDeviceOutOfMemory(coded)).toBe(true);
    expect(isDeviceOutOfMemory(new Error('out of GPU memory: need 12.0 MiB, 3.0 MiB free'))).toBe(true);
    expect(isDeviceOutOfMemory(new Error('out of GPU memory in stream upload'))).toBe(true);
    expect(isDeviceOutOfMemory(new Error('cudaStreamCreate: out of memory'))).toBe(true);
    expect(isDeviceOutOfMemory(new RangeError('Array buffer allocation failed'))).toBe(false);
    expect(isDeviceOutOfMemory(new Error('assign kernel: an illegal memory access was encountered'))).toBe(false);
    expect(isDeviceOutOfMemory('out of GPU memory')).toBe(false);
  });

  it('the stand-in raises the addon\'s error when its budget is exceeded', () => {
    const addon = standIn({ budgetBytes: 1000 });
    const err = (() => {
      try {
        addon.upload(data, N, D, null, new Float32Array(D));
      } catch (e) {
        return e;
      }
    })();
    expect(isDeviceOutOfMemory(err)).toBe(true);
    expect((err as Error).message).toMatch(/^out of GPU memory: need \d+\.\d MiB, 0\.0 MiB free$/);
  });
});

describe('retryInPieces', () => {
  const oom = () => Object.assign(new Error('out of GPU memory: need 1.0 MiB, 0.5 MiB free'), { code: 'CUDA_OOM' });

  it('halves the piece on out-of-memory, keeps the pieces that finished, and stops at the floor', () => {
    const ran: [number, number][] = [];
    // A device that fits 300 rows at a time.
    const piece = retryInPieces(1000, 256, 256, (a, b) => {
      if (b - a > 300) throw oom();
      ran.push([a, b]);
    });
    expect(piece).toBe(256);
    expect(ran).toEqual([[0, 256], [256, 512], [512, 768], [768, 1000]]);
    expect(() => retryInPieces(1000, 256, 256, () => { throw oom(); })).toThrow(/out of GPU memory/);
    // Other errors are not retried.
    let calls = 0;
    expect(() => retryInPieces(1000, 1, 1, () => { calls++; throw new Error('kernel failed'); })).toThrow('kernel failed');
    expect(calls).toBe(1);
  });
});

describe('cuda ops that retry in smaller pieces (stand-in addon)', () => {
  const r = rng(3);
  const m = 5;
  const centers = Float32Array.from({ length: 9 * D }, () => (r() - 0.5) * 20);
  const closest = Float32Array.from({ length: N }, () => 50 + r() * 100);
  const w = Float32Array.from({ length: D * m }, () => r() - 0.5);
  const resp = Float32Array.from({ length: N * m }, () => r());
  const labels = Int32Array.from({ length: N }, (_, i) => i % K);
  const means = Float64Array.from({ length: m * D }, () => r() - 0.5);
  const rows = { start: 100, end: 1100 };

  /** Every retrying op, on a backend over `addon`. */
  async function all(addon: StandIn) {
    const be = cudaBackendFrom(addon);
    const dx = be.upload(X, weights);
    try {
      return {
        distances: await be.distances(dx, centers, 9),
        potentials: await be.potentials(dx, closest, centers, 9),
        clusterDistanceSums: await be.clusterDistanceSums(dx, labels, K, rows),
        project: await be.project(dx, w, m, rows),
        softSums: await be.softSums(dx, resp.subarray(rows.start * m, rows.end * m), m, rows),
        scatter: await be.scatter(dx, resp.subarray(rows.start * m, rows.end * m), m, means, rows),
        radius: await be.radiusNeighbours(dx, { start: 0, end: 40 }, 3, 'list'),
      };
    } finally {
      be.release(dx);
    }
  }

  it('give what the whole call gives: the same bits, or float64 rounding for the summed ones', async () => {
    const whole = await all(standIn());
    const small = standIn({ maxPiece: { distances: 2, potentials: 1, clusterDistanceSums: 300, project: 300, softSums: 300, scatter: 300 } });
    const pieces = await all(small);
    for (const op of ['distances', 'potentials', 'clusterDistanceSums', 'project'] as const) expect(bits(pieces[op]), op).toEqual(bits(whole[op]));
    expect(pieces.radius).toEqual(whole.radius);
    const near = (a: Float64Array, b: Float64Array) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(b[i]))));
    near(pieces.softSums.sums, whole.softSums.sums);
    near(pieces.softSums.counts, whole.softSums.counts);
    near(pieces.scatter, whole.scatter);
    // They did retry: one failed whole call each, then pieces no larger than the device takes.
    const s = small.stats;
    expect(s.ooms.map((o) => o.op)).toEqual(expect.arrayContaining(['distances', 'potentials', 'clusterDistanceSums', 'project', 'softSums', 'scatter']));
    expect(s.pieces.distances.slice(0, 4)).toEqual([9, 5, 3, 2]);
    expect(s.pieces.potentials.slice(0, 5)).toEqual([9, 5, 3, 2, 1]);
    expect(s.pieces.project).toEqual([1000, 512, 256, 256, 256, 232]);
    expect(s.pieces.clusterDistanceSums).toEqual([1000, 512, MIN_RETRY_ROWS, MIN_RETRY_ROWS, MIN_RETRY_ROWS, 232]);
  });

  it('retry under a byte budget too, not only under a cap on the piece', async () => {
    // Room for the upload and about a third of nRows × 64 distances.
    const upload = 4 * N * D + 4 * N + 4 * D + 16 * N;
    const addon = standIn({ budgetBytes: upload + Math.floor((4 * N * 64) / 3) });
    const be = cudaBackendFrom(addon);
    const dx = be.upload(X, weights);
    const many = Float32Array.from({ length: 64 * D }, (_, i) => Math.sin(i));
    const got = await be.distances(dx, many, 64);
    be.release(dx);
    const ref = await (async () => {
      const b = cudaBackendFrom(standIn());
      const d = b.upload(X, weights);
      return b.distances(d, many, 64);
    })();
    expect(bits(got)).toEqual(bits(ref));
    expect(addon.stats.ooms.length).toBeGreaterThan(0);
    // 64 and 32 centers a call do not fit; 16 do.
    expect(addon.stats.pieces.distances).toEqual([64, 32, 16, 16, 16, 16]);
  });

  it('give up at the floor with the addon\'s error (the wrapper then falls back)', async () => {
    const be = cudaBackendFrom(standIn({ maxPiece: { project: 100 } }));
    const dx = be.upload(X);
    await expect(be.project(dx, w, m)).rejects.toMatchObject({ code: 'CUDA_OOM' });
  });

  it('assign, segmentSum and upload do not retry: the error comes at once', async () => {
    const addon = standIn();
    const be = cudaBackendFrom(addon);
    const dx = be.upload(X);
    addon.failNext('assign');
    await expect(be.assign(dx, centers, K)).rejects.toMatchObject({ code: 'CUDA_OOM' });
    expect(addon.stats.calls.assign).toBe(1);
    const a = await be.assign(dx, centers, K);
    addon.failNext('segmentSum');
    // Another k than the assignment's: the sums do not come fused with it, the addon computes them.
    await expect(be.segmentSum(dx, a, K + 1)).rejects.toMatchObject({ code: 'CUDA_OOM' });
    expect(addon.stats.calls.segmentSum).toBe(1);
  });
});

describe('K-Means through the fallback wrapper (stand-in addon)', () => {
  it('(a) an op that can shrink succeeds on cuda after retries: the same labels, bit for bit', async () => {
    const plain = await fit(withNativeFallback(cudaBackendFrom(standIn()), native));
    // Room for one k-means++ candidate at a time: every potentials call of 3 candidates fails.
    const addon = standIn({ maxPiece: { potentials: 1 } });
    const { log, lines } = logger();
    const be = withNativeFallback(cudaBackendFrom(addon), native, log);
    const tight = await fit(be);
    expect(addon.stats.ooms.filter((o) => o.op === 'potentials').length).toBeGreaterThanOrEqual(3);
    expect(addon.stats.pieces.potentials.every((mm) => mm === 3 || mm === 1 || mm === 2)).toBe(true);
    expect(be.name).toBe('cuda');
    expect(backendFallback(be)).toBeNull();
    expect(be.fallback).toBeNull();
    expect(lines).toEqual([]);
    expect(bits(tight.labels)).toEqual(bits(plain.labels));
    expect(bits(tight.centroids)).toEqual(bits(plain.centroids));
    expect(tight.inertia).toBe(plain.inertia);
  });

  withNative('(b) an upload that cannot fit falls back to native: a native fit bit for bit, one warning, the record', async () => {
    const ref = await fit(native!, weights);
    const addon = standIn({ budgetBytes: 32 * 1024 });
    const { log, lines } = logger();
    const be = withNativeFallback(cudaBackendFrom(addon), native, log);
    expect(be.name).toBe('cuda');
    const got = await fit(be, weights);
    // Native from the first op: the same arithmetic, so the same bits.
    expect(bits(got.labels)).toEqual(bits(ref.labels));
    expect(bits(got.centroids)).toEqual(bits(ref.centroids));
    expect(bits(got.distances)).toEqual(bits(ref.distances));
    expect(got.inertia).toBe(ref.inertia);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warning: cuda ran out of device memory in upload \(1200 rows × 6 features \(28\.1 KiB\): out of GPU memory: need 0\.\d MiB, 0\.\d MiB free\); continuing on native$/);
    expect(be.name).toBe('native');
    expect(be.description).toMatch(/^native C\+\+ kernels .*\(cuda ran out of device memory in upload\)$/);
    const record = backendFallback(be);
    expect(record).toEqual({ from: 'cuda', to: 'native', op: 'upload', reason: expect.stringContaining('out of GPU memory') });
    expect(be.fallback).toEqual(record);
    // The stand-in held nothing: every upload after the first went straight to native.
    expect(addon.stats.calls.upload).toBe(1);
    expect(addon.stats.used).toBe(0);
  });

  withNative('a fallback in the middle of a fit continues on native from the GPU\'s assignments', async () => {
    const ref = await fit(native!, weights);
    const onCuda = await fit(withNativeFallback(cudaBackendFrom(standIn()), native), weights);
    // (A Lloyd step's segment sums come fused with its assignment: 'assign' covers them.)
    for (const op of ['assign', 'potentials', 'distances']) {
      const addon = standIn();
      const { log, lines } = logger();
      const be = withNativeFallback(cudaBackendFrom(addon), native, log);
      // The op's third call runs out of memory for good: every try of that call fails.
      const failing = op;
      let seen = 0;
      const orig = addon[failing as 'assign'] as (...a: unknown[]) => unknown;
      (addon as unknown as Record<string, unknown>)[failing] = (...args: unknown[]) => {
        if (++seen === 3) addon.failNext(failing, 100);
        return orig.apply(addon, args);
      };
      const got = await fit(be, weights);
      expect(lines, op).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^warning: cuda ran out of device memory in ${op} \\(1200 rows × 6 features, [^)]*: out of GPU memory: need [^)]*\\); continuing on native$`));
      expect(backendFallback(be), op).toMatchObject({ from: 'cuda', to: 'native', op });
      expect(be.name).toBe('native');
      // float64 on the stand-in, float32 kernels on native: the same partition, centroids and
      // inertia to float32 rounding. Restarts that find the same partition tie on inertia up
      // to that rounding, so which one wins, and the numbering of the segments, may differ.
      expect(samePartition(got.labels, ref.labels), op).toBe(true);
      expect(samePartition(got.labels, onCuda.labels), op).toBe(true);
      const toRef = new Map<number, number>();
      got.labels.forEach((l, i) => toRef.set(l, ref.labels[i]));
      for (let j = 0; j < K; j++)
        for (let f = 0; f < D; f++) {
          const want = ref.centroids[toRef.get(j)! * D + f];
          expect(Math.abs(got.centroids[j * D + f] - want), op).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
        }
      expect(Math.abs(got.inertia - ref.inertia) / ref.inertia, op).toBeLessThan(1e-5);
    }
  });

  withNative('a GPU assignment read after its slot was reused is computed on native when that runs out of memory', async () => {
    const addon = standIn();
    const { log, lines } = logger();
    const be = withNativeFallback(cudaBackendFrom(addon), native, log);
    const dx = be.upload(X);
    const cs = [0, 1, 2].map((s) => blobs(K, D, 1, 12, 20 + s).data);
    const a = await be.assign(dx, cs[0], K);
    const b = await be.assign(dx, cs[1], K, a);
    await be.assign(dx, cs[2], K, b); // a's device slot is reused
    addon.failNext('assign'); // reading a computes it again on the device: out of memory
    const { labels } = await a.read();
    expect(lines).toHaveLength(1);
    expect(backendFallback(be)).toMatchObject({ op: 'read' });
    const nx = native!.upload(X);
    expect(bits(labels)).toEqual(bits((await (await native!.assign(nx, cs[0], K)).read()).labels));
    // And a GPU assignment whose labels are still on the device goes to native ops through read().
    const sums = await be.segmentSum(dx, b, K);
    const counts = new Float64Array(K);
    for (const l of (await b.read()).labels) counts[l]++;
    expect(bits(sums.counts)).toEqual(bits(counts));
    be.release(dx);
    native!.release(nx);
  });

  it('(c) without native the error is one line with a code, naming the op and the sizes', async () => {
    const addon = standIn({ budgetBytes: 32 * 1024 });
    const be = withNativeFallback(cudaBackendFrom(addon), null, undefined, 'addon not built (kernels/build/Release/segtensor_native.node missing)');
    const err = await fit(be).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SegtensorError);
    const e = err as SegtensorError;
    expect(e.code).toBe('DEVICE_MEMORY');
    expect(e.message).not.toContain('\n');
    expect(e.message).toMatch(/^cuda ran out of device memory in upload \(1200 rows × 6 features \(28\.1 KiB\): out of GPU memory: need [\d.]+ MiB, [\d.]+ MiB free\), and the native backend to continue on is not available \(addon not built/);
    expect(backendFallback(be)).toBeNull();
  });

  it('other errors pass through unchanged, with no fallback', async () => {
    const addon = standIn();
    const be = withNativeFallback(cudaBackendFrom(addon), native);
    const dx = be.upload(X);
    await expect(be.assign(dx, new Float32Array(K * D), K, undefined)).resolves.toBeDefined();
    addon.release((dx as unknown as { onPrimary: { handle: unknown } }).onPrimary.handle);
    await expect(be.assign(dx, new Float32Array(K * D), K)).rejects.toThrow(/released/);
    expect(backendFallback(be)).toBeNull();
  });
});

describe('the run manifest records the fallback (registry loads the stand-in through SEGTENSOR_CUDA_ADDON)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-cuda-fallback-'));
  const input = path.join(dir, 'customers.csv');
  beforeAll(() => {
    vi.stubEnv('SEGTENSOR_CUDA_ADDON', STANDIN);
    const lines = ['customer_id,recency,frequency,monetary'];
    for (let i = 0; i < 300; i++) lines.push(`c${i},${data[i * D].toFixed(3)},${data[i * D + 1].toFixed(3)},${data[i * D + 2].toFixed(3)}`);
    fs.writeFileSync(input, lines.join('\n') + '\n');
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const manifestOf = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));

  withNative('a fit that fell back says so in manifest.json; one that did not has no such field', async () => {
    const { fitSegmentation } = await import('../../src/pipeline/fit.js');
    expect((await resolveBackend('cuda')).name).toBe('cuda'); // the stand-in, through the registry

    vi.stubEnv('SEGTENSOR_TEST_CUDA_STANDIN', JSON.stringify({}));
    const calm = path.join(dir, 'calm');
    await fitSegmentation({ input, k: 3, id: 'customer_id', out: calm, backend: 'cuda', nInit: 1, log: () => {} });
    expect(manifestOf(calm).backend).toBe('cuda');
    expect(manifestOf(calm)).not.toHaveProperty('backendFallback');

    vi.stubEnv('SEGTENSOR_TEST_CUDA_STANDIN', JSON.stringify({ budgetBytes: 4096 }));
    const { log, lines } = logger();
    const tight = path.join(dir, 'tight');
    await fitSegmentation({ input, k: 3, id: 'customer_id', out: tight, backend: 'auto', nInit: 1, log });
    const m = manifestOf(tight);
    expect(m.backend).toBe('native');
    expect(m.backendFallback).toEqual({ from: 'cuda', to: 'native', op: 'upload', reason: expect.stringMatching(/^300 rows × 3 features \(3\.5 KiB\): out of GPU memory: need/) });
    expect(lines.filter((l) => l.startsWith('warning: cuda ran out of device memory'))).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(tight, 'model.json'), 'utf8')).backend).toBe('native');
  });
});
