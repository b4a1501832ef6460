/**
 * The `cuda` backend: kernels from `kernels/cuda` (tiled assignment with the segment sums fused
 * into it, in fixed point, so a Lloyd step reads the data once and its sums are the same bits in
 * any order, and the mixture and PCA steps: x·W, soft sums and scatter matrices, float64 partials per
 * block of rows added in block order), data uploaded once and kept in GPU memory across
 * iterations. The labels and distances of the last two assignments stay on the device: a Lloyd
 * step sends k·d floats and gets a few numbers back, and labels cross the bus only when a caller
 * reads them. An assignment whose device slot was since reused is computed again from its
 * centroids on read (the kernels are deterministic: the same bits). Data larger than free GPU
 * memory stays on the host (this matrix's `host` array, which must outlive it) and each pass
 * streams it through the device in chunks, with the same results bit for bit (the mixture steps
 * stream their responsibilities or output with it, and keep their bits while the chunk is no
 * shorter than their blocks of rows).
 *
 * `radiusNeighbours` (DBSCAN) runs its own kernel on resident rows (kernels/cuda/radius.cuh: float32
 * direct distances screened, float64 sums near eps, so the decisions are the float64 ones); on
 * streamed rows it is the shared host scan over blocks of this backend's `distances` (host.ts).
 *
 * Device memory: an op whose per-call device buffers grow with a dimension the caller chose
 * retries, when the device runs out of memory ({@link isDeviceOutOfMemory}), in pieces of half
 * that dimension, then a quarter, down to a floor ({@link retryInPieces}): `distances` over its
 * centers (down to one; so the host `radiusNeighbours` too) and `potentials` over its candidates
 * (down to one), both the same bits (each output is one center's or candidate's own sum);
 * `clusterDistanceSums` and `project` over their rows (down to {@link MIN_RETRY_ROWS}), the same
 * bits (each output row is computed alone); `softSums` and `scatter` over their rows, the pieces'
 * float64 sums added in row order (so they agree with the whole call to float64 rounding, not
 * bit for bit). `upload`, `assign`, `segmentSum` and reading an assignment have no such
 * dimension (their buffers are per row of the whole matrix, or the sums' partials, already
 * budgeted on the device) and raise the error at once: resolveBackend's wrapper (../fallback.ts)
 * then continues on `native`.
 *
 * Unavailable (with the CUDA runtime's own reason) when the addon is not built, there is no
 * device, or the driver is older than the runtime.
 *
 * @example
 * const be = await createCudaBackend();
 * const x = be.upload({ data, nRows, nFeatures });
 * const a = await be.assign(x, centroids, k);
 */
import {
  BackendUnavailableError,
  isDeviceOutOfMemory,
  type Assignment,
  type Backend,
  type DeviceMatrix,
  type DeviceSeeding,
  type RowRange,
  type Matrix,
  type RadiusNeighbours,
  type SegmentSums,
} from '../backend.js';
import { radiusNeighboursHost } from './host.js';
import { loadAddon } from '../../util/native-addon.js';
import { columnMeans, totalWeight } from '../scoring.js';

/** The addon's exports (kernels/cuda/addon.cc). @internal */
export interface CudaAddon {
  probe(): { ok: true; name: string; freeBytes: number; totalBytes: number } | { ok: false; reason: string };
  upload(x: Float32Array, nRows: number, d: number, weights: Float32Array | null, shift: Float32Array): unknown;
  release(h: unknown): void;
  assign(
    h: unknown,
    centroids: Float32Array,
    k: number,
    prevLabels: Int32Array | null,
    prevGen: number,
    outLabels: Int32Array | null,
    outDist: Float32Array | null,
    /** Σw·x (k × d) and Σw (k) of the new labels, added by the assignment kernel itself (fused), or null. */
    outSums?: Float64Array | null,
    outCounts?: Float64Array | null,
  ): { inertia: number; nChanged: number; gen: number };
  /** Whether generation `gen` is still in a device slot. */
  resident(h: unknown, gen: number): boolean;
  /** Host copies of a resident generation's labels and distances. */
  read(h: unknown, gen: number, outLabels: Int32Array, outDist: Float32Array): void;
  segmentSum(h: unknown, labels: Int32Array | null, gen: number, k: number, sums: Float64Array, counts: Float64Array): void;
  distances(h: unknown, centers: Float32Array, m: number, out: Float32Array): void;
  /** Σ w·min(closest, ‖x − c‖²) per candidate, float64, per-block partials added in block order. */
  potentials(h: unknown, closest: Float32Array, candidates: Float32Array, m: number): Float64Array;
  /** nRows × k silhouette sums; `host` is the uploaded matrix's host copy (columns are sorted from it). */
  clusterDistanceSums(h: unknown, host: Float32Array, labels: Int32Array, k: number, r0: number, r1: number): Float64Array;
  /**
   * DBSCAN's neighbourhoods on the device (kernels/cuda/radius.cuh), resident rows only: the
   * count pass (offsets null) fills outCounts and outFound; the list pass (offsets from it) fills
   * outCounts and outIndices. Returns the pairs the float64 sum decided. Optional: stand-ins
   * without it get the host scan.
   */
  radius?(
    h: unknown,
    q0: number,
    q1: number,
    eps2: number,
    offsets: Int32Array | null,
    outCounts: Float64Array,
    outFound: Int32Array | null,
    outIndices: Int32Array | null,
    c0?: number,
    c1?: number,
  ): number;
  /** Whether the rows stream from the host (no device k-means++ then). */
  streamed(h: unknown): boolean;
  /** Device k-means++ (kernels/cuda/seed.cuh): see {@link DeviceSeeding}. */
  seedStart(h: unknown, center: Float32Array, trials: number): number;
  seedDraw(h: unknown, targets: Float64Array, m: number): Int32Array;
  seedPotentials(h: unknown, candidates: Float32Array, m: number): Float64Array;
  seedTake(h: unknown, j: number): number;
  /** out ((r1 − r0) × m) = rows [r0, r1) of x times w (d × m row-major). */
  project(h: unknown, w: Float32Array, m: number, r0: number, r1: number, out: Float32Array): void;
  /** Σ w·r[i, j]·xᵢ (m × d) and Σ w·r[i, j] (m) over rows [r0, r1), r (r1 − r0) × m; float64, fixed block order. */
  softSums(h: unknown, r: Float32Array, m: number, r0: number, r1: number, sums: Float64Array, counts: Float64Array): void;
  /** m × d × d centred scatter matrices over rows [r0, r1) (r null: m = 1, all ones); float64, fixed block order. */
  scatter(h: unknown, r: Float32Array | null, m: number, means: Float64Array, r0: number, r1: number, out: Float64Array): void;
}

/** Where kernels/cuda/build.mjs puts the addon, relative to the repository root. @internal */
export const CUDA_ADDON_PATH = 'kernels/build/Release/segtensor_cuda.node';

/** Loads the CUDA addon; throws {@link BackendUnavailableError} if it is not built or cannot load. @internal */
export function loadCudaAddon(): CudaAddon {
  const r = loadAddon(CUDA_ADDON_PATH, 'SEGTENSOR_CUDA_ADDON', 'needs nvcc at install time');
  if ('error' in r) throw new BackendUnavailableError('cuda', r.error);
  return r.module as CudaAddon;
}

/** @internal */
class CudaMatrix implements DeviceMatrix {
  released = false;
  constructor(
    readonly handle: unknown,
    readonly nRows: number,
    readonly nFeatures: number,
    readonly weights: Float32Array | null,
    readonly totalWeight: number,
    /** The host copy (clusterDistanceSums sorts its columns from it). */
    readonly host: Float32Array,
  ) {}
}

/** @internal */
class CudaAssignment implements Assignment {
  /** Host copies, fetched on the first read. */
  private host: { labels: Int32Array; distances: Float32Array } | null = null;
  constructor(
    readonly inertia: number,
    readonly nChanged: number,
    /** The device slot generation holding these labels (the slot may since be reused). */
    readonly gen: number,
    readonly x: CudaMatrix,
    readonly k: number,
    /** A copy of the centroids, to compute the labels again once the slot is reused. */
    readonly centroids: Float32Array,
    private readonly addon: CudaAddon,
    /** The fused segment sums of these labels (the assignment kernel added them). */
    readonly sums: SegmentSums,
  ) {}

  /** Whether the kernels can use the device copy of these labels. */
  onDevice(): boolean {
    return !this.x.released && this.addon.resident(this.x.handle, this.gen);
  }

  async read(): Promise<{ labels: Int32Array; distances: Float32Array }> {
    if (this.host) return this.host;
    const labels = new Int32Array(this.x.nRows);
    const distances = new Float32Array(this.x.nRows);
    if (this.onDevice()) this.addon.read(this.x.handle, this.gen, labels, distances);
    else this.addon.assign(asCuda(this.x).handle, this.centroids, this.k, null, -1, labels, distances);
    this.host = { labels, distances };
    return this.host;
  }
}

/**
 * The smallest piece of rows a retry on device out-of-memory tries: a multiple of every kernel's
 * block of rows (128 for x·W and the silhouette sums, 256 for the soft sums' smallest streamed
 * chunk), and small enough that its buffers are a few MiB even at k in the thousands. @internal
 */
export const MIN_RETRY_ROWS = 256;

/**
 * Runs `run(a, b)` over [0, total) whole; when the device runs out of memory, again from where
 * it failed in pieces of half the length, then a quarter, and so on (multiples of `align`), no
 * shorter than `floor`, rethrowing the error once a piece of `floor` fails too. Pieces that
 * finished are kept: `run` must write only its own piece's output, and only once it succeeded.
 * Returns the piece length that completed the call (`total` when no retry was needed).
 * A failed attempt costs little: every op allocates its device buffers before it copies or
 * launches anything. @internal
 *
 * @example
 * retryInPieces(m, 1, 1, (j0, j1) => addon.potentials(h, closest, cands.subarray(j0 * d, j1 * d), j1 - j0));
 */
export function retryInPieces(total: number, floor: number, align: number, run: (a: number, b: number) => void): number {
  let piece = Math.max(1, total);
  let at = 0;
  for (;;) {
    try {
      while (at < total) {
        const b = Math.min(total, at + piece);
        run(at, b);
        at = b;
      }
      return piece;
    } catch (e) {
      if (!isDeviceOutOfMemory(e) || piece <= floor) throw e;
      piece = Math.max(floor, Math.ceil(Math.ceil(piece / 2) / align) * align);
    }
  }
}

function asCuda(x: DeviceMatrix): CudaMatrix {
  if (!(x instanceof CudaMatrix)) throw new TypeError('cuda backend: the matrix was uploaded to another backend');
  if (x.released) throw new Error('cuda backend: the matrix was released');
  return x;
}

/** Creates the CUDA backend, or throws {@link BackendUnavailableError} with the reason CUDA cannot run. */
export async function createCudaBackend(): Promise<Backend> {
  return cudaBackendFrom(loadCudaAddon());
}

/**
 * The backend over a given addon: the built one, or a stand-in with the same contract (the
 * tests check the host-side protocol with one on machines without a GPU). @internal
 */
export function cudaBackendFrom(addon: CudaAddon): Backend {
  const probe = addon.probe();
  if (!probe.ok) throw new BackendUnavailableError('cuda', probe.reason);
  const gib = (probe.totalBytes / 2 ** 30).toFixed(0);

  const be: Backend = {
    name: 'cuda',
    description: `CUDA kernels on ${probe.name} (${gib} GiB)`,

    upload(x: Matrix, weights?: Float32Array | null): DeviceMatrix {
      const w = weights ?? null;
      const h = addon.upload(x.data, x.nRows, x.nFeatures, w, columnMeans(x.data, x.nRows, x.nFeatures));
      return new CudaMatrix(h, x.nRows, x.nFeatures, w, totalWeight(x.nRows, w), x.data);
    },

    release(x: DeviceMatrix): void {
      if (x instanceof CudaMatrix && !x.released) {
        x.released = true;
        addon.release(x.handle);
      }
    },

    async assign(xd: DeviceMatrix, centroids: Float32Array, k: number, previous?: Assignment): Promise<Assignment> {
      const x = asCuda(xd);
      // Changes are counted against the device copy of previous when it is still there.
      let prev: Int32Array | null = null;
      let prevGen = -1;
      if (previous instanceof CudaAssignment && previous.x === x && previous.onDevice()) prevGen = previous.gen;
      else if (previous) prev = (await previous.read()).labels;
      // The segment sums come with every assignment: the kernel adds each row into its label's
      // fixed-point sums as it labels it, so a Lloyd step reads the data once (kernels/cuda/fixed.cuh).
      const sums = new Float64Array(k * x.nFeatures);
      const counts = new Float64Array(k);
      const r = addon.assign(x.handle, centroids, k, prev, prevGen, null, null, sums, counts);
      return new CudaAssignment(r.inertia, r.nChanged, r.gen, x, k, centroids.slice(0, k * x.nFeatures), addon, { sums, counts });
    },

    async segmentSum(xd: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
      const x = asCuda(xd);
      // Copies, so a caller that updates them in place cannot change a second call's answer.
      if (a instanceof CudaAssignment && a.x === x && a.k === k) return { sums: a.sums.sums.slice(), counts: a.sums.counts.slice() };
      const sums = new Float64Array(k * x.nFeatures);
      const counts = new Float64Array(k);
      if (a instanceof CudaAssignment && a.x === x && a.onDevice()) addon.segmentSum(x.handle, null, a.gen, k, sums, counts);
      else addon.segmentSum(x.handle, (await a.read()).labels, -1, k, sums, counts);
      return { sums, counts };
    },

    // Greedy k-means++ on the device for resident rows: closest and the sampling sums stay there.
    seeding(xd: DeviceMatrix): DeviceSeeding | null {
      const x = asCuda(xd);
      if (addon.streamed(x.handle)) return null;
      const h = x.handle;
      return {
        start: (center, trials) => addon.seedStart(h, center, trials),
        draw: (targets) => addon.seedDraw(h, targets, targets.length),
        potentials: (candidates, m) => addon.seedPotentials(h, candidates, m),
        take: (j) => addon.seedTake(h, j),
      };
    },

    async distances(xd: DeviceMatrix, centers: Float32Array, m: number, out = new Float32Array(xd.nRows * m)): Promise<Float32Array> {
      const x = asCuda(xd);
      const n = x.nRows;
      const d = x.nFeatures;
      // The device holds nRows × (centers of the call) distances: on out-of-memory, fewer
      // centers a call, each piece's columns copied into place (every entry is its own sum).
      retryInPieces(m, 1, 1, (j0, j1) => {
        if (j1 - j0 === m) return addon.distances(x.handle, centers, m, out);
        const mm = j1 - j0;
        const part = new Float32Array(n * mm);
        addon.distances(x.handle, centers.subarray(j0 * d, j1 * d), mm, part);
        for (let i = 0; i < n; i++) out.set(part.subarray(i * mm, (i + 1) * mm), i * m + j0);
      });
      return out;
    },

    async potentials(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
      const x = asCuda(xd);
      const d = x.nFeatures;
      // Per-block partials per candidate: fewer candidates a call on out-of-memory (each
      // candidate's potential is its own sum, in the same block order: the same bits).
      const out = new Float64Array(m);
      retryInPieces(m, 1, 1, (j0, j1) => {
        out.set(j1 - j0 === m ? addon.potentials(x.handle, closest, candidates, m) : addon.potentials(x.handle, closest, candidates.subarray(j0 * d, j1 * d), j1 - j0), j0);
      });
      return out;
    },

    async clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
      const x = asCuda(xd);
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      // A row's sums do not depend on the range: fewer rows a call on out-of-memory.
      const pieces: Float64Array[] = [];
      retryInPieces(r1 - r0, MIN_RETRY_ROWS, MIN_RETRY_ROWS, (a, b) => {
        pieces.push(addon.clusterDistanceSums(x.handle, x.host, labels, k, r0 + a, r0 + b));
      });
      if (pieces.length === 1) return pieces[0];
      const out = new Float64Array((r1 - r0) * k);
      let at = 0;
      for (const p of pieces) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    },

    async project(xd: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
      const x = asCuda(xd);
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      const res = out ?? new Float32Array((r1 - r0) * m);
      // Each output row is computed alone: fewer rows a call on out-of-memory, the same bits.
      retryInPieces(r1 - r0, MIN_RETRY_ROWS, MIN_RETRY_ROWS, (a, b) => {
        addon.project(x.handle, w, m, r0 + a, r0 + b, b - a === r1 - r0 ? res : res.subarray(a * m, b * m));
      });
      return res;
    },

    async softSums(xd: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
      const x = asCuda(xd);
      const d = x.nFeatures;
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      const sums = new Float64Array(m * d);
      const counts = new Float64Array(m);
      // On out-of-memory, the pieces' sums added in row order: float64 rounding apart from the
      // whole call's (its blocks of rows are cut differently).
      retryInPieces(r1 - r0, MIN_RETRY_ROWS, MIN_RETRY_ROWS, (a, b) => {
        if (b - a === r1 - r0) return addon.softSums(x.handle, r, m, r0, r1, sums, counts);
        if (a === 0) {
          // Whatever the failed whole call left.
          sums.fill(0);
          counts.fill(0);
        }
        const s = new Float64Array(m * d);
        const c = new Float64Array(m);
        addon.softSums(x.handle, r.subarray(a * m, b * m), m, r0 + a, r0 + b, s, c);
        for (let e = 0; e < s.length; e++) sums[e] += s[e];
        for (let j = 0; j < m; j++) counts[j] += c[j];
      });
      return { sums, counts };
    },

    async scatter(xd: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
      const x = asCuda(xd);
      const d = x.nFeatures;
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      const out = new Float64Array(m * d * d);
      // As softSums: the pieces' matrices added in row order on out-of-memory.
      retryInPieces(r1 - r0, MIN_RETRY_ROWS, MIN_RETRY_ROWS, (a, b) => {
        if (b - a === r1 - r0) return addon.scatter(x.handle, r, m, means, r0, r1, out);
        if (a === 0) out.fill(0);
        const part = new Float64Array(m * d * d);
        addon.scatter(x.handle, r ? r.subarray(a * m, b * m) : null, m, means, r0 + a, r0 + b, part);
        for (let e = 0; e < part.length; e++) out[e] += part[e];
      });
      return out;
    },

    // The device kernel (radius.cuh) for resident rows: a count pass, then for lists a second
    // pass writing each query's neighbours from its offset. Streamed rows, a stand-in without
    // the kernel, or a device out of memory: blocks of the GPU's `distances` scanned on the host
    // (host.ts), which retries in smaller pieces. Either way the decisions are the float64 sum's.
    async radiusNeighbours(xd: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours> {
      const x = asCuda(xd);
      const c0 = candidates?.start ?? 0;
      const c1 = candidates?.end ?? x.nRows;
      if (!addon.radius || addon.streamed(x.handle)) return radiusNeighboursHost(be, x, x.host, queries, eps, mode, candidates);
      const nq = queries.end - queries.start;
      const eps2 = eps * eps;
      const counts = new Float64Array(nq);
      const found = new Int32Array(nq);
      try {
        const rechecked = addon.radius(x.handle, queries.start, queries.end, eps2, null, counts, found, null, c0, c1);
        if (mode === 'count') return { counts, offsets: null, indices: null, rechecked };
        const offsets = new Int32Array(nq + 1);
        let total = 0;
        for (let q = 0; q < nq; q++) {
          total += found[q];
          if (total > 2 ** 31 - 1) throw new RangeError(`radiusNeighbours: more than 2^31 - 1 neighbours for queries [${queries.start}, ${queries.end}); ask for fewer queries at a time`);
          offsets[q + 1] = total;
        }
        const indices = new Int32Array(total);
        addon.radius(x.handle, queries.start, queries.end, eps2, offsets, counts, null, indices, c0, c1);
        return { counts, offsets, indices, rechecked };
      } catch (e) {
        if (!isDeviceOutOfMemory(e)) throw e;
        return radiusNeighboursHost(be, x, x.host, queries, eps, mode, candidates);
      }
    },
  };
  return be;
}
