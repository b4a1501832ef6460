/**
 * model.json: everything `predict` needs (preprocessing, centroids) plus what a reader of the
 * run wants to know (parameters, backend, seed). A format version is checked on load.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { openRun, type OpenRun } from '../io/run-dir.js';
import type { PreprocessState } from '../preprocess/preprocessor.js';

export const MODEL_FORMAT = 'segtensor-kmeans';
export const MODEL_FORMAT_VERSION = 1;

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  createdAt: string;
  segtensorVersion: string;
  input: { path: string; rows: number };
  /** Columns kept out of the features: id, weight, --exclude, marked and label-like labels. */
  excluded?: string[];
  /** `--sensitive`: columns kept out of the features and the report. */
  sensitive?: string[];
  /** `--pseudonymize-ids`: the ids in this run's outputs are keyed hashes (src/util/pseudonym.ts); predict and update must be given the same key to match them. */
  pseudonymizedIds?: boolean;
  idColumn: string | null;
  weightColumn: string | null;
  /** Names of the matrix columns (numeric features, then one-hot columns). */
  featureNames: string[];
  preprocessing: PreprocessState;
  k: number;
  /** k rows of featureNames.length values: the space the distances are measured in. */
  centroidsScaled: number[][];
  /** The same centroids in the input's units (one-hot columns as shares). */
  centroidsOriginal: number[][];
  params: {
    nInit: number;
    maxIter: number;
    tol: number;
    seed: number;
    init: string;
    /** The method (absent in models before issue 14: kmeans); its own parameters sit beside. */
    method?: string;
    [methodParam: string]: unknown;
    batchSize?: number;
    nSteps?: number;
    /** Present when k was chosen by `--k auto`. */
    k?: 'auto';
    kRange?: number[];
  };
  backend: string;
  seed: number;
  /**
   * The segment id of each centroid row (ascending). Absent: 0..k-1. Ids differ from the row
   * numbers once a fit is aligned to an earlier one (`--align-to`): matched segments keep the
   * earlier ids, new ones get ids never used before.
   */
  segmentIds?: number[];
  /** The next id a new segment gets (one more than any id this model's line has used). */
  nextSegmentId?: number;
  /** Rows (summed weights) behind each centroid row: a mini-batch fit's counts, or the fit's segment sizes. `update` starts from them. */
  centreCounts?: number[];
  /** `--pca`: the projection applied after the preprocessing (see models/pca.ts); centroidsScaled are then projected back into the scaled features. */
  pca?: import('../models/pca.js').PcaModel;
  /** With `pca`: the k centroids in component space, where the method measured distances. */
  centroidsProjected?: number[][];
  /** What `predict` needs beyond the centroids for methods other than K-Means (see pipeline/methods.ts): gmm's parameters, dbscan's core points, bisecting's tree, k-prototypes' modes. */
  methodState?: unknown;
  /** With `methodState`: the segment id of each of the method's labels (its fit order). */
  labelIds?: number[];
  /** Set by `segtensor update`: the model it updated, and how. */
  updatedFrom?: { dir: string; runId: string; batchSize: number; steps: number; halfLife: { rows: number } | { days: number } | null; reassignmentRatio: number };
}

/** The segment id of each centroid row. */
export function segmentIdsOf(m: Pick<ModelFile, 'k' | 'segmentIds'>): number[] {
  return m.segmentIds ?? Array.from({ length: m.k }, (_, j) => j);
}

/**
 * Each row's segment id from its centroid row (`segIds[row]`, negative rows such as noise kept):
 * a plain loop, since a typed array's `map` with a function costs ~0.2 s per million rows. The
 * rows themselves when the ids are the rows'.
 */
export function segmentsOf(rows: Int32Array, segIds: readonly number[]): Int32Array {
  if (segIds.every((id, j) => id === j)) return rows;
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = rows[i] < 0 ? rows[i] : segIds[rows[i]];
  return out;
}

/**
 * Centroid rows in ascending segment id, given each fitted centroid's id (`idOf[j]`, from
 * `--align-to`, else j): `order[p]` is the centroid at row p, `rowOf[j]` centroid j's row.
 */
export function idOrder(idOf: readonly number[]): { order: number[]; rowOf: Int32Array; segmentIds: number[]; plainIds: boolean } {
  const order = idOf.map((_, j) => j).sort((a, b) => idOf[a] - idOf[b]);
  const rowOf = new Int32Array(idOf.length);
  order.forEach((j, p) => (rowOf[j] = p));
  return { order, rowOf, segmentIds: order.map((j) => idOf[j]), plainIds: idOf.every((id, j) => id === j) };
}

/**
 * Opens a `segtensor fit` run (its directory, or its model.json), checks the run against its
 * manifest and reads model.json, checking its format version.
 */
export async function openModel(dirOrFile: string, option = '--model'): Promise<{ model: ModelFile; run: OpenRun }> {
  const target = path.basename(dirOrFile) === 'model.json' ? path.dirname(dirOrFile) : dirOrFile;
  if (!fs.existsSync(target)) throw new SegtensorError('FILE_NOT_FOUND', `${option} '${dirOrFile}': no such directory`);
  const run = await openRun(target, option, ['fit', 'update']);
  return { model: modelOf(run, option), run };
}

/** model.json of a `segtensor fit` run already opened (and checked) by {@link openRun}. */
export function modelOf(run: OpenRun, option = '--model'): ModelFile {
  const file = run.file('model.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${run.dir}': no model at ${file}`);
  }
  let m: ModelFile;
  try {
    m = JSON.parse(text) as ModelFile;
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m?.format !== MODEL_FORMAT) {
    throw new SegtensorError('MODEL_VERSION', `${file}: not a segtensor K-Means model (format '${String(m?.format)}')`);
  }
  if (m.formatVersion !== MODEL_FORMAT_VERSION) {
    throw new SegtensorError(
      'MODEL_VERSION',
      `${file}: model format version ${m.formatVersion}, this segtensor reads version ${MODEL_FORMAT_VERSION}; refit the model`,
    );
  }
  return m;
}
