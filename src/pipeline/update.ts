/**
 * `segtensor update`: yesterday's model follows today's customers without a refit. The new rows
 * go through the model's own preprocessing (fixed: its centring and scaling stay as fitted) and
 * are applied as scikit-learn's `MiniBatchKMeans.partial_fit` steps, one per `batchSize` rows in
 * table order: each centre moves to the weighted mean of everything it has received, its count
 * (the rows behind it) setting how far new rows pull it. `halfLife` lets old rows fade: counts
 * are multiplied by 0.5^(rows / half-life) before each step, or, in days, once by
 * 0.5^(days since the model was made / half-life). The output is a full model directory (model,
 * metrics, assignments of the new rows, profile, manifest) that `predict`, `--align-to` and the
 * next `update` read; segment ids stay the model's.
 *
 * @example
 * await updateModel({ model: 'out-yesterday/', input: 'today.parquet', out: 'out-today/', halfLife: { days: 30 } });
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../engine/backend.js';
import '../engine/backends/index.js';
import { assign } from '../engine/ops/assign.js';
import { resolveBackend } from '../engine/registry.js';
import { dataRow, SegtensorError } from '../errors.js';
import { clusterQuality, sampleRows } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { coercionNotices, readTable, type DType } from '../io/read-table.js';
import { beginRun } from '../io/run-dir.js';
import { writeTable } from '../io/write-table.js';
import { miniBatchStep, MINIBATCH_DEFAULTS, type MiniBatchState } from '../models/minibatch.js';
import { Preprocessor } from '../preprocess/preprocessor.js';
import { Random } from '../util/random.js';
import { VERSION } from '../version.js';
import { unseenCounts, unseenNotices } from './data-notices.js';
import { idColumn, jobPseudonymKey, pseudonymizeIds, type PseudonymJob } from './ids.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, openModel, segmentIdsOf, type ModelFile } from './model-file.js';
import { type HalfLife } from './half-life.js';
import { profileCsv, profileSegments } from './profile.js';

export { parseHalfLife, type HalfLife } from './half-life.js';

export interface UpdateJob extends PseudonymJob {
  /** A fit (or update) output directory. */
  model: string;
  input: string;
  out: string;
  /** Id column passed through to the assignments; default the model's when the input has it. */
  id?: string | null;
  weight?: string | null;
  dtypes?: Record<string, DType> | null;
  coerceInvalid?: boolean;
  /** Rows per partial_fit step, in table order. Default 1024. */
  batchSize?: number;
  halfLife?: HalfLife | null;
  /** Share of the largest count under which a centre is moved to a random row (scikit-learn's reassignment). Default 0.01; 0 keeps every centre. */
  reassignmentRatio?: number;
  seed?: number;
  backend?: string;
  format?: 'arrow' | 'parquet';
  silhouetteSample?: number;
  /** The time the half-life in days counts to. Default now. */
  now?: Date;
  log?: (line: string) => void;
}

export interface UpdateResult {
  model: ModelFile;
  /** How far each centroid moved, in the model's scaled units (Euclidean), in centroid-row order. */
  shift: number[];
  inertia: number;
  sizes: number[];
  files: string[];
}

/** The per-centre counts behind a model: saved with it, or its fit's segment sizes. */
function countsOf(model: ModelFile, runDir: string): Float64Array {
  if (model.centreCounts?.length === model.k) return Float64Array.from(model.centreCounts);
  try {
    const m = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics.json'), 'utf8')) as { sizes?: number[] };
    if (m.sizes?.length === model.k) return Float64Array.from(m.sizes);
  } catch {
    // fall through
  }
  throw new SegtensorError('BAD_INPUT', `--model '${runDir}': the model records no segment counts (model.json centreCounts or metrics.json sizes); refit it`);
}

export async function updateModel(job: UpdateJob): Promise<UpdateResult> {
  const log = job.log ?? (() => {});
  const format = job.format ?? 'arrow';
  const batchSize = job.batchSize ?? MINIBATCH_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new SegtensorError('BAD_OPTION', `--batch-size must be an integer >= 1; got ${batchSize}`);
  const ratio = job.reassignmentRatio ?? MINIBATCH_DEFAULTS.reassignmentRatio;
  if (!(ratio >= 0 && ratio < 1)) throw new SegtensorError('BAD_OPTION', `--reassignment-ratio must be in [0, 1); got ${ratio}`);
  const pseudonymKey = jobPseudonymKey(job);
  const run = beginRun({ command: 'update', out: job.out, layout: 'dir', options: job });
  try {
    const { model: prev, run: prevRun } = await openModel(job.model, '--model');
    run.input(prevRun.file('model.json'));
    const method = prev.params.method ?? 'kmeans';
    if (!['kmeans', 'minibatch'].includes(String(method)) || prev.pca) {
      throw new SegtensorError('BAD_OPTION', `--model ${job.model}: update moves K-Means centroids (a kmeans or minibatch model without --pca); this model is ${prev.pca ? `${String(method)} with --pca` : String(method)}: refit it`);
    }
    const be: Backend = await resolveBackend(job.backend ?? 'auto', log);
    const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
    for (const l of coercionNotices(table)) log(l);
    if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
    run.input(job.input);
    const idName = job.id === undefined ? (prev.idColumn && table.has(prev.idColumn) ? prev.idColumn : null) : job.id;
    if (prev.pseudonymizedIds && !pseudonymKey) log(`warning: ${job.model} was fitted with --pseudonymize-ids; without it this update's outputs carry raw ids`);
    pseudonymizeIds(table, idName, pseudonymKey);
    const ids = idColumn(table, idName, true);
    const pre = Preprocessor.fromJSON(prev.preprocessing);
    const x = pre.transform(table);
    for (const l of unseenNotices(x.unseen)) log(l);
    let weights: Float32Array | null = null;
    if (job.weight) {
      const w = table.numeric(job.weight);
      weights = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        if (!(w[i] >= 0) || !Number.isFinite(w[i])) throw new SegtensorError('BAD_INPUT', `${job.input}: weight column '${job.weight}' ${dataRow(i)} is ${w[i]}; weights must be finite and >= 0`);
        weights[i] = w[i];
      }
    }
    const k = prev.k;
    const d = x.nFeatures;
    const before = Float32Array.from(prev.centroidsScaled.flat());
    const counts = countsOf(prev, prevRun.dir);
    const now = job.now ?? new Date();
    if (job.halfLife && 'days' in job.halfLife) {
      const made = Date.parse(prev.createdAt);
      if (!Number.isFinite(made)) throw new SegtensorError('BAD_INPUT', `--model '${prevRun.dir}': model.json has no valid createdAt ('${String(prev.createdAt)}'), so a half-life in days cannot apply; give it in rows`);
      const days = Math.max(0, (now.getTime() - made) / 86_400_000);
      const f = 0.5 ** (days / job.halfLife.days);
      for (let j = 0; j < k; j++) counts[j] *= f;
      log(`model made ${days.toFixed(1)} days ago: its counts weigh ${f.toPrecision(3)} (half-life ${job.halfLife.days} days)`);
    }
    const state: MiniBatchState = { centroids: Float32Array.from(before), counts, rowsSinceReassign: 0 };
    const rng = new Random(job.seed ?? 0);
    const perRow = job.halfLife && 'rows' in job.halfLife ? 0.5 ** (1 / job.halfLife.rows) : 1;
    let steps = 0;
    for (let start = 0; start < x.nRows; start += batchSize) {
      const end = Math.min(x.nRows, start + batchSize);
      if (perRow !== 1) {
        const f = perRow ** (end - start);
        for (let j = 0; j < k; j++) state.counts[j] *= f;
      }
      await miniBatchStep(be, x, weights, Int32Array.from({ length: end - start }, (_, i) => start + i), state, { k, reassignmentRatio: ratio }, rng);
      steps++;
    }
    const shift = Array.from({ length: k }, (_, j) => {
      let s = 0;
      for (let f = 0; f < d; f++) s += (state.centroids[j * d + f] - before[j * d + f]) ** 2;
      return Math.sqrt(s);
    });
    const dx = be.upload(x, weights);
    let labels: Int32Array;
    let distances: Float32Array;
    let inertia: number;
    try {
      const a = await assign(be, dx, state.centroids, k);
      ({ labels, distances } = await a.read());
      inertia = a.inertia;
    } finally {
      be.release(dx);
    }
    const sizes = new Array<number>(k).fill(0);
    for (const l of labels) sizes[l]++;
    const sample = sampleRows(x.nRows, Math.min(job.silhouetteSample ?? 20000, x.nRows), job.seed ?? 0);
    const quality = await clusterQuality(be, x, labels, k, sample);
    const segIds = segmentIdsOf(prev);
    const profile = profileSegments(table, pre, x, labels, k);
    profile.rows.forEach((p, j) => (p.segment = segIds[j]));
    const model: ModelFile = {
      ...prev,
      format: MODEL_FORMAT,
      formatVersion: MODEL_FORMAT_VERSION,
      createdAt: now.toISOString(),
      segtensorVersion: VERSION,
      input: { path: path.resolve(job.input), rows: table.nRows },
      centroidsScaled: Array.from({ length: k }, (_, j) => Array.from(state.centroids.subarray(j * d, (j + 1) * d))),
      centroidsOriginal: pre.inverse(state.centroids, k),
      centreCounts: Array.from(state.counts),
      ...(pseudonymKey ? { pseudonymizedIds: true } : { pseudonymizedIds: undefined }),
      backend: be.name,
      updatedFrom: { dir: prevRun.dir, runId: prevRun.manifest.runId, batchSize, steps, halfLife: job.halfLife ?? null, reassignmentRatio: ratio },
    };
    const metrics = {
      method: 'minibatch-update',
      inertia,
      rows: table.nRows,
      features: d,
      k,
      sizes,
      segmentIds: segIds,
      silhouette: quality.silhouette,
      silhouetteSampleSize: sample.length,
      calinskiHarabasz: quality.calinskiHarabasz,
      daviesBouldin: quality.daviesBouldin,
      steps,
      shift,
      backend: be.name,
    };
    const plain = segIds.every((id, j) => id === j);
    const dist = Float32Array.from(distances, Math.sqrt);
    await writeTable(run.file(`assignments.${format}`), [ids, { name: 'segment', values: plain ? labels : labels.map((l) => segIds[l]) }, { name: 'distance', values: dist }]);
    atomicWrite(run.file('segments.csv'), profileCsv(profile));
    atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
    run.backend(be.name, be.fallback);
    run.count({ rowsRead: table.nRows, rowsAssigned: labels.length, model: prevRun.manifest.runId, unseenCategories: unseenCounts(x.unseen) });
    const { files } = await run.commit();
    log(`updated ${k} segments with ${table.nRows} rows in ${steps} steps; centroids moved ${shift.map((s) => s.toFixed(3)).join(', ')} (scaled units)`);
    return { model, shift, inertia, sizes, files };
  } finally {
    run.dispose();
  }
}
