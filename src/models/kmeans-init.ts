/**
 * K-Means seeding: greedy k-means++ (scikit-learn's), k-means‖ (Bahmani et al. 2012,
 * "Scalable K-Means++", as Spark MLlib and cuML use it), random rows, and the `auto` rule that
 * picks between the first two.
 *
 * Like the Lloyd loop, the seeding only calls backend ops (`assign`, `updateClosest`,
 * `potentials`): which device runs them is the backend's business, and a seed
 * reproduces the centers on a given backend.
 *
 * @example
 * const dx = be.upload(x);
 * const centers = await kmeansParallel(be, dx, x, 1024, new Random(0)); // 1024 × nFeatures
 */
import { isDeviceOutOfMemory, type Backend, type DeviceMatrix, type DeviceSeeding } from '../engine/backend.js';
import { hostRows, isChunked, type HostMatrix } from '../core/matrix.js';
import { assign } from '../engine/ops/assign.js';
import { checkCentroids } from '../engine/ops/check.js';
import { potentials } from '../engine/ops/potentials.js';
import { updateClosest } from '../engine/ops/update-closest.js';
import { nativeHelper } from '../util/native-addon.js';
import { Random } from '../util/random.js';

/** A seeding method K-Means can run. */
export type InitMethod = 'k-means++' | 'k-means||' | 'random';
/** What `init` accepts by name: a method, or `auto` ({@link autoInit}). */
export type InitName = 'auto' | InitMethod;
/** Every name `init` accepts, for option parsers. */
export const INIT_NAMES: readonly InitName[] = Object.freeze(['auto', 'k-means++', 'k-means||', 'random']);

/**
 * k at and above which `auto` seeds with k-means‖ rather than greedy k-means++.
 *
 * Greedy k-means++ computes k × (3 + ⌊ln k⌋) distances per row (2 + ⌊ln k⌋ candidates and
 * one closest-update per step, over 2 passes); k-means‖ costs 2 assignments against ~2k new
 * candidates each plus greedy k-means++ on the ~4k weighted candidates, so it grows like k, not
 * k·ln k, with a higher constant. Measured with `node dist/bench/init-compare.js --rows 200000
 * --features D --k K --iters 1 --reps 3` (native backend, 2 threads, avx512, on a shared
 * 2-core machine, so CPU seconds beside the wall's median), greedy / k-means‖ CPU seconds:
 * - D = 32:  k = 16 0.048 / 0.081, k = 32 0.18 / 0.11, k = 64 0.33 / 0.10, k = 128 0.57 / 0.14, k = 256 1.33 / 0.20
 * - D = 128: k = 16 0.26 / 0.13, k = 32 0.54 / 0.15, k = 64 1.05 / 0.20, k = 128 2.65 / 0.38, k = 256 5.1 / 0.52
 * From k = 32 k-means‖ is faster at every width; below, the two differ by tens of
 * milliseconds and greedy k-means++ (scikit-learn's method) is kept.
 */
export const AUTO_PARALLEL_MIN_K = 32;

/**
 * The method `auto` picks: k-means‖ from {@link AUTO_PARALLEL_MIN_K} clusters on, where it is
 * faster than greedy k-means++ at equal quality (final inertia after Lloyd within 1 % of
 * scikit-learn's k-means++, test/models/kmeans-init.test.ts), and greedy k-means++ below, or
 * when nRows < 4k: the rounds draw ~4k rows, so k-means‖ would be greedy k-means++ on nearly
 * all of them (and both take milliseconds there).
 *
 * @example
 * autoInit(200_000, 1024); // 'k-means||'
 * autoInit(200_000, 8); // 'k-means++'
 */
export function autoInit(nRows: number, k: number): InitMethod {
  return k >= AUTO_PARALLEL_MIN_K && nRows >= 4 * k ? 'k-means||' : 'k-means++';
}

/** Rows `ids` of `x`, copied into one k × nFeatures array. @internal */
export function rowsOf(x: HostMatrix, ids: ArrayLike<number>): Float32Array {
  return hostRows(x, ids);
}

/** k distinct rows drawn with probability proportional to weight. @internal */
export function randomInit(x: HostMatrix, k: number, weights: Float32Array | null, rng: Random): Float32Array {
  const picked = new Set<number>();
  const cum = weights ? cumulative(weights) : null;
  while (picked.size < k) {
    picked.add(cum ? searchSorted(cum, rng.next() * cum[cum.length - 1]) : rng.int(x.nRows));
  }
  return rowsOf(x, [...picked]);
}

function cumulative(w: ArrayLike<number>, scale?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(w.length);
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    s += scale ? w[i] * scale[i] : w[i];
    out[i] = s;
  }
  return out;
}

/** First index i with cum[i] >= v (numpy's searchsorted, side='left'), clipped to the last index. */
function searchSorted(cum: Float64Array, v: number): number {
  let lo = 0;
  let hi = cum.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return Math.min(lo, cum.length - 1);
}

/** A row drawn with probability proportional to its weight (uniformly when unweighted). */
function firstRow(dx: DeviceMatrix, rng: Random): number {
  const w = dx.weights;
  return w ? searchSorted(cumulative(w), rng.next() * dx.totalWeight) : rng.int(dx.nRows);
}

/**
 * Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): each step draws 2 + ⌊ln k⌋ candidates
 * by D² sampling and keeps the one that lowers the potential most. Returns k rows of `x`.
 *
 * @example
 * const centers = await kmeansPlusPlus(be, dx, x, 8, new Random(0));
 */
export async function kmeansPlusPlus(be: Backend, dx: DeviceMatrix, x: HostMatrix, k: number, rng: Random, onStep?: (done: number, total: number) => void): Promise<Float32Array> {
  const n = x.nRows;
  const d = x.nFeatures;
  const centers = new Float32Array(k * d);
  const first = firstRow(dx, rng);
  centers.set(rowsOf(x, [first]), 0);
  const seeder = isChunked(x) ? null : (be.seeding?.(dx) ?? null);
  if (seeder) {
    const done = await seedOnDevice(seeder, x, k, rng, centers, onStep);
    if (done) return done;
  }
  // Buffers kept per uploaded matrix, so K-Means' restarts reuse them: fresh pages cost more
  // than the arithmetic at this size (~4 ms per MiB on some VMs).
  const scratch = kppScratch(dx, n, !be.updateClosest);
  try {
    const { closest, cum, toNew } = scratch;
    // From +inf, the first update leaves each row's distance to the first center (and the
    // running sum the draws search); its total is the potential.
    closest.fill(Infinity);
    await updateClosest(be, dx, centers.slice(0, d), closest, cum, toNew ?? undefined);
    return await greedySteps(be, dx, x, k, rng, centers, 1, scratch, onStep);
  } finally {
    releaseScratch(dx, x, scratch);
  }
}

/** Candidates a greedy k-means++ step draws: 2 + ⌊ln k⌋, scikit-learn's. */
function greedyTrials(k: number): number {
  return 2 + Math.floor(Math.log(k));
}

/**
 * Greedy k-means++ with its state on the backend ({@link DeviceSeeding}): the same draws from
 * `rng`, in the same order, as greedySteps, so the centres are the host path's unless a draw
 * lands within rounding of a row boundary. Null, with `rng` untouched, when the device has no
 * memory for it (the caller goes on with the other ops from the same state).
 */
async function seedOnDevice(
  seeder: DeviceSeeding,
  x: HostMatrix,
  k: number,
  rng: Random,
  centers: Float32Array,
  onStep?: (done: number, total: number) => void,
): Promise<Float32Array | null> {
  const d = x.nFeatures;
  const trials = greedyTrials(k);
  let pot: number;
  try {
    pot = seeder.start(centers.subarray(0, d), trials);
  } catch (e) {
    if (isDeviceOutOfMemory(e)) return null;
    throw e;
  }
  const targets = new Float64Array(trials);
  for (let c = 1; c < k; c++) {
    for (let t = 0; t < trials; t++) targets[t] = rng.next() * pot;
    const cands = rowsOf(x, seeder.draw(targets));
    const pots = seeder.potentials(cands, trials);
    let bestT = 0;
    for (let t = 1; t < trials; t++) if (pots[t] < pots[bestT]) bestT = t;
    centers.set(cands.subarray(bestT * d, (bestT + 1) * d), c * d);
    pot = pots[bestT];
    onStep?.(c + 1, k);
    if (c === k - 1) break;
    seeder.take(bestT);
  }
  return centers;
}

/**
 * Greedy k-means++ steps filling centers [from, k), given `scratch.closest` (each row's squared
 * distance to its nearest of centers [0, from)) and `scratch.cum` (their weighted running sum).
 */
async function greedySteps(
  be: Backend,
  dx: DeviceMatrix,
  x: HostMatrix,
  k: number,
  rng: Random,
  centers: Float32Array,
  from: number,
  scratch: KppScratch,
  /** Hears each center chosen (progress). */
  onStep?: (done: number, total: number) => void,
): Promise<Float32Array> {
  const d = x.nFeatures;
  const n = x.nRows;
  const trials = greedyTrials(k);
  const { closest, cum, toNew } = scratch;
  // scikit-learn's greedy step keeps the candidates' distances and updates the closest ones
  // from the chosen candidate's: one pass over the data per step instead of two, where the
  // backend can keep them with updateClosest's bits and they fit in KEEP_BYTES.
  const keep = be.potentialsKeeping && !isChunked(x) && n * trials * 4 <= KEEP_BYTES ? keepBuffer(scratch, n * trials) : null;
  let pot = cum[n - 1];
  for (let c = from; c < k; c++) {
    const ids: number[] = [];
    for (let t = 0; t < trials; t++) ids.push(searchSorted(cum, rng.next() * pot));
    const cands = rowsOf(x, ids);
    const pots = keep ? await keptPotentials(be, dx, closest, cands, trials, keep) : await potentials(be, dx, closest, cands, trials);
    let bestT = 0;
    for (let t = 1; t < trials; t++) if (pots[t] < pots[bestT]) bestT = t;
    const best = rowsOf(x, [ids[bestT]]);
    centers.set(best, c * d);
    pot = pots[bestT];
    onStep?.(c + 1, k);
    if (c === k - 1) break;
    if (keep) closestFrom(keep.subarray(bestT * n, (bestT + 1) * n), closest, dx.weights, cum);
    else await updateClosest(be, dx, Float32Array.from(best), closest, cum, toNew ?? undefined);
  }
  return centers;
}

/** The most memory the kept candidate distances of a greedy k-means++ step may take (trials × nRows floats). */
export const KEEP_BYTES = 256 << 20;

/** {@link potentials} through the backend's keeping variant, with its argument checks. */
function keptPotentials(be: Backend, dx: DeviceMatrix, closest: Float32Array, cands: Float32Array, m: number, keep: Float32Array): Promise<Float64Array> {
  checkCentroids('potentials', dx, cands, m, 'candidates');
  if (keep.length < m * dx.nRows) throw new RangeError(`potentials: 'keep' must hold m × nRows = ${m * dx.nRows} floats; got ${keep.length}`);
  return be.potentialsKeeping!(dx, closest, cands, m, keep.length === m * dx.nRows ? keep : keep.subarray(0, m * dx.nRows));
}

/**
 * updateClosest from kept distances: closest[i] = min(closest[i], dist[i]) and cum[i] = the
 * running Σ w·closest in float64, row order: the native op's arithmetic, so the same bits.
 */
export function closestFrom(dist: Float32Array, closest: Float32Array, w: Float32Array | null, cum: Float64Array): void {
  // The addon's twin when it is built (the min in parallel blocks): ~1 ms against ~2.5 for this loop per million rows.
  const native = nativeHelper<(dist: Float32Array, closest: Float32Array, w: Float32Array | null, cum: Float64Array) => void>('closestFrom');
  if (native) return native(dist, closest, w, cum);
  let acc = 0;
  for (let i = 0; i < dist.length; i++) {
    const t = dist[i];
    const v = t < closest[i] ? t : closest[i];
    closest[i] = v;
    acc += w ? w[i] * v : v;
    cum[i] = acc;
  }
}

/** The scratch's buffer for kept distances, at least `size` floats (kept for restarts). */
function keepBuffer(s: KppScratch, size: number): Float32Array {
  if (!s.keep || s.keep.length < size) s.keep = new Float32Array(size);
  return s.keep.length === size ? s.keep : s.keep.subarray(0, size);
}

type KppScratch = { closest: Float32Array; cum: Float64Array; toNew: Float32Array | null; keep?: Float32Array; busy: boolean };

/**
 * Gives k-means++'s arrays back after a seeding. Rows read in blocks (a table larger than memory)
 * drop them at once: 16 bytes per row that the Lloyd passes after the seeding do not need
 * outweigh a restart's cost of allocating them again.
 */
function releaseScratch(dx: DeviceMatrix, x: HostMatrix, s: KppScratch): void {
  s.busy = false;
  if (isChunked(x) && kppBuffers.get(dx) === s) kppBuffers.delete(dx);
}
const kppBuffers = new WeakMap<DeviceMatrix, KppScratch>();

/**
 * k-means++ working arrays for one uploaded matrix (closest, cumulative sums, and toNew if
 * needed), reused by K-Means' restarts; a run that overlaps another on the same matrix gets
 * its own. Give them back with `s.busy = false`.
 */
function kppScratch(dx: DeviceMatrix, n: number, needToNew: boolean): KppScratch {
  let s = kppBuffers.get(dx);
  if (!s || s.busy || s.closest.length !== n) {
    const fresh: KppScratch = { closest: new Float32Array(n), cum: new Float64Array(n), toNew: null, busy: false };
    if (!s || !s.busy) kppBuffers.set(dx, fresh);
    s = fresh;
  }
  if (needToNew && !s.toNew) s.toNew = new Float32Array(n);
  s.busy = true;
  return s;
}

/** Settings of k-means‖. */
export interface ParallelInitOptions {
  /**
   * Sampling rounds after the first center. Default 2, Spark's `initSteps`: on 200,000 × 128
   * blobs at k = 1,024 (bench/init-compare.ts), 2 rounds took 1.8 s of CPU against 3.9 s for 5,
   * with the inertia after 10 Lloyd iterations 0.01 % lower, and the fixture tests (Gaussian
   * mixture and digits, k = 16 to 1,024) show no difference in quality beyond seed noise.
   */
  rounds: number;
  /** Expected rows sampled per round, as a multiple of k (the paper's ℓ / k). Default 2, as Spark and cuML. */
  oversampling: number;
}

export const PARALLEL_INIT_DEFAULTS: Readonly<ParallelInitOptions> = Object.freeze({ rounds: 2, oversampling: 2 });

/**
 * k-means‖ (Bahmani et al. 2012): from one row drawn by weight, each of `rounds` rounds keeps
 * every row independently with probability min(1, ℓ·wᵢ·dᵢ² / φ) (dᵢ² its squared distance to
 * the nearest candidate so far, φ = Σ wᵢ·dᵢ², ℓ = oversampling × k) and updates dᵢ² with one
 * `assign` against the new candidates. Each candidate is then weighted by the rows (their
 * weights) it is nearest to, and the ~rounds × ℓ weighted candidates are reclustered to k by
 * greedy k-means++ on the backend. The centers are rows of the data: Spark and cuML follow
 * the recluster with weighted Lloyd steps on the candidates, which did not change the inertia
 * after the main Lloyd loop beyond seed noise in our measurements, so we leave it out.
 *
 * If the rounds draw no more than k distinct candidates (small data, or few distinct rows), the
 * rest are drawn by greedy k-means++ steps on the whole data from the candidates' distances, so
 * k = nRows distinct rows gives each row once, as greedy k-means++ does.
 *
 * Cost: `rounds` assignments against ~ℓ centers and the recluster (greedy k-means++ on
 * ~rounds·ℓ rows), instead of k·(2 + ln k) passes over all rows.
 *
 * @example
 * const centers = await kmeansParallel(be, dx, x, 1024, new Random(0));
 */
export async function kmeansParallel(
  be: Backend,
  dx: DeviceMatrix,
  x: HostMatrix,
  k: number,
  rng: Random,
  options: Partial<ParallelInitOptions> = {},
): Promise<Float32Array> {
  const o = { ...PARALLEL_INIT_DEFAULTS, ...options };
  const n = x.nRows;
  const w = dx.weights;
  const ell = o.oversampling * k;
  // closest: each row's squared distance to its nearest candidate, always as `assign` reports
  // it (Σ(x − c)², exact), so a candidate's own row is at 0 and is never drawn again;
  // owner: the index of that candidate.
  const closest = new Float32Array(n).fill(Infinity);
  const owner = new Int32Array(n);
  const cand: number[] = [];
  let phi = 0;
  const addCandidates = async (ids: number[]): Promise<void> => {
    const a = await assign(be, dx, rowsOf(x, ids), ids.length);
    const { labels, distances } = await a.read();
    const base = cand.length;
    phi = 0;
    for (let i = 0; i < n; i++) {
      if (distances[i] < closest[i]) {
        closest[i] = distances[i];
        owner[i] = base + labels[i];
      }
      phi += w ? w[i] * closest[i] : closest[i];
    }
    for (const id of ids) cand.push(id);
  };
  await addCandidates([firstRow(dx, rng)]);
  for (let r = 0; r < o.rounds && phi > 0; r++) {
    const scale = ell / phi;
    const picked: number[] = [];
    // One draw per row and round, in row order, so a seed gives the same sample everywhere.
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      if (u < scale * (w ? w[i] * closest[i] : closest[i])) picked.push(i);
    }
    if (picked.length > 0) await addCandidates(picked);
  }

  // Candidate weights: Σ w of the rows nearest to each. A candidate owns nothing only when an
  // identical row was drawn in the same round (ties go to one of them), or when it and every row
  // it is nearest to weigh 0: drop it.
  const cw = new Float64Array(cand.length);
  for (let i = 0; i < n; i++) cw[owner[i]] += w ? w[i] : 1;
  const keep: number[] = [];
  for (let j = 0; j < cand.length; j++) if (cw[j] > 0) keep.push(j);

  if (keep.length <= k) return topUp(be, dx, x, k, rng, keep.map((j) => cand[j]), closest);

  const c = { data: rowsOf(x, keep.map((j) => cand[j])), nRows: keep.length, nFeatures: x.nFeatures };
  const dc = be.upload(c, Float32Array.from(keep, (j) => cw[j]));
  try {
    return await kmeansPlusPlus(be, dc, c, k, rng);
  } finally {
    be.release(dc);
  }
}

/** The candidates, then greedy k-means++ steps on all rows up to k centers. */
async function topUp(
  be: Backend,
  dx: DeviceMatrix,
  x: HostMatrix,
  k: number,
  rng: Random,
  ids: number[],
  closest: Float32Array,
): Promise<Float32Array> {
  const centers = new Float32Array(k * x.nFeatures);
  centers.set(rowsOf(x, ids), 0);
  if (ids.length === k) return centers;
  const scratch = kppScratch(dx, x.nRows, !be.updateClosest);
  try {
    scratch.closest.set(closest);
    const w = dx.weights;
    let acc = 0;
    for (let i = 0; i < x.nRows; i++) {
      acc += w ? w[i] * closest[i] : closest[i];
      scratch.cum[i] = acc;
    }
    return await greedySteps(be, dx, x, k, rng, centers, ids.length, scratch);
  } finally {
    releaseScratch(dx, x, scratch);
  }
}
