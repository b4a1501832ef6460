/**
 * Stable segment ids night after night (`fit --align-to`, `--warm-start`): a new fit's segments
 * are matched to a previous model's by minimum-cost assignment of their centroids, compared in
 * the previous model's scaled units, and take the previous ids; customers' moves between the two
 * runs are counted by id (`transitions.csv`).
 *
 * @example
 * const a = await alignToPrevious('out-yesterday/', pre, centroids, k);
 * a.idOf; // the id of each new centroid row
 */
import { SegtensorError } from '../errors.js';
import { linearSumAssignment, MAX_MATCHED_SEGMENTS } from '../eval/assignment.js';
import { readTable } from '../io/read-table.js';
import type { OpenRun } from '../io/run-dir.js';
import type { OutColumn } from '../io/write-table.js';
import { Preprocessor } from '../preprocess/preprocessor.js';
import { openModel, segmentIdsOf, type ModelFile } from './model-file.js';

/** What metrics.json records of an alignment. */
export interface AlignmentReport {
  /** The previous run's directory and run id. */
  previous: { dir: string; runId: string };
  /** Each matched pair: the segment's id (the previous id) and the squared distance between the centroids, in the previous model's scaled units. */
  matches: { segment: number; cost: number }[];
  /** Ids given to segments with no previous match (more segments than before): flagged new. */
  newSegments: number[];
  /** Previous ids with no match in this fit (fewer segments than before). */
  retired: number[];
  /** With --id: customers present in both runs, and in one only. */
  transitions: { customersInBoth: number; onlyPrevious: number; onlyCurrent: number } | null;
}

/** The previous model, opened and checked against this fit's features. */
export async function previousModel(dir: string, option: string, featureNames: string[]): Promise<{ model: ModelFile; run: OpenRun }> {
  const prev = await openModel(dir, option);
  const theirs = prev.model.featureNames;
  if (theirs.length !== featureNames.length || theirs.some((f, i) => f !== featureNames[i])) {
    const diff = [...theirs.filter((f) => !featureNames.includes(f)).map((f) => `-${f}`), ...featureNames.filter((f) => !theirs.includes(f)).map((f) => `+${f}`)];
    throw new SegtensorError(
      'BAD_OPTION',
      `${option} '${dir}': the previous model's features differ from this fit's (${diff.length ? diff.slice(0, 6).join(', ') : 'same names, another order'}); ` +
        'both fits need the same features (and the same categories of one-hot columns)',
    );
  }
  return prev;
}

/**
 * Initial centroids from a previous model (`--warm-start`): its centroids in the input's units,
 * carried into this fit's scaled units.
 */
export function warmStartCentroids(prev: ModelFile, pre: Preprocessor, k: number, option = '--warm-start'): Float32Array {
  if (prev.k !== k) throw new SegtensorError('BAD_OPTION', `${option}: the previous model has k = ${prev.k}; --k must be the same (got ${k})`);
  return Float32Array.from(prev.centroidsOriginal.flatMap((c) => pre.forward(c)));
}

/**
 * Matches this fit's centroids (k rows, `pre`'s scaled units) to the previous model's. Returns
 * the id of each new centroid row, the report (without transitions) and the next unused id.
 */
export function alignCentroids(
  prev: ModelFile,
  prevRun: OpenRun,
  pre: Preprocessor,
  centroids: Float32Array,
  k: number,
): { idOf: number[]; report: AlignmentReport; nextSegmentId: number } {
  if (Math.max(k, prev.k) > MAX_MATCHED_SEGMENTS) {
    throw new SegtensorError('BAD_OPTION', `--align-to matches up to ${MAX_MATCHED_SEGMENTS} segments (the matching is cubic in k); this fit has k = ${k}, the previous one ${prev.k}`);
  }
  const d = pre.featureNames.length;
  const prevPre = Preprocessor.fromJSON(prev.preprocessing);
  const original = pre.inverse(centroids, k);
  const mine = original.map((c) => prevPre.forward(c));
  const theirs = prev.centroidsScaled;
  const prevIds = segmentIdsOf(prev);
  const cost = mine.map((c) =>
    theirs.map((p) => {
      let s = 0;
      for (let f = 0; f < d; f++) s += (c[f] - p[f]) ** 2;
      return s;
    }),
  );
  const a = linearSumAssignment(cost);
  const idOf = new Array<number>(k).fill(-1);
  const matches: AlignmentReport['matches'] = [];
  a.rows.forEach((j, p) => {
    idOf[j] = prevIds[a.cols[p]];
    matches.push({ segment: idOf[j], cost: cost[j][a.cols[p]] });
  });
  let next = Math.max(prev.nextSegmentId ?? 0, ...prevIds.map((id) => id + 1));
  const newSegments: number[] = [];
  for (let j = 0; j < k; j++) {
    if (idOf[j] >= 0) continue;
    idOf[j] = next++;
    newSegments.push(idOf[j]);
  }
  const used = new Set(idOf);
  const retired = prevIds.filter((id) => !used.has(id));
  matches.sort((x, y) => x.segment - y.segment);
  return {
    idOf,
    report: { previous: { dir: prevRun.dir, runId: prevRun.manifest.runId }, matches, newSegments, retired, transitions: null },
    nextSegmentId: next,
  };
}

/** A join key for ids read from different formats: integers as bigints, text as text. */
/**
 * `--warm-start <dir>`: the previous model's centroids in this fit's scaled units, its model.json
 * recorded as an input of `run`, and a line saying where the fit starts from.
 */
export async function warmStartFrom(dir: string, pre: Preprocessor, k: number, run: { input(file: string): void }, log: (l: string) => void): Promise<Float32Array> {
  const prev = await previousModel(dir, '--warm-start', pre.featureNames);
  run.input(prev.run.file('model.json'));
  const init = warmStartCentroids(prev.model, pre, k);
  log(`starting from the centroids of ${prev.run.dir} (run ${prev.run.manifest.runId})`);
  return init;
}

/** The log line of an alignment: how many segments kept their ids, which are new and which retired. */
export function alignedLine(dir: string, report: AlignmentReport): string {
  return `aligned to ${dir}: ${report.matches.length} segments keep their ids${report.newSegments.length ? `, new: ${report.newSegments.join(', ')}` : ''}${report.retired.length ? `, retired: ${report.retired.join(', ')}` : ''}`;
}

function idKey(v: unknown): unknown {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return v;
}

/**
 * Customers from each previous segment to each new one, by id: the previous run's assignments
 * joined with this run's on the id (customers in both runs only). Returns the CSV text
 * (`previous_segment,segment,customers`, every pair with at least one customer) and the counts.
 */
export async function transitionsCsv(
  prev: ModelFile,
  prevRun: OpenRun,
  ids: OutColumn,
  segments: ArrayLike<number>,
): Promise<{ csv: string; counts: NonNullable<AlignmentReport['transitions']> }> {
  const file = ['assignments.arrow', 'assignments.parquet'].find((f) => prevRun.has(f));
  if (!file) throw new SegtensorError('FILE_NOT_FOUND', `--align-to '${prevRun.dir}': the previous run has no assignments file to count transitions from`);
  const prevName = prev.idColumn;
  if (!prevName) throw new SegtensorError('BAD_OPTION', `--align-to '${prevRun.dir}': the previous fit had no --id column, so customers cannot be followed between runs`);
  const t = await readTable(prevRun.file(file), '--align-to');
  const prevIds = t.column(prevName);
  const prevSeg = t.numeric('segment');
  const before = new Map<unknown, number>();
  const values = prevIds.type === 'string' || prevIds.type === 'bigint' || prevIds.type === 'number' ? prevIds.values : [];
  for (let i = 0; i < t.nRows; i++) before.set(idKey(values[i]), prevSeg[i]);
  const pairs = new Map<string, number>();
  let both = 0;
  for (let i = 0; i < segments.length; i++) {
    const p = before.get(idKey(ids.values[i]));
    if (p === undefined) continue;
    both++;
    const key = `${p},${segments[i]}`;
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
  }
  const rows = [...pairs.entries()]
    .map(([key, n]) => [...key.split(',').map(Number), n])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const csv = ['previous_segment,segment,customers', ...rows.map((r) => r.join(','))].join('\n') + '\n';
  return { csv, counts: { customersInBoth: both, onlyPrevious: t.nRows - both, onlyCurrent: segments.length - both } };
}
