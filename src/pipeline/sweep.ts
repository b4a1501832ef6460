/**
 * Choosing k: K-Means for every k of a range on one preprocessed matrix, with the cluster
 * indices (inertia, silhouette on a seeded sample, Calinski-Harabasz, Davies-Bouldin) and the
 * stability of each k (refits on bootstrap samples, clusters matched to the full fit by
 * minimum-cost assignment), and a recommended k by a stated rule ({@link recommendK}).
 *
 * `segtensor sweep` writes the table (`sweep.csv`, `sweep.json`); `fit --k auto` runs the same
 * sweep and keeps the recommended fit.
 *
 * @example
 * const r = await sweepSegmentation({ input: 'customers.parquet', ks: [2, 3, 4, 5, 6], out: 'sweep/' });
 * r.recommendation.k;
 */
import type { HostMatrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import '../engine/backends/index.js';
import { resolveBackend } from '../engine/registry.js';
import { SegtensorError } from '../errors.js';
import { adjustedRandIndex, contingency } from '../eval/agreement.js';
import { linearSumAssignment, MAX_MATCHED_SEGMENTS } from '../eval/assignment.js';
import { clusterQuality, sampleRows } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { beginRun } from '../io/run-dir.js';
import { type InitName } from '../models/kmeans.js';
import { MINIBATCH_DEFAULTS } from '../models/minibatch.js';
import { categoricalBlocks, fitMethod, methodOptions, methodParams, takesK, type Method, type MethodParams, type Segmentation } from './methods.js';
import { Random } from '../util/random.js';
import { VERSION } from '../version.js';
export { parseKRange } from './k-range.js';
import { fitProjection, prepareFeatures, type FeatureJob, type FitJob } from './fit.js';
import { BLOCK_ROWS, readsInBlocks } from './blocks.js';
import { cacheTable, checkStreamingJob, closeCache, type CachedTable } from './fit-stream.js';
import type { Preprocessor } from '../preprocess/preprocessor.js';
import path from 'node:path';

/** How each k is fitted and judged. */
export interface SweepOptions {
  ks: number[];
  method: Method;
  /** The options only some methods read (see ./methods.ts). */
  params?: MethodParams;
  /** Rows per step with `minibatch`. */
  batchSize: number;
  seed: number;
  nInit: number;
  maxIter: number;
  tol: number;
  init: InitName;
  /** Rows sampled for the silhouette (the same sample for every k). Default 20,000. */
  sample: number;
  /** Bootstrap refits per k for the stability columns; 0 leaves them out. Default 5. */
  stability: number;
}

export const SWEEP_DEFAULTS = Object.freeze({ sample: 20000, stability: 5 });

/** One row of sweep.csv: the names are the file's column names. */
export interface SweepRow {
  k: number;
  inertia: number;
  silhouette: number | null;
  calinski_harabasz: number | null;
  davies_bouldin: number | null;
  /** Mean adjusted Rand index between the full fit's labels and each bootstrap refit's (on every row). */
  stability_ari: number | null;
  /** The least, over the full fit's segments, of the mean Jaccard index of its matched refit segment. */
  min_jaccard: number | null;
  n_iter: number;
  converged: boolean;
  seconds: number;
}

export interface Recommendation {
  k: number;
  /** False when the indices do not agree, or the structure is weak: the k is then a guess to check. */
  clear: boolean;
  rule: string;
  reason: string;
  /** The k each index prefers. */
  votes: { silhouette: number | null; calinski_harabasz: number | null; davies_bouldin: number | null };
}

/** The rule, as the README states it. */
export const RECOMMEND_RULE =
  'the k that most of silhouette (highest), Calinski-Harabasz (highest) and Davies-Bouldin (lowest) prefer; ' +
  'when all three disagree, the most stable of their three choices (highest stability ARI, then the smaller k)';

/** Below this best silhouette the data has no substantial cluster structure (Kaufman & Rousseeuw). */
const WEAK_SILHOUETTE = 0.25;

/** Bootstrap counts of n draws with replacement, times the row weights: a resample as weights, no copy of the data. */
function bootstrapWeights(n: number, rng: Random, weights: Float32Array | null): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[rng.int(n)]++;
  if (weights) for (let i = 0; i < n; i++) w[i] *= weights[i];
  return w;
}

/**
 * Per-segment Jaccard index between the full fit's segments (rows of the contingency table) and
 * a refit's, after matching them one to one by minimum-cost assignment on 1 − Jaccard.
 */
export function matchedJaccard(full: Int32Array, refit: Int32Array, k: number): Float64Array {
  const t = contingency(full, refit);
  const out = new Float64Array(k);
  if (!t) throw new Error('matchedJaccard: labels must lie in [0, 4096)');
  const cost: number[][] = [];
  for (let i = 0; i < k; i++) {
    const row: number[] = [];
    for (let j = 0; j < k; j++) {
      const both = i < t.ka && j < t.kb ? t.cells[i * t.kb + j] : 0;
      const union = (i < t.ka ? t.rows[i] : 0) + (j < t.kb ? t.cols[j] : 0) - both;
      row.push(union > 0 ? 1 - both / union : 1);
    }
    cost.push(row);
  }
  const a = linearSumAssignment(cost);
  a.rows.forEach((i, p) => (out[i] = 1 - cost[i][a.cols[p]]));
  return out;
}

/**
 * Fits every k of `o.ks` on `x` and scores it. `onProgress` hears each fit as it starts.
 * Returns the rows, and with `keepFits` each k's full fit (labels and distances of every row).
 */
export async function sweepMatrix(
  be: Backend,
  x: HostMatrix,
  weights: Float32Array | null,
  o: SweepOptions,
  onProgress: (line: string, row?: SweepRow) => void = () => {},
  { keepFits = false }: { keepFits?: boolean } = {},
): Promise<{ rows: SweepRow[]; fits: Map<number, Segmentation> }> {
  for (const k of o.ks) {
    if (k > x.nRows) throw new SegtensorError('BAD_OPTION', `--k ${k}: the table has only ${x.nRows} rows`);
    if (o.stability > 0 && k > MAX_MATCHED_SEGMENTS) {
      throw new SegtensorError('BAD_OPTION', `--stability matches segments up to k = ${MAX_MATCHED_SEGMENTS} (the matching is cubic in k); got --k ${k}: use --stability 0`);
    }
  }
  const sample = sampleRows(x.nRows, Math.min(o.sample, x.nRows), o.seed);
  const rows: SweepRow[] = [];
  const fits = new Map<number, Segmentation>();
  for (const k of o.ks) {
    const t0 = performance.now();
    onProgress(`k = ${k}: fitting`);
    const fit = (seed: number, w: Float32Array | null) =>
      fitMethod(be, x, w, { ...o.params, k, method: o.method, batchSize: o.batchSize, seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init: o.init });
    let r: Segmentation | null = await fit(o.seed, weights);
    // Only the labels outlive this point (the refits compare with them); the distances and the
    // rest go with `r` unless the caller keeps the fit (rows read in blocks: 4 bytes a row each).
    const labels = r.labels;
    const fitted = { inertia: r.inertia, nIter: r.nIter, converged: r.converged };
    if (keepFits) fits.set(k, r);
    r = null;
    const q = await clusterQuality(be, x, labels, k, sample);
    let ari: number | null = null;
    let minJaccard: number | null = null;
    if (o.stability > 0) {
      const rng = new Random(o.seed ^ 0x5eed);
      let sumAri = 0;
      const jac = new Float64Array(k);
      for (let rep = 0; rep < o.stability; rep++) {
        onProgress(`k = ${k}: stability refit ${rep + 1}/${o.stability}`);
        const bw = bootstrapWeights(x.nRows, new Random(rng.fork()), weights);
        const refit = await fit(rng.fork() >>> 0, bw);
        sumAri += adjustedRandIndex(labels, refit.labels);
        const j = matchedJaccard(labels, refit.labels, k);
        for (let s = 0; s < k; s++) jac[s] += j[s] / o.stability;
      }
      ari = sumAri / o.stability;
      minJaccard = Math.min(...jac);
    }
    const row: SweepRow = {
      k,
      inertia: fitted.inertia,
      silhouette: q.silhouette,
      calinski_harabasz: q.calinskiHarabasz,
      davies_bouldin: q.daviesBouldin,
      stability_ari: ari,
      min_jaccard: minJaccard,
      n_iter: fitted.nIter,
      converged: fitted.converged,
      seconds: Math.round(performance.now() - t0) / 1000,
    };
    rows.push(row);
    onProgress(
      `k = ${k}: inertia ${fitted.inertia.toPrecision(6)}, silhouette ${fmt(row.silhouette, 3)}, Calinski-Harabasz ${fmt(row.calinski_harabasz, 1)}, ` +
        `Davies-Bouldin ${fmt(row.davies_bouldin, 3)}${ari === null ? '' : `, stability ARI ${fmt(ari, 3)}, min Jaccard ${fmt(minJaccard, 3)}`} (${row.seconds.toFixed(1)} s)`,
      row,
    );
  }
  return { rows, fits };
}

function fmt(v: number | null, digits: number): string {
  return v === null ? 'n/a' : v.toFixed(digits);
}

/** The k an index prefers (`best` of its defined values; ties to the smaller k), or null. */
function preferred(rows: SweepRow[], value: (r: SweepRow) => number | null, higher: boolean): number | null {
  let best: SweepRow | null = null;
  for (const r of rows) {
    const v = value(r);
    if (v === null || !Number.isFinite(v)) continue;
    const b = best ? value(best)! : null;
    if (b === null || (higher ? v > b : v < b)) best = r;
  }
  return best?.k ?? null;
}

/**
 * The recommended k by {@link RECOMMEND_RULE}, with the reason in words. Not clear when the
 * three indices all disagree, when the choice sits at an end of the range (a wider range may
 * do better), or when the best silhouette is below 0.25 (no substantial structure).
 */
export function recommendK(rows: SweepRow[]): Recommendation {
  if (!rows.length) throw new Error('recommendK: no rows');
  const votes = {
    silhouette: preferred(rows, (r) => r.silhouette, true),
    calinski_harabasz: preferred(rows, (r) => r.calinski_harabasz, true),
    davies_bouldin: preferred(rows, (r) => r.davies_bouldin, false),
  };
  const names: Record<keyof typeof votes, string> = { silhouette: 'silhouette', calinski_harabasz: 'Calinski-Harabasz', davies_bouldin: 'Davies-Bouldin' };
  const tally = new Map<number, (keyof typeof votes)[]>();
  for (const [idx, k] of Object.entries(votes) as [keyof typeof votes, number | null][]) {
    if (k !== null) tally.set(k, [...(tally.get(k) ?? []), idx]);
  }
  const rowOf = (k: number) => rows.find((r) => r.k === k)!;
  const notes: string[] = [];
  let k: number;
  let clear = true;
  let reason: string;
  const top = [...tally.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
  if (top.length && top[0][1].length >= 2) {
    k = top[0][0];
    const agree = top[0][1].map((i) => names[i]);
    reason = agree.length === 3 ? `silhouette, Calinski-Harabasz and Davies-Bouldin all prefer k = ${k}` : `${agree.join(' and ')} prefer k = ${k}`;
    const other = top.slice(1).map(([kk, idx]) => `${idx.map((i) => names[i]).join(', ')} ${kk}`);
    if (other.length) reason += ` (${other.join('; ')})`;
  } else if (top.length) {
    // No two agree: the most stable of the candidates (or silhouette's choice without stability).
    const candidates = top.map(([kk]) => kk);
    const stab = (kk: number) => rowOf(kk).stability_ari;
    const withStab = candidates.filter((kk) => stab(kk) !== null);
    k = withStab.length ? withStab.sort((a, b) => stab(b)! - stab(a)! || a - b)[0] : (votes.silhouette ?? candidates[0]);
    clear = false;
    reason =
      `no clear answer: silhouette prefers k = ${votes.silhouette ?? 'n/a'}, Calinski-Harabasz k = ${votes.calinski_harabasz ?? 'n/a'}, ` +
      `Davies-Bouldin k = ${votes.davies_bouldin ?? 'n/a'}; ` +
      (withStab.length ? `k = ${k} is the most stable of them (stability ARI ${fmt(stab(k), 3)})` : `k = ${k} is silhouette's (no stability refits)`);
  } else {
    k = rows[0].k;
    clear = false;
    reason = `no index is defined on these fits (fewer than 2 populated clusters); k = ${k} by default`;
  }
  const ks = rows.map((r) => r.k);
  if (rows.length > 1 && (k === Math.min(...ks) || k === Math.max(...ks))) {
    clear = false;
    notes.push(`k = ${k} is at an end of the range ${Math.min(...ks)}..${Math.max(...ks)}: a wider range may find a better k`);
  }
  const bestSil = Math.max(...rows.map((r) => r.silhouette ?? -Infinity));
  if (bestSil < WEAK_SILHOUETTE) {
    clear = false;
    notes.push(`the best silhouette is ${bestSil === -Infinity ? 'n/a' : bestSil.toFixed(3)} (< ${WEAK_SILHOUETTE}): the data has little cluster structure, so any k is a partition rather than found segments`);
  }
  return { k, clear, rule: RECOMMEND_RULE, reason: [reason, ...notes].join('; '), votes };
}

/** sweep.csv's text: the SweepRow columns of the issue's contract, in that order. */
export function sweepCsv(rows: SweepRow[]): string {
  const cols = ['k', 'inertia', 'silhouette', 'calinski_harabasz', 'davies_bouldin', 'stability_ari', 'min_jaccard'] as const;
  const cell = (v: number | null) => (v === null || !Number.isFinite(v) ? '' : String(v));
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/** fit's input, preprocessing and fitting options (less k), the k values and the sweep's own. */
export interface SweepJob extends FeatureJob, MethodParams, Pick<FitJob, 'out' | 'method' | 'batchSize' | 'seed' | 'nInit' | 'maxIter' | 'tol' | 'init' | 'backend' | 'log' | 'pca' | 'memoryLimit'> {
  ks: number[];
  sample?: number;
  stability?: number;
  onProgress?: (line: string, row?: SweepRow) => void;
}

export interface SweepResult {
  rows: SweepRow[];
  recommendation: Recommendation;
  files: string[];
}

/** `segtensor sweep` as a library call: read → preprocess → sweep → sweep.csv and sweep.json, published together. */
export async function sweepSegmentation(job: SweepJob): Promise<SweepResult> {
  const log = job.log ?? (() => {});
  const method = job.method ?? 'kmeans';
  if (!takesK(method)) throw new SegtensorError('BAD_OPTION', `sweep tries values of k; --method ${method} finds the number of segments itself`);
  methodOptions(job, method);
  methodParams(job, method);
  // --memory-limit: a table too large for memory is read in blocks (./fit-stream.ts), each k
  // fitted on its cached rows.
  const inBlocks = job.memoryLimit ? readsInBlocks(job.input, job.memoryLimit, log) : false;
  if (inBlocks) checkStreamingJob(job);
  const run = beginRun({ command: 'sweep', out: job.out, layout: 'dir', options: job });
  let cached: CachedTable | null = null;
  try {
    const be = await resolveBackend(job.backend ?? 'auto', log);
    let x: HostMatrix;
    let weights: Float32Array | null;
    let exclude: string[];
    let nRows: number;
    let pre: Preprocessor;
    let input: string;
    if (inBlocks) {
      cached = await cacheTable(run, job, log, null);
      ({ x, weights, exclude, nRows, pre } = cached);
      input = path.resolve(job.input);
    } else {
      const prepared = await prepareFeatures(job, run, log, () => {}, { withText: method === 'kprototypes' });
      ({ weights, exclude, pre } = prepared);
      nRows = prepared.table.nRows;
      input = prepared.table.path;
      x = job.pca == null ? prepared.x : await (await fitProjection(be, prepared.x, weights, job.pca, method, log)).apply(prepared.x);
    }
    log(`${nRows} rows × ${x.nFeatures} features, k in ${job.ks.join(', ')}, backend ${be.name}${inBlocks ? ', read in blocks (--memory-limit)' : ''}`);
    const o: SweepOptions = {
      ks: job.ks,
      method,
      params: { ...methodParams(job, method), categorical: categoricalBlocks(pre) },
      batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize,
      ...methodOptions(job, method),
      sample: job.sample ?? SWEEP_DEFAULTS.sample,
      stability: job.stability ?? SWEEP_DEFAULTS.stability,
    };
    const { rows } = await sweepMatrix(be, x, weights, o, job.onProgress);
    const recommendation = recommendK(rows);
    atomicWrite(run.file('sweep.csv'), sweepCsv(rows));
    const json = {
      segtensorVersion: VERSION,
      input,
      rows: nRows,
      features: x.nFeatures,
      excluded: exclude,
      backend: be.name,
      options: o,
      ...(inBlocks ? { outOfCore: { blockRows: BLOCK_ROWS, cacheBytes: nRows * x.nFeatures * 4 } } : {}),
      silhouetteSampleSize: Math.min(o.sample, nRows),
      sweep: rows,
      recommendedK: recommendation.k,
      recommendation,
    };
    atomicWrite(run.file('sweep.json'), JSON.stringify(json, null, 2) + '\n');
    run.backend(be.name, be.fallback);
    run.count({ rowsRead: nRows, features: x.nFeatures, ks: o.ks, excluded: exclude, ...(inBlocks ? { outOfCore: true } : {}) });
    if (cached) closeCache(cached);
    const { files } = await run.commit();
    return { rows, recommendation, files };
  } finally {
    if (cached) closeCache(cached);
    run.dispose();
  }
}
