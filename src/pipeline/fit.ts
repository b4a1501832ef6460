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
import path from 'node:path';
import type { Backend } from '../engine/backend.js';
import '../engine/backends/index.js';
import { resolveBackend } from '../engine/registry.js';
import { SegtensorError } from '../errors.js';
import { clusterQuality, sampleRows } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { type DType } from '../io/read-table.js';
import { beginRun } from '../io/run-dir.js';
import { writeTable } from '../io/write-table.js';
import { type InitName, type IterationStats, type KMeansResult } from '../models/kmeans.js';
import { MINIBATCH_DEFAULTS, type MiniBatchResult } from '../models/minibatch.js';
import { fitMethod, methodOptions, type Method } from './methods.js';
import { type ImputeKind, type ScaleKind } from '../preprocess/preprocessor.js';
import { VERSION } from '../version.js';
import { parseKRange, AUTO_K_RANGE } from './k-range.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelFile } from './model-file.js';
import { alignCentroids, previousModel, transitionsCsv, warmStartCentroids, type AlignmentReport } from './align.js';
import { prepareFeatures } from './prepare.js';
import { profileCsv, profileSegments, type SegmentProfile } from './profile.js';

export { LABEL_LIKE, prepareFeatures, type FeatureJob, type PreparedFeatures } from './prepare.js';

export interface FitJob {
  /** Customer table: .arrow/.arrows/.feather, .parquet or .csv. */
  input: string;
  /** Number of segments, or `auto`: the sweep's recommendation over `kRange` (see ./sweep.ts). */
  k: number | 'auto';
  /** The k values `auto` tries. Default 2..10. */
  kRange?: number[];
  /** Bootstrap refits per k when `k` is `auto`. Default 5. */
  stability?: number;
  /** A previous fit's directory: number this fit's segments after its segments (see ./align.ts). */
  alignTo?: string | null;
  /** A previous fit's directory: start Lloyd from its centroids instead of seeding (same k and features). */
  warmStart?: string | null;
  /** `kmeans` (default) or `minibatch` (scikit-learn's MiniBatchKMeans, see models/minibatch.ts). */
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
  /** Progress lines (iterations, steps). */
  log?: (line: string) => void;
  onIteration?: (run: number, s: IterationStats) => void;
}

export interface FitMetrics {
  /** `kmeans` or `minibatch`. */
  method: string;
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
  };
  const format = job.format ?? 'arrow';
  if (format !== 'arrow' && format !== 'parquet') {
    throw new SegtensorError('BAD_OPTION', `--format must be arrow or parquet; got '${String(format)}'`);
  }
  if (job.k !== 'auto' && job.kRange) throw new SegtensorError('BAD_OPTION', `--k-range applies to --k auto; got --k ${job.k}`);
  if (job.k === 'auto' && job.warmStart) throw new SegtensorError('BAD_OPTION', '--warm-start needs a fixed --k (the previous model\'s), not --k auto');
  const run = beginRun({ command: 'fit', out: job.out, layout: 'dir', options: job });
  try {
    return await fitInto(run, job, format, log, t, lap);
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
): Promise<FitResult> {
  const be: Backend = await resolveBackend(job.backend ?? 'auto', log);
  lap('backend');

  const { table, pre, x, ids, exclude, weights, otherCategories } = await prepareFeatures(job, run, log, () => lap('read'));
  lap('preprocess');
  const method: Method = job.method ?? 'kmeans';
  const kmOptions = methodOptions(job, method);
  let r: KMeansResult;
  let k: number;
  let sweep: FitMetrics['sweep'] = null;
  if (job.k === 'auto') {
    const ks = job.kRange ?? parseKRange(AUTO_K_RANGE);
    log(`${table.nRows} rows × ${x.nFeatures} features, k chosen among ${ks.join(', ')}, backend ${be.name}`);
    const { sweepMatrix, recommendK, SWEEP_DEFAULTS } = await import('./sweep.js');
    const o = { ...kmOptions, ks, method, batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize, sample: job.silhouetteSample ?? SWEEP_DEFAULTS.sample, stability: job.stability ?? SWEEP_DEFAULTS.stability };
    // Each k's summary goes to the log; the per-fit lines are too fine for it.
    const swept = await sweepMatrix(be, x, weights, o, (line, row) => row && log(line), { keepFits: true });
    const rec = recommendK(swept.rows);
    k = rec.k;
    r = swept.fits.get(k)!;
    sweep = { rows: swept.rows, recommendation: rec, stability: o.stability };
    log(`k = ${k}${rec.clear ? '' : ' (not clear: check the sweep in metrics.json)'}: ${rec.reason}`);
  } else {
    k = job.k;
    log(`${table.nRows} rows × ${x.nFeatures} features, k = ${k}, backend ${be.name}`);
    let init: InitName | Float32Array = kmOptions.init;
    if (job.warmStart) {
      const prev = await previousModel(job.warmStart, '--warm-start', pre.featureNames);
      run.input(prev.run.file('model.json'));
      init = warmStartCentroids(prev.model, pre, k);
      log(`starting from the centroids of ${prev.run.dir} (run ${prev.run.manifest.runId})`);
    }
    r = await fitMethod(be, x, weights, { k, ...kmOptions, init, method, batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize, onIteration: job.onIteration });
  }
  t.init = Math.round(r.ms.init);
  t.lloyd = Math.round(r.ms.lloyd);
  lap('fit');

  // Segment ids: 0..k-1, or the previous model's after --align-to. Centroid rows, sizes and
  // profile rows go in ascending id order; `row[j]` is centroid j's row there.
  let idOf = Array.from({ length: k }, (_, j) => j);
  let nextSegmentId = k;
  let alignment: AlignmentReport | null = null;
  let prevForTransitions: Awaited<ReturnType<typeof previousModel>> | null = null;
  if (job.alignTo) {
    const prev = await previousModel(job.alignTo, '--align-to', pre.featureNames);
    run.input(prev.run.file('model.json'));
    const al = alignCentroids(prev.model, prev.run, pre, r.centroids, k);
    ({ idOf, nextSegmentId } = al);
    alignment = al.report;
    prevForTransitions = prev;
    log(`aligned to ${prev.run.dir}: ${al.report.matches.length} segments keep their ids${al.report.newSegments.length ? `, new: ${al.report.newSegments.join(', ')}` : ''}${al.report.retired.length ? `, retired: ${al.report.retired.join(', ')}` : ''}`);
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => idOf[a] - idOf[b]);
  const row = new Int32Array(k);
  order.forEach((j, p) => (row[j] = p));
  const segmentIds = order.map((j) => idOf[j]);
  const sameOrder = order.every((j, p) => j === p);
  const plainIds = idOf.every((id, j) => id === j);
  const labels = sameOrder ? r.labels : r.labels.map((l) => row[l]);
  const centroids = sameOrder ? r.centroids : Float32Array.from(order.flatMap((j) => Array.from(r.centroids.subarray(j * x.nFeatures, (j + 1) * x.nFeatures))));
  const segmentOf = plainIds ? r.labels : r.labels.map((l) => idOf[l]);
  const sizes = new Array<number>(k).fill(0);
  for (const l of labels) sizes[l]++;
  // Summed weights per centroid (in fit order), the counts `update` continues from.
  const weightOf = new Array<number>(k).fill(0);
  if (weights) for (let i = 0; i < r.labels.length; i++) weightOf[r.labels[i]] += weights[i];
  const sampleSize = Math.min(job.silhouetteSample ?? 20000, table.nRows);
  // With --k auto the sweep scored this very fit on the same sample: its row holds the indices.
  const swept = sweep?.rows.find((row) => row.k === k);
  const quality = swept
    ? { silhouette: swept.silhouette, calinskiHarabasz: swept.calinski_harabasz, daviesBouldin: swept.davies_bouldin }
    : await clusterQuality(be, x, r.labels, k, sampleRows(table.nRows, sampleSize, kmOptions.seed));
  const metrics: FitMetrics = {
    method,
    inertia: r.inertia,
    nIter: r.nIter,
    converged: r.converged,
    k,
    rows: table.nRows,
    features: x.nFeatures,
    sizes,
    segmentIds,
    silhouette: quality.silhouette,
    silhouetteSampleSize: sampleSize,
    calinskiHarabasz: quality.calinskiHarabasz,
    daviesBouldin: quality.daviesBouldin,
    runs: r.runs,
    emptyClustersRepaired: r.history.reduce((s, h) => s + h.emptyClusters, 0),
    backend: be.name,
    timingsMs: t,
    sweep,
    alignment,
  };
  lap('metrics');
  const profile = profileSegments(table, pre, x, labels, k);
  profile.rows.forEach((p, j) => (p.segment = segmentIds[j]));

  const d = x.nFeatures;
  const scaled = Array.from({ length: k }, (_, j) => Array.from(centroids.subarray(j * d, (j + 1) * d)));
  const model: ModelFile = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    segtensorVersion: VERSION,
    input: { path: path.resolve(job.input), rows: table.nRows },
    excluded: exclude,
    idColumn: job.id ?? null,
    weightColumn: job.weight ?? null,
    featureNames: pre.featureNames,
    preprocessing: pre.toJSON(),
    k,
    centroidsScaled: scaled,
    centroidsOriginal: pre.inverse(centroids, k),
    params: {
      nInit: kmOptions.nInit,
      maxIter: kmOptions.maxIter,
      tol: kmOptions.tol,
      seed: kmOptions.seed,
      init: r.init,
      method,
      ...(method === 'minibatch' ? { batchSize: job.batchSize ?? MINIBATCH_DEFAULTS.batchSize, nSteps: (r as MiniBatchResult).nSteps } : {}),
      ...(sweep ? { k: 'auto', kRange: sweep.rows.map((x) => x.k) } : {}),
    },
    backend: be.name,
    seed: kmOptions.seed,
    ...(plainIds && !alignment ? {} : { segmentIds }),
    nextSegmentId,
    centreCounts: method === 'minibatch' ? Array.from(order, (j) => (r as MiniBatchResult).counts[j]) : weights ? Array.from(order, (j) => weightOf[j]) : sizes.slice(),
  };

  // Outputs last, into the run's staging directory; commit publishes them all at once.
  const dist = new Float32Array(r.distances.length);
  for (let i = 0; i < dist.length; i++) dist[i] = Math.sqrt(r.distances[i]);
  await writeTable(run.file(`assignments.${format === 'arrow' ? 'arrow' : 'parquet'}`), [ids, { name: 'segment', values: segmentOf }, { name: 'distance', values: dist }]);
  if (alignment && !job.id) log('notice: --align-to without --id: customers cannot be followed between runs, so no transitions.csv');
  if (prevForTransitions && alignment && job.id) {
    const tr = await transitionsCsv(prevForTransitions.model, prevForTransitions.run, ids, segmentOf);
    alignment.transitions = tr.counts;
    atomicWrite(run.file('transitions.csv'), tr.csv);
    if (tr.counts.customersInBoth === 0) log(`warning: no customer id of this run appears in ${prevForTransitions.run.dir}'s assignments; transitions.csv is empty`);
  }
  atomicWrite(run.file('segments.csv'), profileCsv(profile));
  atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
  run.backend(be.name);
  run.count({ rowsRead: table.nRows, rowsAssigned: r.labels.length, features: x.nFeatures, excluded: exclude, coercedToNull: table.coercions, missing: Object.fromEntries(pre.state.numeric.filter((s) => s.missing > 0).map((s) => [s.name, s.missing])), otherCategories });
  lap('write');
  const { files } = await run.commit();
  return { model, metrics, profile, files, coercions: table.coercions };
}
