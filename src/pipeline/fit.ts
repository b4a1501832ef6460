/**
 * `segtensor fit` as a library call: read → preprocess → K-Means → metrics → outputs.
 *
 * The outputs are staged and published together with their manifest (src/io/run-dir.ts), so a
 * failed or killed run leaves the previous run's outputs intact, never a mix.
 *
 * @example
 * const r = await fitSegmentation({ input: 'customers.arrow', k: 5, out: 'out/' });
 * console.log(r.metrics.inertia);
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import '../engine/backends/index.js';
import { resolveBackend } from '../engine/registry.js';
import { SegtensorError } from '../errors.js';
import { clusterQuality, sampleRows } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { type DType } from '../io/read-table.js';
import { beginRun, hashFile } from '../io/run-dir.js';
import { CHECKPOINT_FILE, checkpointKey, fitCheckpoints } from './checkpoint.js';
import { readsInBlocks } from './blocks.js';
import { jobPseudonymKey } from './ids.js';
import type { PseudonymKey } from '../util/pseudonym.js';
import { writeTable } from '../io/write-table.js';
import { type InitName, type IterationStats } from '../models/kmeans.js';
import { MINIBATCH_DEFAULTS } from '../models/minibatch.js';
import { categoricalBlocks, fitMethod, methodOptions, methodParams, takesK, takesWarmStart, type Method, type MethodParams, type Segmentation } from './methods.js';
import { type ImputeKind, type Preprocessor, type ScaleKind } from '../preprocess/preprocessor.js';
import { VERSION } from '../version.js';
import { parseKRange, AUTO_K_RANGE } from './k-range.js';
import { idOrder, MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelFile } from './model-file.js';
import type { AlignmentReport, previousModel as PreviousModel } from './align.js';
import { prepareFeatures } from './prepare.js';
import { profileCsv, profileSegments, type SegmentProfile } from './profile.js';
import { readNamesFile, segmentNames } from '../report/naming.js';

export { LABEL_LIKE, prepareFeatures, type FeatureJob, type PreparedFeatures } from './prepare.js';

export interface FitJob extends MethodParams {
  /** Customer table: .arrow/.arrows/.feather, .parquet or .csv. */
  input: string;
  /** Number of segments, or `auto`: the sweep's recommendation over `kRange` (see ./sweep.ts); absent for dbscan, which finds its own. */
  k?: number | 'auto';
  /** The k values `auto` tries. Default 2..10. */
  kRange?: number[];
  /** Bootstrap refits per k when `k` is `auto`. Default 5. */
  stability?: number;
  /** A previous fit's directory: number this fit's segments after its segments (see ./align.ts). */
  alignTo?: string | null;
  /** A previous fit's directory: start Lloyd from its centroids instead of seeding (same k and features). */
  warmStart?: string | null;
  /** `kmeans` (default), `minibatch`, `gmm`, `dbscan`, `agglomerative`, `bisecting` or `kprototypes` (see ./methods.ts). */
  method?: Method;
  /** Rows per mini-batch step. Default 1024. */
  batchSize?: number;
  /** Output directory (created if missing). */
  out: string;
  /** Feature columns; default every numeric column but the id and weight. */
  features?: string[] | null;
  /** Columns never used as features (besides the id, the weight and marked labels). */
  exclude?: string[] | null;
  /** Id column passed through to the assignments. */
  id?: string | null;
  /** Declared column types (`--dtypes`), for any input format. */
  dtypes?: Record<string, DType> | null;
  /** Read cells that do not convert to their column's type as null, counted (`--coerce-invalid`). Default false. */
  coerceInvalid?: boolean;
  /** Sample-weight column. */
  weight?: string | null;
  /** Columns read as categories whatever their storage (`--categorical`). */
  categoricalColumns?: string[];
  /** `--pca`: project the scaled features on this many principal components, or on as many as explain this share (0, 1) of the variance. */
  pca?: number | null;
  scale?: ScaleKind;
  impute?: ImputeKind;
  maxCategories?: number;
  seed?: number;
  nInit?: number;
  maxIter?: number;
  tol?: number;
  /** Seeding: `auto` (default: k-means‖ at large k, see models/kmeans-init.ts), `k-means++`, `k-means||` or `random`. */
  init?: InitName;
  /** Backend name or `auto`. */
  backend?: string;
  /** Assignments file format. Default `arrow`. */
  format?: 'arrow' | 'parquet';
  /** Rows sampled for the silhouette. Default 20,000. */
  silhouetteSample?: number;
  /** `--report`: also write report.html (src/report/) into the run. Default false. */
  report?: boolean;
  /** `--names`: a JSON file `{ "<segment id>": "name" }` over the derived segment names (src/report/naming.ts). */
  names?: string | null;
  /** `--sensitive`: columns kept out of the features (and so of profiles and the report), recorded in model.json. */
  sensitive?: string[] | null;
  /** `--pseudonymize-ids`: ids replaced by keyed hashes where they are read (see src/util/pseudonym.ts). Default false. */
  pseudonymizeIds?: boolean;
  /** `--pseudonym-key-file`: the key's file; default the environment variable SEGTENSOR_PSEUDONYM_KEY. */
  pseudonymKeyFile?: string | null;
  /**
   * `--memory-limit` in bytes: when the table would not fit in it in memory (estimated from the
   * file's size), it is read in blocks instead (./fit-stream.ts). Default none: in memory.
   */
  memoryLimit?: number | null;
  /** `--resume`: continue from the checkpoint a killed fit of the same input and options left in the output's store (kmeans). Default false. */
  resume?: boolean;
  /** `--checkpoint-interval`: seconds between checkpoints of a long kmeans fit (0: at every point offered). Default 30. */
  checkpointInterval?: number;
  /** Progress lines (iterations, steps). */
  log?: (line: string) => void;
  /** What is about to be fitted (for progress bars: restarts × iterations at most). */
  onStart?: (info: { rows: number; features: number; k: number | 'auto' | null; method: Method; nInit: number; maxIter: number; backend: string }) => void;
  /** Each phase as it ends (backend, read, preprocess, pca, fit, metrics, write) and its wall time. */
  onPhase?: (phase: string, ms: number) => void;
  onIteration?: (run: number, s: IterationStats) => void;
  /** Progress of a long phase with a known amount of work: k-means++ centres, mini-batch steps, passes over blocks of rows. */
  onBar?: ProgressHook;
}

/** `done` of `total` units of `phase` finished (progress bars). */
export type ProgressHook = (phase: string, done: number, total: number, unit: string) => void;

export interface FitMetrics {
  /** The method (see ./methods.ts); its own figures (gmm's logLikelihood, bic, aic; dbscan's eps, noise) sit beside the common ones. */
  method: string;
  [methodFigure: string]: unknown;
  inertia: number;
  nIter: number;
  converged: boolean;
  k: number;
  rows: number;
  features: number;
  sizes: number[];
  silhouette: number | null;
  silhouetteSampleSize: number;
  calinskiHarabasz: number | null;
  daviesBouldin: number | null;
  runs: { inertia: number; nIter: number; converged: boolean }[];
  emptyClustersRepaired: number;
  backend: string;
  timingsMs: Record<string, number>;
  /** With `--align-to`: the matching, new and retired segments, transition counts; null otherwise. */
  alignment: AlignmentReport | null;
  /** The segment id of each entry of `sizes` (ascending). */
  segmentIds: number[];
  /** With `--k auto`: every k tried, and the rule's choice (see ./sweep.ts); null otherwise. */
  sweep: { rows: import('./sweep.js').SweepRow[]; recommendation: import('./sweep.js').Recommendation; stability: number } | null;
}

export interface FitResult {
  model: ModelFile;
  metrics: FitMetrics;
  profile: SegmentProfile;
  files: string[];
  /** Cells read as null per column (`coerceInvalid`); empty when none. */
  coercions: Record<string, number>;
}

export async function fitSegmentation(job: FitJob): Promise<FitResult> {
  const log = job.log ?? (() => {});
  const t: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    t[name] = Math.round((now - t0) * 10) / 10;
    t0 = now;
    job.onPhase?.(name, t[name]);
  };
  const format = job.format ?? 'arrow';
  if (format !== 'arrow' && format !== 'parquet') {
    throw new SegtensorError('BAD_OPTION', `--format must be arrow or parquet; got '${String(format)}'`);
  }
  const method: Method = job.method ?? 'kmeans';
  // An unknown method, a seeding it does not take or another method's option, before any work.
  methodOptions(job, method);
  methodParams(job, method);
  if (takesK(method) && job.k === undefined) throw new SegtensorError('BAD_OPTION', `--k is required with --method ${method} (a number, or auto)`);
  if (!takesK(method) && job.k !== undefined) throw new SegtensorError('BAD_OPTION', `--method ${method} finds the number of segments itself; leave out --k (got --k ${job.k})`);
  if (job.k !== 'auto' && job.kRange) throw new SegtensorError('BAD_OPTION', `--k-range applies to --k auto; got --k ${job.k}`);
  if (job.warmStart && !takesWarmStart(method)) throw new SegtensorError('BAD_OPTION', `--warm-start applies to --method kmeans and minibatch (initial centroids); got --method ${method}`);
  if (job.k === 'auto' && job.warmStart) throw new SegtensorError('BAD_OPTION', '--warm-start needs a fixed --k (the previous model\'s), not --k auto');
  if (job.names) readNamesFile(job.names, null); // its form, before any work
  const pseudonymKey = jobPseudonymKey(job);
  const streaming = job.memoryLimit ? readsInBlocks(job.input, job.memoryLimit, log) : false;
  // The block path and --align-to/--warm-start load their modules only when used (start-up time).
  const streamingFit = streaming ? await import('./fit-stream.js') : null;
  streamingFit?.checkStreamingJob(job);
  if ((job.resume || job.checkpointInterval !== undefined) && (method !== 'kmeans' || job.k === 'auto')) {
    const flag = job.resume ? '--resume' : '--checkpoint-interval';
    throw new SegtensorError('BAD_OPTION', `${flag} applies to --method kmeans with a fixed --k (checkpoints of Lloyd restarts); got --method ${method}${job.k === 'auto' ? ' --k auto' : ''}`);
  }
  if (job.checkpointInterval !== undefined && !(job.checkpointInterval >= 0 && Number.isFinite(job.checkpointInterval))) {
    throw new SegtensorError('BAD_OPTION', `--checkpoint-interval must be a number of seconds >= 0; got ${job.checkpointInterval}`);
  }
  const run = beginRun({ command: 'fit', out: job.out, layout: 'dir', options: job, pseudonymKey });
  try {
    if (streaming) {
      const be: Backend = await resolveBackend(job.backend ?? 'auto', log);
      lap('backend');
      const r = await streamingFit!.fitStreamingInto(run, job, be, log, lap, t, pseudonymKey, (x) => checkpointsFor(job, run, be, x, log));
      const { files } = await run.commit();
      fs.rmSync(path.join(run.store, CHECKPOINT_FILE), { force: true });
      return { ...r, files };
    }
    return await fitInto(run, job, format, log, t, lap, pseudonymKey);
  } finally {
    run.dispose();
  }
}

async function fitInto(
  run: ReturnType<typeof beginRun>,
  job: FitJob,
  format: 'arrow' | 'parquet',
  log: (l: string) => void,
  t: Record<string, number>,
  lap: (name: string) => void,
  pseudonymKey: PseudonymKey | null,
): Promise<FitResult> {
  const be: Backend = await resolveBackend(job.backend ?? 'auto', log);
  lap('backend');

  const { table, pre, x: scaledX, ids, exclude, weights, otherCategories } = await prepareFeatures(job, run, log, () => lap('read'), { withText: job.method === 'kprototypes', pseudonymKey });
  lap('preprocess');
  const method: Method = job.method ?? 'kmeans';
  const kmOptions = methodOptions(job, method);
  const params: MethodParams = { ...methodParams(job, method), categorical: categoricalBlocks(pre) };
  // --pca: the method runs on the projected rows (x); profiles read the scaled ones (scaledX),
  // and centroids are kept in the scaled space too (projected back), so alignment, warm starts
  // and reports do not depend on the projection.
  const pca = job.pca == null ? null : await fitProjection(be, scaledX, weights, job.pca, method, log);
  const x = pca ? await pca.apply(scaledX) : scaledX;
  if (pca) lap('pca');
  job.onStart?.({ rows: x.nRows, features: x.nFeatures, k: job.k ?? null, method, nInit: kmOptions.nInit, maxIter: kmOptions.maxIter, backend: be.name });
  let r: Segmentation;
  let k: number;
  let sweep: FitMetrics['sweep'] = null;
  if (job.k === 'auto') {
    const ks = job.kRange ?? parseKRange(AUTO_K_RANGE);
    log(`${table.nRows} rows × ${x.nFeatures} features, k chosen among ${ks.join(', ')}, backend ${be.name}`);
    const { sweepMatrix, recommendK, SWEEP_DEFAULTS } = await import('./sweep.js');
    const o = { ...kmOptions, ks, method, params, batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize, sample: job.silhouetteSample ?? SWEEP_DEFAULTS.sample, stability: job.stability ?? SWEEP_DEFAULTS.stability };
    // Each k's summary goes to the log; the per-fit lines are too fine for it.
    const swept = await sweepMatrix(be, x, weights, o, (line, row) => row && log(line), { keepFits: true });
    const rec = recommendK(swept.rows);
    k = rec.k;
    r = swept.fits.get(k)!;
    sweep = { rows: swept.rows, recommendation: rec, stability: o.stability };
    log(`k = ${k}${rec.clear ? '' : ' (not clear: check the sweep in metrics.json)'}: ${rec.reason}`);
  } else {
    k = job.k ?? 0;
    log(`${table.nRows} rows × ${x.nFeatures} features, ${takesK(method) ? `k = ${k}` : `method ${method}`}, backend ${be.name}`);
    let init: InitName | Float32Array = kmOptions.init;
    if (job.warmStart) {
      init = await (await import('./align.js')).warmStartFrom(job.warmStart, pre, k, run, log);
      if (pca) init = (await pca.apply({ data: init, nRows: k, nFeatures: scaledX.nFeatures })).data;
    }
    const checkpoints = method === 'kmeans' ? await checkpointsFor(job, run, be, x, log) : null;
    r = await fitMethod(be, x, weights, { ...params, k, ...kmOptions, init, method, batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize, onIteration: job.onIteration, onBar: job.onBar, checkpoints });
    k = r.k;
    if (checkpoints) run.count({ checkpoint: { resumedFrom: checkpoints.resumedFrom, written: checkpoints.written } });
  }
  t.init = Math.round(r.ms.init);
  t.lloyd = Math.round(r.ms.lloyd);
  lap('fit');

  // Segment ids: 0..k-1, or the previous model's after --align-to. Centroid rows, sizes and
  // profile rows go in ascending id order; `row[j]` is centroid j's row there.
  let idOf = Array.from({ length: k }, (_, j) => j);
  let nextSegmentId = k;
  let alignment: AlignmentReport | null = null;
  let prevForTransitions: Awaited<ReturnType<typeof PreviousModel>> | null = null;
  const align = job.alignTo ? await import('./align.js') : null;
  if (job.alignTo && align) {
    const { previousModel, alignCentroids } = align;
    const prev = await previousModel(job.alignTo, '--align-to', pre.featureNames);
    run.input(prev.run.file('model.json'));
    const al = alignCentroids(prev.model, prev.run, pre, pca ? pca.back(r.centroids, k) : r.centroids, k);
    ({ idOf, nextSegmentId } = al);
    alignment = al.report;
    prevForTransitions = prev;
    log(align.alignedLine(prev.run.dir, al.report));
  }
  const { order, rowOf: row, segmentIds, plainIds } = idOrder(idOf);
  const sameOrder = order.every((j, p) => j === p);
  const labels = sameOrder ? r.labels : r.labels.map((l) => (l < 0 ? l : row[l]));
  const centroids = sameOrder ? r.centroids : Float32Array.from(order.flatMap((j) => Array.from(r.centroids.subarray(j * x.nFeatures, (j + 1) * x.nFeatures))));
  const segmentOf = plainIds ? r.labels : r.labels.map((l) => (l < 0 ? l : idOf[l]));
  const sizes = new Array<number>(k).fill(0);
  let noise = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l < 0) noise++;
    else sizes[l]++;
  }
  // Summed weights per centroid (in fit order), the counts `update` continues from.
  const weightOf = new Array<number>(k).fill(0);
  if (weights) for (let i = 0; i < r.labels.length; i++) if (r.labels[i] >= 0) weightOf[r.labels[i]] += weights[i];
  // With --k auto the sweep scored this very fit on the same sample: its row holds the indices.
  const swept = sweep?.rows.find((row) => row.k === k);
  const { quality, sampleSize } = swept
    ? { quality: { silhouette: swept.silhouette, calinskiHarabasz: swept.calinski_harabasz, daviesBouldin: swept.davies_bouldin }, sampleSize: Math.min(job.silhouetteSample ?? 20000, table.nRows) }
    : await qualityOf(be, x, r.labels, k, noise, job.silhouetteSample ?? 20000, kmOptions.seed);
  const metrics: FitMetrics = {
    method,
    inertia: r.inertia,
    nIter: r.nIter,
    converged: r.converged,
    k,
    rows: table.nRows,
    features: scaledX.nFeatures,
    ...(pca ? { pcaComponents: pca.model.nComponents, pcaExplainedVariance: pca.model.explainedVarianceRatio.reduce((a, b) => a + b, 0) } : {}),
    sizes,
    segmentIds,
    silhouette: quality.silhouette,
    silhouetteSampleSize: sampleSize,
    calinskiHarabasz: quality.calinskiHarabasz,
    daviesBouldin: quality.daviesBouldin,
    runs: r.runs,
    emptyClustersRepaired: r.emptyClustersRepaired,
    ...(noise > 0 || method === 'dbscan' ? { noise } : {}),
    ...r.metrics,
    backend: be.name,
    timingsMs: t,
    sweep,
    alignment,
  };
  lap('metrics');
  // Noise (dbscan) is profiled as one more row, segment −1.
  const profile = noise > 0 ? profileSegments(table, pre, scaledX, labels.map((l) => (l < 0 ? k : l)), k + 1) : profileSegments(table, pre, scaledX, labels, k);
  profile.rows.forEach((p, j) => (p.segment = j < k ? segmentIds[j] : -1));

  // Segment names (issue 16): derived from the profile by the rules of src/report/naming.ts,
  // `--names` over them; they go into segments.csv, the assignments and the report.
  const names = segmentNames(profile, job.names ? readNamesFile(job.names, profile.rows.map((p) => p.segment)) : {});
  if (job.names) run.input(job.names);
  const nameOf = new Map(profile.rows.map((p, j) => [p.segment, names[j]]));

  const rowsOf = (c: Float32Array, d: number) => Array.from({ length: k }, (_, j) => Array.from(c.subarray(j * d, (j + 1) * d)));
  const scaledCentroids = pca ? pca.back(centroids, k) : centroids;
  const scaled = rowsOf(scaledCentroids, scaledX.nFeatures);
  const model: ModelFile = {
    ...modelHead(job, pre, table.nRows, exclude, pseudonymKey),
    k,
    centroidsScaled: scaled,
    centroidsOriginal: pre.inverse(scaledCentroids, k),
    ...(pca ? { pca: pca.model, centroidsProjected: rowsOf(centroids, x.nFeatures) } : {}),
    params: {
      nInit: kmOptions.nInit,
      maxIter: kmOptions.maxIter,
      tol: kmOptions.tol,
      seed: kmOptions.seed,
      init: r.init,
      method,
      ...r.params,
      ...(sweep ? { k: 'auto', kRange: sweep.rows.map((x) => x.k) } : {}),
    },
    backend: be.name,
    seed: kmOptions.seed,
    ...(plainIds && !alignment ? {} : { segmentIds }),
    nextSegmentId,
    centreCounts: r.centreCounts ? Array.from(order, (j) => r.centreCounts![j]) : weights ? Array.from(order, (j) => weightOf[j]) : sizes.slice(),
    // A method's own state labels segments in fit order: its label j is segment idOf[j].
    ...(r.state === null ? {} : { methodState: r.state, labelIds: idOf }),
  };

  // Outputs last, into the run's staging directory; commit publishes them all at once.
  const dist = new Float32Array(r.distances.length);
  for (let i = 0; i < dist.length; i++) dist[i] = Math.sqrt(r.distances[i]);
  const soft = r.soft ? softColumns(r.soft, k, idOf) : [];
  // One index per row into the names (a dictionary column: a million strings would cost seconds).
  const nameIds = [...nameOf.keys()];
  // A table from segment id (+1, for noise's −1) to its name's index, and a plain loop: a
  // typed array's `from` with a mapping function took 0.17–0.25 s per million rows here.
  const nameIndex = new Int32Array(Math.max(0, ...nameIds) + 2).fill(-1);
  nameIds.forEach((id, i) => (nameIndex[id + 1] = i));
  const nameValues = new Int32Array(segmentOf.length);
  for (let i = 0; i < segmentOf.length; i++) nameValues[i] = nameIndex[segmentOf[i] + 1];
  const segmentName = { name: 'segment_name', values: nameValues, dictionary: nameIds.map((id) => nameOf.get(id)!) };
  await writeTable(run.file(`assignments.${format === 'arrow' ? 'arrow' : 'parquet'}`), [ids, { name: 'segment', values: segmentOf }, { name: 'distance', values: dist }, ...r.columns, ...soft, segmentName]);
  for (const [name, content] of Object.entries(r.files)) atomicWrite(run.file(name), content);
  if (alignment && !job.id) log('notice: --align-to without --id: customers cannot be followed between runs, so no transitions.csv');
  let transitionsText: string | null = null;
  if (prevForTransitions && alignment && job.id) {
    const tr = await align!.transitionsCsv(prevForTransitions.model, prevForTransitions.run, ids, segmentOf);
    alignment.transitions = tr.counts;
    transitionsText = tr.csv;
    atomicWrite(run.file('transitions.csv'), tr.csv);
    if (tr.counts.customersInBoth === 0) log(`warning: no customer id of this run appears in ${prevForTransitions.run.dir}'s assignments; transitions.csv is empty`);
  }
  atomicWrite(run.file('segments.csv'), profileCsv(profile, names));
  if (job.report) {
    // --report (issue 16): the report of this fit, from memory, published with the run. Its
    // time is counted in `write` too.
    const r0 = performance.now();
    const { reportHtml, hereVersions } = await import('../report/index.js');
    const options = Object.fromEntries(Object.entries(job).filter(([, v]) => typeof v !== 'function' && v !== undefined));
    const { html } = await reportHtml({
      model,
      metrics,
      profile,
      names,
      table,
      segmentOf,
      run: { runId: run.runId, dir: path.resolve(job.out), command: 'fit', options, versions: hereVersions(), startedAt: null, endedAt: null },
      transitionsCsv: transitionsText,
      sweep: null,
      churn: null,
    }, log);
    atomicWrite(run.file('report.html'), html);
    t.report = Math.round(performance.now() - r0);
  }
  atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
  run.backend(be.name, be.fallback);
  run.count({ rowsRead: table.nRows, rowsAssigned: r.labels.length, features: x.nFeatures, excluded: exclude, coercedToNull: table.coercions, missing: Object.fromEntries(pre.state.numeric.filter((s) => s.missing > 0).map((s) => [s.name, s.missing])), otherCategories });
  lap('write');
  const { files } = await run.commit();
  // Publishing pruned the store, checkpoint included; said here too, should pruning change.
  fs.rmSync(path.join(run.store, CHECKPOINT_FILE), { force: true });
  return { model, metrics, profile, files, coercions: table.coercions };
}

/** Options that shape only the outputs, not the fit's floats: left out of the checkpoint key. */
const NOT_IN_KEY = new Set(['out', 'format', 'report', 'names', 'alignTo', 'resume', 'checkpointInterval', 'log', 'onIteration', 'onStart', 'onPhase', 'onBar', 'silhouetteSample']);

/** The checkpoint store of a kmeans fit (see ./checkpoint.ts), keyed by what decides its floats. */
async function checkpointsFor(job: FitJob, run: ReturnType<typeof beginRun>, be: Backend, x: { nRows: number; nFeatures: number }, log: (l: string) => void) {
  const options = Object.fromEntries(Object.entries(job).filter(([key, v]) => !NOT_IN_KEY.has(key) && v !== undefined && typeof v !== 'function'));
  const key = async () => {
    const warm = job.warmStart ? await hashFile(path.join(job.warmStart, 'model.json')) : null;
    return checkpointKey({ segtensor: VERSION, input: await hashFile(job.input), warmStart: warm, options, backend: be.name, nRows: x.nRows, nFeatures: x.nFeatures });
  };
  // Without --resume the key waits for the first save (the input's hash runs beside the fit,
  // and a fit shorter than the checkpoint interval never needs it).
  return fitCheckpoints({ store: run.store, key: job.resume ? await key() : key, resume: job.resume ?? false, everySeconds: job.checkpointInterval ?? 30, log });
}

/** The fields of model.json that say what was fitted on what, shared by the resident and block fits. */
export function modelHead(job: FitJob, pre: Preprocessor, rows: number, exclude: string[], pseudonymKey: PseudonymKey | null) {
  return {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    segtensorVersion: VERSION,
    input: { path: path.resolve(job.input), rows },
    excluded: exclude,
    ...(job.sensitive?.length ? { sensitive: job.sensitive } : {}),
    ...(pseudonymKey ? { pseudonymizedIds: true } : {}),
    idColumn: job.id ?? null,
    weightColumn: job.weight ?? null,
    featureNames: pre.featureNames,
    preprocessing: pre.toJSON(),
  } satisfies Partial<ModelFile>;
}

/**
 * Silhouette, Calinski-Harabasz and Davies-Bouldin of the rows in a segment (noise, label −1,
 * left out as scikit-learn users score DBSCAN), the silhouette on a seeded sample.
 */
async function qualityOf(be: Backend, x: Matrix, labels: Int32Array, k: number, noise: number, sample: number, seed: number) {
  const empty = { silhouette: null, calinskiHarabasz: null, daviesBouldin: null };
  if (noise === 0) {
    const sampleSize = Math.min(sample, x.nRows);
    return { quality: await clusterQuality(be, x, labels, k, sampleRows(x.nRows, sampleSize, seed)), sampleSize };
  }
  const n = x.nRows - noise;
  if (k < 2 || n < 3) return { quality: empty, sampleSize: 0 };
  const d = x.nFeatures;
  const data = new Float32Array(n * d);
  const kept = new Int32Array(n);
  for (let i = 0, o = 0; i < x.nRows; i++) {
    if (labels[i] < 0) continue;
    data.set(x.data.subarray(i * d, (i + 1) * d), o * d);
    kept[o++] = labels[i];
  }
  const sampleSize = Math.min(sample, n);
  return { quality: await clusterQuality(be, { data, nRows: n, nFeatures: d }, kept, k, sampleRows(n, sampleSize, seed)), sampleSize };
}

/** `probability_<segment id>` columns from a rows × k matrix of memberships in fit order. */
function softColumns(p: Float32Array, k: number, idOf: number[]): { name: string; values: Float32Array }[] {
  const n = p.length / k;
  return Array.from({ length: k }, (_, j) => j)
    .sort((a, b) => idOf[a] - idOf[b])
    .map((j) => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = p[i * k + j];
      return { name: `probability_${idOf[j]}`, values: v };
    });
}

/** `--pca`: the projection fitted on the scaled rows, applied to rows and undone on centroids. */
export async function fitProjection(be: Backend, x: Matrix, weights: Float32Array | null, components: number, method: Method, log: (l: string) => void) {
  if (method === 'kprototypes') throw new SegtensorError('BAD_OPTION', '--pca mixes the one-hot category columns into components; kprototypes needs them whole: leave out --pca');
  const { applyPca, fitPca } = await import('../models/pca.js');
  const model = await fitPca(be, x, weights, { components });
  const share = model.explainedVarianceRatio.reduce((a, b) => a + b, 0);
  log(`PCA: ${model.nComponents} of ${x.nFeatures} components explain ${(100 * share).toFixed(1)} % of the variance`);
  const d = x.nFeatures;
  const n = model.nComponents;
  return {
    model,
    apply: (m: Matrix) => applyPca(model, m, be),
    /** k centroids from component space back to the scaled features: mean + c·components. */
    back(c: Float32Array, k: number): Float32Array {
      const out = new Float32Array(k * d);
      for (let j = 0; j < k; j++) {
        for (let f = 0; f < d; f++) {
          let v = model.mean[f];
          for (let p = 0; p < n; p++) v += c[j * n + p] * model.components[p][f];
          out[j * d + f] = v;
        }
      }
      return out;
    },
  };
}
