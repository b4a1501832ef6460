/**
 * `segtensor predict`: assigns new customers to the segments of a saved model, with the model's
 * own preprocessing.
 *
 * @example
 * await predictSegments({ model: 'out/', input: 'new.parquet', out: 'new-segments.arrow' });
 */
import '../engine/backends/index.js';
import { assign } from '../engine/ops/assign.js';
import { resolveBackend } from '../engine/registry.js';
import { beginRun } from '../io/run-dir.js';
import { formatOf } from '../io/format.js';
import { coercionNotices, readTable, type DType } from '../io/read-table.js';
import { writeTable } from '../io/write-table.js';
import { Preprocessor } from '../preprocess/preprocessor.js';
import { missingCounts, unseenCounts, unseenNotices } from './data-notices.js';
import { idColumn, jobPseudonymKey, pseudonymizeIds, type PseudonymJob } from './ids.js';
import { openModel, segmentIdsOf } from './model-file.js';
import { categoricalBlocks, centreDistances, methodPredictor } from './methods.js';
import { applyPca } from '../models/pca.js';
import { SegtensorError } from '../errors.js';

export interface PredictJob extends PseudonymJob {
  model: string;
  input: string;
  out: string;
  /** Id column; default the model's. */
  id?: string | null;
  /** Declared column types (`--dtypes`), for any input format. */
  dtypes?: Record<string, DType> | null;
  /** Read cells that do not convert to their column's type as null, counted (`--coerce-invalid`). Default false. */
  coerceInvalid?: boolean;
  backend?: string;
  log?: (line: string) => void;
}

export interface PredictResult {
  rows: number;
  /** Rows per segment, in the order of segmentIds. */
  sizes: number[];
  segmentIds: number[];
  files: string[];
  /** Cells per categorical feature holding a value unseen when fitting (scored as `__other__`). */
  unseenCategories: Record<string, number>;
  /** Cells read as null per column (`coerceInvalid`). */
  coercions: Record<string, number>;
}

export async function predictSegments(job: PredictJob): Promise<PredictResult> {
  const log = job.log ?? (() => {});
  formatOf(job.out, '--out');
  const pseudonymKey = jobPseudonymKey(job);
  const run = beginRun({ command: 'predict', out: job.out, layout: 'file', options: job });
  try {
    return await predictInto(run, job, log, pseudonymKey);
  } finally {
    run.dispose();
  }
}

async function predictInto(run: ReturnType<typeof beginRun>, job: PredictJob, log: (line: string) => void, pseudonymKey: ReturnType<typeof jobPseudonymKey>): Promise<PredictResult> {
  const { model, run: modelRun } = await openModel(job.model);
  run.input(modelRun.file('model.json'));
  const be = await resolveBackend(job.backend ?? 'auto', log);
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  run.input(job.input);
  const idName = job.id === undefined ? model.idColumn : job.id;
  if (model.pseudonymizedIds && !pseudonymKey) log(`warning: ${job.model} was fitted with --pseudonymize-ids; without it these outputs carry raw ids, which match none of the model's`);
  pseudonymizeIds(table, idName && table.has(idName) ? idName : job.id ?? null, pseudonymKey);
  // Duplicates are errors, as in fit: assignments are joined by id (churn --segments).
  const ids = idColumn(table, idName && table.has(idName) ? idName : job.id ?? null, true);
  const pre = Preprocessor.fromJSON(model.preprocessing);
  const x = pre.transform(table);
  for (const l of unseenNotices(x.unseen)) log(l);
  // --pca models measure distances in component space, after the same projection.
  const z = model.pca ? await applyPca(model.pca, x, be) : x;
  const centroids = Float32Array.from((model.centroidsProjected ?? model.centroidsScaled).flat());
  const method = model.params.method ?? 'kmeans';
  const own = model.methodState === undefined ? null : methodPredictor(method);
  if (model.methodState !== undefined && !own) throw new SegtensorError('MODEL_VERSION', `${modelRun.file('model.json')}: method '${method}' has no predict in this segtensor`);
  const segIds = segmentIdsOf(model);
  const dz = be.upload(z);
  try {
    let segments: Int32Array;
    let rows: Int32Array; // each row's centroid row, −1 for noise
    let columns: { name: string; values: Float32Array | Int32Array }[] = [];
    if (own) {
      // The method's labels are in its fit order: label j is segment labelIds[j].
      const p = await own(be, model.methodState, z, { categorical: categoricalBlocks(pre) });
      const labelIds = model.labelIds ?? segIds;
      const rowOfId = new Map(segIds.map((id, j) => [id, j]));
      segments = p.labels.map((l) => (l < 0 ? l : labelIds[l]));
      rows = segments.map((id) => (id < 0 ? -1 : rowOfId.get(id)!));
      columns = p.columns;
    } else {
      const a = await assign(be, dz, centroids, model.k);
      rows = (await a.read()).labels;
      segments = segIds.every((id, j) => id === j) ? rows : rows.map((l) => segIds[l]);
    }
    const dist = centreDistances(z, rows, centroids, null).distances.map(Math.sqrt);
    const sizes = new Array<number>(model.k).fill(0);
    let noise = 0;
    for (const l of rows) {
      if (l >= 0) sizes[l]++;
      else noise++;
    }
    await writeTable(run.primary, [ids, { name: 'segment', values: segments }, { name: 'distance', values: dist }, ...columns]);
    run.backend(be.name);
    run.count({ rowsRead: table.nRows, rowsAssigned: rows.length, ...(noise ? { noise } : {}), model: modelRun.manifest.runId, coercedToNull: table.coercions, unseenCategories: unseenCounts(x.unseen), missing: missingCounts(table, pre.state.numeric.map((s) => s.name)) });
    const { files } = await run.commit();
    return { rows: table.nRows, sizes, segmentIds: segIds, files, unseenCategories: unseenCounts(x.unseen), coercions: table.coercions };
  } finally {
    be.release(dz);
  }
}
