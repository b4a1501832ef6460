/**
 * The cuda backend's host-side protocol, checked without a GPU: the backend runs over a
 * stand-in addon with the contract of kernels/cuda (two device slots of labels and distances,
 * generations, resident/read), computing in float64 on the host. What is checked is what the
 * TypeScript side decides: that a Lloyd loop never moves labels across the bus, that change
 * counting and segment sums use the device copy while it exists and the host copy after, and
 * that an assignment whose slot was reused reads back the right labels.
 */
import { describe, expect, it } from 'vitest';
import type { Assignment } from '../../src/engine/backend.js';
import { cudaBackendFrom, type CudaAddon } from '../../src/engine/backends/cuda.js';
import { KMeans } from '../../src/models/kmeans.js';
import { kmeansPlusPlus } from '../../src/models/kmeans-init.js';
import { Random } from '../../src/util/random.js';
import { refAssign, refSegmentSum, rng } from '../helpers/reference.js';

interface FakeHandle {
  x: Float32Array;
  n: number;
  d: number;
  w: Float32Array | null;
  slots: { gen: number; labels: Int32Array; dist: Float32Array }[];
  nextGen: number;
  released: boolean;
}

/** What crossed the (pretend) bus, by call. */
interface Traffic {
  assigns: number;
  /** assign calls that downloaded labels (outLabels given). */
  labelDownloads: number;
  /** assign calls that uploaded host labels to count changes against. */
  prevUploads: number;
  reads: number;
  deviceSums: number;
  hostSums: number;
  /** assign calls that asked for the fused segment sums. */
  fusedSums: number;
  /** Calls that move nRows values (distances, potentials with their closest array). */
  rowArrays: number;
  /** Device seeding calls. */
  seedCalls: number;
  /** Device radius passes. */
  deviceRadius: number;
}

/** seed.cuh's rows per sampling block. */
const SEED_ROWS = 2048;

interface FakeSeed {
  closest: Float32Array;
  prefix: Float64Array;
  keep: Float32Array[];
  trials: number;
}

/**
 * A stand-in addon. `opts.streamed`: it says its rows stream from the host (no device seeding);
 * `opts.seedOom`: its seedStart runs out of memory.
 */
function fakeAddon(opts: { streamed?: boolean; seedOom?: boolean } = {}): CudaAddon & { traffic: Traffic } {
  const traffic: Traffic = { assigns: 0, labelDownloads: 0, prevUploads: 0, reads: 0, deviceSums: 0, hostSums: 0, fusedSums: 0, rowArrays: 0, seedCalls: 0, deviceRadius: 0 };
  const live = (h: unknown): FakeHandle => {
    const f = h as FakeHandle;
    if (f.released) throw new Error('cuda: the matrix was released');
    return f;
  };
  const slotOf = (f: FakeHandle, gen: number) => (gen >= 0 ? f.slots.find((s) => s.gen === gen) : undefined);
  const seeds = new WeakMap<FakeHandle, FakeSeed>();
  const dist32 = (f: FakeHandle, i: number, c: Float32Array, j: number) => {
    let q = 0;
    for (let t = 0; t < f.d; t++) q += (f.x[i * f.d + t] - c[j * f.d + t]) ** 2;
    return Math.fround(q);
  };
  // seed.cuh's sums: each block of SEED_ROWS rows in row order, the blocks' prefix in block order.
  const seedSums = (f: FakeHandle, s: FakeSeed) => {
    let acc = 0;
    for (let b = 0; b * SEED_ROWS < f.n; b++) {
      let bs = 0;
      for (let i = b * SEED_ROWS; i < Math.min(f.n, (b + 1) * SEED_ROWS); i++) bs += (f.w ? f.w[i] : 1) * s.closest[i];
      s.prefix[b] = acc += bs;
    }
    return acc;
  };
  const seedOf = (h: unknown) => {
    const s = seeds.get(live(h));
    if (!s) throw new Error('seedDraw: call seedStart first');
    return s;
  };
  return {
    traffic,
    probe: () => ({ ok: true, name: 'Stand-in GPU', freeBytes: 2 ** 34, totalBytes: 2 ** 34 }),
    upload: (x, nRows, d, weights) => ({
      x: x.slice(),
      n: nRows,
      d,
      w: weights ? weights.slice() : null,
      slots: [0, 1].map(() => ({ gen: -1, labels: new Int32Array(nRows), dist: new Float32Array(nRows) })),
      nextGen: 0,
      released: false,
    }),
    release: (h) => {
      (h as FakeHandle).released = true;
    },
    assign(h, centroids, k, prev, prevGen, outLabels, outDist, outSums, outCounts) {
      const f = live(h);
      traffic.assigns++;
      const onDevice = slotOf(f, prevGen);
      if (!onDevice && prev) traffic.prevUploads++;
      const against = onDevice?.labels ?? prev;
      // The same slot choice as kernels.cu: the older slot, unless it holds prev.
      let s = f.slots[0].gen <= f.slots[1].gen ? 0 : 1;
      if (onDevice === f.slots[s]) s ^= 1;
      const ref = refAssign(f.x, f.n, f.d, centroids, k);
      let inertia = 0;
      let changed = 0;
      for (let i = 0; i < f.n; i++) {
        inertia += (f.w ? f.w[i] : 1) * ref.dist[i];
        if (against && against[i] !== ref.labels[i]) changed++;
      }
      f.slots[s] = { gen: f.nextGen, labels: ref.labels, dist: Float32Array.from(ref.dist) };
      if (outSums && outCounts) {
        traffic.fusedSums++;
        const rs = refSegmentSum(f.x, f.n, f.d, ref.labels, k, f.w);
        outSums.set(rs.sums);
        outCounts.set(rs.counts);
      }
      if (outLabels) {
        traffic.labelDownloads++;
        outLabels.set(ref.labels);
      }
      if (outDist) outDist.set(ref.dist);
      return { inertia, nChanged: against ? changed : f.n, gen: f.nextGen++ };
    },
    resident: (h, gen) => slotOf(live(h), gen) !== undefined,
    read(h, gen, outLabels, outDist) {
      const slot = slotOf(live(h), gen);
      if (!slot) throw new Error("read: that assignment's labels are no longer on the device");
      traffic.reads++;
      outLabels.set(slot.labels);
      outDist.set(slot.dist);
    },
    segmentSum(h, labels, gen, k, sums, counts) {
      const f = live(h);
      const slot = slotOf(f, gen);
      if (slot) traffic.deviceSums++;
      else if (labels) traffic.hostSums++;
      else throw new Error('segmentSum: no labels');
      const r = refSegmentSum(f.x, f.n, f.d, slot?.labels ?? labels!, k, f.w);
      sums.set(r.sums);
      counts.set(r.counts);
    },
    distances(h, centers, m, out) {
      const f = live(h);
      traffic.rowArrays++;
      for (let i = 0; i < f.n; i++)
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let c = 0; c < f.d; c++) s += (f.x[i * f.d + c] - centers[j * f.d + c]) ** 2;
          out[i * m + j] = s;
        }
    },
    potentials(h, closest, candidates, m) {
      const f = live(h);
      traffic.rowArrays++;
      const out = new Float64Array(m);
      for (let i = 0; i < f.n; i++)
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let c = 0; c < f.d; c++) s += (f.x[i * f.d + c] - candidates[j * f.d + c]) ** 2;
          out[j] += (f.w ? f.w[i] : 1) * Math.min(closest[i], s);
        }
      return out;
    },
    clusterDistanceSums: () => {
      throw new Error('not used here');
    },
    streamed: () => opts.streamed === true,
    radius(h, q0, q1, eps2, offsets, outCounts, outFound, outIndices, c0 = 0, c1 = (h as FakeHandle).n) {
      const f = live(h);
      traffic.deviceRadius++;
      for (let q = q0; q < q1; q++) {
        let c = 0;
        let k = 0;
        for (let i = c0; i < c1; i++) {
          let s = 0;
          for (let t = 0; t < f.d; t++) s += (f.x[i * f.d + t] - f.x[q * f.d + t]) ** 2;
          if (s > eps2) continue;
          c += f.w ? f.w[i] : 1;
          if (offsets) outIndices![offsets[q - q0] + k] = i;
          k++;
        }
        outCounts[q - q0] = c;
        if (outFound) outFound[q - q0] = k;
      }
      return 0;
    },
    seedStart(h, center, trials) {
      const f = live(h);
      traffic.seedCalls++;
      if (opts.seedOom) throw Object.assign(new Error('out of GPU memory: need 9.0 MiB, 1.0 MiB free'), { code: 'CUDA_OOM' });
      const s: FakeSeed = { closest: new Float32Array(f.n), prefix: new Float64Array(Math.ceil(f.n / SEED_ROWS)), keep: [], trials };
      for (let i = 0; i < f.n; i++) s.closest[i] = dist32(f, i, center, 0);
      seeds.set(f, s);
      return seedSums(f, s);
    },
    seedDraw(h, targets, m) {
      const f = live(h);
      const s = seedOf(h);
      traffic.seedCalls++;
      const rows = new Int32Array(m);
      for (let j = 0; j < m; j++) {
        const t = targets[j];
        let b = s.prefix.findIndex((p) => p >= t);
        if (b < 0) {
          rows[j] = f.n - 1;
          continue;
        }
        let acc = b > 0 ? s.prefix[b - 1] : 0;
        const end = Math.min(f.n, (b + 1) * SEED_ROWS);
        let i = b * SEED_ROWS;
        for (; i < end; i++) if ((acc += (f.w ? f.w[i] : 1) * s.closest[i]) >= t) break;
        rows[j] = Math.min(i, end - 1);
      }
      return rows;
    },
    seedPotentials(h, candidates, m) {
      const f = live(h);
      const s = seedOf(h);
      traffic.seedCalls++;
      const out = new Float64Array(m);
      s.keep = [];
      for (let j = 0; j < m; j++) {
        const k = new Float32Array(f.n);
        for (let i = 0; i < f.n; i++) {
          k[i] = dist32(f, i, candidates, j);
          out[j] += (f.w ? f.w[i] : 1) * Math.min(k[i], s.closest[i]);
        }
        s.keep.push(k);
      }
      return out;
    },
    seedTake(h, j) {
      const f = live(h);
      const s = seedOf(h);
      traffic.seedCalls++;
      for (let i = 0; i < f.n; i++) if (s.keep[j][i] < s.closest[i]) s.closest[i] = s.keep[j][i];
      return seedSums(f, s);
    },
  };
}

/** Four well-separated blobs in 3-D. */
function blobs(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const centres = [
    [0, 0, 0],
    [10, 0, 0],
    [0, 10, 0],
    [0, 0, 10],
  ];
  const x = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) for (let f = 0; f < 3; f++) x[i * 3 + f] = centres[i % 4][f] + r() - 0.5;
  return x;
}

describe('cuda backend host protocol (stand-in addon)', () => {
  it('keeps labels on the device through a whole fit and reads the best run once', async () => {
    const addon = fakeAddon();
    const be = cudaBackendFrom(addon);
    const n = 400;
    const x = blobs(n, 1);
    const r = await new KMeans({ k: 4, nInit: 3, seed: 0 }).fit(be, { data: x, nRows: n, nFeatures: 3 });
    const t = addon.traffic;
    // Labels cross the bus exactly once (the best run's, read or computed again), never inside
    // the Lloyd loop.
    expect(t.reads + t.labelDownloads).toBe(1);
    expect(t.prevUploads).toBe(0);
    // The Lloyd loop's sums all came fused with their assignments: no separate pass.
    expect(t.hostSums).toBe(0);
    expect(t.deviceSums).toBe(0);
    expect(t.fusedSums).toBe(t.assigns - 1); // all but the best run's labels computed again on read
    expect(t.assigns).toBeGreaterThan(3);
    // And the answer is the float64 reference's for the fitted centroids.
    const ref = refAssign(x, n, 3, r.centroids, 4);
    expect(Array.from(r.labels)).toEqual(Array.from(ref.labels));
    let inertia = 0;
    for (let i = 0; i < n; i++) inertia += ref.dist[i];
    expect(Math.abs(r.inertia - inertia) / inertia).toBeLessThan(1e-5);
  });

  it('reads an assignment whose slot was reused by computing it again, and sums it from the host copy', async () => {
    const addon = fakeAddon();
    const be = cudaBackendFrom(addon);
    const n = 200;
    const x = blobs(n, 2);
    const dx = be.upload({ data: x, nRows: n, nFeatures: 3 });
    const cs = [0, 1, 2].map((s) => blobs(4, 10 + s));
    const a = await be.assign(dx, cs[0], 4);
    const b = await be.assign(dx, cs[1], 4, a);
    const c = await be.assign(dx, cs[2], 4, b);
    expect(addon.traffic.prevUploads).toBe(0);
    // c and b are on the device; a's slot now holds c.
    const assignsBefore = addon.traffic.assigns;
    const ra = await a.read();
    expect(addon.traffic.assigns).toBe(assignsBefore + 1); // computed again
    expect(Array.from(ra.labels)).toEqual(Array.from(refAssign(x, n, 3, cs[0], 4).labels));
    const rc = await c.read();
    expect(Array.from(rc.labels)).toEqual(Array.from(refAssign(x, n, 3, cs[2], 4).labels));
    // Counting changes against an assignment no longer on the device uploads its host labels.
    const evicted: Assignment = a;
    const uploads = addon.traffic.prevUploads;
    const d = await be.assign(dx, cs[1], 4, evicted);
    expect(addon.traffic.prevUploads).toBe(uploads + 1);
    let changed = 0;
    const rd = refAssign(x, n, 3, cs[1], 4).labels;
    for (let i = 0; i < n; i++) if (rd[i] !== ra.labels[i]) changed++;
    expect(d.nChanged).toBe(changed);
    // Segment sums come fused with each assignment, even one whose slot was reused: no addon
    // call. An assignment from elsewhere (a host one) is summed from its labels; one with
    // another k goes through the device labels while they are there.
    const calls = () => addon.traffic.hostSums + addon.traffic.deviceSums;
    const before = calls();
    const s = await be.segmentSum(dx, a, 4);
    expect(calls()).toBe(before);
    expect(Array.from(s.sums)).toEqual(Array.from(refSegmentSum(x, n, 3, ra.labels, 4).sums));
    s.sums[0] = NaN; // a copy: the next call is not changed by it
    expect((await be.segmentSum(dx, a, 4)).sums[0]).toBe(refSegmentSum(x, n, 3, ra.labels, 4).sums[0]);
    const foreign: Assignment = { inertia: 0, nChanged: 0, read: async () => ({ labels: ra.labels, distances: ra.distances }) };
    const host = addon.traffic.hostSums;
    expect(Array.from((await be.segmentSum(dx, foreign, 4)).sums)).toEqual(Array.from(refSegmentSum(x, n, 3, ra.labels, 4).sums));
    expect(addon.traffic.hostSums).toBe(host + 1);
    const dev = addon.traffic.deviceSums;
    await be.segmentSum(dx, d, 5);
    expect(addon.traffic.deviceSums).toBe(dev + 1);
    // Reads are cached: a second read moves nothing.
    const reads = addon.traffic.reads;
    expect(await c.read()).toBe(await c.read());
    expect(addon.traffic.reads).toBe(reads);
    be.release(dx);
    await expect(d.read()).rejects.toThrow(/released/);
  });

  it('seeds k-means++ on the device: the host path\'s centres from the same draws, no row arrays across the bus, and the host path when the device has no room', async () => {
    const n = 5000; // three sampling blocks
    const d = 3;
    const k = 12;
    const r = rng(9);
    const data = new Float32Array(n * d).map(() => (r() - 0.5) * 10);
    const w = new Float32Array(n).map(() => 0.5 + 2 * r());
    const seedWith = async (opts: { streamed?: boolean; seedOom?: boolean }) => {
      const addon = fakeAddon(opts);
      const be = cudaBackendFrom(addon);
      const m = { data, nRows: n, nFeatures: d };
      const dx = be.upload(m, w);
      const centers = await kmeansPlusPlus(be, dx, m, k, new Random(4));
      be.release(dx);
      return { centers, traffic: addon.traffic };
    };
    const device = await seedWith({});
    const host = await seedWith({ streamed: true });
    const noRoom = await seedWith({ seedOom: true });
    expect(Array.from(device.centers)).toEqual(Array.from(host.centers));
    expect(Array.from(noRoom.centers)).toEqual(Array.from(host.centers));
    // 1 start, then per step a draw and the potentials, and a take for all but the last.
    expect(device.traffic.seedCalls).toBe(1 + 3 * (k - 1) - 1);
    expect(device.traffic.rowArrays).toBe(0);
    expect(host.traffic.seedCalls).toBe(0);
    expect(host.traffic.rowArrays).toBeGreaterThanOrEqual(k - 1);
    expect(noRoom.traffic.seedCalls).toBe(1);
  });

  it('finds eps-neighbourhoods with the device kernel (a count pass, then a list pass from its offsets), and on streamed rows with the host scan: the same answer', async () => {
    const n = 300;
    const d = 3;
    const r = rng(12);
    const data = new Float32Array(n * d).map(() => Math.floor(r() * 4)); // a lattice: ties at eps
    const w = new Float32Array(n).map(() => 0.5 + r());
    const run = async (streamed: boolean, mode: 'count' | 'list') => {
      const addon = fakeAddon({ streamed });
      const be = cudaBackendFrom(addon);
      const dx = be.upload({ data, nRows: n, nFeatures: d }, w);
      const out = await be.radiusNeighbours(dx, { start: 50, end: 170 }, 2, mode, { start: 20, end: 260 });
      be.release(dx);
      return { out, traffic: addon.traffic };
    };
    for (const mode of ['count', 'list'] as const) {
      const device = await run(false, mode);
      const host = await run(true, mode);
      expect(device.traffic.deviceRadius).toBe(mode === 'count' ? 1 : 2);
      expect(device.traffic.rowArrays).toBe(0);
      expect(host.traffic.deviceRadius).toBe(0);
      expect(Array.from(device.out.counts)).toEqual(Array.from(host.out.counts));
      expect(device.out.offsets && Array.from(device.out.offsets)).toEqual(host.out.offsets && Array.from(host.out.offsets));
      expect(device.out.indices && Array.from(device.out.indices)).toEqual(host.out.indices && Array.from(host.out.indices));
    }
  });
});
