/**
 * The backend contract: the hot steps of every clustering method, and nothing else.
 *
 * Algorithms (K-Means, k-means++, later mini-batch and GMM) call these methods and never
 * learn which device runs them. A backend receives the data once through {@link Backend.upload}
 * and keeps it resident (tfjs tensors, a pinned host buffer, GPU memory) across iterations.
 *
 * Kernels trust their inputs: shapes and dtypes are checked once, above this boundary, in
 * `engine/ops/` (see {@link ../engine/ops/assign.ts}).
 *
 * @example
 * const be = await getBackend('wasm');
 * const x = be.upload({ data, nRows, nFeatures }, weights);
 * const a = await be.assign(x, centroids, k);
 * const { sums, counts } = await be.segmentSum(x, a, k);
 */

import type { Matrix } from '../core/matrix.js';
export type { Matrix };

/** Data resident on a backend, created by {@link Backend.upload}. */
export interface DeviceMatrix {
  readonly nRows: number;
  readonly nFeatures: number;
  /** Per-row sample weights, or null when every weight is 1. */
  readonly weights: Float32Array | null;
  /** Sum of the weights (nRows when unweighted), float64. */
  readonly totalWeight: number;
}

/**
 * The result of one assignment step: each row's nearest centroid.
 *
 * Labels and distances may stay on the device (a GPU backend keeps them there across
 * iterations); {@link Assignment.read} copies them to the host when an algorithm needs them
 * (empty-cluster repair, final output).
 */
/**
 * Greedy k-means++ state kept on a backend ({@link Backend.seeding}). The caller draws the random
 * numbers, so the draws are the host path's; the running sums differ from the host's row-order
 * float64 sum in rounding only (a threshold within rounding of a row boundary may pick the
 * neighbouring row).
 */
export interface DeviceSeeding {
  /**
   * Each row's squared distance to the first center; returns φ = Σ w·closest. Allocates every
   * buffer the later calls use, for up to `trials` candidates a step, so a device out-of-memory
   * error comes here or not at all.
   */
  start(center: Float32Array, trials: number): number;
  /** The first row whose running Σ w·closest reaches each target (the last row if none does). */
  draw(targets: Float64Array): Int32Array;
  /** Σ w·min(closest, ‖x − c_j‖²) for m ≤ trials candidates, their distances kept for {@link take}. */
  potentials(candidates: Float32Array, m: number): Float64Array;
  /** closest = min(closest, candidate j's kept distances); returns the new φ. */
  take(j: number): number;
}

export interface Assignment {
  /**
   * Weighted sum of squared distances to the nearest centroid, accumulated in float64 (a
   * backend that does not read every row may carry it through per-cluster moments; it then
   * agrees with the row-by-row sum to float64 rounding of the moments).
   */
  readonly inertia: number;
  /** Rows whose label differs from the `previous` assignment passed to `assign` (nRows if none). */
  readonly nChanged: number;
  /** Host copies: labels in [0, k) and squared distances to that centroid. */
  read(): Promise<{ labels: Int32Array; distances: Float32Array }>;
}

/** Weighted per-cluster sums, in float64 for accuracy. */
export interface SegmentSums {
  /** k × nFeatures row-major: Σ w·x over the rows of each cluster. */
  sums: Float64Array;
  /** k: Σ w over the rows of each cluster. */
  counts: Float64Array;
}

/** Rows [start, end) of a matrix. */
export interface RowRange {
  start: number;
  end: number;
}

/**
 * The eps-neighbourhoods of a range of rows, from {@link Backend.radiusNeighbours}. Query q of
 * the range is at index q − queries.start.
 */
export interface RadiusNeighbours {
  /** Per query: Σ of the sample weights of its neighbours (their number when unweighted), float64. */
  counts: Float64Array;
  /** `list` mode: CSR offsets, queries + 1 of them (query q's neighbours are indices[offsets[q], offsets[q + 1])); null in `count` mode. */
  offsets: Int32Array | null;
  /** `list` mode: the neighbours' row numbers, each query's ascending; null in `count` mode. */
  indices: Int32Array | null;
  /** Pairs whose float32 distance fell within its rounding bound of eps² and were decided by the float64 sum. */
  rechecked: number;
}

/** Names of the backends segtensor knows about. `auto` is resolved by the registry. */
export type BackendName = 'native' | 'cuda' | 'tensorflow' | 'wasm' | 'cpu';

/** A run's move off a GPU that ran out of memory (see engine/fallback.ts). */
export interface BackendFallback {
  /** The backend that ran out of device memory. */
  from: 'cuda';
  /** The backend every op ran on after it. */
  to: 'native';
  /** The upload or op that failed (`upload`, `assign`, `segmentSum`, `distances`, …, `read`). */
  op: string;
  /** The sizes involved and the device's message, e.g. `1000000 rows × 64 features (244.1 MiB): out of GPU memory: need 244.1 MiB, 80.0 MiB free`. */
  reason: string;
}

export interface Backend {
  /** The backend that runs the ops now (`native` once a wrapped `cuda` fell back). */
  readonly name: BackendName;
  /** One line on what actually runs (library, device, threads), for logs and `doctor`. */
  readonly description: string;
  /**
   * Set on the `cuda` backend that resolveBackend returns, once a device out-of-memory error
   * moved it to `native` (engine/fallback.ts); absent or null otherwise. For the run manifest.
   */
  readonly fallback?: BackendFallback | null;

  /**
   * Makes `x` (and its optional weights) resident on this backend.
   * The host arrays must not be modified while the returned handle is in use.
   */
  upload(x: Matrix, weights?: Float32Array | null): DeviceMatrix;

  /** Frees what {@link upload} allocated. */
  release(x: DeviceMatrix): void;

  /**
   * Nearest centroid for every row: squared distances through ‖x‖² − 2x·c + ‖c‖², argmin and
   * minimum fused, so the nRows × k distance matrix is never materialised at once.
   *
   * The distance reported for the winning centroid is recomputed as Σ(x − c)² so that inertia
   * does not suffer the expansion's cancellation.
   *
   * @param centroids k × nFeatures row-major, float32.
   * @param previous  an earlier assignment of the same data, to count changed labels.
   */
  assign(x: DeviceMatrix, centroids: Float32Array, k: number, previous?: Assignment): Promise<Assignment>;

  /** Σ w·x and Σ w per cluster for the labels of `a`. Results are independent of thread count. */
  segmentSum(x: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums>;

  /**
   * Squared distances from every row to each of `m` centers (nRows × m row-major). Used by
   * k-means++ with small `m` (its candidate centers), never with m = k on big data.
   */
  distances(x: DeviceMatrix, centers: Float32Array, m: number, out?: Float32Array): Promise<Float32Array>;

  /**
   * k-means++ candidate potentials: for each of `m` candidate centers c, Σ w·min(closest, ‖x − c‖²)
   * over all rows, in float64, with no nRows × m intermediate on the host. `closest` holds each
   * row's squared distance to its nearest center chosen so far.
   */
  potentials(x: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array>;

  /**
   * Optional fused k-means++ step, once a center is chosen: closest[i] = min(closest[i],
   * ‖xᵢ − center‖²) in place, the distance as {@link distances} computes it, then cum[i] =
   * Σ_{r ≤ i} w_r·closest[r] in float64, one running sum in row order. Backends without it get
   * `distances` and a host loop with the same arithmetic (see kmeansPlusPlus).
   */
  updateClosest?(x: DeviceMatrix, center: Float32Array, closest: Float32Array, cum: Float64Array): Promise<void>;

  /**
   * Optional: greedy k-means++ with each row's closest distance and the D² sampling's sums kept
   * on the backend (the `cuda` backend's kernels/cuda/seed.cuh), so a step moves its candidates'
   * rows and a few numbers, not nRows arrays. Null for a matrix it cannot seed (rows streamed
   * from the host); kmeansPlusPlus then uses the other ops.
   */
  seeding?(x: DeviceMatrix): DeviceSeeding | null;

  /**
   * Optional: {@link potentials} that also keeps each row's squared distance to candidate j in
   * keep[j·nRows + i] (m·nRows floats), with the bits {@link updateClosest} would compute, so
   * k-means++ updates its closest distances from the chosen candidate's column rather than
   * reading the data again (see kmeansPlusPlus). Resident data only.
   */
  potentialsKeeping?(x: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number, keep: Float32Array): Promise<Float64Array>;

  /**
   * For the silhouette: out[(i − start)·k + l] = Σ ‖xᵢ − xⱼ‖ (Euclidean, not squared) over the
   * rows j with labels[j] = l, self-distance 0, for the rows i in `rows` ([start, end), default
   * all). Quadratic in nRows: meant for a sample of ≤ ~20,000 rows; the range keeps the output
   * (rows × k float64) bounded at large k. A row's sums do not depend on the range.
   */
  clusterDistanceSums(x: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array>;

  /**
   * A product with a small matrix, for Gaussian mixtures, PCA and k-prototypes: for the rows i
   * in `rows` ([start, end), default all), out[(i − start)·m + j] = Σ_f x[i, f]·w[f·m + j] where
   * `w` is nFeatures × m row-major. Every backend agrees with the float64 product to float32
   * rounding of the terms (CPU kernels accumulate in float64). Sample weights are not applied.
   */
  project(x: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array>;

  /**
   * Soft per-column sums, the M-step of a mixture: for each column j of `r` (rows in range × m,
   * row-major; responsibilities), sums[j·d + f] = Σ_i wᵢ·r[i, j]·x[i, f] and counts[j] = Σ_i wᵢ·r[i, j]
   * over the rows i in `rows` (default all), wᵢ the sample weights (1 without), accumulated in
   * float64 in row order (independent of thread count).
   */
  softSums(x: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums>;

  /**
   * Centred weighted scatter matrices: for each column j of `r` (as in {@link softSums}; null:
   * one column of ones, m = 1), out[j·d·d + a·d + b] = Σ_i wᵢ·r[i, j]·(x[i, a] − μ[j, a])·(x[i, b] − μ[j, b])
   * with μ = `means` (m × d), float64, over the rows in `rows` (default all). A full-covariance
   * mixture's M-step and PCA's covariance (m = 1) in one pass each.
   */
  scatter(x: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array>;

  /**
   * Eps-neighbourhoods within x itself, for DBSCAN: for each query row q in [queries.start,
   * queries.end), the rows i of x with Σ_f (x[i, f] − x[q, f])² ≤ eps·eps, q itself included. The
   * comparison is decided in float64 with the sum taken in feature order (scikit-learn's KD-tree
   * arithmetic, so ties at eps agree bit for bit on float32 input); a backend may screen pairs in
   * float32 but recomputes in float64 every pair within its rounding bound of eps².
   * `counts` are the summed sample weights of each neighbourhood, float64, independent of the
   * thread count; `list` mode also returns the neighbours as CSR, each list ascending. Quadratic
   * in nRows: the caller bounds a call's output (up to queries × nRows indices) by its range.
   * `candidates` (default every row) limits the rows i looked at to a range: a caller that knows
   * no row outside it can be within eps (DBSCAN, rows sorted along a projection) skips the rest.
   */
  radiusNeighbours(x: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours>;
}

/**
 * The `code` of an error raised because a device ran out of memory: the CUDA addon
 * (kernels/cuda/addon.cc) gives it to every error from cudaErrorMemoryAllocation, whose text
 * starts with "out of GPU memory".
 */
export const DEVICE_OOM_CODE = 'CUDA_OOM';

/**
 * Whether `e` is a device out-of-memory error from a GPU backend's addon: its code is
 * {@link DEVICE_OOM_CODE}, or (an addon built before the code existed) its message is the CUDA
 * runtime's "out of memory" or the addon's "out of GPU memory". Host allocation failures
 * (`RangeError: Array buffer allocation failed`) are not.
 *
 * @example
 * try { be.upload(x) } catch (e) { if (isDeviceOutOfMemory(e)) useTheCpu(); else throw e; }
 */
export function isDeviceOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if ((e as { code?: unknown }).code === DEVICE_OOM_CODE) return true;
  return /^out of GPU memory\b|: out of memory$/.test(e.message);
}

/** Raised when a backend cannot be loaded or used; `reason` is shown by `segtensor doctor`. */
export class BackendUnavailableError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';
  constructor(
    readonly backend: string,
    readonly reason: string,
  ) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}
