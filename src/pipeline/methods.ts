/**
 * The clustering methods `fit` and `sweep` run, by name from one table. Each entry keeps its
 * method's defaults (scikit-learn's), the seedings it accepts, and how to fit it; every fit
 * returns one {@link Segmentation}, so the pipelines (metrics, alignment, profiles, outputs)
 * never ask which method ran. The models load when a method is used, not with the CLI.
 *
 * @example
 * const r = await fitMethod(be, x, null, { k: 5, method: 'minibatch', ...methodOptions({}, 'minibatch'), batchSize: 1024 });
 */
import { isChunked, type HostMatrix, type Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { SegtensorError } from '../errors.js';
import { INIT_NAMES, KMeans, KMEANS_DEFAULTS, type InitName, type IterationStats, type KMeansCheckpoints, type KMeansResult } from '../models/kmeans.js';
import { MiniBatchKMeans, MINIBATCH_DEFAULTS, type MiniBatchResult } from '../models/minibatch.js';
import { K_METHODS, METHODS, type BisectingStrategy, type Covariance, type Linkage, type Method } from './method-names.js';

export { K_METHODS, METHODS, type Method } from './method-names.js';

/** One categorical input column's one-hot block in the matrix (k-prototypes reads codes from it). */
export interface CategoricalBlock {
  name: string;
  /** First matrix column of the block. */
  start: number;
  /** Its categories, `__other__` last; a row's code is the index of its 1 (−1 when none). */
  categories: string[];
}

/** Options only some methods read (each documented with its CLI flag). */
export interface MethodParams {
  /** gmm: `--covariance`. */
  covariance?: Covariance;
  /** gmm: `--reg-covar`, added to the covariances' diagonals. */
  regCovar?: number;
  /** gmm: `--soft`, one probability column per segment. */
  soft?: boolean;
  /** dbscan: `--eps`. */
  eps?: number | 'auto';
  /** dbscan: `--min-samples`. */
  minSamples?: number;
  /** agglomerative: `--linkage`. */
  linkage?: Linkage;
  /** bisecting: `--bisecting-strategy`. */
  bisectingStrategy?: BisectingStrategy;
  /** kprototypes: `--gamma`, the weight of a categorical mismatch (default: Huang's rule). */
  gamma?: number | null;
  /** kprototypes: the categorical blocks of the matrix (set by the pipeline). */
  categorical?: CategoricalBlock[];
}

/** What a pipeline asks of a method's fit. */
export interface MethodFit extends MethodParams {
  /** Segments; ignored by dbscan, which finds its own. */
  k: number;
  method: Method;
  seed: number;
  nInit: number;
  maxIter: number;
  tol: number;
  init: InitName | Float32Array;
  batchSize: number;
  onIteration?: (run: number, s: IterationStats) => void;
  /** Progress of the seeding (kmeans) and of the steps (minibatch). */
  onBar?: (phase: string, done: number, total: number, unit: string) => void;
  /** kmeans: where a long fit saves its state and resumes from (see ./checkpoint.ts). */
  checkpoints?: KMeansCheckpoints | null;
}

/** An extra column of assignments.* (rows in input order). */
export interface SegmentColumn {
  name: string;
  values: Float32Array | Int32Array;
}

/** Every method's fit, in the terms the pipelines use. */
export interface Segmentation {
  /** Segments found (dbscan: clusters, noise not counted). */
  k: number;
  /** Per row: a segment in [0, k), or −1 for noise (dbscan). */
  labels: Int32Array;
  /** k × nFeatures: each segment's centre (its weighted mean where the method has no centres), for alignment, distances and reports. */
  centroids: Float32Array;
  /** Per row: squared distance to its segment's centre (NaN for noise). */
  distances: Float32Array;
  /** Σ w·distance over the rows in a segment. */
  inertia: number;
  nIter: number;
  converged: boolean;
  runs: { inertia: number; nIter: number; converged: boolean }[];
  emptyClustersRepaired: number;
  /** The seeding that ran, or what started the method. */
  init: string;
  ms: { init: number; lloyd: number };
  /** Summed weights behind each centre that `update` continues from (mini-batch's counts), or null: the segment sizes. */
  centreCounts: Float64Array | null;
  /** The method's parameters, for model.json's `params`. */
  params: Record<string, unknown>;
  /** What `predict` needs beyond the centres (model.json's `methodState`), or null: nearest centre. */
  state: unknown | null;
  /** The method's own figures, for metrics.json (e.g. gmm's logLikelihood, bic, aic). */
  metrics: Record<string, unknown>;
  /** The method's own assignment columns (e.g. gmm's probability, dbscan's core). */
  columns: SegmentColumn[];
  /** rows × k, one column per segment (gmm --soft), named after the segment ids by the pipeline. */
  soft: Float32Array | null;
  /** Extra files for the run directory (e.g. agglomerative's dendrogram.json), name → content. */
  files: Record<string, string>;
}

interface Defaults {
  seed: number;
  nInit: number;
  maxIter: number;
  tol: number;
}

interface MethodSpec {
  defaults: Defaults;
  /** The `--init` values it accepts (`auto` included). */
  inits: readonly InitName[];
  /** Why other seedings are refused, for the error. */
  initNote: string;
  /** Whether `--warm-start` (initial centres) applies. */
  warmStart: boolean;
  /** Whether it fits rows read in blocks (a {@link ChunkedMatrix}: `--memory-limit`). */
  blocks?: true;
  fit(be: Backend, x: Matrix, weights: Float32Array | null, o: MethodFit): Promise<Segmentation>;
  /**
   * New rows' labels (in the fit's label order) from a saved `methodState`, with the method's
   * own columns; absent: nearest centroid (the pipeline's default).
   */
  predict?(be: Backend, state: unknown, x: Matrix, o: { categorical: CategoricalBlock[] }): Promise<{ labels: Int32Array; columns: SegmentColumn[] }>;
}

/** A K-Means-family result as a {@link Segmentation}. */
/** K-Means' seeding progress as a pipeline's progress hook (a bar per restart). */
export function seedingProgress(hook: MethodFit['onBar']): ((run: number, done: number, total: number) => void) | undefined {
  return hook ? (run, done, total) => hook(`seeding (restart ${run + 1})`, done, total, 'centres') : undefined;
}

function fromKMeans(k: number, r: KMeansResult, params: Record<string, unknown>, counts: Float64Array | null = null): Segmentation {
  return segmentation(
    { k, labels: r.labels, centroids: r.centroids, distances: r.distances, inertia: r.inertia, init: r.init, ms: r.ms },
    { nIter: r.nIter, converged: r.converged, runs: r.runs, emptyClustersRepaired: r.history.reduce((s, h) => s + h.emptyClusters, 0), centreCounts: counts, params },
  );
}

const METHOD_TABLE: Record<Method, MethodSpec> = {
  kmeans: {
    defaults: KMEANS_DEFAULTS,
    inits: INIT_NAMES,
    initNote: '',
    warmStart: true,
    blocks: true,
    fit: async (be, x: HostMatrix, w, o) => {
      const r = await new KMeans({ k: o.k, seed: o.seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init: o.init, onIteration: o.onIteration, onSeeding: seedingProgress(o.onBar), checkpoints: o.checkpoints }).fit(be, x, w);
      return fromKMeans(o.k, r, {});
    },
  },
  minibatch: {
    defaults: MINIBATCH_DEFAULTS,
    inits: ['auto', 'k-means++'],
    initNote: "minibatch seeds with k-means++ on a sample of rows, as scikit-learn's MiniBatchKMeans",
    warmStart: true,
    blocks: true,
    fit: async (be, x: HostMatrix, w, o) => {
      const r: MiniBatchResult = await new MiniBatchKMeans({
        k: o.k,
        batchSize: o.batchSize,
        maxIter: o.maxIter,
        tol: o.tol,
        nInit: o.nInit,
        seed: o.seed,
        init: o.init instanceof Float32Array ? o.init : 'k-means++',
        onStep: o.onBar ? (done, total) => o.onBar!('steps', done, total, 'steps') : undefined,
      }).fit(be, x, w);
      return fromKMeans(o.k, r, { batchSize: o.batchSize, nSteps: r.nSteps }, r.counts);
    },
  },
  gmm: {
    defaults: { seed: 0, nInit: 1, maxIter: 100, tol: 1e-3 },
    inits: ['auto'],
    initNote: "gmm starts from a K-Means fit, as scikit-learn's GaussianMixture (init_params='kmeans')",
    warmStart: false,
    fit: async (be, x, w, o) => {
      const cat = o.categorical ?? [];
      if (cat.length) {
        throw new SegtensorError('BAD_OPTION', `--method gmm models numeric features with Gaussians; column '${cat[0].name}' is categorical: leave it out (--exclude ${cat.map((c) => c.name).join(',')}) or use --method kprototypes`);
      }
      const { GaussianMixture, gmmParams, predictGmm, GMM_DEFAULTS } = await import('../models/gmm.js');
      const covarianceType = o.covariance ?? GMM_DEFAULTS.covarianceType;
      const regCovar = o.regCovar ?? GMM_DEFAULTS.regCovar;
      const r = await new GaussianMixture({ k: o.k, covarianceType, regCovar, seed: o.seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol }).fit(be, x, w);
      const centroids = Float32Array.from(r.means);
      const { distances, inertia } = centreDistances(x, r.labels, centroids, w);
      const state = gmmParams(r);
      const soft = o.soft ? (await predictGmm(be, state, x, { responsibilities: true })).responsibilities ?? null : null;
      return segmentation(
        { k: o.k, labels: r.labels, centroids, distances, inertia, init: r.init, ms: { init: r.ms.init, lloyd: r.ms.em } },
        {
          nIter: r.nIter,
          converged: r.converged,
          runs: r.runs.map((run) => ({ inertia: NaN, ...run })),
          params: { covariance: covarianceType, regCovar },
          state,
          metrics: { logLikelihood: r.logLikelihood, lowerBound: r.lowerBound, bic: r.bic, aic: r.aic, nParameters: r.nParameters },
          columns: [{ name: 'probability', values: r.probability }],
          soft,
        },
      );
    },
    predict: async (be, state, x) => {
      const { predictGmm } = await import('../models/gmm.js');
      const p = await predictGmm(be, state as import('../models/gmm.js').GmmParams, x);
      return { labels: p.labels, columns: [{ name: 'probability', values: p.probability }] };
    },
  },
  agglomerative: {
    defaults: { seed: 0, nInit: 1, maxIter: 100, tol: 0 },
    inits: ['auto'],
    initNote: 'agglomerative merges rows (or K-Means micro-clusters above its exact limit) and needs no seeding',
    warmStart: false,
    fit: async (be, x, w, o) => {
      const { Agglomerative, dendrogramJson, AGGLOMERATIVE_DEFAULTS } = await import('../models/agglomerative.js');
      const linkage = o.linkage ?? AGGLOMERATIVE_DEFAULTS.linkage;
      const r = await new Agglomerative({ k: o.k, linkage, mode: 'auto', seed: o.seed }).fit(be, x, w);
      const { distances } = centreDistances(x, r.labels, r.centroids, w);
      return {
        ...segmentation({ k: o.k, labels: r.labels, centroids: r.centroids, distances, inertia: r.inertia, init: r.mode, ms: { init: r.ms.micro, lloyd: r.ms.linkage } }),
        params: { linkage, mode: r.mode, microClusters: r.microClusters },
        metrics: { linkage, mode: r.mode, microClusters: r.microClusters, leaves: r.nLeaves },
        files: { 'dendrogram.json': JSON.stringify(dendrogramJson(r)) + '\n' },
      };
    },
  },
  bisecting: {
    defaults: { seed: 0, nInit: 1, maxIter: 300, tol: 1e-4 },
    inits: ['auto'],
    initNote: "bisecting splits each segment with 2-means from random rows, as scikit-learn's BisectingKMeans",
    warmStart: false,
    fit: async (be, x, w, o) => {
      const { BisectingKMeans, bisectingModel, BISECTING_DEFAULTS } = await import('../models/bisecting.js');
      const bisectingStrategy = o.bisectingStrategy ?? BISECTING_DEFAULTS.bisectingStrategy;
      const r = await new BisectingKMeans({ k: o.k, bisectingStrategy, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, seed: o.seed }).fit(be, x, w);
      const { distances } = centreDistances(x, r.labels, r.centroids, w);
      return {
        ...segmentation({ k: o.k, labels: r.labels, centroids: r.centroids, distances, inertia: r.inertia, init: 'random', ms: { init: 0, lloyd: r.ms } }),
        params: { bisectingStrategy },
        // predict descends the tree, as scikit-learn's BisectingKMeans.predict does.
        state: bisectingModel(r),
      };
    },
    predict: async (_be, state, x) => {
      const { predictBisecting } = await import('../models/bisecting.js');
      return { labels: predictBisecting((state as import('../models/bisecting.js').BisectingModelJson).tree, x), columns: [] };
    },
  },
  dbscan: {
    defaults: { seed: 0, nInit: 1, maxIter: 1, tol: 0 },
    inits: ['auto'],
    initNote: 'dbscan grows segments from dense rows and needs no seeding',
    warmStart: false,
    fit: async (be, x, w, o) => {
      const { DBSCAN, dbscanModel, DBSCAN_DEFAULTS } = await import('../models/dbscan.js');
      const r = await new DBSCAN({ eps: o.eps ?? 'auto', minSamples: o.minSamples ?? DBSCAN_DEFAULTS.minSamples, seed: o.seed }).fit(be, x, w);
      const centroids = memberMeans(x, r.labels, r.nClusters, w);
      const { distances, inertia } = centreDistances(x, r.labels, centroids, w);
      return {
        ...segmentation({ k: r.nClusters, labels: r.labels, centroids, distances, inertia, init: r.epsAuto ? 'eps auto' : 'eps', ms: { init: r.ms.eps, lloyd: r.ms.cluster } }),
        params: { eps: r.eps, epsAuto: r.epsAuto !== null, minSamples: r.minSamples, index: r.index },
        state: dbscanModel(r),
        metrics: { eps: r.eps, epsAuto: r.epsAuto, minSamples: r.minSamples, clusters: r.nClusters, corePoints: r.corePoints.length / Math.max(1, x.nFeatures), index: r.index },
        columns: [{ name: 'core', values: Int32Array.from(r.core) }],
      };
    },
    predict: async (_be, state, x) => {
      const { predictDbscan } = await import('../models/dbscan.js');
      // The segment of the nearest core row within eps, else noise (−1).
      return { labels: predictDbscan(state as import('../models/dbscan.js').DbscanModelJson, x), columns: [] };
    },
  },
  kprototypes: {
    defaults: { seed: 0, nInit: 3, maxIter: 100, tol: 0 },
    inits: ['auto'],
    initNote: "kprototypes seeds with Huang's method (modes from the most frequent categories, numbers from the chosen rows)",
    warmStart: false,
    fit: async (be, x, w, o) => {
      const { fitKPrototypes } = await import('../models/kprototypes.js');
      const blocks = o.categorical ?? [];
      if (!blocks.length) {
        throw new SegtensorError('BAD_OPTION', 'kprototypes needs at least one categorical column: text columns are categories, or name numeric ones with --categorical a,b');
      }
      const { num, cat } = splitMixed(x, blocks);
      const r = await fitKPrototypes(be, num, cat, w, { k: o.k, gamma: o.gamma ?? null, nInit: o.nInit, maxIter: o.maxIter, seed: o.seed });
      const centroids = mixedCentroids(r.centroids, r.modes, x.nFeatures, blocks);
      const { distances, inertia } = centreDistances(x, r.labels, centroids, w);
      return segmentation(
        { k: o.k, labels: r.labels, centroids, distances, inertia, init: String(r.init), ms: { init: 0, lloyd: r.history.reduce((s, h) => s + h.ms, 0) } },
        {
          nIter: r.nIter,
          converged: r.converged,
          runs: r.runs.map((run) => ({ inertia: NaN, cost: run.cost, nIter: run.nIter, converged: run.converged })),
          emptyClustersRepaired: r.history.reduce((s, h) => s + h.emptyClusters, 0),
          params: { gamma: r.gamma, categorical: blocks.map((b) => b.name) },
          state: r.model,
          metrics: { cost: r.cost, gamma: r.gamma },
          columns: [{ name: 'cost', values: Float32Array.from(r.costs) }],
        },
      );
    },
    predict: async (be, state, x, o) => {
      const { predictKPrototypes } = await import('../models/kprototypes.js');
      const { num, cat } = splitMixed(x, o.categorical);
      const p = await predictKPrototypes(state as import('../models/kprototypes.js').KPrototypesModel, num, cat, be);
      return { labels: p.labels, columns: [{ name: 'cost', values: Float32Array.from(p.costs) }] };
    },
  },
};

/** A {@link Segmentation}: what every method has, and the rest defaulting to a one-pass method's (no restarts, no counts, nothing of its own). */
function segmentation(
  base: Pick<Segmentation, 'k' | 'labels' | 'centroids' | 'distances' | 'inertia' | 'init' | 'ms'>,
  more: Partial<Segmentation> = {},
): Segmentation {
  return {
    nIter: 1,
    converged: true,
    runs: [{ inertia: base.inertia, nIter: 1, converged: true }],
    emptyClustersRepaired: 0,
    centreCounts: null,
    params: {},
    state: null,
    metrics: {},
    columns: [],
    soft: null,
    files: {},
    ...base,
    ...more,
  };
}

/**
 * A preprocessed matrix as k-prototypes sees it: the numeric columns (those before the first
 * one-hot block), and each categorical block as codes (the index of the row's 1; −1 for none).
 */
export function splitMixed(x: Matrix, blocks: CategoricalBlock[]): { num: Matrix | null; cat: Int32Array[] } {
  const d = x.nFeatures;
  const nNum = blocks.length ? blocks[0].start : d;
  let num: Matrix | null = null;
  if (nNum > 0) {
    const data = new Float32Array(x.nRows * nNum);
    for (let i = 0; i < x.nRows; i++) data.set(x.data.subarray(i * d, i * d + nNum), i * nNum);
    num = { data, nRows: x.nRows, nFeatures: nNum };
  }
  const cat = blocks.map((b) => {
    const codes = new Int32Array(x.nRows).fill(-1);
    for (let i = 0; i < x.nRows; i++) {
      const base = i * d + b.start;
      for (let c = 0; c < b.categories.length; c++) {
        if (x.data[base + c] > 0.5) {
          codes[i] = c;
          break;
        }
      }
    }
    return codes;
  });
  return { num, cat };
}

/** Prototypes in the matrix's columns: numeric centres, then each mode as its one-hot column. */
function mixedCentroids(centres: number[][], modes: number[][], d: number, blocks: CategoricalBlock[]): Float32Array {
  const k = centres.length;
  const out = new Float32Array(k * d);
  for (let j = 0; j < k; j++) {
    centres[j].forEach((v, f) => (out[j * d + f] = v));
    blocks.forEach((b, c) => {
      if (modes[j][c] >= 0) out[j * d + b.start + modes[j][c]] = 1;
    });
  }
  return out;
}

/**
 * Each row's squared distance to its segment's centre (NaN for noise, label −1), float64 sums,
 * and their weighted total over the rows in a segment.
 */
export function centreDistances(x: Matrix, labels: Int32Array, centroids: Float32Array, weights: Float32Array | null): { distances: Float32Array; inertia: number } {
  const d = x.nFeatures;
  const distances = new Float32Array(x.nRows);
  let inertia = 0;
  for (let i = 0; i < x.nRows; i++) {
    const l = labels[i];
    if (l < 0) {
      distances[i] = NaN;
      continue;
    }
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = x.data[i * d + f] - centroids[l * d + f];
      s += t * t;
    }
    distances[i] = s;
    inertia += weights ? weights[i] * s : s;
  }
  return { distances, inertia };
}

/** Weighted mean of each segment's rows (k × d; zeros for an empty segment), noise left out. */
export function memberMeans(x: Matrix, labels: Int32Array, k: number, weights: Float32Array | null): Float32Array {
  const d = x.nFeatures;
  const sums = new Float64Array(k * d);
  const mass = new Float64Array(k);
  for (let i = 0; i < x.nRows; i++) {
    const l = labels[i];
    if (l < 0) continue;
    const w = weights ? weights[i] : 1;
    mass[l] += w;
    for (let f = 0; f < d; f++) sums[l * d + f] += w * x.data[i * d + f];
  }
  const out = new Float32Array(k * d);
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) out[j * d + f] = mass[j] > 0 ? sums[j * d + f] / mass[j] : 0;
  return out;
}

function specOf(method: Method): MethodSpec {
  const spec = (METHOD_TABLE as Partial<Record<string, MethodSpec>>)[method];
  if (!spec) throw new SegtensorError('BAD_OPTION', `--method must be one of ${METHODS.join(', ')}; got '${String(method)}'`);
  return spec;
}

/** Each method-only option: its flag and the one method that reads it. */
const METHOD_ONLY: { [K in Exclude<keyof MethodParams, 'categorical'>]-?: [flag: string, method: Method] } = {
  covariance: ['--covariance', 'gmm'],
  regCovar: ['--reg-covar', 'gmm'],
  soft: ['--soft', 'gmm'],
  eps: ['--eps', 'dbscan'],
  minSamples: ['--min-samples', 'dbscan'],
  linkage: ['--linkage', 'agglomerative'],
  bisectingStrategy: ['--bisecting-strategy', 'bisecting'],
  gamma: ['--gamma', 'kprototypes'],
};

/** A job's method-only options; one given to another method is a BAD_OPTION rather than silently ignored. */
export function methodParams(job: MethodParams, method: Method): MethodParams {
  const out: Record<string, unknown> = {};
  for (const [key, [flag, owner]] of Object.entries(METHOD_ONLY)) {
    const v = job[key as keyof MethodParams];
    if (v === undefined || v === null || v === false) continue;
    if (owner !== method) throw new SegtensorError('BAD_OPTION', `${flag} applies to --method ${owner}; got --method ${method}`);
    out[key] = v;
  }
  return out as MethodParams;
}

/** A job's seeding and stopping options with the method's defaults filled in; a seeding the method does not take is a BAD_OPTION. */
export function methodOptions(
  job: { seed?: number; nInit?: number; maxIter?: number; tol?: number; init?: InitName },
  method: Method,
): { seed: number; nInit: number; maxIter: number; tol: number; init: InitName } {
  const spec = specOf(method);
  const init = job.init ?? 'auto';
  if (!spec.inits.includes(init)) throw new SegtensorError('BAD_OPTION', `--init ${init} applies to --method kmeans; ${spec.initNote}`);
  const d = spec.defaults;
  return { seed: job.seed ?? d.seed, nInit: job.nInit ?? d.nInit, maxIter: job.maxIter ?? d.maxIter, tol: job.tol ?? d.tol, init };
}

/** The one-hot blocks of a fitted preprocessing's categorical columns, in matrix order. */
export function categoricalBlocks(pre: { state: { numeric: unknown[]; categorical: { name: string; categories: string[] }[] } }): CategoricalBlock[] {
  let start = pre.state.numeric.length;
  return pre.state.categorical.map((c) => {
    const block = { name: c.name, start, categories: [...c.categories, '__other__'] };
    start += block.categories.length;
    return block;
  });
}

/** The method's own predict, or null where predict is nearest centroid. */
export function methodPredictor(method: string): MethodSpec['predict'] | null {
  return (METHOD_TABLE as Partial<Record<string, MethodSpec>>)[method]?.predict ?? null;
}

/** Whether `--warm-start` applies to `method`. */
export function takesWarmStart(method: Method): boolean {
  return specOf(method).warmStart;
}

/** Whether `method` takes a number of segments. */
export function takesK(method: Method): boolean {
  return K_METHODS.includes(method);
}

/** Whether `method` fits rows read in blocks (`--memory-limit`). */
export function fitsBlocks(method: Method): boolean {
  return specOf(method).blocks === true;
}

/** One fit of `o.method` on x; rows in blocks only for the methods that take them ({@link fitsBlocks}). */
export function fitMethod(be: Backend, x: HostMatrix, weights: Float32Array | null, o: MethodFit): Promise<Segmentation> {
  const spec = specOf(o.method);
  if (isChunked(x)) {
    if (!spec.blocks) throw new SegtensorError('BAD_OPTION', `--memory-limit: --method ${o.method} is not supported on a table read in blocks yet; run it without --memory-limit (in memory)`);
    // The block methods' fit takes either form (declared so above).
    return spec.fit(be, x as unknown as Matrix, weights, o);
  }
  return spec.fit(be, x, weights, o);
}
