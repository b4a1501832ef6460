/**
 * The `cuda` backend: kernels from `kernels/cuda` (tiled fused assignment, deterministic segment
 * sums, and the mixture and PCA steps: x·W, soft sums and scatter matrices, float64 partials per
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
 * `radiusNeighbours` (DBSCAN) has no CUDA kernel yet: it is the shared host scan over blocks of
 * this backend's `distances` (host.ts), the float32 distances from the GPU and the float64
 * decisions near eps on the host.
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
  type Assignment,
  type Backend,
  type DeviceMatrix,
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
      const r = addon.assign(x.handle, centroids, k, prev, prevGen, null, null);
      return new CudaAssignment(r.inertia, r.nChanged, r.gen, x, k, centroids.slice(0, k * x.nFeatures), addon);
    },

    async segmentSum(xd: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
      const x = asCuda(xd);
      const sums = new Float64Array(k * x.nFeatures);
      const counts = new Float64Array(k);
      if (a instanceof CudaAssignment && a.x === x && a.onDevice()) addon.segmentSum(x.handle, null, a.gen, k, sums, counts);
      else addon.segmentSum(x.handle, (await a.read()).labels, -1, k, sums, counts);
      return { sums, counts };
    },

    async distances(xd: DeviceMatrix, centers: Float32Array, m: number, out = new Float32Array(xd.nRows * m)): Promise<Float32Array> {
      const x = asCuda(xd);
      addon.distances(x.handle, centers, m, out);
      return out;
    },

    async potentials(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
      return addon.potentials(asCuda(xd).handle, closest, candidates, m);
    },

    async clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
      const x = asCuda(xd);
      return addon.clusterDistanceSums(x.handle, x.host, labels, k, rows?.start ?? 0, rows?.end ?? x.nRows);
    },

    async project(xd: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
      const x = asCuda(xd);
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      const res = out ?? new Float32Array((r1 - r0) * m);
      addon.project(x.handle, w, m, r0, r1, res);
      return res;
    },

    async softSums(xd: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
      const x = asCuda(xd);
      const sums = new Float64Array(m * x.nFeatures);
      const counts = new Float64Array(m);
      addon.softSums(x.handle, r, m, rows?.start ?? 0, rows?.end ?? x.nRows, sums, counts);
      return { sums, counts };
    },

    async scatter(xd: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
      const x = asCuda(xd);
      const out = new Float64Array(m * x.nFeatures * x.nFeatures);
      addon.scatter(x.handle, r, m, means, rows?.start ?? 0, rows?.end ?? x.nRows, out);
      return out;
    },

    // No CUDA kernel for it yet: blocks of the GPU's `distances`, scanned on the host (host.ts).
    async radiusNeighbours(xd: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list'): Promise<RadiusNeighbours> {
      const x = asCuda(xd);
      return radiusNeighboursHost(be, x, x.host, queries, eps, mode);
    },
  };
  return be;
}
