/**
 * Falling back from a GPU that ran out of memory to the CPU, for nightly jobs that must not die
 * of it: {@link withNativeFallback} wraps the `cuda` backend (resolveBackend applies it, for
 * `--backend cuda` and for `auto`) so that an upload or op that still fails with device
 * out-of-memory after the backend's own retries in smaller pieces (see backends/cuda.ts) logs one
 *
 *   warning: cuda ran out of device memory in <op> (<sizes>: <the addon's message>); continuing on native
 *
 * and runs again on `native`, and so does every later op: the host matrices are uploaded to
 * `native` as each is next used (the host arrays are the backend contract's, kept unmodified
 * while uploaded), and assignments made on the GPU stay readable (their labels are copied from
 * the device, or computed again on `native` from their centroids if that too runs out of memory)
 * and are passed to `native` ops, which take any assignment through `read()`. The wrapper's
 * `name` is the backend in use, and its `fallback` ({@link backendFallback}) says what happened,
 * for the logs and the run manifest. Without `native` the error becomes one
 * {@link SegtensorError} line naming the op and the sizes.
 *
 * Results after a fallback are `native`'s from that point: an upload that does not fit gives a
 * native fit bit for bit; a fallback in the middle of a fit continues from the GPU's last
 * centroids, so the result agrees with either backend's to float32 rounding, not bit for bit.
 * The GPU's copy of a matrix is kept until the matrix is released (its assignments read from it).
 *
 * @example
 * const be = withNativeFallback(cuda, native, (line) => console.error(line));
 * const r = await new KMeans({ k: 8 }).fit(be, x); // on native if the GPU ran out of memory
 * backendFallback(be); // { from: 'cuda', to: 'native', op: 'upload', reason: '…' } or null
 */
import { SegtensorError } from '../errors.js';
import {
  isDeviceOutOfMemory,
  type Assignment,
  type Backend,
  type BackendFallback,
  type BackendName,
  type DeviceMatrix,
  type Matrix,
  type RadiusNeighbours,
  type RowRange,
  type SegmentSums,
} from './backend.js';

/** `bytes` in KiB, MiB or GiB, one decimal. */
function byteSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

/**
 * The error code when the GPU ran out of memory and `native` is not there to continue on.
 */
const NO_FALLBACK_CODE = 'DEVICE_MEMORY';

/**
 * The fallback a backend from {@link withNativeFallback} took (a copy of `be.fallback`), or null
 * (none yet, or not such a backend).
 *
 * @example
 * backendFallback(be); // { from: 'cuda', to: 'native', op: 'assign', reason: '…' } after a fallback
 */
export function backendFallback(be: Backend): BackendFallback | null {
  const f = be instanceof FallbackBackend ? be.fallback : null;
  return f ? { ...f } : null;
}

export type { BackendFallback };

/**
 * `primary` (the `cuda` backend) with a fallback to `native` on device out-of-memory; `native`
 * null (with `nativeReason`, why it is not available) turns that error into a one-line
 * {@link SegtensorError}. `log` hears the warning once. See the module comment.
 */
export function withNativeFallback(primary: Backend, native: Backend | null, log?: (line: string) => void, nativeReason?: string): Backend {
  return new FallbackBackend(primary, native, log ?? (() => {}), nativeReason ?? 'not loaded');
}

/** @internal */
class FallbackMatrix implements DeviceMatrix {
  readonly nRows: number;
  readonly nFeatures: number;
  readonly weights: Float32Array | null;
  readonly totalWeight: number;
  /** The copy on `native`, uploaded when first needed there. */
  onNative: DeviceMatrix | null = null;
  released = false;
  constructor(
    /** The host rows (the contract keeps them unmodified while uploaded). */
    readonly host: Matrix,
    readonly hostWeights: Float32Array | null,
    /** The copy on the primary backend; null once uploaded after the fallback. */
    readonly onPrimary: DeviceMatrix | null,
    first: DeviceMatrix,
  ) {
    this.nRows = first.nRows;
    this.nFeatures = first.nFeatures;
    this.weights = first.weights;
    this.totalWeight = first.totalWeight;
  }
}

/** @internal */
class FallbackAssignment implements Assignment {
  /** Labels computed again on `native` (see read). */
  private recomputed: { labels: Int32Array; distances: Float32Array } | null = null;
  constructor(
    readonly inner: Assignment,
    /** The backend that made `inner`. */
    readonly on: Backend,
    readonly x: FallbackMatrix,
    /** The centroids, kept for an assignment made on the primary (see read); null on `native`. */
    readonly centroids: Float32Array | null,
    readonly k: number,
    private readonly owner: FallbackBackend,
  ) {}

  get inertia(): number {
    return this.inner.inertia;
  }

  get nChanged(): number {
    return this.inner.nChanged;
  }

  async read(): Promise<{ labels: Int32Array; distances: Float32Array }> {
    if (this.recomputed) return this.recomputed;
    try {
      return await this.inner.read();
    } catch (e) {
      // A GPU assignment whose device slot was reused is computed again on read: when that runs
      // out of memory, native computes it from the same centroids instead.
      if (this.on === this.owner.native || !this.centroids || !isDeviceOutOfMemory(e)) throw e;
      this.owner.fallBack('read', e, `${this.x.nRows} rows × ${this.x.nFeatures} features, k = ${this.k}`);
      const a = await this.owner.native!.assign(this.owner.nativeCopy(this.x), this.centroids, this.k);
      this.recomputed = await a.read();
      return this.recomputed;
    }
  }
}

/** @internal */
class FallbackBackend implements Backend {
  fallback: BackendFallback | null = null;

  constructor(
    readonly primary: Backend,
    readonly native: Backend | null,
    private readonly log: (line: string) => void,
    private readonly nativeReason: string,
  ) {}

  /** The backend ops run on now. */
  private get current(): Backend {
    return this.fallback ? this.native! : this.primary;
  }

  get name(): BackendName {
    return this.current.name;
  }

  get description(): string {
    return this.fallback ? `${this.native!.description} (${this.primary.name} ran out of device memory in ${this.fallback.op})` : this.primary.description;
  }

  /**
   * Moves every later op to `native`, once, with the warning; without `native`, throws the
   * one-line error instead.
   */
  fallBack(op: string, e: unknown, sizes: string): void {
    if (this.fallback) return;
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    const reason = `${sizes}: ${message}`;
    if (!this.native) {
      throw new SegtensorError(
        NO_FALLBACK_CODE,
        `${this.primary.name} ran out of device memory in ${op} (${reason}), and the native backend to continue on is not available (${this.nativeReason}); free GPU memory or use a smaller input`,
      );
    }
    this.fallback = { from: 'cuda', to: 'native', op, reason };
    this.log(`warning: ${this.primary.name} ran out of device memory in ${op} (${reason}); continuing on native`);
  }

  /** `x` on `native`, uploaded on first use. */
  nativeCopy(x: FallbackMatrix): DeviceMatrix {
    if (x.released) throw new Error('the matrix was released');
    return (x.onNative ??= this.native!.upload(x.host, x.hostWeights));
  }

  private matrix(xd: DeviceMatrix): FallbackMatrix {
    if (!(xd instanceof FallbackMatrix)) throw new TypeError(`${this.primary.name} backend: the matrix was uploaded to another backend`);
    if (xd.released) throw new Error(`${this.primary.name} backend: the matrix was released`);
    return xd;
  }

  /** `a` as `be` takes it: its own assignment unwrapped, any other through read(). */
  private assignmentFor(a: Assignment, be: Backend): Assignment {
    return a instanceof FallbackAssignment && a.on === be ? a.inner : a;
  }

  /**
   * `call` on the primary while it lasts; on device out-of-memory (after the primary's own
   * retries) falls back and runs `call` again on `native`, as every call after.
   */
  private async run<T>(op: string, xd: DeviceMatrix, sizes: () => string, call: (be: Backend, x: DeviceMatrix) => Promise<T>): Promise<T> {
    const x = this.matrix(xd);
    if (!this.fallback && x.onPrimary) {
      try {
        return await call(this.primary, x.onPrimary);
      } catch (e) {
        if (!isDeviceOutOfMemory(e)) throw e;
        this.fallBack(op, e, sizes());
      }
    }
    return call(this.native!, this.nativeCopy(x));
  }

  upload(x: Matrix, weights?: Float32Array | null): DeviceMatrix {
    const w = weights ?? null;
    if (!this.fallback) {
      try {
        const dx = this.primary.upload(x, w);
        return new FallbackMatrix(x, w, dx, dx);
      } catch (e) {
        if (!isDeviceOutOfMemory(e)) throw e;
        this.fallBack('upload', e, `${x.nRows} rows × ${x.nFeatures} features (${byteSize(4 * x.nRows * x.nFeatures)})`);
      }
    }
    const dn = this.native!.upload(x, w);
    const fm = new FallbackMatrix(x, w, null, dn);
    fm.onNative = dn;
    return fm;
  }

  release(xd: DeviceMatrix): void {
    if (!(xd instanceof FallbackMatrix) || xd.released) return;
    xd.released = true;
    if (xd.onPrimary) this.primary.release(xd.onPrimary);
    if (xd.onNative) this.native!.release(xd.onNative);
  }

  private sizes(x: DeviceMatrix, what: string): () => string {
    return () => `${x.nRows} rows × ${x.nFeatures} features, ${what}`;
  }

  async assign(xd: DeviceMatrix, centroids: Float32Array, k: number, previous?: Assignment): Promise<Assignment> {
    const x = this.matrix(xd);
    return this.run('assign', x, this.sizes(x, `k = ${k}`), async (be, dx) => {
      const a = await be.assign(dx, centroids, k, previous && this.assignmentFor(previous, be));
      // The centroids of a GPU assignment, to compute its labels on native should reading them need the GPU again.
      return new FallbackAssignment(a, be, x, be === this.primary ? centroids.slice(0, k * x.nFeatures) : null, k, this);
    });
  }

  async segmentSum(xd: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
    return this.run('segmentSum', xd, this.sizes(xd, `k = ${k}`), (be, dx) => be.segmentSum(dx, this.assignmentFor(a, be), k));
  }

  async distances(xd: DeviceMatrix, centers: Float32Array, m: number, out?: Float32Array): Promise<Float32Array> {
    return this.run('distances', xd, this.sizes(xd, `${m} centers`), (be, dx) => be.distances(dx, centers, m, out));
  }

  async potentials(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
    return this.run('potentials', xd, this.sizes(xd, `${m} candidates`), (be, dx) => be.potentials(dx, closest, candidates, m));
  }

  /**
   * The backend in use's fused step, or none (callers then use `distances` and a host loop with
   * the same arithmetic, engine/ops/update-closest.ts). Running it again after a failure is
   * safe: min(closest, d) is idempotent and the running sum is written afresh.
   */
  get updateClosest(): Backend['updateClosest'] {
    if (!this.current.updateClosest) return undefined;
    return (xd, center, closest, cum) =>
      this.run('updateClosest', xd, this.sizes(xd, '1 center'), (be, dx) => (be.updateClosest ? be.updateClosest(dx, center, closest, cum) : Promise.reject(new Error('updateClosest: not on this backend'))));
  }

  /**
   * The primary's device seeding while ops still run there, for the primary's copy of the matrix.
   * It allocates everything in `start`: an out-of-memory error there sends kmeansPlusPlus to the
   * other ops (this wrapper's, with their retries and fallback) from the same state.
   */
  get seeding(): Backend['seeding'] {
    if (this.fallback || !this.primary.seeding) return undefined;
    return (xd) => {
      const x = this.matrix(xd);
      return !this.fallback && x.onPrimary ? this.primary.seeding!(x.onPrimary) : null;
    };
  }

  async clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
    return this.run('clusterDistanceSums', xd, this.sizes(xd, `k = ${k}`), (be, dx) => be.clusterDistanceSums(dx, labels, k, rows));
  }

  async project(xd: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
    return this.run('project', xd, this.sizes(xd, `m = ${m}`), (be, dx) => be.project(dx, w, m, rows, out));
  }

  async softSums(xd: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
    return this.run('softSums', xd, this.sizes(xd, `m = ${m}`), (be, dx) => be.softSums(dx, r, m, rows));
  }

  async scatter(xd: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
    return this.run('scatter', xd, this.sizes(xd, `m = ${m}`), (be, dx) => be.scatter(dx, r, m, means, rows));
  }

  async radiusNeighbours(xd: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours> {
    return this.run('radiusNeighbours', xd, this.sizes(xd, `${queries.end - queries.start} queries`), (be, dx) => be.radiusNeighbours(dx, queries, eps, mode, candidates));
  }
}
