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
import { mergeUnseen, missingCounts, unseenCounts, unseenNotices } from './data-notices.js';
import { idColumn, jobPseudonymKey, pseudonymizeIds, type PseudonymJob } from './ids.js';
import { readsInBlocks, scoreBatches } from './blocks.js';
import type { Backend } from '../engine/backend.js';
import type { ColumnTable } from '../io/table.js';
import type { ModelFile } from './model-file.js';
import type { UnseenCategories } from '../preprocess/preprocessor.js';
import { openModel, segmentIdsOf, segmentsOf } from './model-file.js';
import { categoricalBlocks, centreDistances, methodPredictor } from './methods.js';
import { applyPca } from '../models/pca.js';
import { SegtensorError } from '../errors.js';

export interface PredictJob extends PseudonymJob {
  /** `--memory-limit` in bytes: a table that would not fit is read and scored in batches. Default none. */
  memoryLimit?: number | null;
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
  const run = beginRun({ command: 'predict', out: job.out, layout: 'file', options: job, pseudonymKey });
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
  if (model.pseudonymizedIds && !pseudonymKey) log(`warning: ${job.model} was fitted with --pseudonymize-ids; without it these outputs carry raw ids, which match none of the model's`);
  const scorer = modelScorer(be, model, modelRun.file('model.json'));
  if (job.memoryLimit && readsInBlocks(job.input, job.memoryLimit, log)) return predictBlocks(run, job, log, pseudonymKey, be, scorer, modelRun.manifest.runId);
  const table = await readTable(job.input, '--input', { dtypes: job.dtypes ?? undefined, coerceInvalid: job.coerceInvalid });
  for (const l of coercionNotices(table)) log(l);
  run.input(job.input);
  const idName = idNameOf(job, model.idColumn, table);
  pseudonymizeIds(table, idName, pseudonymKey);
  // Duplicates are errors, as in fit: assignments are joined by id (churn --segments).
  const ids = idColumn(table, idName, true);
  const s = await scorer.score(table);
  for (const l of unseenNotices(s.unseen)) log(l);
  await writeTable(run.primary, [ids, { name: 'segment', values: s.segments }, { name: 'distance', values: s.distances }, ...s.columns]);
  run.backend(be.name, be.fallback);
  run.count({ rowsRead: table.nRows, rowsAssigned: s.rows.length, ...(s.noise ? { noise: s.noise } : {}), model: modelRun.manifest.runId, coercedToNull: table.coercions, unseenCategories: unseenCounts(s.unseen), missing: missingCounts(table, scorer.pre.state.numeric.map((n) => n.name)) });
  const { files } = await run.commit();
  return { rows: table.nRows, sizes: s.sizes, segmentIds: scorer.segIds, files, unseenCategories: unseenCounts(s.unseen), coercions: table.coercions };
}

/** The id column to pass through: --id, else the model's when the input has it. */
function idNameOf(job: PredictJob, modelId: string | null, table: ColumnTable): string | null {
  const idName = job.id === undefined ? modelId : job.id;
  return idName && table.has(idName) ? idName : job.id ?? null;
}

/** A model's scoring of a table's rows: its preprocessing, projection and method. */
function modelScorer(be: Backend, model: ModelFile, modelFile: string) {
  const pre = Preprocessor.fromJSON(model.preprocessing);
  const centroids = Float32Array.from((model.centroidsProjected ?? model.centroidsScaled).flat());
  const method = model.params.method ?? 'kmeans';
  const own = model.methodState === undefined ? null : methodPredictor(method);
  if (model.methodState !== undefined && !own) throw new SegtensorError('MODEL_VERSION', `${modelFile}: method '${method}' has no predict in this segtensor`);
  const segIds = segmentIdsOf(model);
  return {
    pre,
    segIds,
    idColumn: model.idColumn,
    /** Segments, centre rows (−1 for noise), distances and the method's columns of `table`'s rows. */
    async score(table: ColumnTable) {
      const x = pre.transform(table);
      // --pca models measure distances in component space, after the same projection.
      const z = model.pca ? await applyPca(model.pca, x, be) : x;
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
        const dz = be.upload(z);
        try {
          const a = await assign(be, dz, centroids, model.k);
          rows = (await a.read()).labels.slice();
        } finally {
          be.release(dz);
        }
        segments = segmentsOf(rows, segIds);
      }
      const distances = centreDistances(z, rows, centroids, null).distances.map(Math.sqrt);
      const sizes = new Array<number>(model.k).fill(0);
      let noise = 0;
      for (const l of rows) {
        if (l >= 0) sizes[l]++;
        else noise++;
      }
      return { segments, rows, distances, columns, sizes, noise, unseen: x.unseen };
    },
  };
}

/**
 * predict on a table read in batches (`--memory-limit`, issue 17): each batch is scored as the
 * whole table would be (every method's predict is row by row) and written as it comes; memory
 * holds one batch, plus 8 bytes a row for the numeric ids' duplicate check.
 */
async function predictBlocks(
  run: ReturnType<typeof beginRun>,
  job: PredictJob,
  log: (line: string) => void,
  pseudonymKey: ReturnType<typeof jobPseudonymKey>,
  be: Backend,
  scorer: ReturnType<typeof modelScorer>,
  modelRunId: string,
): Promise<PredictResult> {
  if (!/\.arrows?$/i.test(job.out)) throw new SegtensorError('BAD_OPTION', `--memory-limit: predict writes a table read in blocks as Arrow IPC (.arrow); got --out ${job.out}`);
  if (job.dtypes && Object.keys(job.dtypes).length) throw new SegtensorError('BAD_OPTION', '--memory-limit: --dtypes is not supported on a table read in blocks yet');
  run.input(job.input);
  const sizes = new Array<number>(scorer.segIds.length).fill(0);
  const unseen: Record<string, UnseenCategories> = {};
  let noise = 0;
  const nRows = await scoreBatches(job.input, run.primary, (b) => idNameOf(job, scorer.idColumn, b), pseudonymKey !== null, log, async (b, at, name, out) => {
    pseudonymizeIds(b, name, pseudonymKey);
    const s = await scorer.score(b);
    const idCol = idColumn(b, name, false, at);
    out.write([idCol, { name: 'segment', values: s.segments }, { name: 'distance', values: s.distances }, ...s.columns]);
    s.sizes.forEach((n, j) => (sizes[j] += n));
    noise += s.noise;
    mergeUnseen(unseen, s.unseen);
  });
  for (const l of unseenNotices(unseen)) log(l);
  run.backend(be.name, be.fallback);
  run.count({ rowsRead: nRows, rowsAssigned: nRows, ...(noise ? { noise } : {}), model: modelRunId, unseenCategories: unseenCounts(unseen), outOfCore: true });
  const { files } = await run.commit();
  return { rows: nRows, sizes, segmentIds: scorer.segIds, files, unseenCategories: unseenCounts(unseen), coercions: {} };
}
