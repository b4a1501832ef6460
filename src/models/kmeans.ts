/**
 * K-Means with scikit-learn's semantics: greedy k-means++ seeding (k-means‖ at large k, see
 * ./kmeans-init.ts), Lloyd iterations stopped when
 * labels no longer change or the squared centre shift falls under `tol × mean feature variance`,
 * `nInit` restarts keeping the lowest inertia, sample weights, and relocation of empty clusters
 * to the rows farthest from their centres.
 *
 * The algorithm only calls the backend ops (assign, segmentSum, potentials, updateClosest): which device runs
 * them is the backend's business.
 *
 * @example
 * const be = await resolveBackend('auto');
 * const r = await new KMeans({ k: 8, seed: 1 }).fit(be, { data, nRows, nFeatures });
 * r.labels; r.centroids; r.inertia;
 */
import type { Assignment, Backend, DeviceMatrix } from '../engine/backend.js';
import { chunkRange, hostRows, isChunked, type HostMatrix, type Matrix } from '../core/matrix.js';
import { hostAssignment, streamingBackend } from '../engine/streaming.js';
import { assign } from '../engine/ops/assign.js';
import { segmentSum } from '../engine/ops/segment-sum.js';
import { SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';
import { autoInit, INIT_NAMES, kmeansParallel, kmeansPlusPlus, randomInit, type InitMethod, type InitName } from './kmeans-init.js';

export { autoInit, kmeansParallel, kmeansPlusPlus, INIT_NAMES, type InitMethod, type InitName } from './kmeans-init.js';

export interface KMeansOptions {
  /** Number of clusters, an integer in [1, nRows]. Required. */
  k: number;
  /** Restarts from different seeds; the run with the lowest inertia wins. Default 3. */
  nInit: number;
  /** Lloyd iterations per run at most. Default 300. */
  maxIter: number;
  /** Convergence tolerance on the squared centre shift, relative to the mean feature variance. Default 1e-4. */
  tol: number;
  /** Seed of every random choice; the same seed reproduces a run on a given backend. Default 0. */
  seed: number;
  /**
   * Seeding: `k-means++` (greedy, 2 + ⌊ln k⌋ candidates per step, scikit-learn's), `k-means||`
   * (Bahmani et al.'s k-means‖, a few sampling rounds instead of k passes), `random` rows, `auto`
   * (k-means‖ where it is faster at equal quality, see {@link autoInit}), or k × nFeatures
   * initial centroids. Default `auto`.
   */
  init: InitName | Float32Array;
  /** Called after each Lloyd iteration, for progress reporting. */
  onIteration?: (run: number, stats: IterationStats) => void;
  /** Hears each center k-means++ chooses in restart `run` (progress of the seeding). */
  onSeeding?: (run: number, done: number, total: number) => void;
  /** Where a long fit saves its state and finds it again after a kill (see {@link KMeansCheckpoints}). */
  checkpoints?: KMeansCheckpoints | null;
}

/**
 * Lloyd iterations between two points where a fit's state is complete without the backend's
 * chain (Hamerly bounds, moment-advanced sums): the step after such a point counts changed
 * labels against host labels and scores every row, in an uninterrupted fit as in a resumed one,
 * so both compute the same floats. A fixed count, never a clock, so results do not depend on
 * timing; 16 keeps the extra full steps to ~1 in 8 where bounds skip rows.
 */
export const CHECKPOINT_EVERY = 16;

/**
 * A fit's state at a point it can continue from, bit for bit (see {@link KMeansCheckpoints}).
 * Arrays are copies: the store may keep them.
 */
export interface KMeansState {
  /** The restart in progress (`current` set) or the next one to start. */
  run: number;
  /** The words of the generator every restart's seed is forked from, at this point. */
  rng: number[];
  /** Restarts finished so far. */
  runs: KMeansResult['runs'];
  /** The lowest-inertia restart so far, with its final labels and distances. */
  best: {
    centroids: Float32Array;
    inertia: number;
    nIter: number;
    converged: boolean;
    history: IterationStats[];
    labels: Int32Array;
    distances: Float32Array;
  } | null;
  /**
   * Inside a restart: Lloyd iterations done, the centroids the next one starts from, and the
   * labels of the last one (null right after seeding).
   */
  current: { iteration: number; centroids: Float32Array; labels: Int32Array | null; history: IterationStats[] } | null;
}

/**
 * A store for a long fit's state. The model offers a state after seeding, every
 * {@link CHECKPOINT_EVERY} Lloyd iterations and at the end of each restart; the store says
 * whether it wants one (`due`, so it can throttle by time) and writes it atomically.
 */
export interface KMeansCheckpoints {
  /** The state to continue from, saved by a fit of the same data and options, or null. */
  restore(): KMeansState | null;
  /** Whether to build and save a state now. */
  due(): boolean;
  /** Writes a state (may wait for what the key needs, e.g. the input's hash). */
  save(state: KMeansState): void | Promise<void>;
}

export const KMEANS_DEFAULTS: Readonly<Omit<KMeansOptions, 'k' | 'onIteration' | 'onSeeding' | 'checkpoints'>> = Object.freeze({
  nInit: 3,
  maxIter: 300,
  tol: 1e-4,
  seed: 0,
  init: 'auto' as InitName | Float32Array,
});

/** What one Lloyd iteration did. */
export interface IterationStats {
  /** Inertia of the rows against the centroids they were assigned to in this iteration. */
  inertia: number;
  /** Squared shift of the centroids in this iteration. */
  shift: number;
  /** Rows whose label changed. */
  changed: number;
  /** Clusters that came out empty and were relocated. */
  emptyClusters: number;
  /** Wall time of the iteration. */
  ms: number;
}

export interface KMeansResult {
  /** k × nFeatures, row-major. */
  centroids: Float32Array;
  labels: Int32Array;
  /** Squared distance of each row to its centroid. */
  distances: Float32Array;
  /** Weighted sum of squared distances (scikit-learn's `inertia_`). */
  inertia: number;
  nIter: number;
  converged: boolean;
  /** Per-iteration statistics of the winning run. */
  history: IterationStats[];
  /** Inertia and iteration count of every run, in order. */
  runs: { inertia: number; nIter: number; converged: boolean }[];
  /** Absolute tolerance used (tol × mean feature variance). */
  tolAbs: number;
  ms: { init: number; lloyd: number };
  /** The seeding that ran (`auto` resolved), or `array` for given initial centroids. */
  init: InitMethod | 'array';
}

/** Parameter constraints as data, checked once in `fit`. */
const CONSTRAINTS: { [K in 'nInit' | 'maxIter']: [number, number] } = { nInit: [1, 1000], maxIter: [1, 1_000_000] };

export class KMeans {
  readonly options: Readonly<KMeansOptions>;

  constructor(options: Partial<KMeansOptions> & { k: number }) {
    this.options = Object.freeze({ ...KMEANS_DEFAULTS, ...options });
  }

  private validate(x: HostMatrix, weights: Float32Array | null): void {
    const o = this.options;
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > x.nRows) {
      throw new SegtensorError('BAD_OPTION', `KMeans: 'k' must be an integer in [1, nRows = ${x.nRows}]; got ${o.k}`);
    }
    for (const [name, [lo, hi]] of Object.entries(CONSTRAINTS)) {
      const v = o[name as keyof typeof CONSTRAINTS];
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new SegtensorError('BAD_OPTION', `KMeans: '${name}' must be an integer in [${lo}, ${hi}]; got ${v}`);
      }
    }
    if (!(o.tol >= 0) || !Number.isFinite(o.tol)) {
      throw new SegtensorError('BAD_OPTION', `KMeans: 'tol' must be a finite number >= 0; got ${o.tol}`);
    }
    if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `KMeans: 'seed' must be an integer; got ${o.seed}`);
    if (!(o.init instanceof Float32Array) && !INIT_NAMES.includes(o.init)) {
      throw new SegtensorError(
        'BAD_OPTION',
        `KMeans: 'init' must be one of ${INIT_NAMES.join(', ')} or a Float32Array of k × nFeatures centroids; got ${String(o.init)}`,
      );
    }
    if (o.init instanceof Float32Array && o.init.length !== o.k * x.nFeatures) {
      throw new SegtensorError(
        'BAD_OPTION',
        `KMeans: 'init' centroids must hold k × nFeatures = ${o.k * x.nFeatures} values; got ${o.init.length}`,
      );
    }
    if (!isChunked(x) && x.data.length !== x.nRows * x.nFeatures) {
      throw new TypeError(`KMeans: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * x.nFeatures}`);
    }
    if (weights) {
      if (weights.length !== x.nRows) {
        throw new SegtensorError('BAD_INPUT', `KMeans: weights hold ${weights.length} values for ${x.nRows} rows`);
      }
      let total = 0;
      for (let i = 0; i < weights.length; i++) {
        const w = weights[i];
        if (!(w >= 0) || !Number.isFinite(w)) {
          throw new SegtensorError('BAD_INPUT', `KMeans: weight of row ${i} must be finite and >= 0; got ${w}`);
        }
        total += w;
      }
      if (!(total > 0)) throw new SegtensorError('BAD_INPUT', 'KMeans: the weights sum to 0');
    }
  }

  /**
   * Fits on a preprocessed matrix. `weights` (optional) are per-row sample weights.
   * The data is uploaded to the backend once and released at the end.
   */
  async fit(resident: Backend, x: HostMatrix, weights: Float32Array | null = null): Promise<KMeansResult> {
    this.validate(x, weights);
    // Data in blocks (out-of-core) streams through the backend block by block.
    const streaming = isChunked(x) ? streamingBackend(resident) : null;
    const be: Backend = streaming ?? resident;
    const o = this.options;
    // tol = 0 (a fixed number of iterations) needs no pass over the data for the variance.
    const tolAbs = o.tol === 0 ? 0 : o.tol * meanVariance(x);
    const store = o.checkpoints ?? null;
    const saved = store?.restore() ?? null;
    const dx = streaming ? streaming.upload(x, weights) : resident.upload(x as Matrix, weights);
    try {
      const rng = saved ? Random.fromState(saved.rng) : new Random(o.seed);
      type Best = Omit<KMeansResult, 'labels' | 'distances' | 'runs' | 'tolAbs' | 'ms' | 'init'> & { read(): Promise<{ labels: Int32Array; distances: Float32Array }> };
      let best: Best | null = saved?.best ? { ...saved.best, read: async () => ({ labels: saved.best!.labels, distances: saved.best!.distances }) } : null;
      const runs: KMeansResult['runs'] = saved ? saved.runs.map((r) => ({ ...r })) : [];
      const ms = { init: 0, lloyd: 0 };
      const method = o.init instanceof Float32Array ? 'array' : o.init === 'auto' ? autoInit(x.nRows, o.k) : o.init;
      const stateOf = async (run: number, current: KMeansState['current']): Promise<KMeansState> => ({
        run,
        rng: rng.state(),
        runs: runs.map((r) => ({ ...r })),
        best: best ? { centroids: best.centroids.slice(), inertia: best.inertia, nIter: best.nIter, converged: best.converged, history: best.history.slice(), ...(await best.read()) } : null,
        current,
      });
      // An explicit init is deterministic: further runs would repeat it.
      const nRuns = o.init instanceof Float32Array ? 1 : o.nInit;
      for (let run = saved?.run ?? 0; run < nRuns; run++) {
        const t0 = performance.now();
        const resumed = saved?.run === run ? saved.current : null;
        let start: LloydStart;
        if (resumed) start = { ...resumed, centroids: resumed.centroids.slice(), history: resumed.history.slice() };
        else {
          const init =
            o.init instanceof Float32Array
              ? Float32Array.from(o.init)
              : method === 'random'
                ? randomInit(x, o.k, weights, new Random(rng.fork()))
                : method === 'k-means||'
                  ? await kmeansParallel(be, dx, x, o.k, new Random(rng.fork()))
                  : await kmeansPlusPlus(be, dx, x, o.k, new Random(rng.fork()), o.onSeeding ? (done, total) => o.onSeeding!(run, done, total) : undefined);
          start = { iteration: 0, centroids: init, labels: null, history: [] };
          if (store?.due()) await store.save(await stateOf(run, { ...start, centroids: init.slice() }));
        }
        const t1 = performance.now();
        const onPoint = store ? async (c: NonNullable<KMeansState['current']>) => (store.due() ? store.save(await stateOf(run, c)) : undefined) : null;
        const r = await lloyd(be, dx, x, start, o.k, o.maxIter, tolAbs, (s) => o.onIteration?.(run, s), onPoint);
        ms.init += t1 - t0;
        ms.lloyd += performance.now() - t1;
        runs.push({ inertia: r.a.inertia, nIter: r.nIter, converged: r.converged });
        // Strictly lower wins, so ties keep the earliest run, as scikit-learn does.
        if (!best || r.a.inertia < best.inertia) {
          best = { centroids: r.centroids, inertia: r.a.inertia, nIter: r.nIter, converged: r.converged, history: r.history, read: () => r.a.read() };
        }
        if (store?.due() && run + 1 < nRuns) await store.save(await stateOf(run + 1, null));
      }
      const { labels, distances } = await best!.read();
      const { read: _read, ...rest } = best!;
      return { ...rest, labels, distances, runs, tolAbs, ms, init: method };
    } finally {
      be.release(dx);
    }
  }
}

/**
 * Mean over features of the (unweighted) variance, as scikit-learn's `_tolerance`. One pass:
 * sums of (x − x₀) and (x − x₀)² with x₀ the first row, a shift that keeps the one-pass
 * formula free of cancellation for data far from the origin.
 */
export function meanVariance(x: HostMatrix): number {
  const d = x.nFeatures;
  const n = x.nRows;
  const s1 = new Float64Array(d);
  const s2 = new Float64Array(d);
  const first = hostRows(x, [0]);
  const blocks = isChunked(x) ? x.nChunks : 1;
  for (let c = 0; c < blocks; c++) {
    const data = isChunked(x) ? x.chunk(c) : x.data;
    const rows = isChunked(x) ? chunkRange(x, c).end - c * x.chunkRows : n;
    for (let i = 0; i < rows; i++) {
      const base = i * d;
      for (let f = 0; f < d; f++) {
        const t = data[base + f] - first[f];
        s1[f] += t;
        s2[f] += t * t;
      }
    }
  }
  let s = 0;
  for (let f = 0; f < d; f++) {
    const m = s1[f] / n;
    s += Math.max(0, s2[f] / n - m * m);
  }
  return s / d;
}

/** Where a Lloyd run starts: after seeding (iteration 0, no labels) or at a saved point. */
interface LloydStart {
  iteration: number;
  centroids: Float32Array;
  labels: Int32Array | null;
  history: IterationStats[];
}

/**
 * One Lloyd run from `start`. Each iteration (see {@link lloydStep}) assigns rows to the current
 * centroids and moves the centroids to the weighted means. Every {@link CHECKPOINT_EVERY}
 * iterations the backend's chain is cut (the next step sees host labels) and `onPoint` may save
 * the state there.
 */
async function lloyd(
  be: Backend,
  dx: DeviceMatrix,
  x: HostMatrix,
  start: LloydStart,
  k: number,
  maxIter: number,
  tolAbs: number,
  onIteration: (s: IterationStats) => void,
  onPoint: ((state: NonNullable<KMeansState['current']>) => Promise<void>) | null,
): Promise<{ centroids: Float32Array; a: Assignment; nIter: number; converged: boolean; history: IterationStats[] }> {
  let centroids = start.centroids;
  let prev: Assignment | undefined = start.labels ? hostAssignment(start.labels) : undefined;
  const history = start.history;
  let converged = false;
  let strict = false;
  let it = start.iteration;
  while (it < maxIter) {
    it++;
    const t0 = performance.now();
    const step = await lloydStep(be, dx, x, centroids, k, prev);
    const stats: IterationStats = {
      inertia: step.a.inertia,
      shift: step.shift,
      changed: step.a.nChanged,
      emptyClusters: step.emptyClusters,
      ms: performance.now() - t0,
    };
    history.push(stats);
    onIteration(stats);
    centroids = step.centroids;
    if (prev && step.a.nChanged === 0) {
      converged = strict = true;
      prev = step.a;
      break;
    }
    prev = step.a;
    if (step.shift <= tolAbs) {
      converged = true;
      break;
    }
    if (it % CHECKPOINT_EVERY === 0 && it < maxIter) {
      // A copy: the backend may recycle the assignment's buffers for the next step's output.
      const labels = (await step.a.read()).labels.slice();
      prev = hostAssignment(labels);
      await onPoint?.({ iteration: it, centroids: centroids.slice(), labels, history: history.slice() });
    }
  }
  // Labels must match the final centroids: one more E-step unless labels already stood still.
  const a = strict ? prev! : await assign(be, dx, centroids, k);
  return { centroids, a, nIter: it, converged, history };
}

/**
 * One Lloyd iteration on prepared input.
 * - in: `centroids` (k × d), `prev` (the previous assignment, to count changes)
 * - out: the assignment against `centroids`, the new centroids, their squared shift, and how
 *   many clusters were empty (and relocated).
 */
export async function lloydStep(
  be: Backend,
  dx: DeviceMatrix,
  x: HostMatrix,
  centroids: Float32Array,
  k: number,
  prev?: Assignment,
): Promise<{ a: Assignment; centroids: Float32Array; shift: number; emptyClusters: number }> {
  const d = x.nFeatures;
  const a = await assign(be, dx, centroids, k, prev);
  const { sums, counts } = await segmentSum(be, dx, a, k);
  let empty = 0;
  for (let j = 0; j < k; j++) if (counts[j] === 0) empty++;
  if (empty > 0) await relocateEmpty(x, dx.weights, a, sums, counts, empty);
  const next = new Float32Array(k * d);
  let shift = 0;
  for (let j = 0; j < k; j++) {
    for (let f = 0; f < d; f++) {
      const v = counts[j] > 0 ? sums[j * d + f] / counts[j] : centroids[j * d + f];
      next[j * d + f] = v;
      const t = v - centroids[j * d + f];
      shift += t * t;
    }
  }
  return { a, centroids: next, shift, emptyClusters: empty };
}

/**
 * scikit-learn's `_relocate_empty_clusters`: each empty cluster takes the row farthest from its
 * centre (largest distances first), and that row's weight moves out of its old cluster's sums.
 * Labels are left as they are; the next iteration reassigns.
 */
async function relocateEmpty(
  x: HostMatrix,
  w: Float32Array | null,
  a: Assignment,
  sums: Float64Array,
  counts: Float64Array,
  nEmpty: number,
): Promise<void> {
  const d = x.nFeatures;
  const { labels, distances: dist } = await a.read();
  // Top nEmpty rows by distance, ties by lower index, without sorting all rows.
  const far: number[] = [];
  for (let i = 0; i < dist.length; i++) {
    if (far.length < nEmpty || dist[i] > dist[far[far.length - 1]]) {
      let p = far.length < nEmpty ? far.length : far.length - 1;
      far[p] = i;
      while (p > 0 && dist[far[p - 1]] < dist[far[p]]) {
        [far[p - 1], far[p]] = [far[p], far[p - 1]];
        p--;
      }
    }
  }
  const empties: number[] = [];
  for (let j = 0; j < counts.length; j++) if (counts[j] === 0) empties.push(j);
  empties.forEach((j, idx) => {
    const i = far[idx];
    const wi = w ? w[i] : 1;
    const old = labels[i];
    const row = hostRows(x, [i]);
    for (let f = 0; f < d; f++) {
      const v = row[f] * wi;
      sums[old * d + f] -= v;
      sums[j * d + f] = v;
    }
    counts[j] = wi;
    counts[old] -= wi;
  });
}
