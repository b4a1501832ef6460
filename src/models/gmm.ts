/**
 * Gaussian mixtures with scikit-learn's `GaussianMixture` semantics (1.2):
 * - EM on `full`, `tied`, `diag` or `spherical` covariances, `regCovar` added to every
 *   covariance diagonal, Nk = Σ r + 10·ε (float64 ε) as scikit-learn, weights = Nk / Σ Nk;
 * - each of `nInit` runs starts from the responsibilities of a K-Means fit's labels
 *   (scikit-learn's init_params='kmeans': {@link KMeans} with nInit 1 and that run's seed), or
 *   from given `weightsInit`, `meansInit` and `precisionsInit` (or `covariancesInit`); a
 *   parameter not given comes from the K-Means start, as in scikit-learn's `_initialize`;
 * - a run stops when the mean log-likelihood (the lower bound, computed in the E-step of
 *   each iteration, so under the parameters before its M-step) changes by less than `tol`, or
 *   after `maxIter` iterations; the run with the highest lower bound wins (ties keep the
 *   earliest);
 * - a final E-step under the winning parameters gives the labels, each row's probability of
 *   its component, the mean log-likelihood (scikit-learn's `score`), and BIC and AIC.
 *
 * Sample weights (scikit-learn has none) are frequency weights, used consistently: every sum
 * over rows is weighted (Nk, means, covariances, the mean log-likelihood Σ w·ℓ / Σ w), initial
 * weights are Nk / Σ w, and BIC and AIC take n = Σ w. Integer weights give the fit of the
 * table with each row repeated that many times.
 *
 * The per-component matrices (Cholesky factors, log-determinants, the M-step's algebra) live
 * on the host in float64; the per-row work runs through the backend ops (`project` for the
 * E-step, `softSums` and `scatter` for the M-step) on blocks of rows, so scratch stays under
 * 64 MB whatever nRows. The E-step's products come back in float32: log-probabilities agree
 * with scikit-learn's float64 ones to about 1e-7 of the terms they are computed from, which is
 * small against the 1e-3 acceptance on standardised data (see test/models/gmm.test.ts for the
 * measured gaps).
 *
 * Differences from scikit-learn: `converged` is the winning run's (scikit-learn reports True
 * when any run converged); `maxIter` is at least 1 (score given parameters with
 * {@link predictGmm}); `regCovar` must be > 0; non-finite data is refused.
 *
 * @example
 * const r = await new GaussianMixture({ k: 3, covarianceType: 'diag', seed: 1 }).fit(be, x);
 * r.labels; r.logLikelihood; r.bic;
 * const saved = gmmParams(r); // plain arrays, for model.json
 * const p = await predictGmm(be, saved, newRows, { responsibilities: true });
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend, DeviceMatrix, RowRange } from '../engine/backend.js';
import { project, scatter, softSums } from '../engine/ops/project.js';
import { SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';
import { KMeans } from './kmeans.js';

export type CovarianceType = 'full' | 'tied' | 'diag' | 'spherical';
export const COVARIANCE_TYPES: readonly CovarianceType[] = Object.freeze(['full', 'tied', 'diag', 'spherical']);

/**
 * Numbers in scikit-learn's shape, nested (`number[][]`) or flat in row-major order: weights
 * k; means k × nFeatures; precisions or covariances full k × d × d, tied d × d, diag k × d,
 * spherical k.
 */
export type NumbersInit = ArrayLike<number> | readonly NumbersInit[];

export interface GmmOptions {
  /** Number of components, an integer in [1, nRows]. Required. */
  k: number;
  /** Covariance of each component: its own full matrix, one shared (`tied`), diagonal, or one variance. Default `full`. */
  covarianceType: CovarianceType;
  /** Stop when the mean log-likelihood per row (nats) changes by less than this; 0 runs `maxIter` iterations. Default 1e-3. */
  tol: number;
  /** Added to the diagonal of every covariance, in squared feature units, so each stays positive-definite. Default 1e-6. */
  regCovar: number;
  /** EM iterations per run at most (≥ 1). Default 100. */
  maxIter: number;
  /** Runs from different K-Means starts; the highest lower bound wins. Default 1. */
  nInit: number;
  /** Seed of the K-Means starts; the same seed reproduces a fit on a given backend. Default 0. */
  seed: number;
  /** Initial mixing weights (k values in [0, 1] summing to 1), or null for the K-Means start's. Default null. */
  weightsInit: NumbersInit | null;
  /** Initial means (k × nFeatures), or null for the K-Means start's. Default null. */
  meansInit: NumbersInit | null;
  /** Initial precisions (inverse covariances, in the covariance type's shape), or null. Default null. */
  precisionsInit: NumbersInit | null;
  /** Initial covariances instead of precisions (same shape; not with `precisionsInit`), or null. Default null. */
  covariancesInit: NumbersInit | null;
  /** Rows per block of backend work; null sizes blocks to at most 64 MB of scratch. Default null. */
  blockRows: number | null;
  /** Called after each EM iteration, for progress reporting. */
  onIteration?: (run: number, stats: GmmIterationStats) => void;
}

export const GMM_DEFAULTS: Readonly<Omit<GmmOptions, 'k' | 'onIteration'>> = Object.freeze({
  covarianceType: 'full' as CovarianceType,
  tol: 1e-3,
  regCovar: 1e-6,
  maxIter: 100,
  nInit: 1,
  seed: 0,
  weightsInit: null,
  meansInit: null,
  precisionsInit: null,
  covariancesInit: null,
  blockRows: null,
});

/** What one EM iteration did. */
export interface GmmIterationStats {
  /** Mean log-likelihood per row under the parameters before this iteration's M-step. */
  lowerBound: number;
  /** Change of the lower bound from the previous iteration (Infinity on the first). */
  change: number;
  /** Wall time of the iteration. */
  ms: number;
}

export interface GmmResult {
  covarianceType: CovarianceType;
  k: number;
  nFeatures: number;
  /** k mixing weights, summing to 1. */
  weights: Float64Array;
  /** k × nFeatures, row-major. */
  means: Float64Array;
  /** scikit-learn's `covariances_`, flat row-major: full k × d × d, tied d × d, diag k × d, spherical k. */
  covariances: Float64Array;
  /** scikit-learn's `precisions_cholesky_` (same shapes): precision = U·Uᵀ. */
  precisionsCholesky: Float64Array;
  /** Most probable component of each row, under the final parameters. */
  labels: Int32Array;
  /** Each row's responsibility of its label's component, in (0, 1]. */
  probability: Float32Array;
  /** Mean log-likelihood per row under the final parameters (scikit-learn's `score`; weighted mean with weights). */
  logLikelihood: number;
  /** The winning run's last lower bound (scikit-learn's `lower_bound_`). */
  lowerBound: number;
  nIter: number;
  converged: boolean;
  /** −2·logLikelihood·n + nParameters·ln n, n = nRows (Σ w with weights). */
  bic: number;
  /** −2·logLikelihood·n + 2·nParameters. */
  aic: number;
  /** Free parameters: covariances, means and k − 1 weights. */
  nParameters: number;
  /** Lower bound and iteration count of every run, in order. */
  runs: { lowerBound: number; nIter: number; converged: boolean }[];
  /** Per-iteration statistics of the winning run. */
  history: GmmIterationStats[];
  /** How the runs started: a K-Means fit, the given parameters, or both (some given). */
  init: 'k-means' | 'given' | 'k-means+given';
  ms: { init: number; em: number };
}

/** Version of {@link GmmParams}; {@link predictGmm} refuses others. */
export const GMM_PARAMS_VERSION = 1;

/**
 * A fitted mixture as plain arrays in scikit-learn's shapes (JSON-serialisable, for model.json):
 * what {@link predictGmm} needs.
 */
export interface GmmParams {
  formatVersion: number;
  covarianceType: CovarianceType;
  k: number;
  nFeatures: number;
  /** k. */
  weights: number[];
  /** k × nFeatures. */
  means: number[][];
  /** full k × d × d, tied d × d, diag k × d, spherical k. */
  covariances: number[] | number[][] | number[][][];
  /** Same shape as `covariances`: precision = U·Uᵀ. */
  precisionsCholesky: number[] | number[][] | number[][][];
}

/** Parameters of a mixture in float64 on the host, flat in scikit-learn's shapes. @internal */
interface Model {
  weights: Float64Array;
  means: Float64Array;
  /** Null when the parameters came as precisions (before the first M-step). */
  covariances: Float64Array | null;
  precChol: Float64Array;
}

/** float64 machine epsilon: scikit-learn adds 10·ε to every Nk. */
const EPS = 2.220446049250313e-16;
const LOG_2PI = Math.log(2 * Math.PI);
/** Scratch per block of rows (projections, log-probabilities, responsibilities). */
const BLOCK_BYTES = 64 * 1024 * 1024;

/** Integer options as data, checked once in `fit`: flag name and inclusive range. */
const INT_CONSTRAINTS: { [K in 'nInit' | 'maxIter']: [string, number, number] } = {
  nInit: ['--n-init', 1, 1000],
  maxIter: ['--max-iter', 1, 1_000_000],
};

export class GaussianMixture {
  readonly options: Readonly<GmmOptions>;

  constructor(options: Partial<GmmOptions> & { k: number }) {
    this.options = Object.freeze({ ...GMM_DEFAULTS, ...options });
  }

  private validate(x: Matrix, weights: Float32Array | null): Partial<Model> {
    const o = this.options;
    if (!COVARIANCE_TYPES.includes(o.covarianceType)) {
      throw new SegtensorError('BAD_OPTION', `--covariance must be full, tied, diag or spherical; got '${String(o.covarianceType)}'`);
    }
    if (!Number.isInteger(x.nRows) || x.nRows < 1 || !Number.isInteger(x.nFeatures) || x.nFeatures < 1) {
      throw new SegtensorError('BAD_INPUT', `GaussianMixture: the matrix must have at least one row and one feature; got ${x.nRows} × ${x.nFeatures}`);
    }
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > x.nRows) {
      throw new SegtensorError('BAD_OPTION', `--k must be an integer in [1, nRows = ${x.nRows}]; got ${o.k}`);
    }
    for (const [name, [flag, lo, hi]] of Object.entries(INT_CONSTRAINTS)) {
      const v = o[name as keyof typeof INT_CONSTRAINTS];
      if (!Number.isInteger(v) || v < lo || v > hi) throw new SegtensorError('BAD_OPTION', `${flag} must be an integer in [${lo}, ${hi}]; got ${v}`);
    }
    if (!(o.tol >= 0) || !Number.isFinite(o.tol)) throw new SegtensorError('BAD_OPTION', `--tol must be a finite number >= 0; got ${o.tol}`);
    if (!(o.regCovar > 0) || !Number.isFinite(o.regCovar)) throw new SegtensorError('BAD_OPTION', `--reg-covar must be a finite number > 0; got ${o.regCovar}`);
    if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `--seed must be an integer; got ${o.seed}`);
    if (o.blockRows !== null && (!Number.isInteger(o.blockRows) || o.blockRows < 1)) {
      throw new SegtensorError('BAD_OPTION', `GaussianMixture: 'blockRows' must be an integer >= 1 or null; got ${o.blockRows}`);
    }
    if (x.data.length !== x.nRows * x.nFeatures) {
      throw new TypeError(`GaussianMixture: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * x.nFeatures}`);
    }
    checkWeights('GaussianMixture', weights, x.nRows);
    return initialParameters(o, x.nFeatures);
  }

  /**
   * Fits on a preprocessed matrix. `weights` (optional) are per-row frequency weights. The data
   * (and, for diag and spherical, its squares) is uploaded once and released at the end.
   */
  async fit(be: Backend, x: Matrix, weights: Float32Array | null = null): Promise<GmmResult> {
    const given = this.validate(x, weights);
    const o = this.options;
    const type = o.covarianceType;
    const k = o.k;
    const d = x.nFeatures;
    const host = hostPass(x, weights, type, 'GaussianMixture');
    const st = await prepare(be, x, weights, host.squares, type, k, o.blockRows);
    try {
      const totalWeight = st.dx.totalWeight;
      if (type === 'tied') st.tied = await tiedBase(st, host.colSums!, totalWeight);
      const allGiven = given.weights !== undefined && given.means !== undefined && given.precChol !== undefined;
      const rng = new Random(o.seed);
      const runs: GmmResult['runs'] = [];
      const ms = { init: 0, em: 0 };
      let best: { model: Model; lowerBound: number; nIter: number; converged: boolean; history: GmmIterationStats[] } | null = null;
      for (let run = 0; run < o.nInit; run++) {
        const t0 = performance.now();
        let model: Model;
        if (allGiven) {
          model = { weights: given.weights!, means: given.means!, covariances: given.covariances ?? null, precChol: given.precChol! };
        } else {
          const km = await new KMeans({ k, nInit: 1, seed: rng.fork() }).fit(be, x, weights);
          const acc = newAccum(type, k, d, Float64Array.from(km.centroids));
          await sweep(st, km.labels, acc, null);
          // scikit-learn's _initialize: weights are Nk / n (n = Σ w here), not Nk / Σ Nk.
          model = mStep(st, acc, o.regCovar, totalWeight);
          if (given.weights) model.weights = given.weights;
          if (given.means) model.means = given.means;
          if (given.precChol) {
            model.precChol = given.precChol;
            model.covariances = given.covariances ?? null;
          }
        }
        const t1 = performance.now();
        const r = await em(st, model, o, (s) => o.onIteration?.(run, s));
        ms.init += t1 - t0;
        ms.em += performance.now() - t1;
        runs.push({ lowerBound: r.lowerBound, nIter: r.nIter, converged: r.converged });
        if (!best || r.lowerBound > best.lowerBound) best = r;
        // Given parameters are deterministic: further runs would repeat this one.
        if (allGiven) break;
      }
      const m = best!.model;
      const labels = new Int32Array(x.nRows);
      const probability = new Float32Array(x.nRows);
      const logLikelihood = (await sweep(st, scorer(st, m), null, { labels, probability, responsibilities: null })) / totalWeight;
      const nParameters = countParameters(type, k, d);
      return {
        covarianceType: type,
        k,
        nFeatures: d,
        weights: m.weights,
        means: m.means,
        covariances: m.covariances!,
        precisionsCholesky: m.precChol,
        labels,
        probability,
        logLikelihood,
        lowerBound: best!.lowerBound,
        nIter: best!.nIter,
        converged: best!.converged,
        bic: -2 * logLikelihood * totalWeight + nParameters * Math.log(totalWeight),
        aic: -2 * logLikelihood * totalWeight + 2 * nParameters,
        nParameters,
        runs,
        history: best!.history,
        init: allGiven ? 'given' : given.weights || given.means || given.precChol ? 'k-means+given' : 'k-means',
        ms,
      };
    } finally {
      release(st);
    }
  }
}

/**
 * The saved parameters of a fit: plain nested arrays in scikit-learn's shapes, for model.json.
 *
 * @example
 * fs.writeFileSync('gmm.json', JSON.stringify(gmmParams(result)));
 */
export function gmmParams(r: Pick<GmmResult, 'covarianceType' | 'k' | 'nFeatures' | 'weights' | 'means' | 'covariances' | 'precisionsCholesky'>): GmmParams {
  const shape = paramShape(r.covarianceType, r.k, r.nFeatures);
  return {
    formatVersion: GMM_PARAMS_VERSION,
    covarianceType: r.covarianceType,
    k: r.k,
    nFeatures: r.nFeatures,
    weights: Array.from(r.weights),
    means: nest(r.means, [r.k, r.nFeatures]) as number[][],
    covariances: nest(r.covariances, shape) as GmmParams['covariances'],
    precisionsCholesky: nest(r.precisionsCholesky, shape) as GmmParams['precisionsCholesky'],
  };
}

export interface GmmPrediction {
  /** Most probable component of each row. */
  labels: Int32Array;
  /** Each row's responsibility of its label's component, in (0, 1]. */
  probability: Float32Array;
  /** Mean log-likelihood per row (scikit-learn's `score`; Σ w·ℓ / Σ w with weights). */
  logLikelihood: number;
  /** nRows × k responsibilities (scikit-learn's `predict_proba`), when asked for. */
  responsibilities?: Float32Array;
}

/**
 * Labels, probabilities and the mean log-likelihood of `x`'s rows under saved parameters
 * (scikit-learn's predict, predict_proba and score), on the backend, in row blocks.
 *
 * @example
 * const { labels, probability } = await predictGmm(be, model.gmm, x);
 */
export async function predictGmm(
  be: Backend,
  params: GmmParams,
  x: Matrix,
  options: { responsibilities?: boolean; weights?: Float32Array | null; blockRows?: number | null } = {},
): Promise<GmmPrediction> {
  const model = modelOf(params);
  const { covarianceType: type, k, nFeatures: d } = params;
  if (x.nFeatures !== d) throw new SegtensorError('BAD_INPUT', `predictGmm: the matrix has ${x.nFeatures} features, the model ${d}`);
  if (x.data.length !== x.nRows * d) throw new TypeError(`predictGmm: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * d}`);
  const weights = options.weights ?? null;
  checkWeights('predictGmm', weights, x.nRows);
  const blockRows = options.blockRows ?? null;
  if (blockRows !== null && (!Number.isInteger(blockRows) || blockRows < 1)) {
    throw new SegtensorError('BAD_OPTION', `predictGmm: 'blockRows' must be an integer >= 1 or null; got ${blockRows}`);
  }
  const host = hostPass(x, weights, type, 'predictGmm');
  const st = await prepare(be, x, weights, host.squares, type, k, blockRows);
  try {
    const labels = new Int32Array(x.nRows);
    const probability = new Float32Array(x.nRows);
    const responsibilities = options.responsibilities ? new Float32Array(x.nRows * k) : null;
    const total = await sweep(st, scorer(st, model), null, { labels, probability, responsibilities });
    const out: GmmPrediction = { labels, probability, logLikelihood: x.nRows > 0 ? total / st.dx.totalWeight : NaN };
    if (responsibilities) out.responsibilities = responsibilities;
    return out;
  } finally {
    release(st);
  }
}

/** Free parameters of a mixture, scikit-learn's `_n_parameters`. */
export function countParameters(type: CovarianceType, k: number, d: number): number {
  const cov = type === 'full' ? (k * d * (d + 1)) / 2 : type === 'diag' ? k * d : type === 'tied' ? (d * (d + 1)) / 2 : k;
  return cov + d * k + k - 1;
}

// ---------------------------------------------------------------------------------------------
// The EM loop and its passes over the rows. @internal

/** A fit's resident data and scratch, allocated once. @internal */
interface Fitting {
  be: Backend;
  type: CovarianceType;
  k: number;
  d: number;
  dx: DeviceMatrix;
  /** Squares of the data (diag, spherical), with the same weights. */
  dx2: DeviceMatrix | null;
  blockRows: number;
  /** Scratch: projections (blockRows × m), their second half for diag (x²), log-probabilities, responsibilities. */
  y: Float32Array;
  y2: Float32Array | null;
  logp: Float64Array;
  r: Float32Array;
  /** Tied only: the centred scatter of all rows about their weighted mean `a`, and Σ w·x. */
  tied?: { scatter: Float64Array; a: Float64Array; colSums: Float64Array; totalWeight: number };
}

/** M-step sums over the rows. @internal */
interface Accum {
  /** k × d: Σ w·r·x. */
  sums: Float64Array;
  /** k: Σ w·r. */
  counts: Float64Array;
  /** diag, spherical: k × d, Σ w·r·x². */
  sq: Float64Array | null;
  /** full: k × d × d, Σ w·r·(x − c)(x − c)ᵀ about `center`. */
  scat: Float64Array | null;
  /** full: the k × d centres of `scat` (the means before the step). */
  center: Float64Array;
}

/** What the E-step turns a model into: the float32 products for `project` and float64 constants. @internal */
interface Scorer {
  /** nFeatures × m for project(x): full m = k·d (every U side by side), tied m = d, diag/spherical m = k (μ·prec). */
  w: Float32Array;
  m: number;
  /** diag, spherical: nFeatures × k precisions, for project(x²). */
  w2: Float32Array | null;
  /** full/tied: k × d, μ·U; diag/spherical: k, Σ μ²·prec. */
  c: Float64Array;
  /** k: ln wⱼ + ln det Uⱼ − d/2·ln 2π. */
  logConst: Float64Array;
}

async function prepare(
  be: Backend,
  x: Matrix,
  weights: Float32Array | null,
  squares: Float32Array | null,
  type: CovarianceType,
  k: number,
  blockRows: number | null,
): Promise<Fitting> {
  const d = x.nFeatures;
  const m = type === 'full' ? k * d : type === 'tied' ? d : k;
  const perRow = 4 * m + (type === 'diag' || type === 'spherical' ? 4 * k : 0) + 8 * k + 4 * k;
  const rows = Math.max(1, Math.min(x.nRows, blockRows ?? Math.floor(BLOCK_BYTES / perRow)));
  const dx = be.upload(x, weights);
  let dx2: DeviceMatrix | null = null;
  try {
    if (squares) dx2 = be.upload({ data: squares, nRows: x.nRows, nFeatures: d }, weights);
  } catch (e) {
    be.release(dx);
    throw e;
  }
  return {
    be,
    type,
    k,
    d,
    dx,
    dx2,
    blockRows: rows,
    y: new Float32Array(rows * m),
    y2: dx2 ? new Float32Array(rows * k) : null,
    logp: new Float64Array(rows * k),
    r: new Float32Array(rows * k),
  };
}

function release(st: Fitting): void {
  st.be.release(st.dx);
  if (st.dx2) st.be.release(st.dx2);
}

/** One EM run from `model`; see {@link emStep}. */
async function em(
  st: Fitting,
  model: Model,
  o: Pick<GmmOptions, 'maxIter' | 'tol' | 'regCovar'>,
  onIteration: (s: GmmIterationStats) => void,
): Promise<{ model: Model; lowerBound: number; nIter: number; converged: boolean; history: GmmIterationStats[] }> {
  let lowerBound = -Infinity;
  let converged = false;
  const history: GmmIterationStats[] = [];
  let it = 0;
  while (it < o.maxIter) {
    it++;
    const t0 = performance.now();
    const prev = lowerBound;
    const step = await emStep(st, model, o.regCovar);
    model = step.model;
    lowerBound = step.lowerBound;
    const change = lowerBound - prev;
    const stats = { lowerBound, change, ms: performance.now() - t0 };
    history.push(stats);
    onIteration(stats);
    if (Math.abs(change) < o.tol) {
      converged = true;
      break;
    }
  }
  return { model, lowerBound, nIter: it, converged, history };
}

/**
 * One EM iteration on prepared input, one pass over the rows.
 * - in: `model` (weights, means, precision Cholesky factors)
 * - out: the mean log-likelihood under `model` (the lower bound) and the M-step's new model.
 * The full covariances' scatter is taken about the old means in the same pass and moved to
 * the new ones on the host (S(μ) = S(μ₀) − δ·s'ᵀ − s'·δᵀ + Nk·δδᵀ), so no second pass is needed.
 */
async function emStep(st: Fitting, model: Model, regCovar: number): Promise<{ model: Model; lowerBound: number }> {
  const acc = newAccum(st.type, st.k, st.d, model.means);
  const total = await sweep(st, scorer(st, model), acc, null);
  return { lowerBound: total / st.dx.totalWeight, model: mStep(st, acc, regCovar, null) };
}

function newAccum(type: CovarianceType, k: number, d: number, center: Float64Array): Accum {
  return {
    sums: new Float64Array(k * d),
    counts: new Float64Array(k),
    sq: type === 'diag' || type === 'spherical' ? new Float64Array(k * d) : null,
    scat: type === 'full' ? new Float64Array(k * d * d) : null,
    center,
  };
}

/**
 * One pass over the rows in blocks. With a {@link Scorer}: the E-step (log-probabilities through
 * `project`, responsibilities by log-sum-exp in float64); with labels: one-hot responsibilities
 * (the K-Means start). Accumulates the M-step sums into `acc` and fills `out` when given.
 * Returns Σ w·ln p(x) over the rows (0 with labels).
 */
async function sweep(
  st: Fitting,
  src: Scorer | Int32Array,
  acc: Accum | null,
  out: { labels: Int32Array; probability: Float32Array; responsibilities: Float32Array | null } | null,
): Promise<number> {
  const { be, dx, k } = st;
  const n = dx.nRows;
  const w = dx.weights;
  let total = 0;
  for (let r0 = 0; r0 < n; r0 += st.blockRows) {
    const r1 = Math.min(n, r0 + st.blockRows);
    const rows: RowRange = { start: r0, end: r1 };
    const b = r1 - r0;
    const r = st.r.subarray(0, b * k);
    if (src instanceof Int32Array) {
      r.fill(0);
      for (let i = 0; i < b; i++) r[i * k + src[r0 + i]] = 1;
    } else {
      const logp = st.logp.subarray(0, b * k);
      await logProbabilities(st, src, rows, logp);
      for (let i = 0; i < b; i++) {
        const o = i * k;
        let best = 0;
        let max = logp[o];
        for (let j = 1; j < k; j++) {
          if (logp[o + j] > max) {
            max = logp[o + j];
            best = j;
          }
        }
        // Log-sum-exp about the row's maximum; one exp per entry, kept for the responsibilities.
        let s = 0;
        for (let j = 0; j < k; j++) {
          const e = Math.exp(logp[o + j] - max);
          logp[o + j] = e;
          s += e;
        }
        const lse = max + Math.log(s);
        total += w ? w[r0 + i] * lse : lse;
        const inv = 1 / s;
        for (let j = 0; j < k; j++) r[o + j] = logp[o + j] * inv;
        if (out) {
          out.labels[r0 + i] = best;
          out.probability[r0 + i] = inv;
        }
      }
      if (out?.responsibilities) out.responsibilities.set(r, r0 * k);
    }
    if (!acc) continue;
    const s = await softSums(be, dx, r, k, rows);
    add(acc.sums, s.sums);
    add(acc.counts, s.counts);
    if (acc.sq) add(acc.sq, (await softSums(be, st.dx2!, r, k, rows)).sums);
    if (acc.scat) add(acc.scat, await scatter(be, dx, r, k, acc.center, rows));
  }
  return total;
}

/**
 * ln wⱼ + ln N(xᵢ | μⱼ, Σⱼ) for the rows in range, into `logp` (rows × k), as scikit-learn's
 * `_estimate_log_gaussian_prob`: full and tied as ‖x·U − μ·U‖², diag and spherical through the
 * expansion Σ μ²·prec − 2·x·(μ·prec)ᵀ + x²·precᵀ.
 */
async function logProbabilities(st: Fitting, sc: Scorer, rows: RowRange, logp: Float64Array): Promise<void> {
  const { be, k, d } = st;
  const b = rows.end - rows.start;
  const y = await project(be, st.dx, sc.w, sc.m, rows, st.y.subarray(0, b * sc.m));
  const { c, logConst } = sc;
  if (st.type === 'full' || st.type === 'tied') {
    const full = st.type === 'full';
    for (let i = 0; i < b; i++) {
      const yo = i * sc.m;
      for (let j = 0; j < k; j++) {
        const yj = full ? yo + j * d : yo;
        const cj = j * d;
        let q = 0;
        for (let g = 0; g < d; g++) {
          const t = y[yj + g] - c[cj + g];
          q += t * t;
        }
        logp[i * k + j] = logConst[j] - 0.5 * q;
      }
    }
  } else {
    const y2 = await project(be, st.dx2!, sc.w2!, k, rows, st.y2!.subarray(0, b * k));
    for (let i = 0; i < b * k; i++) {
      const j = i % k;
      logp[i] = logConst[j] - 0.5 * (c[j] - 2 * y[i] + y2[i]);
    }
  }
}

/** The E-step's products and constants for `model`. */
function scorer(st: Pick<Fitting, 'type' | 'k' | 'd'>, model: Model): Scorer {
  const { type, k, d } = st;
  const { means, precChol: u } = model;
  const logConst = new Float64Array(k);
  for (let j = 0; j < k; j++) logConst[j] = Math.log(model.weights[j]) - 0.5 * d * LOG_2PI + logDetChol(type, u, j, d);
  if (type === 'full' || type === 'tied') {
    const m = type === 'full' ? k * d : d;
    const w = new Float32Array(d * m);
    if (type === 'full') {
      for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) for (let g = 0; g < d; g++) w[f * m + j * d + g] = u[j * d * d + f * d + g];
    } else w.set(u);
    // μ·U with U as the backend sees it (float32), so that x·U − μ·U is (x − μ)·U for one U.
    const c = new Float64Array(k * d);
    for (let j = 0; j < k; j++) {
      for (let g = 0; g < d; g++) {
        let s = 0;
        for (let f = 0; f < d; f++) s += means[j * d + f] * w[f * m + (type === 'full' ? j * d : 0) + g];
        c[j * d + g] = s;
      }
    }
    return { w, m, w2: null, c, logConst };
  }
  const w = new Float32Array(d * k);
  const w2 = new Float32Array(d * k);
  const c = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    for (let f = 0; f < d; f++) {
      const uf = type === 'diag' ? u[j * d + f] : u[j];
      const prec = uf * uf;
      const mu = means[j * d + f];
      c[j] += mu * mu * prec;
      w[f * k + j] = mu * prec;
      w2[f * k + j] = prec;
    }
  }
  return { w, m: k, w2, c, logConst };
}

/** ln det of component j's precision Cholesky factor, scikit-learn's `_compute_log_det_cholesky`. */
function logDetChol(type: CovarianceType, u: Float64Array, j: number, d: number): number {
  let s = 0;
  if (type === 'full') for (let g = 0; g < d; g++) s += Math.log(u[j * d * d + g * d + g]);
  else if (type === 'tied') for (let g = 0; g < d; g++) s += Math.log(u[g * d + g]);
  else if (type === 'diag') for (let g = 0; g < d; g++) s += Math.log(u[j * d + g]);
  else s = d * Math.log(u[j]);
  return s;
}

/**
 * scikit-learn's `_estimate_gaussian_parameters` from the pass's sums, then the precision
 * Cholesky factors. `weightTotal`: divide Nk by it (the start, n) instead of by Σ Nk.
 */
function mStep(st: Fitting, acc: Accum, regCovar: number, weightTotal: number | null): Model {
  const { type, k, d } = st;
  const nk = new Float64Array(k);
  let nkSum = 0;
  for (let j = 0; j < k; j++) {
    nk[j] = acc.counts[j] + 10 * EPS;
    nkSum += nk[j];
  }
  const weights = new Float64Array(k);
  for (let j = 0; j < k; j++) weights[j] = nk[j] / (weightTotal ?? nkSum);
  const means = new Float64Array(k * d);
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) means[j * d + f] = acc.sums[j * d + f] / nk[j];
  let cov: Float64Array;
  if (type === 'full') {
    cov = new Float64Array(k * d * d);
    const delta = new Float64Array(d);
    const s1 = new Float64Array(d);
    for (let j = 0; j < k; j++) {
      const c = acc.counts[j];
      for (let f = 0; f < d; f++) {
        delta[f] = means[j * d + f] - acc.center[j * d + f];
        // s' = Σ w·r·(x − μ₀)
        s1[f] = acc.sums[j * d + f] - c * acc.center[j * d + f];
      }
      const o = j * d * d;
      for (let a = 0; a < d; a++) {
        for (let b = 0; b < d; b++) {
          const v = acc.scat![o + a * d + b] - delta[a] * s1[b] - s1[a] * delta[b] + c * delta[a] * delta[b];
          cov[o + a * d + b] = v / nk[j] + (a === b ? regCovar : 0);
        }
      }
    }
  } else if (type === 'tied') {
    // scikit-learn: (Σ w·x·xᵀ − Σ Nk·μμᵀ) / Σ Nk, written about the data's mean a to keep the
    // float64 cancellation small: S_a − Σ Nk(μ − a)(μ − a)ᵀ + e·aᵀ + a·eᵀ + (ΣNk − W)·a·aᵀ,
    // e = Σ w·x − Σ Nk·μ (zero up to rounding).
    const t = st.tied!;
    cov = Float64Array.from(t.scatter);
    const e = Float64Array.from(t.colSums);
    for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) e[f] -= acc.sums[j * d + f];
    const dm = new Float64Array(d);
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < d; f++) dm[f] = means[j * d + f] - t.a[f];
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b] -= nk[j] * dm[a] * dm[b];
    }
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        const v = cov[a * d + b] + e[a] * t.a[b] + t.a[a] * e[b] + (nkSum - t.totalWeight) * t.a[a] * t.a[b];
        cov[a * d + b] = v / nkSum + (a === b ? regCovar : 0);
      }
    }
  } else {
    // avg_X2 − 2·avg_X_means + avg_means2 + reg_covar, as scikit-learn.
    const diag = new Float64Array(k * d);
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < d; f++) {
        const i = j * d + f;
        const mu = means[i];
        diag[i] = acc.sq![i] / nk[j] - 2 * mu * (acc.sums[i] / nk[j]) + mu * mu + regCovar;
      }
    }
    if (type === 'diag') cov = diag;
    else {
      cov = new Float64Array(k);
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let f = 0; f < d; f++) s += diag[j * d + f];
        cov[j] = s / d;
      }
    }
  }
  return { weights, means, covariances: cov, precChol: precisionCholesky(type, cov, k, d, regCovar) };
}

/** scikit-learn's `_compute_precision_cholesky`: U = (L⁻¹)ᵀ with Σ = L·Lᵀ; 1/√σ² for diag and spherical. */
function precisionCholesky(type: CovarianceType, cov: Float64Array, k: number, d: number, regCovar: number): Float64Array {
  const fail = (j: number) =>
    new SegtensorError(
      'BAD_INPUT',
      `GaussianMixture: component ${j} has an ill-defined covariance (collapsed or too few rows); lower --k or raise --reg-covar (now ${regCovar})`,
    );
  if (type === 'diag' || type === 'spherical') {
    const out = new Float64Array(cov.length);
    for (let i = 0; i < cov.length; i++) {
      if (!(cov[i] > 0)) throw fail(type === 'diag' ? Math.floor(i / d) : i);
      out[i] = 1 / Math.sqrt(cov[i]);
    }
    return out;
  }
  const nMat = type === 'full' ? k : 1;
  const out = new Float64Array(nMat * d * d);
  for (let j = 0; j < nMat; j++) {
    const l = cholesky(cov, j * d * d, d);
    if (!l) throw fail(j);
    const inv = lowerInverse(l, d);
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) out[j * d * d + a * d + b] = inv[b * d + a];
  }
  return out;
}

/** Lower Cholesky factor of the symmetric d × d matrix at `a[off..]` (its lower triangle read), or null if not positive-definite. */
function cholesky(a: ArrayLike<number>, off: number, d: number): Float64Array | null {
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = a[off + j * d + j];
    for (let p = 0; p < j; p++) s -= l[j * d + p] * l[j * d + p];
    if (!(s > 0)) return null;
    const ljj = Math.sqrt(s);
    l[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[off + i * d + j];
      for (let p = 0; p < j; p++) t -= l[i * d + p] * l[j * d + p];
      l[i * d + j] = t / ljj;
    }
  }
  return l;
}

/** Inverse of a lower-triangular d × d matrix (forward substitution on the identity). */
function lowerInverse(l: Float64Array, d: number): Float64Array {
  const inv = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    inv[c * d + c] = 1 / l[c * d + c];
    for (let i = c + 1; i < d; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s += l[i * d + p] * inv[p * d + c];
      inv[i * d + c] = -s / l[i * d + i];
    }
  }
  return inv;
}

/**
 * Tied covariances need the data's own scatter once per fit: S_a = Σ w·(x − a)(x − a)ᵀ about
 * the weighted mean a, through the backend's `scatter` in row blocks.
 */
async function tiedBase(st: Fitting, colSums: Float64Array, totalWeight: number): Promise<NonNullable<Fitting['tied']>> {
  const d = st.d;
  const a = new Float64Array(d);
  for (let f = 0; f < d; f++) a[f] = colSums[f] / totalWeight;
  const s = new Float64Array(d * d);
  for (let r0 = 0; r0 < st.dx.nRows; r0 += st.blockRows) {
    add(s, await scatter(st.be, st.dx, null, 1, a, { start: r0, end: Math.min(st.dx.nRows, r0 + st.blockRows) }));
  }
  return { scatter: s, a, colSums, totalWeight };
}

/**
 * One host pass over the data: refuses non-finite values, and makes what the covariance type
 * needs (squares for diag and spherical, Σ w·x for tied).
 */
function hostPass(x: Matrix, weights: Float32Array | null, type: CovarianceType, owner: string): { squares: Float32Array | null; colSums: Float64Array | null } {
  const { data, nRows: n, nFeatures: d } = x;
  const squares = type === 'diag' || type === 'spherical' ? new Float32Array(n * d) : null;
  const colSums = type === 'tied' ? new Float64Array(d) : null;
  for (let i = 0; i < n; i++) {
    const wi = weights ? weights[i] : 1;
    for (let f = 0; f < d; f++) {
      const v = data[i * d + f];
      if (!Number.isFinite(v)) throw new SegtensorError('NON_FINITE', `${owner}: row ${i}, feature ${f} is ${v}`);
      if (squares) squares[i * d + f] = v * v;
      if (colSums) colSums[f] += wi * v;
    }
  }
  return { squares, colSums };
}

function checkWeights(owner: string, weights: Float32Array | null, nRows: number): void {
  if (!weights) return;
  if (weights.length !== nRows) throw new SegtensorError('BAD_INPUT', `${owner}: weights hold ${weights.length} values for ${nRows} rows`);
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (!(w >= 0) || !Number.isFinite(w)) throw new SegtensorError('BAD_INPUT', `${owner}: weight of row ${i} must be finite and >= 0; got ${w}`);
    total += w;
  }
  if (!(total > 0)) throw new SegtensorError('BAD_INPUT', `${owner}: the weights sum to 0`);
}

/** Shape of covariances and precision factors in scikit-learn. */
function paramShape(type: CovarianceType, k: number, d: number): number[] {
  return type === 'full' ? [k, d, d] : type === 'tied' ? [d, d] : type === 'diag' ? [k, d] : [k];
}

/**
 * The given initial parameters, checked as scikit-learn's `_check_parameters` does, in float64
 * (precisions turned into their Cholesky factors as its `_initialize`: U = chol(P), lower).
 */
function initialParameters(o: GmmOptions, d: number): { weights?: Float64Array; means?: Float64Array; precChol?: Float64Array; covariances?: Float64Array } {
  const { k, covarianceType: type } = o;
  const out: ReturnType<typeof initialParameters> = {};
  const read = (name: string, v: NumbersInit, n: number, what: string): Float64Array => {
    const a = flatNumbers(v);
    if (a.length !== n) throw new SegtensorError('BAD_OPTION', `GaussianMixture: '${name}' must hold ${what} = ${n} values; got ${a.length}`);
    for (let i = 0; i < n; i++) if (!Number.isFinite(a[i])) throw new SegtensorError('BAD_OPTION', `GaussianMixture: '${name}' value ${i} is ${a[i]}`);
    return a;
  };
  if (o.weightsInit !== null) {
    const w = read('weightsInit', o.weightsInit, k, 'k');
    let s = 0;
    for (const v of w) {
      if (v < 0 || v > 1) throw new SegtensorError('BAD_OPTION', `GaussianMixture: 'weightsInit' values must lie in [0, 1]; got ${v}`);
      s += v;
    }
    if (Math.abs(1 - s) > 1e-8) throw new SegtensorError('BAD_OPTION', `GaussianMixture: 'weightsInit' must sum to 1; got ${s}`);
    out.weights = w;
  }
  if (o.meansInit !== null) out.means = read('meansInit', o.meansInit, k * d, 'k × nFeatures');
  if (o.precisionsInit !== null && o.covariancesInit !== null) {
    throw new SegtensorError('BAD_OPTION', "GaussianMixture: give 'precisionsInit' or 'covariancesInit', not both");
  }
  const shape = paramShape(type, k, d);
  const n = shape.reduce((a, b) => a * b, 1);
  const what = shape.length === 1 ? 'k' : type === 'diag' ? 'k × nFeatures' : type === 'tied' ? 'nFeatures × nFeatures' : 'k × nFeatures × nFeatures';
  for (const name of ['precisionsInit', 'covariancesInit'] as const) {
    const v = o[name];
    if (v === null) continue;
    const p = read(name, v, n, what);
    if (type === 'diag' || type === 'spherical') {
      for (let i = 0; i < n; i++) if (!(p[i] > 0)) throw new SegtensorError('BAD_OPTION', `GaussianMixture: '${name}' must be positive; value ${i} is ${p[i]}`);
      if (name === 'precisionsInit') out.precChol = p.map(Math.sqrt);
      else {
        out.covariances = p;
        out.precChol = precisionCholesky(type, p, k, d, o.regCovar);
      }
      continue;
    }
    const nMat = type === 'full' ? k : 1;
    for (let j = 0; j < nMat; j++) {
      const off = j * d * d;
      for (let a = 0; a < d; a++) {
        for (let b = 0; b < a; b++) {
          const pab = p[off + a * d + b];
          const pba = p[off + b * d + a];
          if (Math.abs(pab - pba) > 1e-8 + 1e-5 * Math.abs(pba)) {
            throw new SegtensorError('BAD_OPTION', `GaussianMixture: '${name}' must be symmetric; matrix ${j} has [${a}][${b}] = ${pab} and [${b}][${a}] = ${pba}`);
          }
        }
      }
      if (!cholesky(p, off, d)) throw new SegtensorError('BAD_OPTION', `GaussianMixture: '${name}' matrix ${j} is not positive-definite`);
    }
    if (name === 'covariancesInit') {
      out.covariances = p;
      out.precChol = precisionCholesky(type, p, k, d, o.regCovar);
    } else {
      const u = new Float64Array(n);
      for (let j = 0; j < nMat; j++) u.set(cholesky(p, j * d * d, d)!, j * d * d);
      out.precChol = u;
    }
  }
  return out;
}

/** Saved parameters back into a float64 model, checked. */
function modelOf(p: GmmParams): Model {
  if (!p || typeof p !== 'object') throw new TypeError('predictGmm: params must be a GmmParams object');
  if (p.formatVersion !== GMM_PARAMS_VERSION) {
    throw new SegtensorError('MODEL_VERSION', `predictGmm: parameters of format version ${p.formatVersion}; this segtensor reads version ${GMM_PARAMS_VERSION}`);
  }
  if (!COVARIANCE_TYPES.includes(p.covarianceType)) throw new SegtensorError('CORRUPT_FILE', `predictGmm: unknown covarianceType '${String(p.covarianceType)}'`);
  const { k, nFeatures: d } = p;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(d) || d < 1) throw new SegtensorError('CORRUPT_FILE', `predictGmm: bad k = ${k} or nFeatures = ${d}`);
  const n = paramShape(p.covarianceType, k, d).reduce((a, b) => a * b, 1);
  const read = (name: string, v: NumbersInit, len: number, positive = false): Float64Array => {
    const a = flatNumbers(v);
    if (a.length !== len) throw new SegtensorError('CORRUPT_FILE', `predictGmm: '${name}' holds ${a.length} values, not ${len}`);
    for (let i = 0; i < len; i++) {
      if (!Number.isFinite(a[i]) || (positive && !(a[i] > 0))) throw new SegtensorError('CORRUPT_FILE', `predictGmm: '${name}' value ${i} is ${a[i]}`);
    }
    return a;
  };
  const u = read('precisionsCholesky', p.precisionsCholesky, n, p.covarianceType === 'diag' || p.covarianceType === 'spherical');
  return { weights: read('weights', p.weights, k, true), means: read('means', p.means, k * d), covariances: null, precChol: u };
}

/** Nested arrays (any depth) or a typed array, flattened row-major into float64. */
function flatNumbers(v: NumbersInit): Float64Array {
  const out: number[] = [];
  const walk = (a: NumbersInit) => {
    for (let i = 0; i < a.length; i++) {
      const e = (a as ArrayLike<unknown>)[i];
      if (typeof e === 'number') out.push(e);
      else if (e !== null && typeof e === 'object' && 'length' in (e as object)) walk(e as NumbersInit);
      else out.push(NaN);
    }
  };
  walk(v);
  return Float64Array.from(out);
}

/** Flat row-major values as nested arrays of `shape`. */
function nest(a: ArrayLike<number>, shape: number[]): unknown[] {
  if (shape.length === 1) return Array.from(a);
  const inner = shape.slice(1).reduce((x, y) => x * y, 1);
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(Array.prototype.slice.call(a, i * inner, (i + 1) * inner) as number[], shape.slice(1)));
  return out;
}

function add(into: Float64Array, v: Float64Array): void {
  for (let i = 0; i < into.length; i++) into[i] += v[i];
}
