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
import { idColumn } from './ids.js';
import { openModel, segmentIdsOf } from './model-file.js';

export interface PredictJob {
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
  const run = beginRun({ command: 'predict', out: job.out, layout: 'file', options: job });
  try {
    return await predictInto(run, job, log);
  } finally {
    run.dispose();
  }
}

async function predictInto(run: ReturnType<typeof beginRun>, job: PredictJob, log: (line: string) => void): Promise<PredictResult> {
  const { model, run: modelRun } = await openModel(job.model);
  run.input(modelRun.file('model.json'));
  const be = await resolveBackend(job.backend ?? 'auto', log);
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  run.input(job.input);
  const idName = job.id === undefined ? model.idColumn : job.id;
  // Duplicates are errors, as in fit: assignments are joined by id (churn --segments).
  const ids = idColumn(table, idName && table.has(idName) ? idName : job.id ?? null, true);
  const pre = Preprocessor.fromJSON(model.preprocessing);
  const x = pre.transform(table);
  for (const l of unseenNotices(x.unseen)) log(l);
  const centroids = Float32Array.from(model.centroidsScaled.flat());
  const dx = be.upload(x);
  try {
    const a = await assign(be, dx, centroids, model.k);
    const { labels, distances } = await a.read();
    const dist = distances.map(Math.sqrt);
    const sizes = new Array<number>(model.k).fill(0);
    for (const l of labels) sizes[l]++;
    // Centroid rows to segment ids (they differ in a model aligned to an earlier one).
    const segIds = segmentIdsOf(model);
    const segments = segIds.every((id, j) => id === j) ? labels : labels.map((l) => segIds[l]);
    await writeTable(run.primary, [ids, { name: 'segment', values: segments }, { name: 'distance', values: dist }]);
    run.backend(be.name);
    run.count({ rowsRead: table.nRows, rowsAssigned: labels.length, model: modelRun.manifest.runId, coercedToNull: table.coercions, unseenCategories: unseenCounts(x.unseen), missing: missingCounts(table, pre.state.numeric.map((s) => s.name)) });
    const { files } = await run.commit();
    return { rows: table.nRows, sizes, segmentIds: segIds, files, unseenCategories: unseenCounts(x.unseen), coercions: table.coercions };
  } finally {
    be.release(dx);
  }
}
