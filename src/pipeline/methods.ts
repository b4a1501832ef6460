/**
 * The clustering methods `fit` and `sweep` run, by name from one table: `kmeans` (Lloyd,
 * scikit-learn's KMeans) and `minibatch` (scikit-learn's MiniBatchKMeans). Each entry keeps its
 * method's defaults (scikit-learn's: for `minibatch`, 100 passes at most and no centre-shift
 * tolerance), the seedings it accepts, and how to fit it.
 *
 * @example
 * const r = await fitMethod(be, x, null, { k: 5, method: 'minibatch', ...methodOptions({}, 'minibatch'), batchSize: 1024 });
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { SegtensorError } from '../errors.js';
import { INIT_NAMES, KMeans, KMEANS_DEFAULTS, type InitName, type IterationStats, type KMeansResult } from '../models/kmeans.js';
import { MiniBatchKMeans, MINIBATCH_DEFAULTS, type MiniBatchResult } from '../models/minibatch.js';

/** What a pipeline asks of a method's fit. */
export interface MethodFit {
  k: number;
  method: Method;
  seed: number;
  nInit: number;
  maxIter: number;
  tol: number;
  init: InitName | Float32Array;
  batchSize: number;
  onIteration?: (run: number, s: IterationStats) => void;
}

interface MethodSpec {
  defaults: { seed: number; nInit: number; maxIter: number; tol: number };
  /** The `--init` values it accepts (`auto` included). */
  inits: readonly InitName[];
  /** Why other seedings are refused, for the error. */
  initNote: string;
  fit(be: Backend, x: Matrix, weights: Float32Array | null, o: MethodFit): Promise<KMeansResult | MiniBatchResult>;
}

const METHOD_TABLE = {
  kmeans: {
    defaults: KMEANS_DEFAULTS,
    inits: INIT_NAMES,
    initNote: '',
    fit: (be, x, w, o) => new KMeans({ k: o.k, seed: o.seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init: o.init, onIteration: o.onIteration }).fit(be, x, w),
  },
  minibatch: {
    defaults: MINIBATCH_DEFAULTS,
    inits: ['auto', 'k-means++'],
    initNote: "minibatch seeds with k-means++ on a sample of rows, as scikit-learn's MiniBatchKMeans",
    fit: (be, x, w, o) =>
      new MiniBatchKMeans({
        k: o.k,
        batchSize: o.batchSize,
        maxIter: o.maxIter,
        tol: o.tol,
        nInit: o.nInit,
        seed: o.seed,
        init: o.init instanceof Float32Array ? o.init : 'k-means++',
      }).fit(be, x, w),
  },
} satisfies Record<string, MethodSpec>;

export type Method = keyof typeof METHOD_TABLE;
export const METHODS = Object.keys(METHOD_TABLE) as Method[];

function specOf(method: Method): MethodSpec {
  const spec = (METHOD_TABLE as Record<string, MethodSpec>)[method];
  if (!spec) throw new SegtensorError('BAD_OPTION', `--method must be one of ${METHODS.join(', ')}; got '${String(method)}'`);
  return spec;
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

/** One fit of `o.method` on x. */
export function fitMethod(be: Backend, x: Matrix, weights: Float32Array | null, o: MethodFit): Promise<KMeansResult | MiniBatchResult> {
  return specOf(o.method).fit(be, x, weights, o);
}
