/**
 * Huang's k-prototypes for mixed data (Huang 1997, 1998): each prototype is a numeric centre
 * and a categorical mode, and a row's cost to it is
 *   ‖x_num − c‖² + γ · #{categorical columns where x_cat ≠ mode}.
 *
 * - γ defaults to Huang's rule as the `kmodes` package (0.12, `KPrototypes(gamma=None)`)
 *   computes it: 0.5 × the mean over numeric columns of their standard deviation
 *   (`0.5 * np.mean(Xnum.std(axis=0))`: population std, unweighted even with sample weights;
 *   kmodes before 0.12 took the std of all numeric cells at once). With no numeric columns
 *   γ = 1, so the cost counts mismatches as k-modes does.
 * - Iterations are the batch (Lloyd-like) variant: every row goes to its cheapest prototype
 *   (ties to the lowest index), then each prototype moves to its rows' weighted mean and
 *   per-column weighted mode (ties to the lowest code), until no label changes or `maxIter`.
 *   kmodes instead moves rows one at a time and updates the two prototypes involved at once;
 *   both decrease the same cost, and reach a point where no single row wants to move.
 * - Empty clusters take the rows with the highest cost (ties to the lower row), as K-Means
 *   does (scikit-learn's `_relocate_empty_clusters`).
 * - Initialisation picks k rows, and each prototype starts as one row (numeric part and codes):
 *   `cao` (Cao et al. 2009, kmodes' `init_cao`: the densest row, then repeatedly the row that
 *   maximises density × mismatches to its nearest pick; deterministic, so one run), `huang`
 *   (kmodes' `init_huang`: per column k codes drawn by frequency, then for each prototype the
 *   row with the fewest mismatches to its draw whose codes differ from earlier picks), or
 *   `random` (k distinct rows, drawn by weight). kmodes starts the numeric centres at random
 *   normal draws around the column means instead of at the picked rows.
 * - A missing category (code −1) mismatches every mode: it adds γ to the cost against every
 *   prototype, so it never sways an assignment, and it is left out of the modes. A cluster
 *   whose rows all miss a column keeps its previous mode there.
 *
 * Numeric distances run through the backend's `distances` op, in row blocks uploaded once;
 * mismatch counts, means and modes run on the host (O(nRows·(k·nCategorical + nNumeric)) per
 * iteration, below the distances' O(nRows·k·nNumeric) once there are a few numeric columns).
 *
 * @example
 * const cat = encodeCategories(['gold', 'silver', null, 'gold']); // codes [0, 1, -1, 0]
 * const r = await fitKPrototypes(be, xNum, [cat.codes], null, { k: 2, seed: 1 });
 * r.labels; r.centroids; r.modes; r.gamma;
 * fs.writeFileSync('kproto.json', JSON.stringify(r.model));
 */
import type { Backend, DeviceMatrix } from '../engine/backend.js';
import type { Matrix } from '../core/matrix.js';
import { distances } from '../engine/ops/distances.js';
import { dataRow, SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';

/** Version of the {@link KPrototypesModel} layout, checked by {@link predictKPrototypes}. */
export const KPROTOTYPES_FORMAT_VERSION = 1;

/** A seeding method by name. */
export type KPrototypesInitName = 'cao' | 'huang' | 'random';
export const KPROTOTYPES_INIT_NAMES: readonly KPrototypesInitName[] = Object.freeze(['cao', 'huang', 'random']);

/**
 * Categorical input as integer codes: one Int32Array per column, or one nRows × nColumns
 * row-major array. Codes are dense per column (0 … levels − 1, as {@link encodeCategories}
 * makes them), −1 for missing.
 */
export type CategoricalCodes = Int32Array[] | { codes: Int32Array; nRows: number; nColumns: number };

export interface KPrototypesOptions {
  /** Number of clusters, an integer in [1, nRows]. Required. */
  k: number;
  /** Weight of one categorical mismatch against squared numeric distance, >= 0; null: Huang's rule (see the module note). Default null. */
  gamma: number | null;
  /**
   * Seeding: `cao`, `huang` or `random` (see the module note), k row indices, or explicit
   * prototypes (`centroids` k × nNumeric, `modes` k × nCategorical, row-major). Default
   * `huang`. kmodes defaults to Cao, but its Cao draws the numeric centres at random and so
   * restarts `nInit` times; Cao here is one deterministic run, which looks at the categories
   * only and can start badly (adjusted Rand 0.63 against 0.99 for `huang` on 4 overlapping
   * blobs in the tests' generator, seed 3).
   */
  init: KPrototypesInitName | number[] | { centroids: ArrayLike<number>; modes: ArrayLike<number> };
  /** Restarts (`huang`, `random`); the lowest cost wins. `cao` and explicit starts run once. Default 10, kmodes'. */
  nInit: number;
  /** Iterations per run at most. Default 100, kmodes'. */
  maxIter: number;
  /** Seed of every random choice. Default 0. */
  seed: number;
  /** Called after each iteration, for progress reporting. */
  onIteration?: (run: number, stats: KPrototypesIterationStats) => void;
}

export const KPROTOTYPES_DEFAULTS: Readonly<Omit<KPrototypesOptions, 'k' | 'onIteration'>> = Object.freeze({
  gamma: null as number | null,
  init: 'huang' as KPrototypesOptions['init'],
  nInit: 10,
  maxIter: 100,
  seed: 0,
});

/** What one iteration did. */
export interface KPrototypesIterationStats {
  /** Weighted cost of the rows against the prototypes they were assigned to in this iteration (float32 numeric distances). */
  cost: number;
  /** Rows whose label changed (nRows in the first iteration). */
  changed: number;
  /** Clusters that came out empty and took the costliest rows. */
  emptyClusters: number;
  ms: number;
}

/**
 * A fitted k-prototypes model: plain numbers, so `JSON.stringify` writes it into model.json as
 * is, and {@link predictKPrototypes} reads it back.
 */
export interface KPrototypesModel {
  formatVersion: typeof KPROTOTYPES_FORMAT_VERSION;
  k: number;
  nNumeric: number;
  nCategorical: number;
  /** The γ used (Huang's rule resolved). */
  gamma: number;
  /** k × nNumeric numeric centres. */
  centroids: number[][];
  /** k × nCategorical codes (−1 only where a prototype's rows never had the column). */
  modes: number[][];
}

export interface KPrototypesResult {
  labels: Int32Array;
  /** k × nNumeric, the same arrays as `model.centroids`. */
  centroids: number[][];
  /** k × nCategorical codes, the same arrays as `model.modes`. */
  modes: number[][];
  /** Weighted total cost, float64 (numeric part recomputed exactly). */
  cost: number;
  /** Each row's cost to its prototype, unweighted, float64. */
  costs: Float64Array;
  gamma: number;
  nIter: number;
  /** True when an iteration left every label as it was. */
  converged: boolean;
  /** Per-iteration statistics of the winning run. */
  history: KPrototypesIterationStats[];
  /** Cost, iterations and starting rows (empty for explicit prototypes) of every run, in order. */
  runs: { cost: number; nIter: number; converged: boolean; initRows: number[] }[];
  /** The seeding that ran. */
  init: KPrototypesInitName | 'rows' | 'array';
  /** What model.json keeps. */
  model: KPrototypesModel;
}

/** Parameter constraints as data, checked once in {@link fitKPrototypes}. */
const CONSTRAINTS: { [K in 'nInit' | 'maxIter']: [number, number] } = { nInit: [1, 1000], maxIter: [1, 1_000_000] };

/** Largest Σ levels over the categorical columns (count tables are k × Σ levels float64). */
const MAX_LEVELS = 1 << 24;

/** Categorical codes row-major, with each column's number of levels. @internal */
interface Cat {
  codes: Int32Array;
  nRows: number;
  c: number;
  /** levels[j]: 1 + the largest code in column j (0 if it is all missing). */
  levels: Int32Array;
}

function toCat(x: CategoricalCodes, owner: string): Cat {
  let codes: Int32Array;
  let nRows: number;
  let c: number;
  if (Array.isArray(x)) {
    c = x.length;
    nRows = c > 0 ? x[0].length : 0;
    codes = new Int32Array(nRows * c);
    x.forEach((col, j) => {
      if (!(col instanceof Int32Array)) throw new TypeError(`${owner}: categorical column ${j} must be an Int32Array of codes`);
      if (col.length !== nRows) throw new SegtensorError('BAD_INPUT', `${owner}: categorical column ${j} has ${col.length} rows; column 0 has ${nRows}`);
      for (let i = 0; i < nRows; i++) codes[i * c + j] = col[i];
    });
  } else {
    if (!(x?.codes instanceof Int32Array)) throw new TypeError(`${owner}: categorical codes must be an Int32Array`);
    ({ codes, nRows, nColumns: c } = x);
    if (codes.length !== nRows * c) {
      throw new TypeError(`${owner}: categorical codes hold ${codes.length} values, not nRows × nColumns = ${nRows} × ${c}`);
    }
  }
  const levels = new Int32Array(c);
  for (let i = 0; i < nRows; i++) {
    for (let j = 0; j < c; j++) {
      const v = codes[i * c + j];
      if (v < -1) throw new SegtensorError('BAD_INPUT', `${owner}: categorical column ${j} holds code ${v} at ${dataRow(i)}; codes are >= 0, or -1 for missing`);
      if (v >= levels[j]) levels[j] = v + 1;
    }
  }
  return { codes, nRows, c, levels };
}

function gammaError(g: unknown): SegtensorError {
  return new SegtensorError('BAD_OPTION', `--gamma must be a number >= 0; got ${String(g)}`);
}

function validate(xNum: Matrix, cat: Cat, weights: Float32Array | null, o: KPrototypesOptions): void {
  const n = xNum.nRows;
  const d = xNum.nFeatures;
  if (xNum.data.length !== n * d) throw new TypeError(`kprototypes: numeric data holds ${xNum.data.length} values, not nRows × nFeatures = ${n} × ${d}`);
  if (cat.c < 1) throw new SegtensorError('BAD_OPTION', 'kprototypes needs at least one categorical column');
  if (cat.nRows !== n) throw new SegtensorError('BAD_INPUT', `kprototypes: the numeric part has ${n} rows and the categorical part ${cat.nRows}`);
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > n) {
    throw new SegtensorError('BAD_OPTION', `--k must be an integer in [1, ${n}] (the number of rows); got ${o.k}`);
  }
  if (o.gamma !== null && (typeof o.gamma !== 'number' || !(o.gamma >= 0) || !Number.isFinite(o.gamma))) throw gammaError(o.gamma);
  for (const [name, [lo, hi]] of Object.entries(CONSTRAINTS)) {
    const v = o[name as keyof typeof CONSTRAINTS];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new SegtensorError('BAD_OPTION', `kprototypes: '${name}' must be an integer in [${lo}, ${hi}]; got ${v}`);
    }
  }
  if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `kprototypes: 'seed' must be an integer; got ${o.seed}`);
  const init = o.init;
  if (typeof init === 'string') {
    if (!KPROTOTYPES_INIT_NAMES.includes(init)) {
      throw new SegtensorError('BAD_OPTION', `--init must be one of ${KPROTOTYPES_INIT_NAMES.join(', ')} for kprototypes; got ${init}`);
    }
  } else if (Array.isArray(init)) {
    if (init.length !== o.k || init.some((r) => !Number.isInteger(r) || r < 0 || r >= n)) {
      throw new SegtensorError('BAD_OPTION', `kprototypes: 'init' rows must be k = ${o.k} integers in [0, ${n}); got [${init.join(', ')}]`);
    }
  } else if (!init || init.centroids?.length !== o.k * d || init.modes?.length !== o.k * cat.c) {
    throw new SegtensorError(
      'BAD_OPTION',
      `kprototypes: 'init' prototypes must hold k × nNumeric = ${o.k * d} centroid values and k × nCategorical = ${o.k * cat.c} modes; got ${init?.centroids?.length} and ${init?.modes?.length}`,
    );
  }
  let sumLevels = 0;
  for (let j = 0; j < cat.c; j++) sumLevels += cat.levels[j];
  if (sumLevels > MAX_LEVELS) {
    throw new SegtensorError('BAD_INPUT', `kprototypes: the categorical codes reach ${sumLevels} levels in all (at most ${MAX_LEVELS}); codes must be dense, 0 … levels − 1`);
  }
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) {
      const v = xNum.data[i * d + f];
      if (!Number.isFinite(v)) throw new SegtensorError('NON_FINITE', `kprototypes: numeric feature ${f} is ${v} at ${dataRow(i)}`);
    }
  }
  if (weights) {
    if (weights.length !== n) throw new SegtensorError('BAD_INPUT', `kprototypes: weights hold ${weights.length} values for ${n} rows`);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w)) throw new SegtensorError('BAD_INPUT', `kprototypes: weight of ${dataRow(i)} must be finite and >= 0; got ${w}`);
      total += w;
    }
    if (!(total > 0)) throw new SegtensorError('BAD_INPUT', 'kprototypes: the weights sum to 0');
  }
}

/**
 * Huang's γ as kmodes 0.12 computes it: 0.5 × mean over numeric columns of the population
 * standard deviation (unweighted), two passes in float64; 1 without numeric columns.
 *
 * @example
 * huangGamma({ data: Float32Array.from([0, 2]), nRows: 2, nFeatures: 1 }); // 0.5 × 1
 */
export function huangGamma(xNum: Matrix): number {
  const n = xNum.nRows;
  const d = xNum.nFeatures;
  if (d === 0) return 1;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) mean[f] += xNum.data[i * d + f];
  for (let f = 0; f < d; f++) mean[f] /= n;
  const ss = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) {
      const t = xNum.data[i * d + f] - mean[f];
      ss[f] += t * t;
    }
  }
  let s = 0;
  for (let f = 0; f < d; f++) s += Math.sqrt(ss[f] / n);
  return (0.5 * s) / d;
}

/**
 * Fits k-prototypes. `xNum` is the prepared numeric matrix (nFeatures may be 0, or pass null:
 * pure k-modes), `xCat` the categorical codes, `weights` optional per-row sample weights (an
 * integer weight acts as that many copies of the row). The numeric rows are uploaded to the
 * backend once, in blocks, and released at the end.
 *
 * @example
 * const r = await fitKPrototypes(be, xNum, { codes, nRows, nColumns: 2 }, null, { k: 4, gamma: 0.5 });
 */
export async function fitKPrototypes(
  be: Backend,
  xNum: Matrix | null,
  xCat: CategoricalCodes,
  weights: Float32Array | null,
  options: Partial<KPrototypesOptions> & { k: number },
): Promise<KPrototypesResult> {
  const cat = toCat(xCat, 'kprototypes');
  const x: Matrix = xNum ?? { data: new Float32Array(0), nRows: cat.nRows, nFeatures: 0 };
  const o: KPrototypesOptions = { ...KPROTOTYPES_DEFAULTS, ...options };
  validate(x, cat, weights, o);
  const gamma = o.gamma ?? huangGamma(x);
  const state: State = { be, x, cat, w: weights, k: o.k, gamma, blocks: uploadBlocks(be, x, o.k) };
  try {
    const rng = new Random(o.seed);
    const method: KPrototypesResult['init'] = typeof o.init === 'string' ? o.init : Array.isArray(o.init) ? 'rows' : 'array';
    // Cao and explicit starts are deterministic: more runs would repeat the first.
    const nRuns = method === 'huang' || method === 'random' ? o.nInit : 1;
    const runs: KPrototypesResult['runs'] = [];
    let best: (Run & { initRows: number[] }) | null = null;
    for (let run = 0; run < nRuns; run++) {
      const runRng = new Random(rng.fork());
      let initRows: number[] = [];
      let proto: Prototypes;
      if (method === 'array') {
        const init = o.init as { centroids: ArrayLike<number>; modes: ArrayLike<number> };
        proto = { centroids: Float64Array.from(init.centroids), modes: Int32Array.from(init.modes) };
      } else {
        initRows =
          method === 'rows'
            ? [...(o.init as number[])]
            : method === 'cao'
              ? caoRows(cat, o.k, weights)
              : method === 'huang'
                ? huangRows(cat, o.k, weights, runRng)
                : initRandom(cat.nRows, o.k, weights, runRng);
        proto = prototypesOf(x, cat, initRows);
      }
      const r = await runOnce(state, proto, o.maxIter, (s) => o.onIteration?.(run, s));
      runs.push({ cost: r.cost, nIter: r.nIter, converged: r.converged, initRows });
      // Strictly lower wins, so ties keep the earliest run.
      if (!best || r.cost < best.cost) best = { ...r, initRows };
    }
    const b = best!;
    const d = x.nFeatures;
    const c = cat.c;
    const centroids = Array.from({ length: o.k }, (_, j) => Array.from(b.proto.centroids.subarray(j * d, j * d + d)));
    const modes = Array.from({ length: o.k }, (_, j) => Array.from(b.proto.modes.subarray(j * c, j * c + c)));
    const model: KPrototypesModel = { formatVersion: KPROTOTYPES_FORMAT_VERSION, k: o.k, nNumeric: d, nCategorical: c, gamma, centroids, modes };
    return {
      labels: b.labels,
      centroids,
      modes,
      cost: b.cost,
      costs: b.costs,
      gamma,
      nIter: b.nIter,
      converged: b.converged,
      history: b.history,
      runs,
      init: method,
      model,
    };
  } finally {
    for (const blk of state.blocks) be.release(blk.dx);
  }
}

/** Prototypes: k × d float64 centres and k × c codes, row-major. @internal */
interface Prototypes {
  centroids: Float64Array;
  modes: Int32Array;
}

/** Everything a run reads; set up once per fit. @internal */
interface State {
  be: Backend;
  x: Matrix;
  cat: Cat;
  w: Float32Array | null;
  k: number;
  gamma: number;
  /** Numeric rows in blocks resident on the backend (none without numeric columns). */
  blocks: { start: number; end: number; dx: DeviceMatrix }[];
}

interface Run {
  proto: Prototypes;
  labels: Int32Array;
  costs: Float64Array;
  cost: number;
  nIter: number;
  converged: boolean;
  history: KPrototypesIterationStats[];
}

/**
 * Row blocks of at most ~2^20 distances (4 MB of float32) per `distances` call, so memory stays
 * flat at large nRows·k; each block is uploaded once for the whole fit. @internal
 */
function uploadBlocks(be: Backend, x: Matrix, k: number): State['blocks'] {
  if (x.nFeatures === 0) return [];
  const rows = Math.max(1024, Math.floor((1 << 20) / k));
  const out: State['blocks'] = [];
  const d = x.nFeatures;
  try {
    for (let start = 0; start < x.nRows; start += rows) {
      const end = Math.min(x.nRows, start + rows);
      out.push({ start, end, dx: be.upload({ data: x.data.subarray(start * d, end * d), nRows: end - start, nFeatures: d }) });
    }
  } catch (e) {
    for (const b of out) be.release(b.dx);
    throw e;
  }
  return out;
}

function prototypesOf(x: Matrix, cat: Cat, rows: number[]): Prototypes {
  const d = x.nFeatures;
  const c = cat.c;
  const centroids = new Float64Array(rows.length * d);
  const modes = new Int32Array(rows.length * c);
  rows.forEach((r, j) => {
    for (let f = 0; f < d; f++) centroids[j * d + f] = x.data[r * d + f];
    for (let t = 0; t < c; t++) modes[j * c + t] = cat.codes[r * c + t];
  });
  return { centroids, modes };
}

/**
 * One batch run from `init`: each iteration (see {@link kprototypesStep}) assigns, then moves
 * the prototypes; it stops when an assignment changes no label. The cost is then recomputed
 * in float64 against the final prototypes.
 */
async function runOnce(s: State, init: Prototypes, maxIter: number, onIteration: (st: KPrototypesIterationStats) => void): Promise<Run> {
  let proto = init;
  let prev: Int32Array | null = null;
  const history: KPrototypesIterationStats[] = [];
  let converged = false;
  let it = 0;
  while (it < maxIter) {
    it++;
    const t0 = performance.now();
    const step = await kprototypesStep(s, proto, prev);
    const stats: KPrototypesIterationStats = { cost: step.cost, changed: step.changed, emptyClusters: step.emptyClusters, ms: performance.now() - t0 };
    history.push(stats);
    onIteration(stats);
    if (prev && step.changed === 0) {
      // The labels stood still, so the prototypes of this step are the previous ones.
      converged = true;
      break;
    }
    prev = step.labels;
    proto = step.proto;
  }
  // Labels must match the final prototypes: one more assignment unless they stood still.
  const labels = converged ? prev! : (await assignAll(s, proto, null)).labels;
  const { costs, cost } = exactCosts(s, proto, labels);
  return { proto, labels, costs, cost, nIter: it, converged, history };
}

/**
 * One iteration on prepared input.
 * - in: `proto` (the prototypes to assign to), `prev` (the previous labels, to count changes)
 * - out: the labels against `proto` and their cost, how many changed, the prototypes moved to
 *   the new clusters' weighted means and modes, and how many clusters were empty (refilled with
 *   the costliest rows). @internal
 */
async function kprototypesStep(
  s: State,
  proto: Prototypes,
  prev: Int32Array | null,
): Promise<{ labels: Int32Array; cost: number; changed: number; proto: Prototypes; emptyClusters: number }> {
  const { labels, rowCost, cost, changed } = await assignAll(s, proto, prev);
  const { x, cat, w, k } = s;
  const n = x.nRows;
  const d = x.nFeatures;
  const c = cat.c;
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  const offsets = new Int32Array(c + 1);
  for (let t = 0; t < c; t++) offsets[t + 1] = offsets[t] + cat.levels[t];
  const L = offsets[c];
  // freq[j·L + offsets[t] + code]: weight of `code` in column t among cluster j's rows.
  const freq = new Float64Array(k * L);
  const add = (i: number, j: number, sign: number): void => {
    const wi = sign * (w ? w[i] : 1);
    counts[j] += wi;
    for (let f = 0; f < d; f++) sums[j * d + f] += wi * x.data[i * d + f];
    for (let t = 0; t < c; t++) {
      const v = cat.codes[i * c + t];
      if (v >= 0) freq[j * L + offsets[t] + v] += wi;
    }
  };
  for (let i = 0; i < n; i++) add(i, labels[i], 1);
  let empty = 0;
  for (let j = 0; j < k; j++) if (counts[j] === 0) empty++;
  if (empty > 0) {
    // The costliest rows (ties to the lower row) refill the empty clusters, in cluster order.
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => rowCost[b] - rowCost[a] || a - b);
    let next = 0;
    for (let j = 0; j < k; j++) {
      if (counts[j] !== 0) continue;
      const i = order[next++];
      add(i, labels[i], -1);
      // Exactly the row, also with weight 0 (counts would stay 0 and keep the old prototype).
      counts[j] = 0;
      for (let f = 0; f < d; f++) sums[j * d + f] = 0;
      freq.fill(0, j * L, (j + 1) * L);
      add(i, j, 1);
      if (counts[j] === 0) {
        counts[j] = 1;
        for (let f = 0; f < d; f++) sums[j * d + f] = x.data[i * d + f];
        for (let t = 0; t < c; t++) {
          const v = cat.codes[i * c + t];
          if (v >= 0) freq[j * L + offsets[t] + v] = 1;
        }
      }
    }
  }
  const centroids = new Float64Array(k * d);
  const modes = new Int32Array(k * c);
  for (let j = 0; j < k; j++) {
    for (let f = 0; f < d; f++) centroids[j * d + f] = counts[j] > 0 ? sums[j * d + f] / counts[j] : proto.centroids[j * d + f];
    for (let t = 0; t < c; t++) {
      // Weighted mode, ties to the lowest code; no observed code keeps the previous mode.
      let arg = -1;
      let top = 0;
      const base = j * L + offsets[t];
      for (let v = 0; v < cat.levels[t]; v++) {
        if (freq[base + v] > top) {
          top = freq[base + v];
          arg = v;
        }
      }
      modes[j * c + t] = arg >= 0 ? arg : proto.modes[j * c + t];
    }
  }
  return { labels, cost, changed, proto: { centroids, modes }, emptyClusters: empty };
}

/**
 * Cheapest prototype for every row: numeric squared distances from the backend, block by block,
 * plus γ × mismatches counted on the host; ties to the lowest index. @internal
 */
async function assignAll(
  s: State,
  proto: Prototypes,
  prev: Int32Array | null,
): Promise<{ labels: Int32Array; rowCost: Float64Array; cost: number; changed: number }> {
  const { x, cat, w, k, gamma } = s;
  const n = x.nRows;
  const c = cat.c;
  const labels = new Int32Array(n);
  const rowCost = new Float64Array(n);
  const centers = Float32Array.from(proto.centroids);
  const blocks = s.blocks.length > 0 ? s.blocks : [{ start: 0, end: n, dx: null }];
  let buf: Float32Array | null = null;
  let cost = 0;
  let changed = 0;
  for (const blk of blocks) {
    let d2: Float32Array | null = null;
    if (blk.dx) {
      const len = (blk.end - blk.start) * k;
      if (!buf || buf.length < len) buf = new Float32Array(len);
      d2 = await distances(s.be, blk.dx, centers, k, buf.subarray(0, len));
    }
    for (let i = blk.start; i < blk.end; i++) {
      const r = (i - blk.start) * k;
      let best = Infinity;
      let arg = 0;
      for (let j = 0; j < k; j++) {
        let mm = 0;
        for (let t = 0; t < c; t++) {
          const v = cat.codes[i * c + t];
          if (v < 0 || v !== proto.modes[j * c + t]) mm++;
        }
        const num = d2 ? Math.max(0, d2[r + j]) : 0;
        const v = num + gamma * mm;
        if (v < best) {
          best = v;
          arg = j;
        }
      }
      labels[i] = arg;
      rowCost[i] = best;
      cost += w ? w[i] * best : best;
      if (!prev || prev[i] !== arg) changed++;
    }
  }
  return { labels, rowCost, cost, changed };
}

/** Each row's cost to its labelled prototype in float64 (Σ(x − c)², no expansion), and the weighted total. */
function exactCosts(s: State, proto: Prototypes, labels: Int32Array): { costs: Float64Array; cost: number } {
  const { x, cat, w, gamma } = s;
  const d = x.nFeatures;
  const c = cat.c;
  const costs = new Float64Array(x.nRows);
  let cost = 0;
  for (let i = 0; i < x.nRows; i++) {
    const j = labels[i];
    let num = 0;
    for (let f = 0; f < d; f++) {
      const t = x.data[i * d + f] - proto.centroids[j * d + f];
      num += t * t;
    }
    let mm = 0;
    for (let t = 0; t < c; t++) {
      const v = cat.codes[i * c + t];
      if (v < 0 || v !== proto.modes[j * c + t]) mm++;
    }
    costs[i] = num + gamma * mm;
    cost += w ? w[i] * costs[i] : costs[i];
  }
  return { costs, cost };
}

/** Weighted count of each code per column, and the total weight. @internal */
function frequencies(cat: Cat, w: Float32Array | null): { freq: Float64Array[]; total: number } {
  const freq = Array.from(cat.levels, (l) => new Float64Array(l));
  let total = 0;
  for (let i = 0; i < cat.nRows; i++) {
    const wi = w ? w[i] : 1;
    total += wi;
    for (let t = 0; t < cat.c; t++) {
      const v = cat.codes[i * cat.c + t];
      if (v >= 0) freq[t][v] += wi;
    }
  }
  return { freq, total };
}

function mismatches(cat: Cat, i: number, codes: ArrayLike<number>, base: number): number {
  let mm = 0;
  for (let t = 0; t < cat.c; t++) {
    const v = cat.codes[i * cat.c + t];
    if (v < 0 || v !== codes[base + t]) mm++;
  }
  return mm;
}

/**
 * Cao et al.'s seeding (kmodes' `init_cao`), as row indices: density(i) = Σ_t freq_t(x_it) /
 * (Σw · nCategorical) with weighted frequencies (missing cells add nothing); the densest row
 * first (the lowest on a tie), then each next pick maximises density(i) × mismatches to the
 * nearest pick so far, rows already picked excluded. O(nRows · k · nCategorical).
 *
 * @example
 * initCao([Int32Array.from([0, 0, 1])], 2, null); // [0, 2]
 */
export function initCao(xCat: CategoricalCodes, k: number, weights: Float32Array | null = null): number[] {
  return caoRows(toCat(xCat, 'initCao'), k, weights);
}

function caoRows(cat: Cat, k: number, weights: Float32Array | null): number[] {
  const n = cat.nRows;
  const { freq, total } = frequencies(cat, weights);
  const dens = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Zero-weight rows are not data: never a pick.
    if (weights && !(weights[i] > 0)) {
      dens[i] = -1;
      continue;
    }
    let s = 0;
    for (let t = 0; t < cat.c; t++) {
      const v = cat.codes[i * cat.c + t];
      if (v >= 0) s += freq[t][v];
    }
    dens[i] = s / total / cat.c;
  }
  const picked: number[] = [argmax(dens)];
  const nearest = new Float64Array(n).fill(Infinity);
  const taken = new Uint8Array(n);
  taken[picked[0]] = 1;
  while (picked.length < k) {
    const last = picked[picked.length - 1];
    const score = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      nearest[i] = Math.min(nearest[i], mismatches(cat, i, cat.codes, last * cat.c));
      score[i] = taken[i] || dens[i] < 0 ? -1 : dens[i] * nearest[i];
    }
    const next = argmax(score);
    picked.push(next);
    taken[next] = 1;
  }
  return picked;
}

function argmax(v: ArrayLike<number>): number {
  let arg = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[arg]) arg = i;
  return arg;
}

/**
 * Huang's seeding (kmodes' `init_huang`), as row indices: for each column, k codes drawn by
 * weighted frequency (rows drawn by weight, missing cells skipped); then each prototype in turn
 * takes the row with the fewest mismatches to its draw (the lowest row on a tie) among rows
 * whose codes differ from every earlier pick, or among all rows not yet picked when none
 * differ.
 *
 * @example
 * initHuang(codes, 4, null, new Random(1));
 */
export function initHuang(xCat: CategoricalCodes, k: number, weights: Float32Array | null, rng: Random): number[] {
  return huangRows(toCat(xCat, 'initHuang'), k, weights, rng);
}

function huangRows(cat: Cat, k: number, weights: Float32Array | null, rng: Random): number[] {
  const n = cat.nRows;
  const c = cat.c;
  const cum = cumulative(n, weights);
  const draws = new Int32Array(k * c).fill(-1);
  for (let t = 0; t < c; t++) {
    for (let j = 0; j < k; j++) {
      // A few tries past missing cells; a column missing everywhere draws -1.
      for (let attempt = 0; attempt < 64; attempt++) {
        const v = cat.codes[drawRow(cum, rng) * c + t];
        if (v >= 0) {
          draws[j * c + t] = v;
          break;
        }
      }
    }
  }
  const picked: number[] = [];
  const taken = new Uint8Array(n);
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bestMm = Infinity;
    let fallback = -1;
    let fallbackMm = Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i] || (weights && !(weights[i] > 0))) continue;
      const mm = mismatches(cat, i, draws, j * c);
      if (mm < fallbackMm) {
        fallbackMm = mm;
        fallback = i;
      }
      if (mm < bestMm && !picked.some((p) => sameCodes(cat, i, p))) {
        bestMm = mm;
        best = i;
      }
    }
    const r = best >= 0 ? best : fallback;
    picked.push(r);
    taken[r] = 1;
  }
  return picked;
}

function sameCodes(cat: Cat, a: number, b: number): boolean {
  for (let t = 0; t < cat.c; t++) if (cat.codes[a * cat.c + t] !== cat.codes[b * cat.c + t]) return false;
  return true;
}

/** Running sum of the weights (null: of ones). */
function cumulative(n: number, w: Float32Array | null): Float64Array {
  const out = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) out[i] = s += w ? w[i] : 1;
  return out;
}

/** A row drawn with probability proportional to its weight. */
function drawRow(cum: Float64Array, rng: Random): number {
  const v = rng.next() * cum[cum.length - 1];
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** k distinct rows drawn by weight. @internal */
function initRandom(n: number, k: number, weights: Float32Array | null, rng: Random): number[] {
  const cum = cumulative(n, weights);
  let positive = 0;
  for (let i = 0; i < n; i++) if (!weights || weights[i] > 0) positive++;
  const picked = new Set<number>();
  // Rejection of repeats; once fewer rows carry weight than k, the rest are the lowest unpicked rows.
  while (picked.size < Math.min(k, positive)) picked.add(drawRow(cum, rng));
  for (let i = 0; picked.size < k; i++) picked.add(i);
  return [...picked];
}

/**
 * Labels and costs of new rows against a fitted model (e.g. read back from model.json).
 * Without a backend a host loop in float64; with one, numeric distances through its `distances`
 * op (float32). Codes the model never saw, and −1, mismatch every mode.
 *
 * @example
 * const { labels } = predictKPrototypes(JSON.parse(text), xNum, [codes]);
 */
export function predictKPrototypes(saved: KPrototypesModel, xNum: Matrix | null, xCat: CategoricalCodes): { labels: Int32Array; costs: Float64Array; cost: number };
export function predictKPrototypes(
  saved: KPrototypesModel,
  xNum: Matrix | null,
  xCat: CategoricalCodes,
  be: Backend,
): Promise<{ labels: Int32Array; costs: Float64Array; cost: number }>;
export function predictKPrototypes(
  saved: KPrototypesModel,
  xNum: Matrix | null,
  xCat: CategoricalCodes,
  be?: Backend,
): { labels: Int32Array; costs: Float64Array; cost: number } | Promise<{ labels: Int32Array; costs: Float64Array; cost: number }> {
  const cat = toCat(xCat, 'kprototypes');
  const x: Matrix = xNum ?? { data: new Float32Array(0), nRows: cat.nRows, nFeatures: 0 };
  const m = saved;
  if (!m || m.formatVersion !== KPROTOTYPES_FORMAT_VERSION) {
    throw new SegtensorError(
      'MODEL_VERSION',
      `kprototypes: model format version ${m?.formatVersion}, this segtensor reads version ${KPROTOTYPES_FORMAT_VERSION}; refit the model`,
    );
  }
  if (m.centroids?.length !== m.k || m.modes?.length !== m.k || m.centroids.some((r) => r.length !== m.nNumeric) || m.modes.some((r) => r.length !== m.nCategorical)) {
    throw new SegtensorError('CORRUPT_FILE', `kprototypes: the model's centroids and modes do not match k = ${m.k}, ${m.nNumeric} numeric and ${m.nCategorical} categorical columns`);
  }
  if (x.nFeatures !== m.nNumeric || cat.c !== m.nCategorical) {
    throw new SegtensorError(
      'BAD_INPUT',
      `kprototypes: the model was fitted on ${m.nNumeric} numeric and ${m.nCategorical} categorical columns; the input has ${x.nFeatures} and ${cat.c}`,
    );
  }
  if (cat.nRows !== x.nRows) throw new SegtensorError('BAD_INPUT', `kprototypes: the numeric part has ${x.nRows} rows and the categorical part ${cat.nRows}`);
  if (x.data.length !== x.nRows * x.nFeatures) throw new TypeError(`kprototypes: numeric data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows} × ${x.nFeatures}`);
  const proto: Prototypes = { centroids: Float64Array.from(m.centroids.flat()), modes: Int32Array.from(m.modes.flat()) };
  if (!be) {
    const labels = new Int32Array(x.nRows);
    const s: State = { be: null as never, x, cat, w: null, k: m.k, gamma: m.gamma, blocks: [] };
    const d = x.nFeatures;
    for (let i = 0; i < x.nRows; i++) {
      let best = Infinity;
      for (let j = 0; j < m.k; j++) {
        let v = 0;
        for (let f = 0; f < d; f++) {
          const t = x.data[i * d + f] - proto.centroids[j * d + f];
          v += t * t;
        }
        v += m.gamma * mismatches(cat, i, proto.modes, j * cat.c);
        if (v < best) {
          best = v;
          labels[i] = j;
        }
      }
    }
    return { labels, ...exactCosts(s, proto, labels) };
  }
  return (async () => {
    const s: State = { be, x, cat, w: null, k: m.k, gamma: m.gamma, blocks: uploadBlocks(be, x, m.k) };
    try {
      const { labels } = await assignAll(s, proto, null);
      return { labels, ...exactCosts(s, proto, labels) };
    } finally {
      for (const b of s.blocks) be.release(b.dx);
    }
  })();
}

/**
 * Dense integer codes for one categorical column: the distinct values (as strings) sorted,
 * code = index; null, undefined, NaN and '' are missing (−1). With the `levels` of a fitted
 * model, values it never saw are −1 too (kmodes' `encode_features` does the same).
 *
 * @example
 * encodeCategories(['b', 'a', null, 'b']); // { codes: [1, 0, -1, 1], levels: ['a', 'b'] }
 * encodeCategories(['c', 'a'], ['a', 'b']); // { codes: [-1, 0], levels: ['a', 'b'] }
 */
export function encodeCategories(values: ArrayLike<unknown>, levels?: readonly string[]): { codes: Int32Array; levels: string[] } {
  const key = (v: unknown): string | null =>
    v === null || v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v)) ? null : String(v);
  let lv: string[];
  if (levels) lv = [...levels];
  else {
    const seen = new Set<string>();
    for (let i = 0; i < values.length; i++) {
      const s = key(values[i]);
      if (s !== null) seen.add(s);
    }
    lv = [...seen].sort();
  }
  const index = new Map(lv.map((s, i) => [s, i]));
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = key(values[i]);
    codes[i] = s === null ? -1 : (index.get(s) ?? -1);
  }
  return { codes, levels: lv };
}

/**
 * Whether a column reads as categorical: some non-missing value is not a number (a string that
 * does not parse as a finite number, or a boolean). The CLI names its categorical columns; this
 * is for a default when it does not.
 *
 * @example
 * looksCategorical(['1', '2.5', null]); // false
 * looksCategorical(['gold', 'silver']); // true
 */
export function looksCategorical(values: ArrayLike<unknown>): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || v === '') continue;
    if (typeof v === 'number' || typeof v === 'bigint') continue;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) continue;
    return true;
  }
  return false;
}
