/**
 * The CUDA backend. Without a GPU: the unavailable path reports the runtime's reason, the
 * kernels' arithmetic is checked through the CPU emulation (kernels/cuda/emulate.cc, same
 * phase functions as the GPU), and the sources compile with nvcc when it is installed. With a
 * GPU: the backend against the float64 reference.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/engine/backend.js';
import { CUDA_ADDON_PATH, createCudaBackend, loadCudaAddon } from '../../src/engine/backends/cuda.js';
import { kmeansPlusPlus } from '../../src/models/kmeans-init.js';
import { Random } from '../../src/util/random.js';
import { refAssign, refSegmentSum, rng } from '../helpers/reference.js';

const root = join(import.meta.dirname, '..', '..');
const built = existsSync(join(root, CUDA_ADDON_PATH));
const probe = built ? loadCudaAddon().probe() : null;
const hasGpu = probe?.ok === true;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('cuda backend, unavailable', () => {
  it.skipIf(!built || hasGpu)('throws BackendUnavailableError with the CUDA runtime reason', async () => {
    const err = await createCudaBackend().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    const reason = (err as BackendUnavailableError).reason;
    expect(reason).not.toContain('\n');
    if (probe && !probe.ok) expect(reason).toBe(probe.reason);
    // No NVIDIA driver at all (this CI machine): cudart_static says exactly this.
    if (!existsSync('/dev/nvidiactl')) expect(reason).toBe('CUDA driver version is insufficient for CUDA runtime version');
  });

  it('throws BackendUnavailableError when the addon is not built', async () => {
    const saved = process.env.SEGTENSOR_CUDA_ADDON;
    process.env.SEGTENSOR_CUDA_ADDON = '/nonexistent/segtensor_cuda.node';
    try {
      const err = await createCudaBackend().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as BackendUnavailableError).reason).toMatch(/not built/);
    } finally {
      if (saved === undefined) delete process.env.SEGTENSOR_CUDA_ADDON;
      else process.env.SEGTENSOR_CUDA_ADDON = saved;
    }
  });
});

describe.skipIf(!built)('cuda binding: arguments checked before any device call (as the CPU binding checks its own)', () => {
  // These run without a device: the checks come before the upload reaches CUDA.
  it('upload refuses arrays of the wrong type or too short for nRows × d, in one line', () => {
    const a = loadCudaAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
    const x = new Float32Array(12);
    const shift = new Float32Array(3);
    expect(() => a.upload(x, 5, 3, null, shift)).toThrow(/^x is too short: need 15 elements, got 12$/);
    expect(() => a.upload(new Float64Array(12), 4, 3, null, shift)).toThrow(/^x must be a Float32Array$/);
    expect(() => a.upload(x, 4, 3, new Float32Array(3), shift)).toThrow(/^weights is too short: need 4 elements, got 3$/);
    expect(() => a.upload(x, 4, 3, null, new Float32Array(2))).toThrow(/^shift is too short: need 3 elements, got 2$/);
    expect(() => a.upload(x, 4, 0, null, shift)).toThrow(/^d must be an integer >= 1$/);
    expect(() => a.upload(x, -1, 3, null, shift)).toThrow(/^nRows must be an integer >= 0$/);
  });

  it('every op refuses a first argument that is not an upload handle', () => {
    const a = loadCudaAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const op of ['assign', 'resident', 'read', 'segmentSum', 'distances', 'potentials', 'clusterDistanceSums', 'project', 'softSums', 'scatter', 'release', 'streamed', 'seedStart', 'seedDraw', 'seedPotentials', 'seedTake', 'radius']) {
      expect(() => a[op]({}, new Float32Array(4), 1), op).toThrow(/handle from upload\(\)/);
    }
  });
});

describe.skipIf(!has('g++'))('cuda kernels, emulated on the CPU', () => {
  const dir = mkdtempSync(join(tmpdir(), 'segtensor-emulate-'));
  const exe = join(dir, 'emulate');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Shapes cross the tile edges: k around 32-centroid tiles, d around 32-feature chunks,
  // n around 128-row blocks, and several segment-sum chunks.
  it.each([
    [1000, 1, 1],
    [3000, 2, 2],
    [2500, 3, 7],
    [4000, 17, 16],
    [700, 32, 33],
    [600, 130, 300],
    [129, 33, 64],
    [5000, 3, 7], // several potentials blocks (2048 rows each)
  ])('matches the float64 reference: n=%i d=%i k=%i', (n, d, k) => {
    if (!existsSync(exe)) execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
    const r = JSON.parse(execFileSync(exe, [String(n), String(d), String(k), String(n + d + k)], { encoding: 'utf8' }));
    expect(r.mismatches).toBe(0);
    expect(r.ties).toBeLessThan(n / 20);
    expect(r.inertiaRelErr).toBeLessThanOrEqual(1e-5);
    expect(r.distRelErr).toBeLessThanOrEqual(1e-6);
    expect(r.sumsRelErr).toBeLessThanOrEqual(1e-12);
    // Fixed-point sums (fixed.cuh): the unfused kernel, blocks with their own words and rows in other
    // orders give the fused kernel's words, bit for bit.
    expect(r.sumsOrderEqual).toBe(true);
    expect(r.streamedEqual).toBe(true); // chunks with offset pointers, as for data streamed from the host
    expect(r.changed).toBe(n);
    // k-means++ potentials (float64 throughout) and the silhouette sums (float32 squares, float64 sums).
    expect(r.potentialBlocks).toBe(Math.ceil(n / 2048));
    expect(r.potentialsRelErr).toBeLessThanOrEqual(1e-12);
    expect(r.clusterSumsRelErr).toBeLessThanOrEqual(1e-5);
    expect(r.selfZero).toBe(true);
  }, 30_000);

  it.each([
    [5000, 3, 20, 1],
    [10_000, 17, 50, 2],
    [3000, 33, 100, 3],
    [100, 4, 8, 5],
  ])('seeds k-means++ on the device as the host does from the same draws: n=%i d=%i k=%i', (n, d, k, s) => {
    if (!existsSync(exe)) execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
    const r = JSON.parse(execFileSync(exe, ['seed', String(n), String(d), String(k), String(s)], { encoding: 'utf8' }));
    // Every draw and every choice agreed with the float64 host semantics (a disagreement is
    // allowed only at a near-tie, which these data do not have), and so did each row's closest.
    expect(r).toMatchObject({ agreed: true, step: -1, closestEqual: true });
    expect(r.blocks).toBe(Math.ceil(n / 2048));
    expect(r.potRelDiff).toBeLessThanOrEqual(1e-12);
  }, 30_000);

  it.each([
    [3000, 33, 100, 1, ''],
    [2000, 130, 300, 2, ''],
    [1000, 256, 512, 3, ''],
    [2000, 64, 200, 5, 'near'],
    [1500, 17, 40, 6, 'near'],
  ])('assigns on tensor cores (TF32 candidates, float64 decision) with the float64 argmin\'s labels: n=%i d=%i k=%i %s', (n, d, k, s, near) => {
    if (!existsSync(exe)) execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
    const r = JSON.parse(execFileSync(exe, ['tc', String(n), String(d), String(k), String(s), ...(near ? ['near'] : [])], { encoding: 'utf8' }));
    expect(r.mismatches).toBe(0);
    expect(r.ties).toBeLessThan(n / 50);
    expect(r.onChipEqual).toBe(true); // the rows staged once for all centroid tiles: the same labels
    // Groups of six centroids 1e-5 apart: more candidates within the TF32 error than a row keeps,
    // so rows are flagged and scanned in float64 (the test of that path); spread-out centroids
    // need no scan.
    if (near) expect(r.flagged).toBeGreaterThan(n / 4);
    else expect(r.flagged).toBeLessThan(n / 100);
  }, 60_000);

  it.each([
    [700, 3, 1],
    [500, 17, 2],
    [300, 40, 3],
    [1000, 2, 4],
  ])('finds eps-neighbourhoods on the device with the float64 decisions, weights and lists: n=%i d=%i', (n, d, s) => {
    if (!existsSync(exe)) execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
    // Lattices (exact ties at eps), blobs far from the origin, and eps at actual pairs' float64
    // distances, where float32 alone puts some pairs on the wrong side (without the band around
    // eps² two of these four shapes disagree).
    const r = JSON.parse(execFileSync(exe, ['radius', String(n), String(d), String(s)], { encoding: 'utf8' }));
    expect(r.agreed).toBe(true);
    expect(r.rechecked).toBeGreaterThan(0);
    expect(r.rechecked).toBeLessThan(r.pairs / 10);
  }, 60_000);

  it('sums in fixed point to float64 rounding where the high word alone is off (cancelling ±1e6 pairs and values below 1e-3)', () => {
    if (!existsSync(exe)) execFileSync('g++', ['-O2', '-std=c++17', join(root, 'kernels/cuda/emulate.cc'), '-o', exe]);
    for (const n of [100_000, 1_000_000]) {
      const r = JSON.parse(execFileSync(exe, ['fixed', String(n)], { encoding: 'utf8' }));
      expect(r.err).toBeLessThanOrEqual(4 * 2 ** -53 * Math.abs(r.sum));
      expect(r.hiOnlyErr).toBeGreaterThan(1e-8); // what dropping the low word would cost
      expect(r.orderEqual).toBe(true);
    }
  });
});

describe.skipIf(!has('nvcc'))('cuda sources', () => {
  it('compile with nvcc for sm_80 and sm_90 and link against cudart_static', () => {
    const out = mkdtempSync(join(tmpdir(), 'segtensor-nvcc-'));
    try {
      const r = spawnSync(process.execPath, [join(root, 'kernels/cuda/build.mjs'), `--out=${out}`], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(existsSync(join(out, 'segtensor_cuda.node'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);

  it('embed SASS for sm_80 and sm_90 and compute_90 PTX, so a newer GPU compiles them at load rather than finding no image', () => {
    const r = spawnSync(process.execPath, [join(root, 'kernels/cuda/build.mjs'), '--images'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['elf sm_80', 'elf sm_90', 'ptx sm_90']);
  }, 60_000);
});

describe.skipIf(!hasGpu)('cuda backend on a GPU', () => {
  it('assign, segmentSum, distances, potentials and clusterDistanceSums match the float64 reference', async () => {
    const be = await createCudaBackend();
    expect(be.name).toBe('cuda');
    for (const [n, d, k] of [
      [5000, 17, 16],
      [2000, 130, 300],
      [3000, 2, 1],
    ]) {
      const r = rng(n + d + k);
      const data = new Float32Array(n * d).map(() => (r() - 0.5) * 10);
      const w = new Float32Array(n).map(() => 0.5 + r());
      const c = data.slice(0, k * d);
      const x = be.upload({ data, nRows: n, nFeatures: d }, w);
      const a = await be.assign(x, c, k);
      const { labels } = await a.read();
      const ref = refAssign(data, n, d, c, k);
      let inertia = 0;
      for (let i = 0; i < n; i++) {
        inertia += w[i] * ref.dist[i];
        const tie = Number.isFinite(ref.second[i]) && ref.second[i] - ref.dist[i] <= 1e-4 * ref.second[i];
        if (!tie) expect(labels[i]).toBe(ref.labels[i]);
      }
      expect(Math.abs(a.inertia - inertia) / inertia).toBeLessThanOrEqual(1e-5);
      expect((await be.assign(x, c, k, a)).nChanged).toBe(0);
      const s = await be.segmentSum(x, a, k);
      const rs = refSegmentSum(data, n, d, labels, k, w);
      for (let i = 0; i < rs.sums.length; i++) expect(Math.abs(s.sums[i] - rs.sums[i])).toBeLessThanOrEqual(1e-9 * Math.abs(rs.sums[i]) + 1e-9);
      const dist = await be.distances(x, c.subarray(0, d), 1);
      expect(dist[0]).toBe(0);
      const closest = new Float32Array(n).map((_, i) => 1.5 * ref.dist[i]);
      const m = Math.min(k, 10); // two candidate groups when k allows
      const pots = await be.potentials(x, closest, c, m);
      for (let j = 0; j < m; j++) {
        let want = 0;
        for (let i = 0; i < n; i++) {
          let q = 0;
          for (let f = 0; f < d; f++) q += (data[i * d + f] - c[j * d + f]) ** 2;
          want += w[i] * Math.min(closest[i], q);
        }
        expect(Math.abs(pots[j] - want) / want).toBeLessThanOrEqual(1e-9);
      }
      be.release(x);
      // Silhouette sums on a sample, against the float64 brute force.
      const ns = Math.min(n, 1200);
      const sx = be.upload({ data: data.subarray(0, ns * d), nRows: ns, nFeatures: d });
      const sl = labels.subarray(0, ns);
      const sums = await be.clusterDistanceSums(sx, sl, k);
      for (let i = 0; i < ns; i += 7) {
        const want = new Float64Array(k);
        for (let j = 0; j < ns; j++) {
          let q = 0;
          for (let f = 0; f < d; f++) q += (data[i * d + f] - data[j * d + f]) ** 2;
          want[sl[j]] += Math.sqrt(q);
        }
        for (let l = 0; l < k; l++) expect(Math.abs(sums[i * k + l] - want[l])).toBeLessThanOrEqual(1e-5 * want[l]);
      }
      be.release(sx);
    }
  });

  it('streams data from the host in chunks (SEGTENSOR_CUDA_STREAM_ROWS) with the resident results, bit for bit', async () => {
    const be = await createCudaBackend();
    const n = 10_000; // five chunks of 2048 rows, the last short
    const d = 19;
    const k = 24;
    const r = rng(77);
    const data = new Float32Array(n * d).map(() => (r() - 0.5) * 10);
    const w = new Float32Array(n).map(() => 0.5 + r());
    const c = data.slice(0, k * d);
    const closest = new Float32Array(n).map(() => 20 * r());
    const run = async () => {
      const x = be.upload({ data, nRows: n, nFeatures: d }, w);
      const a = await be.assign(x, c, k);
      const b = await be.assign(x, c.map((v) => v * 0.99), k, a);
      const out = {
        a: await a.read(),
        b: await b.read(),
        inertia: [a.inertia, b.inertia, b.nChanged],
        sums: await be.segmentSum(x, b, k),
        dist: await be.distances(x, c, 3),
        pots: await be.potentials(x, closest, c, 5),
      };
      be.release(x);
      return out;
    };
    const resident = await run();
    process.env.SEGTENSOR_CUDA_STREAM_ROWS = '2048';
    try {
      const streamed = await run();
      expect(streamed).toEqual(resident);
    } finally {
      delete process.env.SEGTENSOR_CUDA_STREAM_ROWS;
    }
  });

  it('refuses host arrays too short for the uploaded matrix, k or m, before the device runs', () => {
    const a = loadCudaAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
    const n = 100;
    const d = 4;
    const h = a.upload(new Float32Array(n * d), n, d, null, new Float32Array(d));
    try {
      expect(() => a.assign(h, new Float32Array(3 * d - 1), 3, null, -1, null, null)).toThrow(/^centroids is too short/);
      expect(() => a.assign(h, new Float32Array(3 * d), 3, new Int32Array(n - 1), -1, null, null)).toThrow(/^prevLabels is too short/);
      expect(() => a.distances(h, new Float32Array(2 * d), 2, new Float32Array(2 * n - 1))).toThrow(/^out is too short/);
      expect(() => a.potentials(h, new Float32Array(n - 1), new Float32Array(d), 1)).toThrow(/^closest is too short/);
      expect(() => a.segmentSum(h, new Int32Array(n), -1, 2, new Float64Array(2 * d - 1), new Float64Array(2))).toThrow(/^outSums is too short/);
      expect(() => a.assign(h, new Float32Array(3 * d), 3, null, -1, null, null, new Float64Array(3 * d - 1), new Float64Array(3))).toThrow(/^outSums is too short/);
      expect(() => a.assign(h, new Float32Array(3 * d), 3, null, -1, null, null, new Float64Array(3 * d), null)).toThrow(/outSums and outCounts go together/);
      expect(() => a.segmentSum(h, new Int32Array(n).fill(2), -1, 2, new Float64Array(2 * d), new Float64Array(2))).toThrow(/^segmentSum: labels must be in \[0, 2\); got 2 at row 0$/);
      expect(() => a.radius(h, 0, 10, 1, null, new Float64Array(10), null, null)).toThrow(/count pass needs outFound/);
      expect(() => a.radius(h, 0, 2, 1, new Int32Array([0, 3, 2]), new Float64Array(2), null, new Int32Array(3))).toThrow(/must start at 0 and not decrease/);
      expect(() => a.radius(h, 0, 10, -1, null, new Float64Array(10), new Int32Array(10), null)).toThrow(/eps2 must be a number >= 0/);
      expect(() => a.seedDraw(h, new Float64Array(2), 2)).toThrow(/call seedStart first/);
      expect(() => a.project(h, new Float32Array(d * 2), 2, 0, n + 1, new Float32Array(2 * (n + 1)))).toThrow(/need 0 <= r0 <= r1 <= nRows/);
    } finally {
      a.release(h);
    }
  });

  it('fuses the segment sums into the assignment: the unfused kernel\'s bits, in shared or global words, run after run', async () => {
    const be = await createCudaBackend();
    // k·(d + 1)·16 bytes: 4.6 KiB (each block's own words in shared memory) and 628 KiB (global words).
    for (const [n, d, k] of [
      [5000, 17, 16],
      [3000, 130, 300],
    ]) {
      const r = rng(n + k);
      const data = new Float32Array(n * d).map(() => 50 + (r() - 0.5) * 10);
      const w = new Float32Array(n).map(() => 0.5 + r());
      const c = data.slice(0, k * d);
      const x = be.upload({ data, nRows: n, nFeatures: d }, w);
      const a = await be.assign(x, c, k);
      const fused = await be.segmentSum(x, a, k);
      const foreign = { inertia: a.inertia, nChanged: a.nChanged, read: () => a.read() };
      expect(await be.segmentSum(x, foreign, k)).toEqual(fused);
      expect(await be.segmentSum(x, await be.assign(x, c, k), k)).toEqual(fused);
      const ref = refSegmentSum(data, n, d, (await a.read()).labels, k, w);
      for (let i = 0; i < ref.sums.length; i++) expect(Math.abs(fused.sums[i] - ref.sums[i])).toBeLessThanOrEqual(1e-12 * Math.abs(ref.sums[i]) + 1e-12);
      for (let j = 0; j < k; j++) expect(Math.abs(fused.counts[j] - ref.counts[j])).toBeLessThanOrEqual(1e-12 * ref.counts[j]);
      be.release(x);
    }
  });

  it('assigns on tensor cores (SEGTENSOR_CUDA_TF32=1) with the float64 argmin\'s labels and the fp32 path\'s sums', async () => {
    const be = await createCudaBackend();
    const n = 4000;
    const d = 64;
    const k = 600;
    const r = rng(31);
    const data = new Float32Array(n * d).map(() => 100 + (r() - 0.5) * 10);
    const c = data.slice(0, k * d).map((v) => v + (r() - 0.5) * 0.1);
    const run = async (tf32: string) => {
      process.env.SEGTENSOR_CUDA_TF32 = tf32;
      try {
        const x = be.upload({ data, nRows: n, nFeatures: d });
        const a = await be.assign(x, c, k);
        const out = { ...(await a.read()), inertia: a.inertia };
        be.release(x);
        return out;
      } finally {
        delete process.env.SEGTENSOR_CUDA_TF32;
      }
    };
    const tc = await run('1');
    const fp32 = await run('0');
    let differ = 0;
    for (let i = 0; i < n; i++) {
      // The float64 argmin, ties to the lowest index.
      let best = Infinity;
      let arg = 0;
      for (let j = 0; j < k; j++) {
        let q = 0;
        for (let f = 0; f < d; f++) q += (data[i * d + f] - c[j * d + f]) ** 2;
        if (q < best) {
          best = q;
          arg = j;
        }
      }
      expect(tc.labels[i]).toBe(arg);
      if (fp32.labels[i] !== arg) differ++;
    }
    expect(differ).toBeLessThan(n / 50); // the fp32 kernel differs only at its near-ties
    expect(Math.abs(tc.inertia - fp32.inertia) / fp32.inertia).toBeLessThan(1e-5);
  });

  it('seeds k-means++ on the device: the same centres run after run, and the host path\'s from the same seed', async () => {
    const be = await createCudaBackend();
    const n = 20_000;
    const d = 8;
    const k = 64;
    const r = rng(21);
    const data = new Float32Array(n * d).map(() => (r() - 0.5) * 10);
    const m = { data, nRows: n, nFeatures: d };
    const seed = async (b: typeof be) => {
      const x = b.upload(m);
      const c = await kmeansPlusPlus(b, x, m, k, new Random(3));
      b.release(x);
      return c;
    };
    const a = await seed(be);
    expect(await seed(be)).toEqual(a);
    // The same backend without device seeding: its distances kernel rounds the float64 distance
    // as seed.cuh does, so only a near-tie (none expected on random data) could tell them apart.
    // (Native's float32 distances differ in the last bit: its centres may differ at more draws.)
    expect(await seed({ ...be, seeding: undefined } as typeof be)).toEqual(a);
  });

  it('keeps two generations on the device and reads an evicted one back bit for bit', async () => {
    const addon = loadCudaAddon();
    const be = await createCudaBackend();
    const n = 3000;
    const d = 9;
    const r = rng(5);
    const data = new Float32Array(n * d).map(() => (r() - 0.5) * 10);
    const x = be.upload({ data, nRows: n, nFeatures: d });
    const cs = [0, 1, 2].map((s) => data.slice(s * 40 * d, s * 40 * d + 12 * d));
    const first = await (await be.assign(x, cs[0], 12)).read();
    const a = await be.assign(x, cs[0], 12);
    const b = await be.assign(x, cs[1], 12, a);
    const c = await be.assign(x, cs[2], 12, b);
    const h = (x as unknown as { handle: unknown }).handle;
    const gen = (y: unknown) => (y as { gen: number }).gen;
    expect(addon.resident(h, gen(c))).toBe(true);
    expect(addon.resident(h, gen(b))).toBe(true);
    expect(addon.resident(h, gen(a))).toBe(false);
    expect(() => addon.read(h, gen(a), new Int32Array(n), new Float32Array(n))).toThrow(/no longer on the device/);
    const again = await a.read();
    expect(again.labels).toEqual(first.labels);
    expect(again.distances).toEqual(first.distances);
    be.release(x);
    be.release(x);
    await expect(c.read()).rejects.toThrow(/released/);
  });
});
