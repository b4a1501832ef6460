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
import { dataRow, SegtensorError } from '../errors.js';
import { calinskiHarabasz, daviesBouldinOn, dispersion, sampleRows, silhouette } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { beginRun } from '../io/run-dir.js';
import { readLabelColumns } from '../io/table-meta.js';
import { coercionNotices, readTable, type DType } from '../io/read-table.js';
import { writeTable } from '../io/write-table.js';
import { KMeans, KMEANS_DEFAULTS, type InitName, type IterationStats } from '../models/kmeans.js';
import { PREPROCESS_DEFAULTS, Preprocessor, type ImputeKind, type ScaleKind } from '../preprocess/preprocessor.js';
import { VERSION } from '../version.js';
import { idColumn } from './ids.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelFile } from './model-file.js';
import { profileCsv, profileSegments, type SegmentProfile } from './profile.js';

export interface FitJob {
  /** Customer table: .arrow/.arrows/.feather, .parquet or .csv. */
  input: string;
  /** Number of segments. */
  k: number;
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
  const run = beginRun({ command: 'fit', out: job.out, layout: 'dir', options: job });
  try {
    return await fitInto(run, job, format, log, t, lap);
  } finally {
    run.dispose();
  }
}

/** Names that usually hold a label: kept out of default features (with a warning). */
export const LABEL_LIKE = /^(is_?)?(churn|churned|label|target)(_?(flag|label))?$/i;

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

  log(`reading ${job.input}`);
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
  lap('read');
  run.input(job.input);
  const ids = idColumn(table, job.id ?? null, true);
  for (const c of job.exclude ?? []) table.column(c); // MISSING_COLUMN naming the file
  const labels = await readLabelColumns(job.input);
  const exclude = [job.id, job.weight, ...(job.exclude ?? [])].filter((c): c is string => !!c);
  if (job.features) {
    for (const f of job.features) {
      if (labels.includes(f)) log(`warning: feature '${f}' is marked as a label in ${job.input}'s metadata; clustering on it as --features asks`);
    }
  } else {
    // Marked labels are recorded whatever their type; label-like names matter where they would be
    // default features (numbers).
    const candidates = table.columns.filter((c) => !exclude.includes(c.name) && (labels.includes(c.name) || c.type === 'number' || c.type === 'bigint'));
    for (const name of candidates.map((c) => c.name)) {
      if (labels.includes(name)) {
        exclude.push(name);
        log(`notice: column '${name}' is marked as a label in ${job.input}'s metadata; left out of the features`);
      } else if (LABEL_LIKE.test(name)) {
        exclude.push(name);
        log(`warning: column '${name}' looks like a label; left out of the features (name it in --features to cluster on it, or --exclude to silence this)`);
      }
    }
  }
  const { pre, matrix: x } = Preprocessor.fitTransform(table, {
    features: job.features ?? null,
    exclude,
    scale: job.scale ?? PREPROCESS_DEFAULTS.scale,
    impute: job.impute ?? PREPROCESS_DEFAULTS.impute,
    maxCategories: job.maxCategories ?? PREPROCESS_DEFAULTS.maxCategories,
  });
  // Values beyond --max-categories share one column: say how many, and count them in the manifest.
  const otherCategories: Record<string, { distinct: number; kept: number; rows: number }> = {};
  for (const s of pre.state.categorical) {
    if (!s.rare?.length) continue;
    const kept = new Set(s.categories);
    const c = table.column(s.name);
    if (c.type !== 'string') continue;
    const values = c.values;
    const distinct = new Set(values).size - (values.includes(null) ? 1 : 0);
    let rows = 0;
    for (const v of values) if (v !== null && !kept.has(v)) rows++;
    otherCategories[s.name] = { distinct, kept: s.categories.length, rows };
    log(`notice: column '${s.name}': ${distinct} distinct values; the ${s.categories.length} most frequent are one-hot columns, the other ${distinct - s.categories.length} (${rows} rows) go to ${s.name}=__other__ (--max-categories ${s.categories.length})`);
  }
  if (!job.features) {
    // Legal but almost always a mistake: an identifier clustered as if it were a measurement.
    for (const name of pre.state.numeric.map((n) => n.name)) {
      if (/(^|[_\s-])id$/i.test(name) || /[a-z]Id$/.test(name)) {
        log(`warning: feature column '${name}' looks like an identifier; pass --id ${name} to pass it through, or list --features`);
      }
    }
  }
  let weights: Float32Array | null = null;
  if (job.weight) {
    const w = table.numeric(job.weight);
    weights = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      if (!(w[i] >= 0) || !Number.isFinite(w[i])) {
        throw new SegtensorError('BAD_INPUT', `${job.input}: weight column '${job.weight}' ${dataRow(i)} is ${w[i]}; weights must be finite and >= 0`);
      }
      weights[i] = w[i];
    }
  }
  lap('preprocess');
  log(`${table.nRows} rows × ${x.nFeatures} features, k = ${job.k}, backend ${be.name}`);

  const km = new KMeans({
    k: job.k,
    seed: job.seed ?? KMEANS_DEFAULTS.seed,
    nInit: job.nInit ?? KMEANS_DEFAULTS.nInit,
    maxIter: job.maxIter ?? KMEANS_DEFAULTS.maxIter,
    tol: job.tol ?? KMEANS_DEFAULTS.tol,
    init: job.init ?? 'auto',
    onIteration: job.onIteration,
  });
  const r = await km.fit(be, x, weights);
  t.init = Math.round(r.ms.init);
  t.lloyd = Math.round(r.ms.lloyd);
  lap('fit');

  const k = job.k;
  const sizes = new Array<number>(k).fill(0);
  for (const l of r.labels) sizes[l]++;
  const disp = dispersion(x, r.labels, k);
  const sampleSize = Math.min(job.silhouetteSample ?? 20000, table.nRows);
  const sample = sampleRows(table.nRows, sampleSize, job.seed ?? KMEANS_DEFAULTS.seed);
  const metrics: FitMetrics = {
    inertia: r.inertia,
    nIter: r.nIter,
    converged: r.converged,
    k,
    rows: table.nRows,
    features: x.nFeatures,
    sizes,
    silhouette: await silhouette(be, x, r.labels, k, sample),
    silhouetteSampleSize: sampleSize,
    calinskiHarabasz: calinskiHarabasz(x, r.labels, k, disp),
    daviesBouldin: await daviesBouldinOn(be, x, r.labels, k, disp),
    runs: r.runs,
    emptyClustersRepaired: r.history.reduce((s, h) => s + h.emptyClusters, 0),
    backend: be.name,
    timingsMs: t,
  };
  lap('metrics');
  const profile = profileSegments(table, pre, x, r.labels, k);

  const d = x.nFeatures;
  const scaled = Array.from({ length: k }, (_, j) => Array.from(r.centroids.subarray(j * d, (j + 1) * d)));
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
    centroidsOriginal: pre.inverse(r.centroids, k),
    params: { nInit: km.options.nInit, maxIter: km.options.maxIter, tol: km.options.tol, seed: km.options.seed, init: r.init },
    backend: be.name,
    seed: km.options.seed,
  };

  // Outputs last, into the run's staging directory; commit publishes them all at once.
  const dist = new Float32Array(r.distances.length);
  for (let i = 0; i < dist.length; i++) dist[i] = Math.sqrt(r.distances[i]);
  await writeTable(run.file(`assignments.${format === 'arrow' ? 'arrow' : 'parquet'}`), [ids, { name: 'segment', values: r.labels }, { name: 'distance', values: dist }]);
  atomicWrite(run.file('segments.csv'), profileCsv(profile));
  atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
  run.backend(be.name);
  run.count({ rowsRead: table.nRows, rowsAssigned: r.labels.length, features: x.nFeatures, excluded: exclude, coercedToNull: table.coercions, missing: Object.fromEntries(pre.state.numeric.filter((s) => s.missing > 0).map((s) => [s.name, s.missing])), otherCategories });
  lap('write');
  const { files } = await run.commit();
  return { model, metrics, profile, files, coercions: table.coercions };
}
