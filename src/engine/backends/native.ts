/**
 * The `native` backend: C++ kernels from `kernels/cpu` (N-API addon), multithreaded, with
 * AVX-512, AVX2 or baseline SIMD chosen at load time.
 *
 * `assign` runs the fused Lloyd step: one pass over the data gives labels, exact distances,
 * inertia and the per-cluster sums for the new labels, which `segmentSum` then returns without
 * reading the data again. Along a Lloyd chain with k up to one SIMD vector, Hamerly bounds let a
 * step skip the rows that cannot change label without reading them, and carry the sums and
 * inertia from step to step (see {@link advanceChain}); their distances are computed when read.
 * `potentials` (k-means++) and `clusterDistanceSums` (silhouette) are kernels too, with no
 * nRows × m or nRows × nRows intermediate, and so are the mixture and PCA steps: `project` (x·W
 * in float64), `softSums` and `scatter` (float64 per-column sums and scatter matrices), and
 * DBSCAN's `radiusNeighbours` (a float32 SIMD screen of direct differences, the float64 sum deciding
 * the pairs within its rounding bound of eps², lists merged in block order). Every float64 reduction is done over fixed row blocks added in block order (or, for the silhouette,
 * per row in a fixed column order), so results do not depend on the thread count. The Lloyd
 * loop's label and distance buffers are recycled (see NativeAssignment), since fresh pages cost
 * more than the kernel.
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
  type RowRange,
  type Matrix,
  type RadiusNeighbours,
  type SegmentSums,
} from '../backend.js';
import { NATIVE_ADDON_PATH, allocZeroed, loadNativeModule } from '../../util/native-addon.js';
import { columnMeans, totalWeight } from '../scoring.js';

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
    /** k doubles, or 3k with bounds: Σw, then Σw·dist and the rows of nonzero weight per label. */
    outCounts?: Float64Array | null,
    /** In and out: Hamerly's lower bounds, then the upper ones, nRows each (kernels.h, AssignJob::lower). */
    bounds?: Float32Array | null,
    /**
     * k: how far each centroid moved since the bounds were written for prevLabels; with it,
     * rows whose bounds clear are not scored and the outputs are changes (see {@link advanceChain}).
     */
    drift?: Float64Array | null,
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
    /** m × nRows floats: each row's squared distance to each candidate, as updateClosest computes it. */
    keep?: Float32Array | null,
  ): Float64Array;
  /** closest = min(closest, ‖x − center‖²) in place, then cum = Σ w·closest in row order (k-means++). */
  updateClosest(x: Float32Array, nRows: number, d: number, center: Float32Array, closest: Float32Array, weights: Float32Array | null, cum: Float64Array): void;
  /** out[i·k + l] = Σ ‖xᵢ − xⱼ‖ over rows j with label l (nRows × k, float64). */
  clusterDistanceSums(x: Float32Array, nRows: number, d: number, labels: Int32Array, k: number, r0?: number, r1?: number): Float64Array;
  /**
   * x·w for rows [r0, r1) ((r1 − r0) × m float32, w d × m row-major), accumulated in float64;
   * written into `out` (and returned) when given.
   */
  project(x: Float32Array, nRows: number, d: number, w: Float32Array, m: number, r0: number, r1: number, out?: Float32Array | null): Float32Array;
  /** Σ w·r[i, j]·xᵢ and Σ w·r[i, j] over rows [r0, r1) (r: (r1 − r0) × m), float64, fixed block order. */
  softSums(
    x: Float32Array,
    nRows: number,
    d: number,
    r: Float32Array,
    m: number,
    weights: Float32Array | null,
    r0: number,
    r1: number,
  ): { sums: Float64Array; counts: Float64Array };
  /** m × d × d centred scatter matrices over rows [r0, r1) (r null: m = 1, all ones), float64, fixed block order. */
  scatter(
    x: Float32Array,
    nRows: number,
    d: number,
    r: Float32Array | null,
    m: number,
    means: Float64Array,
    weights: Float32Array | null,
    r0: number,
    r1: number,
  ): Float64Array;
  /**
   * Eps-neighbourhoods of rows [q0, q1) within x: rows at float64 squared distance <= eps2 (float32
   * screen, float64 decision near eps2), weighted counts, and with `list` CSR lists, ascending.
   */
  radiusNeighbours(
    x: Float32Array,
    nRows: number,
    d: number,
    weights: Float32Array | null,
    q0: number,
    q1: number,
    eps2: number,
    list: boolean,
    /** Candidate rows [c0, c1) (default every row). */
    c0?: number,
    c1?: number,
  ): { counts: Float64Array; offsets: Int32Array | null; indices: Int32Array | null; rechecked: number };
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
   * Keep Hamerly bounds across the steps of a Lloyd loop (k up to one SIMD vector, with
   * `fuseSegmentSum`): rows far enough inside their cluster are neither read nor scored, and the
   * sums and inertia are carried from step to step (see {@link advanceChain}). The labels stay
   * the same bit for bit; the sums and inertia agree with a fresh pass to float64 rounding.
   * Default true; costs 8 bytes per row. False is for measuring what they save.
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
   * One Hamerly bounds buffer per matrix (2 · nRows), reused by every Lloyd chain on it (fresh
   * pages cost ~4 ms per MiB on some VMs: 32 ms per restart at 1M rows), and the assignment that holds it;
   * a new chain takes it over and clears the holder's reference, so an assignment's non-null
   * `bounds` are always this buffer, valid for its labels.
   */
  boundsBuf: Float32Array | null = null;
  boundsOwner: NativeAssignment | null = null;
  /**
   * Assignments of this matrix that may still hold their buffers, oldest first (at most 8): a
   * step with no buffers to recycle from its own chain (the first two of a chain: K-Means'
   * restarts, the final assignment) takes the oldest one's instead of faulting in fresh pages.
   */
  held: NativeAssignment[] = [];
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
    /** Rows the bounds test kept without reading or scoring them. */
    readonly nPruned = 0,
    /**
     * With bounds: Σw, Σw·dist (to these centroids) and rows of nonzero weight per label (3k),
     * carried to the next step of the chain.
     */
    readonly acc: Float64Array | null = null,
    /** The distances of rows the bounds test skipped are stale until {@link read}. */
    public distancesExact = true,
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
    if (!this.labels || !this.distancesExact) this.recompute(this);
    this.escaped = true;
    this.previous = null;
    return { labels: this.labels!, distances: this.distances! };
  }
}

/**
 * Whether Hamerly bounds pay for k centroids in d features: only the small-k kernels (k up to
 * one vector of `lanes`) take them, and they score 4, 8 or `lanes` centroids a row. Below 256
 * multiply-adds a row, a step is cheap enough that the rows in doubt (gathered, so read at
 * random) and the 16 bytes of bounds a row moves cost as much as they save until the last
 * steps of a fit (1M customer-feature rows, bench/lloyd-chain.ts: d = 8, k = 8 3.3–3.9 ms
 * against 2.5 ms at steps 3–25 with 46–79 % of rows unread, 1.75 against 2.6 at step 34;
 * d = 21, k = 16: 6.0 against 7.0 ms at step 8 with 69 % unread, 0.8 against 6.1 at step 35;
 * bench blobs d = 32, k = 16: 0.4–0.6 against 7–8 ms once settled).
 * @internal
 */
export function boundsPay(k: number, d: number, lanes: number): boolean {
  if (k > lanes) return false;
  const scored = k <= 4 ? 4 : k <= 8 ? 8 : lanes;
  return scored * d >= 256;
}

/**
 * How far each centroid moved from `before` to `after` (k × d), as upper bounds: float64 sums
 * of float32 differences, widened by far more than their rounding. NaN stays NaN, and the
 * addon refuses it.
 * @internal
 */
export function centroidMoves(before: Float32Array, after: Float32Array, k: number, d: number): Float64Array {
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = after[j * d + f] - before[j * d + f];
      s += t * t;
    }
    out[j] = Math.sqrt(s) * (1 + 1e-9);
  }
  return out;
}

/**
 * One step of a bounded chain: the sums, counts, Σw·dist and rows per label for the new labels
 * and centroids, from the previous step's (`sums`, `acc` = Σw, Σw·dist, rows, k each) and the
 * kernel's changes (`dSums`, `dAcc`: rows that moved between labels).
 *
 * The rows that kept their label are never read, so their distances to the moved centroids come
 * from the moments: over a cluster's rows, Σw‖x − c′‖² = Σw‖x − c‖² + 2δ·(Σw·x − W·c) + W‖δ‖²
 * with δ = c − c′ (for a Lloyd step, where c′ is their mean, Σw‖x − c‖² − W‖δ‖²). The terms are
 * small next to the cluster's own spread, so float64 keeps ~1e-13 of it, against the ~1e-7 of
 * float32 distances. A label left with no rows of nonzero weight gets exact zeros, as a fresh
 * pass would give it.
 * @internal
 */
export function advanceChain(
  sums: Float64Array,
  acc: Float64Array,
  before: Float32Array,
  after: Float32Array,
  dSums: Float64Array,
  dAcc: Float64Array,
  k: number,
  d: number,
): { sums: Float64Array; acc: Float64Array; inertia: number } {
  const outSums = new Float64Array(k * d);
  const outAcc = new Float64Array(3 * k);
  let inertia = 0;
  for (let j = 0; j < k; j++) {
    const rows = acc[2 * k + j] + dAcc[2 * k + j];
    if (rows === 0) continue;
    const w = acc[j];
    let q = acc[k + j];
    if (acc[2 * k + j] > 0) {
      let dot = 0;
      let dd = 0;
      for (let f = 0; f < d; f++) {
        const delta = before[j * d + f] - after[j * d + f];
        dot += delta * (sums[j * d + f] - w * before[j * d + f]);
        dd += delta * delta;
      }
      q += 2 * dot + w * dd;
    }
    q += dAcc[k + j];
    for (let f = 0; f < d; f++) outSums[j * d + f] = sums[j * d + f] + dSums[j * d + f];
    outAcc[j] = w + dAcc[j];
    outAcc[k + j] = q > 0 ? q : 0;
    outAcc[2 * k + j] = rows;
    inertia += outAcc[k + j];
  }
  return { sums: outSums, acc: outAcc, inertia };
}

/**
 * Buffers for a new assignment of `x`: those of the oldest assignment it holds that nobody has
 * read and that is not `keep` (the `previous` being read), which recomputes if read later.
 */
function spareBuffers(x: NativeMatrix, keep: NativeAssignment | null): { labels: Int32Array; distances: Float32Array } | null {
  for (let i = 0; i < x.held.length; ) {
    const a = x.held[i];
    if (a === keep) {
      i++;
      continue;
    }
    x.held.splice(i, 1);
    const b = a.take();
    if (b) return b;
  }
  return null;
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

  /**
   * Labels and distances of a recycled assignment, or the exact distances of a bounded one,
   * computed again from its centroids (the same labels, bit for bit, written in place).
   */
  const recompute = (a: NativeAssignment): void => {
    const x = asNative(a.x);
    const labels = a.labels ?? new Int32Array(allocZeroed(4 * x.nRows));
    const dist = a.distances ?? new Float32Array(allocZeroed(4 * x.nRows));
    addon.assign(x.data, x.nRows, x.nFeatures, a.centroids, a.k, x.weights, null, labels, dist, x.shift, null, null);
    a.labels = labels;
    a.distances = dist;
    a.distancesExact = true;
  };

  const be: Backend = {
    name: 'native',
    description: `native C++ kernels (${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'})`,

    upload(x: Matrix, weights?: Float32Array | null): DeviceMatrix {
      const w = weights ?? null;
      return new NativeMatrix(x.data, x.nRows, x.nFeatures, w, totalWeight(x.nRows, w), columnMeans(x.data, x.nRows, x.nFeatures));
    },

    release(x: DeviceMatrix): void {
      if (x instanceof NativeMatrix) {
        x.released = true;
        x.boundsBuf = null;
        x.boundsOwner = null;
        x.held = [];
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
      const recycled = chain?.previous?.take() ?? spareBuffers(x, previous instanceof NativeAssignment ? previous : null);
      if (chain) chain.previous = null;
      // Fresh buffers ask for huge pages: 4 KiB page faults cost ~4 ms per MiB on some VMs.
      const labels = recycled?.labels ?? new Int32Array(allocZeroed(4 * x.nRows));
      const dist = recycled?.distances ?? new Float32Array(allocZeroed(4 * x.nRows));
      // Within a chain (the Lloyd loop), the first step writes Hamerly bounds and each later
      // one takes its predecessor's, so rows far enough inside their cluster are neither read
      // nor scored (same labels, bit for bit), where that pays (boundsPay).
      let bounds: Float32Array | null = null;
      let drift: Float64Array | null = null;
      if (chain && usesBounds && fuse && boundsPay(k, d, info.lanes)) {
        if (chain.bounds && chain.k === k && chain.acc && chain.sums) {
          bounds = chain.bounds;
          chain.bounds = null;
          drift = centroidMoves(chain.centroids, centroids, k, d);
        } else {
          bounds = x.boundsBuf ??= new Float32Array(allocZeroed(8 * x.nRows));
          if (x.boundsOwner) x.boundsOwner.bounds = null;
        }
      }
      const sums = fuse ? new Float64Array(k * d) : null;
      const counts = fuse ? new Float64Array(bounds ? 3 * k : k) : null;
      const r = addon.assign(x.data, x.nRows, d, centroids, k, x.weights, prev, labels, dist, x.shift, sums, counts, bounds, drift);
      let inertia = r.inertia;
      let fused: SegmentSums | null = sums && counts ? { sums, counts: counts.slice(0, k) } : null;
      let acc: Float64Array | null = bounds ? counts : null;
      if (drift && sums && counts) {
        const next = advanceChain(chain!.sums!.sums, chain!.acc!, chain!.centroids, centroids, sums, counts, k, d);
        fused = { sums: next.sums, counts: next.acc.slice(0, k) };
        acc = next.acc;
        inertia = next.inertia;
      }
      const a = new NativeAssignment(inertia, r.nChanged, labels, dist, fused, x, k, centroids.slice(0, k * d), chain, recompute, bounds, r.nPruned, acc, !drift);
      if (bounds) x.boundsOwner = a;
      x.held.push(a);
      if (x.held.length > 8) x.held.shift();
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

    async potentialsKeeping(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number, keep: Float32Array): Promise<Float64Array> {
      const x = asNative(xd);
      return addon.potentials(x.data, x.nRows, x.nFeatures, closest, candidates, m, x.weights, keep);
    },

    async updateClosest(xd: DeviceMatrix, center: Float32Array, closest: Float32Array, cum: Float64Array): Promise<void> {
      const x = asNative(xd);
      addon.updateClosest(x.data, x.nRows, x.nFeatures, center, closest, x.weights, cum);
    },

    async clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
      const x = asNative(xd);
      return addon.clusterDistanceSums(x.data, x.nRows, x.nFeatures, labels, k, rows?.start ?? 0, rows?.end ?? x.nRows);
    },

    async project(xd: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
      const x = asNative(xd);
      const r0 = rows?.start ?? 0;
      const r1 = rows?.end ?? x.nRows;
      // A fresh result asks for huge pages, as assign's buffers do: at 1M rows × 8 columns, 4 KiB
      // page faults cost ~0.13 s against the kernel's ~15 ms.
      const res = out ?? new Float32Array(allocZeroed(4 * (r1 - r0) * m));
      return addon.project(x.data, x.nRows, x.nFeatures, w, m, r0, r1, res);
    },

    async softSums(xd: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
      const x = asNative(xd);
      return addon.softSums(x.data, x.nRows, x.nFeatures, r, m, x.weights, rows?.start ?? 0, rows?.end ?? x.nRows);
    },

    async scatter(xd: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
      const x = asNative(xd);
      return addon.scatter(x.data, x.nRows, x.nFeatures, r, m, means, x.weights, rows?.start ?? 0, rows?.end ?? x.nRows);
    },

    async radiusNeighbours(xd: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours> {
      const x = asNative(xd);
      // eps·eps here, as DBSCAN and the host fallback square it: the same float64 threshold.
      return addon.radiusNeighbours(x.data, x.nRows, x.nFeatures, x.weights, queries.start, queries.end, eps * eps, mode === 'list', candidates?.start ?? 0, candidates?.end ?? x.nRows);
    },
  };
  return be;
}
