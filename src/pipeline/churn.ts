/**
 * `segtensor churn train | evaluate | predict` as library calls.
 *
 * train: read → label → seeded stratified split (70/15/15) → preprocessing fitted on the training
 * rows only → MLP and logistic baseline, early-stopped on validation → threshold and risk bands
 * from the validation split → metrics on the test split (per segment too) → model directory.
 *
 * Segments (`segments`: a `segtensor fit` output directory) are joined by id with that
 * directory's assignments file; rows whose id is not there (or every row, when there is no id
 * column in common) are assigned with the segmentation model in `<dir>/model.json`, which needs
 * the model's feature columns in the input. A row neither way can place is an error.
 *
 * @example
 * const r = await trainChurn({ input: 'features.parquet', label: 'churned', id: 'customer_id', out: 'churn/' });
 * console.log(r.metrics.rocAuc, r.metrics.baselineRocAuc);
 * await predictChurn({ model: 'churn/', input: 'features.parquet', out: 'scores.parquet', segments: 'seg/' });
 */
import fs from 'node:fs';
import path from 'node:path';
import '../engine/backends/index.js';
import { assign } from '../engine/ops/assign.js';
import { resolveBackend } from '../engine/registry.js';
import { SegtensorError } from '../errors.js';
import {
  binaryMetrics,
  chooseThreshold,
  segmentRisk,
  type BinaryMetrics,
  type SegmentRisk,
} from '../eval/classification.js';
import { atomicWrite } from '../io/atomic.js';
import { beginRun, hashFile, openRun, type RunWriter } from '../io/run-dir.js';
import { formatOf } from '../io/format.js';
import { coercionNotices, readTable, type DType } from '../io/read-table.js';
import type { ColumnTable } from '../io/table.js';
import { writeTable, type OutColumn } from '../io/write-table.js';
import { parseLabel, stratifiedSplit, takeMatrixRows, takeRows, takeTableRows } from '../models/churn/data.js';
import { CHURN_NET_DEFAULTS, trainChurnNet, type ChurnNetFit, type ChurnNetOptions, type EpochStats, type LabelledMatrix } from '../models/churn/mlp.js';
import { CHURN_FORMAT, CHURN_FORMAT_VERSION, loadChurnModel, saveChurnModel, type ChurnModelMeta, type RiskBand } from '../models/churn/model-dir.js';
import { churnTfjs } from '../models/churn/tfjs.js';
import { PREPROCESS_DEFAULTS, Preprocessor } from '../preprocess/preprocessor.js';
import { quantileSorted } from '../preprocess/stats.js';
import { VERSION } from '../version.js';
import { checkFinite, missingCounts, unseenCounts, unseenNotices } from './data-notices.js';
import { idColumn, idKeys, jobPseudonymKey, pseudonymizeIds, type PseudonymJob } from './ids.js';
import { readsInBlocks, scoreBatches } from './blocks.js';
import { modelOf } from './model-file.js';

/** Band names, lowest risk first. */
export const RISK_BAND_NAMES = Object.freeze(['low', 'medium', 'high', 'critical']);
/** Quantiles of the validation split's P(churn) at which the bands start: the top 50%, 20%, 5%. */
export const RISK_QUANTILES: readonly number[] = Object.freeze([0.5, 0.8, 0.95]);

export interface ChurnTrainJob {
  /** Labelled customer table (.arrow/.arrows/.feather, .parquet, .csv). */
  input: string;
  /** Label column. */
  label: string;
  /** Model directory (created if missing). */
  out: string;
  /** Label value meaning churned; default the value among 1/true/yes (case-insensitive). */
  positive?: string | null;
  /** Id column (never a feature; checked for duplicates). */
  id?: string | null;
  /** Feature columns; default every column but the id, label and segment column. */
  features?: string[] | null;
  /** `--sensitive`: columns never used as features (a conflict with `features` is a BAD_OPTION). */
  sensitive?: string[] | null;
  /** Seed of the split, initialisers, shuffling and dropout. Default 0. */
  seed?: number;
  /** `auto`, a tfjs backend, or `native`/`cuda` (mapped to the best tfjs backend). Default `auto`. */
  backend?: string;
  /** Network options (hidden sizes, dropout, L2, learning rate, batch size, epochs, patience). */
  net?: Partial<Omit<ChurnNetOptions, 'seed'>>;
  /** train/validation/test fractions. Default [0.7, 0.15, 0.15]. */
  split?: [number, number, number];
  /** Choose the threshold as the highest reaching this validation recall, instead of max F1. */
  targetRecall?: number | null;
  /** A `segtensor fit` output directory, for the per-segment table. */
  segments?: string | null;
  /** Or a column of the input holding the segment (excluded from the features). */
  segmentColumn?: string | null;
  maxCategories?: number;
  /** Declared column types (`--dtypes`), for any input format. */
  dtypes?: Record<string, DType> | null;
  /** Read cells that do not convert to their column's type as null, counted (`--coerce-invalid`). Default false. */
  coerceInvalid?: boolean;
  log?: (line: string) => void;
  onEpoch?: (model: 'mlp' | 'baseline', s: EpochStats) => void;
}

export interface ModelReport extends BinaryMetrics {
  bestEpoch: number;
  epochs: number;
  stoppedEarly: boolean;
  trainMs: number;
}

/** metrics.json of `churn train`. The top-level metrics are the MLP's on the test split. */
export interface ChurnTrainMetrics {
  rocAuc: number | null;
  prAuc: number | null;
  logLoss: number;
  brier: number;
  baselineRocAuc: number | null;
  baselinePrAuc: number | null;
  baselineLogLoss: number;
  baselineBrier: number;
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
  confusion: BinaryMetrics['confusion'];
  calibration: BinaryMetrics['calibration'];
  mlp: ModelReport;
  baseline: ModelReport;
  segments: SegmentRisk[] | null;
  split: { train: number; validation: number; test: number; positives: [number, number, number] };
  features: number;
  backend: string;
  seed: number;
  history: { mlp: EpochStats[]; baseline: EpochStats[] };
  timingsMs: Record<string, number>;
}

export interface ChurnTrainResult {
  metrics: ChurnTrainMetrics;
  meta: ChurnModelMeta;
  files: string[];
  /** Cells read as null per column (`coerceInvalid`). */
  coercions: Record<string, number>;
}

function stopwatch() {
  const t: Record<string, number> = {};
  let t0 = performance.now();
  return {
    t,
    lap(name: string) {
      const now = performance.now();
      t[name] = Math.round(now - t0);
      t0 = now;
    },
  };
}

/** Default features: every number, integer or string column but the excluded ones. */
function defaultFeatures(table: ColumnTable, exclude: string[], log: (l: string) => void): string[] {
  const names: string[] = [];
  const skipped: string[] = [];
  for (const c of table.columns) {
    if (exclude.includes(c.name)) continue;
    if (c.type === 'number' || c.type === 'bigint' || c.type === 'string') names.push(c.name);
    else skipped.push(c.name);
  }
  if (skipped.length) log(`notice: ${table.path}: columns ${skipped.join(', ')} are neither numeric nor text; left out of the features`);
  if (names.length === 0) throw new SegtensorError('BAD_INPUT', `${table.path}: no feature columns besides ${exclude.join(', ')}`);
  return names;
}

function report(fit: ChurnNetFit, m: BinaryMetrics, ms: number): ModelReport {
  return { ...m, bestEpoch: fit.bestEpoch, epochs: fit.history.length, stoppedEarly: fit.stoppedEarly, trainMs: Math.round(ms) };
}

/** Bands whose lower edges are the validation P(churn) quantiles {@link RISK_QUANTILES}. */
function riskBands(pVal: Float64Array): RiskBand[] {
  const sorted = Float64Array.from(pVal).sort();
  const edges = [0, ...RISK_QUANTILES.map((q) => quantileSorted(sorted, q)), 1];
  return RISK_BAND_NAMES.map((name, b) => ({ name, from: edges[b], to: edges[b + 1] }));
}

/** The band of each probability: the last band whose `from` it reaches. */
export function bandOf(p: Float64Array, bands: RiskBand[]): string[] {
  const out = new Array<string>(p.length);
  for (let i = 0; i < p.length; i++) {
    let b = 0;
    while (b + 1 < bands.length && p[i] >= bands[b + 1].from) b++;
    out[i] = bands[b].name;
  }
  return out;
}

/** Trains the churn MLP and the logistic baseline; writes the model directory and metrics.json. */
export async function trainChurn(job: ChurnTrainJob): Promise<ChurnTrainResult> {
  const log = job.log ?? (() => {});
  const sw = stopwatch();
  const seed = job.seed ?? 0;
  const fractions = job.split ?? [0.7, 0.15, 0.15];
  const run = beginRun({ command: 'churn train', out: job.out, layout: 'dir', options: job });
  try {
    return await trainInto(run, job, log, sw, seed, fractions);
  } finally {
    run.dispose();
  }
}

async function trainInto(
  run: RunWriter,
  job: ChurnTrainJob,
  log: (line: string) => void,
  sw: ReturnType<typeof stopwatch>,
  seed: number,
  fractions: [number, number, number],
): Promise<ChurnTrainResult> {
  if (job.segments && job.segmentColumn) throw new SegtensorError('BAD_OPTION', '--segments and --segment-column exclude each other; give one');
  log(`reading ${job.input}`);
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  run.input(job.input);
  if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
  table.column(job.label); // MISSING_COLUMN naming the file and listing the columns
  if (job.id) table.column(job.id);
  if (job.segmentColumn) table.column(job.segmentColumn);
  const exclude = [job.id, job.label, job.segmentColumn, ...(job.sensitive ?? [])].filter((c): c is string => !!c);
  for (const f of job.features ?? []) {
    if (f === job.label) throw new SegtensorError('BAD_OPTION', `--features: '${f}' is the label column and cannot be a feature`);
    if (job.sensitive?.includes(f)) throw new SegtensorError('BAD_OPTION', `--sensitive ${f} is also named in --features; sensitive columns are kept out of the features: drop it from one of them`);
  }
  for (const c of job.sensitive ?? []) table.column(c); // MISSING_COLUMN naming the file
  idColumn(table, job.id ?? null, true); // nulls and duplicates are errors naming the row
  const label = parseLabel(table, job.label, job.positive ?? null);
  const split = stratifiedSplit(label.y, fractions, seed, job.input);
  sw.lap('read');
  // After the input checks, so bad input fails before the tfjs backends load.
  const { tf, backend } = await churnTfjs(job.backend ?? 'auto', log);
  sw.lap('backend');

  const features = job.features ?? defaultFeatures(table, exclude, log);
  // On the whole table: the preprocessor is fitted on the training split, whose row numbers are not the file's.
  checkFinite(table, features);
  const pre = Preprocessor.fit(takeTableRows(table, split.train), {
    features,
    exclude: exclude.filter((c) => c !== job.label),
    scale: 'standard',
    impute: 'median',
    maxCategories: job.maxCategories ?? PREPROCESS_DEFAULTS.maxCategories,
  });
  const x = pre.transform(table);
  const part = (idx: Int32Array): LabelledMatrix => ({ x: takeMatrixRows(x, idx), y: takeRows(label.y, idx) });
  const train = part(split.train);
  const val = part(split.validation);
  const test = part(split.test);
  const positives: [number, number, number] = [train.y, val.y, test.y].map((y) => y.reduce((s, v) => s + v, 0)) as [number, number, number];
  sw.lap('preprocess');
  log(`${table.nRows} rows × ${x.nFeatures} features; split ${train.x.nRows}/${val.x.nRows}/${test.x.nRows} (positives ${positives.join('/')}); backend tfjs ${backend}`);

  const netOptions: Partial<ChurnNetOptions> = { ...job.net, seed };
  let t0 = performance.now();
  const mlp = await trainChurnNet(tf, train, val, netOptions, (s) => job.onEpoch?.('mlp', s));
  const mlpMs = performance.now() - t0;
  t0 = performance.now();
  const base = await trainChurnNet(tf, train, val, { ...netOptions, hiddenSizes: [], dropout: 0 }, (s) => job.onEpoch?.('baseline', s));
  const baseMs = performance.now() - t0;
  sw.lap('train');

  try {
    const targetRecall = job.targetRecall ?? null;
    const pVal = await mlp.net.predictProba(val.x);
    const pTest = await mlp.net.predictProba(test.x);
    const th = chooseThreshold(val.y, pVal, targetRecall);
    const bVal = await base.net.predictProba(val.x);
    const bTest = await base.net.predictProba(test.x);
    const bTh = chooseThreshold(val.y, bVal, targetRecall);
    const m = report(mlp, binaryMetrics(test.y, pTest, th.threshold), mlpMs);
    const b = report(base, binaryMetrics(test.y, bTest, bTh.threshold), baseMs);
    if (m.rocAuc !== null && b.rocAuc !== null && m.rocAuc < b.rocAuc - 0.005) {
      log(`notice: the MLP's test ROC-AUC ${m.rocAuc.toFixed(4)} is below the logistic baseline's ${b.rocAuc.toFixed(4)}; the relationship may be close to linear, or the data too small for the network`);
    }

    let segments: SegmentRisk[] | null = null;
    if (job.segments || job.segmentColumn) {
      const seg = job.segmentColumn ? segmentColumnValues(table, job.segmentColumn) : await resolveSegments(job.segments!, table, job.id ?? null, log);
      const segTest = Array.from(split.test, (i) => seg[i]);
      segments = segmentRisk(segTest, pTest, test.y);
    }
    sw.lap('evaluate');

    const bands = riskBands(pVal);
    const meta: ChurnModelMeta = {
      format: CHURN_FORMAT,
      formatVersion: CHURN_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      segtensorVersion: VERSION,
      input: { path: path.resolve(job.input), rows: table.nRows },
      label: { column: job.label, positive: label.positive, negative: label.negative },
      idColumn: job.id ?? null,
      featureNames: pre.featureNames,
      preprocessing: pre.toJSON(),
      logitOffset: mlp.net.logitOffset,
      classWeights: mlp.classWeights,
      baseRate: positives[0] / train.y.length,
      threshold: {
        value: th.threshold,
        rule: targetRecall === null ? 'max-f1' : 'target-recall',
        targetRecall,
        validation: { precision: th.precision, recall: th.recall, f1: th.f1 },
      },
      riskBands: {
        bands,
        rule: `P(churn) edges at the ${RISK_QUANTILES.join(', ')} quantiles of the validation split's predictions (low: bottom 50%, medium: next 30%, high: next 15%, critical: top 5% of the training population's risk)`,
      },
      network: { topology: 'model.json', weights: 'weights.bin', options: mlp.options, bestEpoch: mlp.bestEpoch, epochs: mlp.history.length },
      split: { fractions, train: train.x.nRows, validation: val.x.nRows, test: test.x.nRows, seed },
      backend,
      seed,
    };
    const metrics: ChurnTrainMetrics = {
      rocAuc: m.rocAuc,
      prAuc: m.prAuc,
      logLoss: m.logLoss,
      brier: m.brier,
      baselineRocAuc: b.rocAuc,
      baselinePrAuc: b.prAuc,
      baselineLogLoss: b.logLoss,
      baselineBrier: b.brier,
      threshold: m.threshold,
      precision: m.precision,
      recall: m.recall,
      f1: m.f1,
      confusion: m.confusion,
      calibration: m.calibration,
      mlp: m,
      baseline: b,
      segments,
      split: { train: train.x.nRows, validation: val.x.nRows, test: test.x.nRows, positives },
      features: x.nFeatures,
      backend,
      seed,
      history: { mlp: mlp.history, baseline: base.history },
      timingsMs: sw.t,
    };
    // Outputs last, into the run's staging directory; commit publishes them all at once.
    await saveChurnModel(run.staging, mlp.net, meta);
    sw.lap('write');
    atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    run.backend(backend);
    run.count({ rowsRead: table.nRows, train: train.x.nRows, validation: val.x.nRows, test: test.x.nRows, features: x.nFeatures, coercedToNull: table.coercions, missing: missingCounts(table, pre.state.numeric.map((s) => s.name)) });
    const { files } = await run.commit();
    return { metrics, meta, files, coercions: table.coercions };
  } finally {
    mlp.net.dispose();
    base.net.dispose();
  }
}

function segmentColumnValues(table: ColumnTable, name: string): (string | number | null)[] {
  const c = table.column(name);
  if (c.type === 'string') return c.values;
  if (c.type === 'number') return Array.from(c.values, (v) => (Number.isNaN(v) ? null : v));
  if (c.type === 'bigint') return Array.from(c.values, (v, i) => (c.nulls?.[i] ? null : Number(v)));
  throw new SegtensorError('BAD_INPUT', `${table.path}: segment column '${name}' is ${c.type === 'other' ? c.typeName : c.type}; it must be numbers or text`);
}

/** Key of an id value, so '42', 42 and 42n join. */
/**
 * Each row's segment, from the current snapshot: `dir` is a `segtensor fit` run or a `segtensor
 * predict` output. Stored assignments are used only when they were computed from this very table
 * (the same SHA-256 as the run's input); otherwise the rows are assigned with the fit's
 * model.json, which needs the model's feature columns, so segments are never carried over from
 * an older snapshot (issue 12).
 */
export async function resolveSegments(dir: string, table: ColumnTable, id: string | null, log: (l: string) => void): Promise<Int32Array> {
  const run = await openRun(dir, '--segments', ['fit', 'predict']);
  const mine = await hashFile(table.path);
  const sameInput = run.manifest.inputs.some((i) => i.sha256 === mine.sha256 && i.bytes === mine.bytes);
  const stored = run.manifest.command === 'predict' ? run.manifest.outputs[0]?.path : ['assignments.arrow', 'assignments.parquet'].find((f) => run.has(f));
  if (sameInput && stored) {
    const a = await readTable(run.file(stored), '--segments');
    const bySeg = a.numeric('segment');
    if (a.nRows !== table.nRows) throw new SegtensorError('CORRUPT_FILE', `--segments '${dir}': ${stored} has ${a.nRows} rows, ${table.path} ${table.nRows}`);
    const seg = new Int32Array(table.nRows);
    if (id && a.has(id)) {
      const map = new Map<string, number>();
      idKeys(idColumn(a, id, false).values).forEach((k, i) => map.set(k, bySeg[i]));
      const keys = idKeys(idColumn(table, id, false).values);
      for (let i = 0; i < keys.length; i++) {
        const s = map.get(keys[i]);
        if (s === undefined) throw new SegtensorError('CORRUPT_FILE', `--segments '${dir}': id '${keys[i]}' of ${table.path} is not in ${stored}`);
        seg[i] = s;
      }
    } else {
      // The same file: rows are in the same order.
      for (let i = 0; i < seg.length; i++) seg[i] = bySeg[i];
    }
    return seg;
  }
  if (run.manifest.command === 'predict') {
    const from = run.manifest.inputs.map((i) => i.path).join(', ');
    throw new SegtensorError(
      'BAD_INPUT',
      `--segments '${dir}' holds segments assigned from ${from}, not from ${table.path} (a different file or snapshot); run \`segtensor predict\` on ${table.path}, or pass the \`segtensor fit\` directory`,
    );
  }
  const model = modelOf(run, '--segments');
  const pre = Preprocessor.fromJSON(model.preprocessing);
  const lacking = pre.inputColumns.filter((c) => !table.has(c));
  if (lacking.length) {
    throw new SegtensorError(
      'BAD_INPUT',
      `--segments '${dir}': ${table.path} is not the table that was segmented, and it lacks the segmentation features to assign its rows (${lacking.slice(0, 5).join(', ')}${lacking.length > 5 ? ', …' : ''})`,
    );
  }
  log(`assigning the segments of ${table.path} with ${path.join(dir, 'model.json')}`);
  const xs = pre.transform(table);
  const be = await resolveBackend('auto', log);
  const dx = be.upload(xs);
  try {
    const { labels } = await (await assign(be, dx, Float32Array.from(model.centroidsScaled.flat()), model.k)).read();
    return labels;
  } finally {
    be.release(dx);
  }
}

/** Opens a `segtensor churn train` run and loads its network. */
async function openChurnModel(dir: string, tf: Awaited<ReturnType<typeof churnTfjs>>['tf'], backend: string) {
  // A `segtensor fit` run here is refused by its manifest's command, naming both commands.
  const run = await openRun(dir, '--model', ['churn train']);
  return { run, ...(await loadChurnModel(run.dir, tf, backend)) };
}

export interface ChurnEvaluateJob {
  model: string;
  input: string;
  label: string;
  /** Label value meaning churned; default the model's. */
  positive?: string | null;
  segments?: string | null;
  segmentColumn?: string | null;
  id?: string | null;
  backend?: string;
  /** Also write the metrics as JSON here. */
  out?: string | null;
  /** Declared column types (`--dtypes`), for any input format. */
  dtypes?: Record<string, DType> | null;
  /** Read cells that do not convert to their column's type as null, counted (`--coerce-invalid`). Default false. */
  coerceInvalid?: boolean;
  log?: (line: string) => void;
}

export interface ChurnEvaluateResult {
  metrics: BinaryMetrics & { segments: SegmentRisk[] | null; backend: string };
  meta: ChurnModelMeta;
  /** Cells per categorical feature holding a value unseen when fitting (scored as `__other__`). */
  unseenCategories: Record<string, number>;
  /** Cells read as null per column (`coerceInvalid`). */
  coercions: Record<string, number>;
}

/** Metrics of a saved model on a labelled table, at the model's own threshold. */
export async function evaluateChurn(job: ChurnEvaluateJob): Promise<ChurnEvaluateResult> {
  const log = job.log ?? (() => {});
  if (job.out && !/\.json$/i.test(job.out)) throw new SegtensorError('BAD_OPTION', `--out must be a .json file; got '${job.out}'`);
  const run = job.out ? beginRun({ command: 'churn evaluate', out: job.out, layout: 'file', options: job }) : null;
  try {
    return await evaluateInto(run, job, log);
  } finally {
    run?.dispose();
  }
}

async function evaluateInto(run: RunWriter | null, job: ChurnEvaluateJob, log: (line: string) => void): Promise<ChurnEvaluateResult> {
  const { tf, backend } = await churnTfjs(job.backend ?? 'auto', log);
  const { net, meta } = await openChurnModel(job.model, tf, backend);
  try {
    const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
    for (const l of coercionNotices(table)) log(l);
    table.column(job.label);
    const label = parseLabel(table, job.label, job.positive ?? meta.label.positive, false);
    const x = Preprocessor.fromJSON(meta.preprocessing).transform(table);
    for (const l of unseenNotices(x.unseen)) log(l);
    const p = await net.predictProba(x);
    let segments: SegmentRisk[] | null = null;
    if (job.segmentColumn) segments = segmentRisk(segmentColumnValues(table, job.segmentColumn), p, label.y);
    else if (job.segments) segments = segmentRisk(await resolveSegments(job.segments, table, job.id ?? meta.idColumn, log), p, label.y);
    const metrics = { ...binaryMetrics(label.y, p, meta.threshold.value), segments, backend };
    if (run) {
      atomicWrite(run.primary, JSON.stringify(metrics, null, 2) + '\n');
      run.input(job.input);
      run.backend(backend);
      run.count({ rowsRead: table.nRows, coercedToNull: table.coercions, unseenCategories: unseenCounts(x.unseen) });
      await run.commit();
    }
    return { metrics, meta, unseenCategories: unseenCounts(x.unseen), coercions: table.coercions };
  } finally {
    net.dispose();
  }
}

export interface ChurnPredictJob extends PseudonymJob {
  model: string;
  input: string;
  /** Scores table; format by extension. */
  out: string;
  /** Id column; default the model's when the input has it, else the row number. */
  id?: string | null;
  /** A `segtensor fit` output directory: adds `segment` and writes the per-segment risk table. */
  segments?: string | null;
  /** `--memory-limit` in bytes: a table that would not fit is read, scored and written in batches. Default none. */
  memoryLimit?: number | null;
  backend?: string;
  /** Declared column types (`--dtypes`), for any input format. */
  dtypes?: Record<string, DType> | null;
  /** Read cells that do not convert to their column's type as null, counted (`--coerce-invalid`). Default false. */
  coerceInvalid?: boolean;
  log?: (line: string) => void;
}

/** One row of the per-segment risk table of `churn predict`. */
export interface SegmentRiskRow {
  segment: number;
  customers: number;
  meanProbability: number;
  /** Σ P(churn): the churners to expect in the segment. */
  expectedChurners: number;
  /** Customers per band, in {@link RISK_BAND_NAMES} order. */
  bands: number[];
}

export interface ChurnPredictResult {
  rows: number;
  /** Customers per band, in {@link RISK_BAND_NAMES} order. */
  bands: number[];
  segments: SegmentRiskRow[] | null;
  files: string[];
  /** Cells per categorical feature holding a value unseen when fitting (scored as `__other__`). */
  unseenCategories: Record<string, number>;
  /** Cells read as null per column (`coerceInvalid`). */
  coercions: Record<string, number>;
}

/** Scores every customer of a table: id, churn_probability, risk_band (and segment). */
export async function predictChurn(job: ChurnPredictJob): Promise<ChurnPredictResult> {
  const log = job.log ?? (() => {});
  formatOf(job.out, '--out');
  const sidecars = job.segments ? [segmentRiskCsvPath(job.out)] : [];
  const pseudonymKey = jobPseudonymKey(job);
  const run = beginRun({ command: 'churn predict', out: job.out, layout: 'file', sidecars, options: job, pseudonymKey });
  try {
    return await predictInto(run, job, log, pseudonymKey);
  } finally {
    run.dispose();
  }
}

async function predictInto(run: RunWriter, job: ChurnPredictJob, log: (line: string) => void, pseudonymKey: ReturnType<typeof jobPseudonymKey>): Promise<ChurnPredictResult> {
  const { tf, backend } = await churnTfjs(job.backend ?? 'auto', log);
  const { net, meta, run: modelRun } = await openChurnModel(job.model, tf, backend);
  run.input(modelRun.file('churn.json'));
  run.input(modelRun.file('weights.bin'));
  try {
    if (job.memoryLimit && readsInBlocks(job.input, job.memoryLimit, log)) return await scoreInBlocks(run, job, log, pseudonymKey, net, meta, backend, modelRun.manifest.runId);
    const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
    for (const l of coercionNotices(table)) log(l);
    run.input(job.input);
    const idName = job.id ?? (meta.idColumn && table.has(meta.idColumn) ? meta.idColumn : null);
    pseudonymizeIds(table, idName, pseudonymKey);
    const ids = idColumn(table, idName, false);
    const x = Preprocessor.fromJSON(meta.preprocessing).transform(table);
    for (const l of unseenNotices(x.unseen)) log(l);
    const seg = job.segments ? await resolveSegments(job.segments, table, idName, log) : null;
    const p = await net.predictProba(x);
    const bandNames = meta.riskBands.bands.map((b) => b.name);
    const band = bandOf(p, meta.riskBands.bands);
    const cols: OutColumn[] = [ids, { name: 'churn_probability', values: p }, { name: 'risk_band', values: band }];
    if (seg) cols.push({ name: 'segment', values: seg });
    const bandCount = (rows: Iterable<number>) => {
      const c = new Array<number>(bandNames.length).fill(0);
      for (const i of rows) c[bandNames.indexOf(band[i])]++;
      return c;
    };
    let segments: SegmentRiskRow[] | null = null;
    if (seg) {
      let k = 0;
      for (let i = 0; i < seg.length; i++) if (seg[i] >= k) k = seg[i] + 1;
      const members: number[][] = Array.from({ length: k }, () => []);
      for (let i = 0; i < seg.length; i++) members[seg[i]].push(i);
      segments = members
        .map((rows, s) => {
          let sum = 0;
          for (const i of rows) sum += p[i];
          return { segment: s, customers: rows.length, meanProbability: rows.length ? sum / rows.length : 0, expectedChurners: sum, bands: bandCount(rows) };
        })
        .filter((r) => r.customers > 0);
      atomicWrite(run.file(path.basename(segmentRiskCsvPath(job.out))), segmentRiskCsv(segments, bandNames));
    }
    await writeTable(run.primary, cols);
    run.backend(backend);
    run.count({ rowsRead: table.nRows, rowsScored: p.length, model: modelRun.manifest.runId, coercedToNull: table.coercions, unseenCategories: unseenCounts(x.unseen) });
    const { files } = await run.commit();
    return { rows: table.nRows, bands: bandCount(p.keys()), segments, files, unseenCategories: unseenCounts(x.unseen), coercions: table.coercions };
  } finally {
    net.dispose();
  }
}

/**
 * churn predict on a table read in batches (`--memory-limit`, issue 17): each batch scored and
 * written as it comes (scores are row by row); memory holds one batch and the numeric ids'
 * duplicate check. `--segments` joins the fit's assignments by id over the whole table, so it
 * is refused here.
 */
async function scoreInBlocks(
  run: RunWriter,
  job: ChurnPredictJob,
  log: (line: string) => void,
  pseudonymKey: ReturnType<typeof jobPseudonymKey>,
  net: Awaited<ReturnType<typeof openChurnModel>>['net'],
  meta: ChurnModelMeta,
  backend: string,
  modelRunId: string,
): Promise<ChurnPredictResult> {
  if (job.segments) throw new SegtensorError('BAD_OPTION', '--memory-limit: --segments is not supported on a table read in blocks yet; score without --segments, or in memory');
  if (!/\.arrows?$/i.test(job.out)) throw new SegtensorError('BAD_OPTION', `--memory-limit: churn predict writes a table read in blocks as Arrow IPC (.arrow); got --out ${job.out}`);
  if (job.dtypes && Object.keys(job.dtypes).length) throw new SegtensorError('BAD_OPTION', '--memory-limit: --dtypes is not supported on a table read in blocks yet');
  run.input(job.input);
  const pre = Preprocessor.fromJSON(meta.preprocessing);
  const bandNames = meta.riskBands.bands.map((b) => b.name);
  const bands = new Array<number>(bandNames.length).fill(0);
  const nRows = await scoreBatches(job.input, run.primary, (b) => job.id ?? (meta.idColumn && b.has(meta.idColumn) ? meta.idColumn : null), pseudonymKey !== null, log, async (b, at, idName, out) => {
    pseudonymizeIds(b, idName, pseudonymKey);
    const idCol = idColumn(b, idName, false, at);
    const p = await net.predictProba(pre.transform(b));
    const band = bandOf(p, meta.riskBands.bands);
    for (const name of band) bands[bandNames.indexOf(name)]++;
    out.write([idCol, { name: 'churn_probability', values: p }, { name: 'risk_band', values: band }]);
  });
  run.backend(backend);
  run.count({ rowsRead: nRows, rowsScored: nRows, model: modelRunId, outOfCore: true });
  const { files } = await run.commit();
  return { rows: nRows, bands, segments: null, files, unseenCategories: {}, coercions: {} };
}

/** `scores.parquet` → `scores.segment-risk.csv`, beside it. */
export function segmentRiskCsvPath(out: string): string {
  const ext = path.extname(out);
  return path.join(path.dirname(out), `${path.basename(out, ext)}.segment-risk.csv`);
}

export function segmentRiskCsv(rows: SegmentRiskRow[], bandNames: string[]): string {
  const head = ['segment', 'customers', 'mean_probability', 'expected_churners', ...bandNames];
  const lines = rows.map((r) => [r.segment, r.customers, r.meanProbability.toFixed(6), r.expectedChurners.toFixed(2), ...r.bands].join(','));
  return [head.join(','), ...lines].join('\n') + '\n';
}

/** The per-segment risk table as aligned text, for the terminal. */
export function segmentRiskTable(rows: SegmentRiskRow[], bandNames: string[]): string {
  const head = ['segment', 'customers', 'mean_p', 'expected', ...bandNames];
  const body = rows.map((r) => [String(r.segment), String(r.customers), r.meanProbability.toFixed(4), r.expectedChurners.toFixed(1), ...r.bands.map(String)]);
  const w = head.map((h, j) => Math.max(h.length, ...body.map((b) => b[j].length)));
  return [head, ...body].map((r) => r.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ')).join('\n');
}

export { CHURN_NET_DEFAULTS };
