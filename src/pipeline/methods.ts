/**
 * The clustering methods `fit` and `sweep` run, behind one call: `kmeans` (Lloyd, scikit-learn's
 * KMeans) and `minibatch` (scikit-learn's MiniBatchKMeans). Each method keeps its own defaults
 * (scikit-learn's): for `minibatch`, 100 passes at most and no centre-shift tolerance.
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { SegtensorError } from '../errors.js';
import { KMeans, KMEANS_DEFAULTS, type InitName, type IterationStats, type KMeansResult } from '../models/kmeans.js';
import { MiniBatchKMeans, MINIBATCH_DEFAULTS, type MiniBatchResult } from '../models/minibatch.js';

export const METHODS = ['kmeans', 'minibatch'] as const;
export type Method = (typeof METHODS)[number];

/** A job's seeding and stopping options with the method's defaults filled in. */
export function methodOptions(
  job: { seed?: number; nInit?: number; maxIter?: number; tol?: number; init?: InitName },
  method: Method,
): { seed: number; nInit: number; maxIter: number; tol: number; init: InitName } {
  if (!METHODS.includes(method)) throw new SegtensorError('BAD_OPTION', `--method must be one of ${METHODS.join(', ')}; got '${String(method)}'`);
  const init = job.init ?? 'auto';
  if (method === 'minibatch' && init !== 'auto' && init !== 'k-means++') {
    throw new SegtensorError('BAD_OPTION', `--init ${init} applies to --method kmeans; minibatch seeds with k-means++ on a sample of rows, as scikit-learn's MiniBatchKMeans`);
  }
  const d = method === 'minibatch' ? MINIBATCH_DEFAULTS : KMEANS_DEFAULTS;
  return { seed: job.seed ?? d.seed, nInit: job.nInit ?? d.nInit, maxIter: job.maxIter ?? d.maxIter, tol: job.tol ?? d.tol, init };
}

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

/** One fit of `o.method` on x. */
export async function fitMethod(be: Backend, x: Matrix, weights: Float32Array | null, o: MethodFit): Promise<KMeansResult | MiniBatchResult> {
  if (o.method === 'minibatch') {
    return new MiniBatchKMeans({
      k: o.k,
      batchSize: o.batchSize,
      maxIter: o.maxIter,
      tol: o.tol,
      nInit: o.nInit,
      seed: o.seed,
      init: o.init instanceof Float32Array ? o.init : 'k-means++',
    }).fit(be, x, weights);
  }
  return new KMeans({ k: o.k, seed: o.seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init: o.init, onIteration: o.onIteration }).fit(be, x, weights);
}
