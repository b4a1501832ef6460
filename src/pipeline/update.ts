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
import { resolveBackend } from '../engine/registry.js';
import { SegtensorError } from '../errors.js';
import { clusterQuality, sampleRows, type ClusterQuality } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import type { HostMatrix, Matrix } from '../core/matrix.js';
import { MatrixCacheWriter } from '../io/matrix-cache.js';
import { coercionNotices, readTable, readTableBatches, type DType } from '../io/read-table.js';
import type { ColumnTable } from '../io/table.js';
import { beginRun } from '../io/run-dir.js';
import { ArrowBatchWriter, writeTable } from '../io/write-table.js';
import { assignRows, miniBatchStep, MINIBATCH_DEFAULTS, type MiniBatchState } from '../models/minibatch.js';
import { Preprocessor, type UnseenCategories } from '../preprocess/preprocessor.js';
import type { PseudonymKey } from '../util/pseudonym.js';
import { Random } from '../util/random.js';
import { VERSION } from '../version.js';
import { BLOCK_ROWS, readsInBlocks, TextColumnsCheck } from './blocks.js';
import { mergeUnseen, unseenCounts, unseenNotices } from './data-notices.js';
import { IdCheck, idColumn, jobPseudonymKey, pseudonymizeIds, type PseudonymJob } from './ids.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, openModel, segmentIdsOf, segmentsOf, type ModelFile } from './model-file.js';
import { type HalfLife } from './half-life.js';
import { weightColumn } from './prepare.js';
import { profileCsv, profileSegments, ProfileSums, type SegmentProfile } from './profile.js';

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
  /** Memory budget in bytes: a table whose resident form would exceed it is read in blocks. */
  memoryLimit?: number | null;
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
  const inBlocks = job.memoryLimit ? readsInBlocks(job.input, job.memoryLimit, log) : false;
  if (inBlocks && format !== 'arrow') throw new SegtensorError('BAD_OPTION', '--memory-limit: --format parquet is not supported on a table read in blocks yet; the assignments are written as Arrow IPC');
  if (inBlocks && job.dtypes && Object.keys(job.dtypes).length) throw new SegtensorError('BAD_OPTION', '--memory-limit: --dtypes is not supported on a table read in blocks yet');
  const run = beginRun({ command: 'update', out: job.out, layout: 'dir', options: job, pseudonymKey });
  try {
    const { model: prev, run: prevRun } = await openModel(job.model, '--model');
    run.input(prevRun.file('model.json'));
    const method = prev.params.method ?? 'kmeans';
    if (!['kmeans', 'minibatch'].includes(String(method)) || prev.pca) {
      throw new SegtensorError('BAD_OPTION', `--model ${job.model}: update moves K-Means centroids (a kmeans or minibatch model without --pca); this model is ${prev.pca ? `${String(method)} with --pca` : String(method)}: refit it`);
    }
    const be: Backend = await resolveBackend(job.backend ?? 'auto', log);
    if (prev.pseudonymizedIds && !pseudonymKey) log(`warning: ${job.model} was fitted with --pseudonymize-ids; without it this update's outputs carry raw ids`);
    const now = job.now ?? new Date();
    const ctx: UpdateContext = {
      prev,
      prevDir: prevRun.dir,
      pre: Preprocessor.fromJSON(prev.preprocessing),
      be,
      state: startState(prev, prevRun.dir, job, now, log),
      rng: new Random(job.seed ?? 0),
      perRow: job.halfLife && 'rows' in job.halfLife ? 0.5 ** (1 / job.halfLife.rows) : 1,
      step: { k: prev.k, reassignmentRatio: ratio },
      batchSize,
    };
    const before = Float32Array.from(ctx.state.centroids);
    const u = inBlocks ? await updateInBlocks(run, job, ctx, log, pseudonymKey) : await updateInMemory(run, job, ctx, format, log, pseudonymKey);
    const k = prev.k;
    const d = ctx.pre.state.featureNames.length;
    const { state, pre } = ctx;
    const shift = Array.from({ length: k }, (_, j) => {
      let s = 0;
      for (let f = 0; f < d; f++) s += (state.centroids[j * d + f] - before[j * d + f]) ** 2;
      return Math.sqrt(s);
    });
    const segIds = segmentIdsOf(prev);
    u.profile.rows.forEach((p, j) => (p.segment = segIds[j]));
    const model: ModelFile = {
      ...prev,
      format: MODEL_FORMAT,
      formatVersion: MODEL_FORMAT_VERSION,
      createdAt: now.toISOString(),
      segtensorVersion: VERSION,
      input: { path: path.resolve(job.input), rows: u.rows },
      centroidsScaled: Array.from({ length: k }, (_, j) => Array.from(state.centroids.subarray(j * d, (j + 1) * d))),
      centroidsOriginal: pre.inverse(state.centroids, k),
      centreCounts: Array.from(state.counts),
      ...(pseudonymKey ? { pseudonymizedIds: true } : { pseudonymizedIds: undefined }),
      backend: be.name,
      updatedFrom: { dir: prevRun.dir, runId: prevRun.manifest.runId, batchSize, steps: u.steps, halfLife: job.halfLife ?? null, reassignmentRatio: ratio },
    };
    const metrics = {
      method: 'minibatch-update',
      inertia: u.inertia,
      rows: u.rows,
      features: d,
      k,
      sizes: u.sizes,
      segmentIds: segIds,
      silhouette: u.quality.silhouette,
      silhouetteSampleSize: u.sampleSize,
      calinskiHarabasz: u.quality.calinskiHarabasz,
      daviesBouldin: u.quality.daviesBouldin,
      steps: u.steps,
      shift,
      backend: be.name,
      ...(inBlocks ? { outOfCore: { blockRows: BLOCK_ROWS, cacheBytes: u.rows * d * 4 } } : {}),
    };
    atomicWrite(run.file('segments.csv'), profileCsv(u.profile));
    atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
    run.backend(be.name, be.fallback);
    run.count({ rowsRead: u.rows, rowsAssigned: u.rows, model: prevRun.manifest.runId, unseenCategories: unseenCounts(u.unseen), ...(inBlocks ? { outOfCore: true } : {}) });
    const { files } = await run.commit();
    log(`updated ${k} segments with ${u.rows} rows in ${u.steps} steps; centroids moved ${shift.map((s) => s.toFixed(3)).join(', ')} (scaled units)`);
    return { model, shift, inertia: u.inertia, sizes: u.sizes, files };
  } finally {
    run.dispose();
  }
}

/** What both ways of reading the new rows share: the model, its preprocessing, the steps' state. */
interface UpdateContext {
  prev: ModelFile;
  prevDir: string;
  pre: Preprocessor;
  be: Backend;
  state: MiniBatchState;
  rng: Random;
  /** The factor the counts fade by per row (a half-life in rows); 1 without. */
  perRow: number;
  step: { k: number; reassignmentRatio: number };
  batchSize: number;
}

/** What each way of reading gives back: the steps taken and the new rows' scoring under the moved centroids. */
interface Updated {
  rows: number;
  steps: number;
  inertia: number;
  sizes: number[];
  quality: ClusterQuality;
  sampleSize: number;
  profile: SegmentProfile;
  unseen: Record<string, UnseenCategories>;
}

/** The previous model's centroids and counts, the counts faded by a half-life in days. */
function startState(prev: ModelFile, prevDir: string, job: UpdateJob, now: Date, log: (l: string) => void): MiniBatchState {
  const counts = countsOf(prev, prevDir);
  if (job.halfLife && 'days' in job.halfLife) {
    const made = Date.parse(prev.createdAt);
    if (!Number.isFinite(made)) throw new SegtensorError('BAD_INPUT', `--model '${prevDir}': model.json has no valid createdAt ('${String(prev.createdAt)}'), so a half-life in days cannot apply; give it in rows`);
    const days = Math.max(0, (now.getTime() - made) / 86_400_000);
    const f = 0.5 ** (days / job.halfLife.days);
    for (let j = 0; j < prev.k; j++) counts[j] *= f;
    log(`model made ${days.toFixed(1)} days ago: its counts weigh ${f.toPrecision(3)} (half-life ${job.halfLife.days} days)`);
  }
  return { centroids: Float32Array.from(prev.centroidsScaled.flat()), counts, rowsSinceReassign: 0 };
}

/** One partial_fit step on rows [0, x.nRows) of x, the counts faded first by a half-life in rows. */
async function stepOn(ctx: UpdateContext, x: Matrix, weights: Float32Array | null): Promise<void> {
  if (ctx.perRow !== 1) {
    const f = ctx.perRow ** x.nRows;
    for (let j = 0; j < ctx.step.k; j++) ctx.state.counts[j] *= f;
  }
  await miniBatchStep(ctx.be, x, weights, Int32Array.from({ length: x.nRows }, (_, i) => i), ctx.state, ctx.step, ctx.rng);
}

/** The new rows under the moved centroids: labels, distances, inertia, sizes and the cluster indices (rows in blocks streamed). */
async function scoreRows(ctx: UpdateContext, x: HostMatrix, weights: Float32Array | null, job: UpdateJob) {
  const k = ctx.prev.k;
  const { labels, distances, inertia } = await assignRows(ctx.be, x, weights, ctx.state.centroids, k);
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) sizes[labels[i]]++;
  const sample = sampleRows(x.nRows, Math.min(job.silhouetteSample ?? 20000, x.nRows), job.seed ?? 0);
  const quality = await clusterQuality(ctx.be, x, labels, k, sample);
  return { labels, distances, inertia, sizes, quality, sampleSize: sample.length };
}


/** The id column to pass through: --id, else the model's when the input has it. */
function idNameOf(job: UpdateJob, prev: ModelFile, t: ColumnTable): string | null {
  return job.id === undefined ? (prev.idColumn && t.has(prev.idColumn) ? prev.idColumn : null) : job.id;
}

async function updateInMemory(run: ReturnType<typeof beginRun>, job: UpdateJob, ctx: UpdateContext, format: 'arrow' | 'parquet', log: (l: string) => void, pseudonymKey: PseudonymKey | null): Promise<Updated> {
  const { pre, batchSize } = ctx;
  const k = ctx.prev.k;
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
  run.input(job.input);
  const idName = idNameOf(job, ctx.prev, table);
  pseudonymizeIds(table, idName, pseudonymKey);
  const ids = idColumn(table, idName, true);
  const x = pre.transform(table);
  for (const l of unseenNotices(x.unseen)) log(l);
  const weights = job.weight ? weightColumn(table, job.weight, 0, job.input) : null;
  const d = x.nFeatures;
  let steps = 0;
  for (let start = 0; start < x.nRows; start += batchSize) {
    const end = Math.min(x.nRows, start + batchSize);
    await stepOn(ctx, { data: x.data.subarray(start * d, end * d), nRows: end - start, nFeatures: d }, weights ? weights.subarray(start, end) : null);
    steps++;
  }
  const { labels, distances, inertia, sizes, quality, sampleSize } = await scoreRows(ctx, x, weights, job);
  const profile = profileSegments(table, pre, x, labels, k);
  const segIds = segmentIdsOf(ctx.prev);
  const dist = new Float32Array(distances.length);
  for (let i = 0; i < dist.length; i++) dist[i] = Math.sqrt(distances[i]);
  await writeTable(run.file(`assignments.${format}`), [ids, { name: 'segment', values: segmentsOf(labels, segIds) }, { name: 'distance', values: dist }]);
  return { rows: table.nRows, steps, inertia, sizes, quality, sampleSize, profile, unseen: x.unseen };
}

/**
 * `update --memory-limit` on a table larger than memory: one pass over its batches takes the
 * partial_fit steps (the same rows per step as in memory, a step's rows gathered across batch
 * boundaries) and writes the preprocessed rows to a float32 cache in the staging directory; the
 * moved centroids then score the cache block by block, the metrics come from it as in the
 * streaming fit, and a last pass over the table writes the assignments and sums the profile.
 * Memory: a batch, a block, one step's rows, and 8 bytes per row (labels and distances; 4 more
 * with --weight).
 */
async function updateInBlocks(run: ReturnType<typeof beginRun>, job: UpdateJob, ctx: UpdateContext, log: (l: string) => void, pseudonymKey: PseudonymKey | null): Promise<Updated> {
  const { pre, batchSize } = ctx;
  const k = ctx.prev.k;
  const d = pre.state.featureNames.length;
  const batches = () => readTableBatches(job.input, '--input', BLOCK_ROWS);
  run.input(job.input);
  const cacheFile = path.join(run.staging, '.rows.f32');
  const writer = new MatrixCacheWriter(cacheFile, d);
  const unseen: Record<string, UnseenCategories> = {};
  const weightBlocks: Float32Array[] = [];
  // The rows of the step being gathered (a step may span two batches).
  const pending = new Float32Array(batchSize * d);
  const pendingW = job.weight ? new Float32Array(batchSize) : null;
  let filled = 0;
  let steps = 0;
  let rows = 0;
  let idCheck: IdCheck | null = null;
  let text: TextColumnsCheck | null = null;
  let idName: string | null = null;
  try {
    for await (const b of batches()) {
      if (!idCheck) {
        idName = idNameOf(job, ctx.prev, b);
        idCheck = new IdCheck(job.input, idName, !pseudonymKey);
        const read = new Set([idName, job.weight, ...pre.state.inputs?.map((c) => c.name) ?? pre.featureNames].filter((c): c is string => !!c));
        text = new TextColumnsCheck(job.input, (name) => read.has(name));
      }
      idCheck.add(b, rows);
      text!.add(b);
      const xb = pre.transform(b);
      mergeUnseen(unseen, xb.unseen);
      const wb = job.weight ? weightColumn(b, job.weight, rows, job.input) : null;
      if (wb) weightBlocks.push(wb);
      writer.append(xb.data);
      for (let i = 0; i < b.nRows; ) {
        const take = Math.min(batchSize - filled, b.nRows - i);
        pending.set(xb.data.subarray(i * d, (i + take) * d), filled * d);
        if (pendingW && wb) pendingW.set(wb.subarray(i, i + take), filled);
        filled += take;
        i += take;
        if (filled === batchSize) {
          await stepOn(ctx, { data: pending, nRows: filled, nFeatures: d }, pendingW);
          steps++;
          filled = 0;
        }
      }
      rows += b.nRows;
    }
    if (rows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
    if (filled > 0) {
      await stepOn(ctx, { data: pending.subarray(0, filled * d), nRows: filled, nFeatures: d }, pendingW ? pendingW.subarray(0, filled) : null);
      steps++;
    }
    idCheck!.finish(log);
    text!.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
  for (const l of unseenNotices(unseen)) log(l);
  const x = writer.finish(BLOCK_ROWS);
  try {
    const weights = weightBlocks.length ? concat(weightBlocks, rows) : null;
    weightBlocks.length = 0;
    const { labels, distances, inertia, sizes, quality, sampleSize } = await scoreRows(ctx, x, weights, job);
    const segIds = segmentIdsOf(ctx.prev);
    const profile = new ProfileSums(pre, k);
    const out = new ArrowBatchWriter(run.file('assignments.arrow'));
    try {
      let at = 0;
      for await (const b of batches()) {
        const n = b.nRows;
        const lb = labels.subarray(at, at + n);
        profile.add(b, pre.transform(b), lb);
        pseudonymizeIds(b, idName, pseudonymKey);
        const dist = new Float32Array(n);
        for (let i = 0; i < n; i++) dist[i] = Math.sqrt(distances[at + i]);
        out.write([idColumn(b, idName, false, at), { name: 'segment', values: segmentsOf(lb.slice(), segIds) }, { name: 'distance', values: dist }]);
        at += n;
      }
      await out.close();
    } catch (e) {
      await out.abort();
      throw e;
    }
    return { rows, steps, inertia, sizes, quality, sampleSize, profile: profile.result(), unseen };
  } finally {
    x.close();
    fs.rmSync(cacheFile, { force: true });
  }
}

function concat(blocks: Float32Array[], n: number): Float32Array {
  const out = new Float32Array(n);
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
