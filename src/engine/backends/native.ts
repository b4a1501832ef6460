/**
 * The `native` backend: C++ kernels from `kernels/cpu` (N-API addon), multithreaded, with
 * AVX-512, AVX2 or baseline SIMD chosen at load time.
 *
 * `assign` runs the fused Lloyd step: one pass over the data gives labels, exact distances,
 * inertia and the per-cluster sums for the new labels, which `segmentSum` then returns without
 * reading the data again. `potentials` (k-means++) and `clusterDistanceSums` (silhouette) are
 * kernels too, with no nRows × m or nRows × nRows intermediate. Every float64 reduction is done
 * over fixed row blocks added in block order (or, for the silhouette, per row in a fixed column
 * order), so results do not depend on the thread count. The Lloyd loop's label and distance
 * buffers are recycled (see NativeAssignment), since fresh pages cost more than the kernel.
 *
 * @example
 * const be = await createNativeBackend();
 * const x = be.upload({ data, nRows, nFeatures });
 * const a = await be.assign(x, centroids, k);
 * const { sums, counts } = await be.segmentSum(x, a, k); // no second pass
 */
import {
  BackendUnavailableError,
  type Assignment,
  type Backend,
  type DeviceMatrix,
  type Matrix,
  type SegmentSums,
} from '../backend.js';
import { NATIVE_ADDON_PATH, loadNativeModule } from '../../util/native-addon.js';

/** The addon's exports (kernels/cpu/addon.cc). @internal */
export interface NativeAddon {
  assign(
    x: Float32Array,
    nRows: number,
    d: number,
    centroids: Float32Array,
    k: number,
    weights: Float32Array | null,
    prevLabels: Int32Array | null,
    outLabels: Int32Array,
    outDist: Float32Array,
    shift?: Float32Array | null,
    outSums?: Float64Array | null,
    outCounts?: Float64Array | null,
    /** In and out: Hamerly bounds for prevLabels (see kernels.h, AssignJob::bounds). */
    bounds?: Float32Array | null,
    /** How far any centroid moved since the bounds were written. */
    drift?: number,
  ): { inertia: number; nChanged: number; nPruned: number };
  segmentSum(
    x: Float32Array,
    nRows: number,
    d: number,
    labels: Int32Array,
    k: number,
    weights: Float32Array | null,
  ): { sums: Float64Array; counts: Float64Array };
  /** Squared distances, nRows × m; written into `out` (and returned) when given. */
  distances(x: Float32Array, nRows: number, d: number, centers: Float32Array, m: number, out?: Float32Array | null): Float32Array;
  /** Σ w·min(closest, ‖x − c‖²) per candidate, float64, reduced in fixed block order. */
  potentials(
    x: Float32Array,
    nRows: number,
    d: number,
    closest: Float32Array,
    candidates: Float32Array,
    m: number,
    weights: Float32Array | null,
  ): Float64Array;
  /** closest = min(closest, ‖x − center‖²) in place, then cum = Σ w·closest in row order (k-means++). */
  updateClosest(x: Float32Array, nRows: number, d: number, center: Float32Array, closest: Float32Array, weights: Float32Array | null, cum: Float64Array): void;
  /** out[i·k + l] = Σ ‖xᵢ − xⱼ‖ over rows j with label l (nRows × k, float64). */
  clusterDistanceSums(x: Float32Array, nRows: number, d: number, labels: Int32Array, k: number): Float64Array;
  columnMeans(x: Float32Array, nRows: number, d: number): Float32Array;
  /** One multithreaded streaming read of x (a sum): the memory floor, for benchmarks. */
  streamRead(x: Float32Array): number;
  setThreads(n: number): void;
  setIsa(isa: 'auto' | 'baseline' | 'avx2' | 'avx512'): void;
  info(): { isa: string; lanes: number; threads: number; isas: string[] };
}

export { NATIVE_ADDON_PATH };

/** Options of {@link createNativeBackend}. */
export interface NativeBackendOptions {
  /** Worker threads, the caller included. Default: `SEGTENSOR_THREADS`, else every hardware thread. */
  threads?: number;
  /**
   * Accumulate the segment sums of the new labels during `assign` (one pass per Lloyd
   * iteration instead of two). Default true; costs k × d float64 per assignment.
   */
  fuseSegmentSum?: boolean;
  /**
   * Keep Hamerly bounds across the steps of a Lloyd loop so that rows far enough inside their
   * cluster are not scored; the labels, distances and sums stay the same bit for bit. Default
   * true; costs 4 bytes per row. False is for measuring what they save.
   */
  bounds?: boolean;
}

const DEFAULTS: Readonly<Required<Omit<NativeBackendOptions, 'threads'>>> = Object.freeze({ fuseSegmentSum: true, bounds: true });

/**
 * Loads the addon once; throws {@link BackendUnavailableError} with a one-line reason.
 * @internal
 */
export function loadNativeAddon(): NativeAddon {
  const r = loadNativeModule();
  if ('error' in r) throw new BackendUnavailableError('native', r.error);
  return r.module as NativeAddon;
}

/** @internal */
class NativeMatrix implements DeviceMatrix {
  released = false;
  /**
   * One Hamerly bounds buffer per matrix, reused by every Lloyd chain on it (fresh pages cost
   * ~4 ms per MiB on some VMs: 16 ms per restart at 1M rows), and the assignment that holds it;
   * a new chain takes it over and clears the holder's reference, so an assignment's non-null
   * `bounds` are always this buffer, valid for its labels.
   */
  boundsBuf: Float32Array | null = null;
  boundsOwner: NativeAssignment | null = null;
  constructor(
    readonly data: Float32Array,
    readonly nRows: number,
    readonly nFeatures: number,
    readonly weights: Float32Array | null,
    readonly totalWeight: number,
    /** Column means: the origin for ‖x‖² − 2x·c + ‖c‖², which keeps cancellation small. */
    readonly shift: Float32Array,
  ) {}
}

/**
 * An assignment's labels and distances. Fresh pages cost more than the assign kernel itself on
 * big data (first-touch faults), so the Lloyd loop's buffers are recycled: when `assign` is
 * given `previous` = P, the assignment P itself was computed against (its `previous`, G) can
 * no longer be needed by that loop, and G's buffers become the new output, unless G's arrays
 * ever left the backend through {@link read}. A recycled assignment keeps its centroids and
 * recomputes its labels on a later `read` (the kernels are deterministic: the same labels and
 * distances, bit for bit), so a caller that kept it still gets the right answer.
 * @internal
 */
class NativeAssignment implements Assignment {
  /** Null once recycled. */
  labels: Int32Array | null;
  distances: Float32Array | null;
  /** read() handed the arrays to a caller: they are never recycled. */
  escaped = false;
  constructor(
    readonly inertia: number,
    readonly nChanged: number,
    labels: Int32Array,
    distances: Float32Array,
    /** The fused step's Σw·x and Σw for these labels, or null when not fused. */
    readonly sums: SegmentSums | null,
    readonly x: NativeMatrix,
    readonly k: number,
    /** A copy of the centroids, to recompute a recycled assignment. */
    readonly centroids: Float32Array,
    /** The `previous` this was computed against (same matrix), whose buffers the next step may take. */
    public previous: NativeAssignment | null,
    private readonly recompute: (a: NativeAssignment) => void,
    /**
     * Hamerly bounds for these labels and centroids (see the addon's `assign`), handed on to
     * the next step of the chain, which takes them; null when none were kept.
     */
    public bounds: Float32Array | null = null,
    /** Rows the bounds test kept without scoring them. */
    readonly nPruned = 0,
  ) {
    this.labels = labels;
    this.distances = distances;
  }

  /** Labels for a synchronous kernel call (they do not escape), recomputed if recycled. */
  kernelLabels(): Int32Array {
    if (!this.labels) this.recompute(this);
    return this.labels!;
  }

  /** Gives up the buffers to a new assignment, if nothing outside the backend can see them. */
  take(): { labels: Int32Array; distances: Float32Array } | null {
    if (this.escaped || !this.labels || !this.distances) return null;
    const out = { labels: this.labels, distances: this.distances };
    this.labels = null;
    this.distances = null;
    return out;
  }

  async read(): Promise<{ labels: Int32Array; distances: Float32Array }> {
    if (!this.labels) this.recompute(this);
    this.escaped = true;
    this.previous = null;
    return { labels: this.labels!, distances: this.distances! };
  }
}

/**
 * Whether Hamerly bounds pay for k centroids in d features: only the small-k kernels (k up to
 * one vector of `lanes`) take them, and they score 4, 8 or `lanes` centroids a row; below 256
 * multiply-adds a row, the test and the bounds cost more than the scores they save (measured
 * on 200k rows of blobs: d = 4, k = 4 takes 1.8× as long with them, d = 32, k = 16 0.8×,
 * d = 128, k = 8 0.45×).
 * @internal
 */
export function boundsPay(k: number, d: number, lanes: number): boolean {
  if (k > lanes) return false;
  const scored = k <= 4 ? 4 : k <= 8 ? 8 : lanes;
  return scored * d >= 256;
}

/**
 * The farthest any centroid moved from `before` to `after` (k × d), as an upper bound: float64
 * sums of float32 differences, widened by far more than their rounding.
 * @internal
 */
export function maxMove(before: Float32Array, after: Float32Array, k: number, d: number): number {
  let most = 0;
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = after[j * d + f] - before[j * d + f];
      s += t * t;
    }
    if (!(s <= most)) most = s; // NaN propagates, and the addon refuses it
  }
  return Math.sqrt(most) * (1 + 1e-9);
}

function asNative(x: DeviceMatrix): NativeMatrix {
  if (!(x instanceof NativeMatrix)) throw new TypeError('native backend: the matrix was uploaded to another backend');
  if (x.released) throw new Error('native backend: the matrix was released');
  return x;
}

/**
 * Creates the native backend, or throws {@link BackendUnavailableError} when the addon is not
 * built or cannot load here.
 */
export async function createNativeBackend(options: NativeBackendOptions = {}): Promise<Backend> {
  const addon = loadNativeAddon();
  if (options.threads !== undefined) addon.setThreads(options.threads);
  const fuse = options.fuseSegmentSum ?? DEFAULTS.fuseSegmentSum;
  const usesBounds = options.bounds ?? DEFAULTS.bounds;
  const info = addon.info();

  /** Labels and distances of a recycled assignment, computed again from its centroids. */
  const recompute = (a: NativeAssignment): void => {
    const x = asNative(a.x);
    const labels = new Int32Array(x.nRows);
    const dist = new Float32Array(x.nRows);
    addon.assign(x.data, x.nRows, x.nFeatures, a.centroids, a.k, x.weights, null, labels, dist, x.shift, null, null);
    a.labels = labels;
    a.distances = dist;
  };

  const be: Backend = {
    name: 'native',
    description: `native C++ kernels (${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'})`,

    upload(x: Matrix, weights?: Float32Array | null): DeviceMatrix {
      const w = weights ?? null;
      let total = x.nRows;
      if (w) {
        total = 0;
        for (let i = 0; i < w.length; i++) total += w[i];
      }
      const shift = addon.columnMeans(x.data, x.nRows, x.nFeatures);
      return new NativeMatrix(x.data, x.nRows, x.nFeatures, w, total, shift);
    },

    release(x: DeviceMatrix): void {
      if (x instanceof NativeMatrix) {
        x.released = true;
        x.boundsBuf = null;
        x.boundsOwner = null;
      }
    },

    async assign(xd: DeviceMatrix, centroids: Float32Array, k: number, previous?: Assignment): Promise<Assignment> {
      const x = asNative(xd);
      const d = x.nFeatures;
      let prev: Int32Array | null = null;
      let chain: NativeAssignment | null = null;
      if (previous instanceof NativeAssignment) {
        prev = previous.kernelLabels();
        if (previous.x === x) chain = previous;
      } else if (previous) prev = (await previous.read()).labels;
      const recycled = chain?.previous?.take() ?? null;
      if (chain) chain.previous = null;
      const labels = recycled?.labels ?? new Int32Array(x.nRows);
      const dist = recycled?.distances ?? new Float32Array(x.nRows);
      const sums = fuse ? new Float64Array(k * d) : null;
      const counts = fuse ? new Float64Array(k) : null;
      // Within a chain (the Lloyd loop), the first step writes Hamerly bounds and each later
      // one takes its predecessor's, so rows far enough inside their cluster are not scored
      // (same labels, bit for bit), where that pays (boundsPay).
      let bounds: Float32Array | null = null;
      let drift = 0;
      if (chain && usesBounds && boundsPay(k, d, info.lanes)) {
        if (chain.bounds && chain.k === k) {
          bounds = chain.bounds;
          chain.bounds = null;
          drift = maxMove(chain.centroids, centroids, k, d);
        } else {
          bounds = x.boundsBuf ??= new Float32Array(x.nRows);
          if (x.boundsOwner) x.boundsOwner.bounds = null;
          bounds.fill(0); // zero bounds never pass the test
        }
      }
      const r = addon.assign(x.data, x.nRows, d, centroids, k, x.weights, prev, labels, dist, x.shift, sums, counts, bounds, drift);
      const fused = sums && counts ? { sums, counts } : null;
      const a = new NativeAssignment(r.inertia, r.nChanged, labels, dist, fused, x, k, centroids.slice(0, k * d), chain, recompute, bounds, r.nPruned);
      if (bounds) x.boundsOwner = a;
      return a;
    },

    async segmentSum(xd: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
      const x = asNative(xd);
      if (a instanceof NativeAssignment && a.sums && a.x === x && a.k === k) {
        // Copies, so a caller that updates the sums in place cannot corrupt a second call.
        return { sums: a.sums.sums.slice(), counts: a.sums.counts.slice() };
      }
      const labels = a instanceof NativeAssignment ? a.kernelLabels() : (await a.read()).labels;
      return addon.segmentSum(x.data, x.nRows, x.nFeatures, labels, k, x.weights);
    },

    async distances(xd: DeviceMatrix, centers: Float32Array, m: number, out?: Float32Array): Promise<Float32Array> {
      const x = asNative(xd);
      return addon.distances(x.data, x.nRows, x.nFeatures, centers, m, out ?? null);
    },

    async potentials(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
      const x = asNative(xd);
      return addon.potentials(x.data, x.nRows, x.nFeatures, closest, candidates, m, x.weights);
    },

    async updateClosest(xd: DeviceMatrix, center: Float32Array, closest: Float32Array, cum: Float64Array): Promise<void> {
      const x = asNative(xd);
      addon.updateClosest(x.data, x.nRows, x.nFeatures, center, closest, x.weights, cum);
    },

    async clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number): Promise<Float64Array> {
      const x = asNative(xd);
      return addon.clusterDistanceSums(x.data, x.nRows, x.nFeatures, labels, k);
    },
  };
  return be;
}
