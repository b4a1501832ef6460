/**
 * Reads what a report draws from published runs: a `segtensor fit` directory (model.json,
 * metrics.json, segments.csv, assignments, transitions.csv, and the input table its manifest
 * names), optionally a `segtensor churn predict` output and a `segtensor sweep` directory. Every
 * run is opened through its manifest (src/io/run-dir.ts), so a half-written or edited run is
 * refused, naming the option.
 *
 * @example
 * const src = await sourceFromRuns({ run: 'out/', churn: 'scores.parquet', sweep: 'sweep/' });
 */
import fs from 'node:fs';
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { calibrationTable } from '../eval/classification.js';
import { readTable } from '../io/read-table.js';
import { hashFile, openRun, type OpenRun } from '../io/run-dir.js';
import type { ColumnTable } from '../io/table.js';
import { parseLabel } from '../models/churn/data.js';
import type { FitMetrics } from '../pipeline/fit.js';
import { idColumn, idKeys } from '../pipeline/ids.js';
import { modelOf, segmentIdsOf, type ModelFile } from '../pipeline/model-file.js';
import type { Recommendation, SweepRow } from '../pipeline/sweep.js';
import type { ChurnPart, ReportSource, SweepPart } from './data.js';
import { readNamesFile, type ProfileLike } from './naming.js';

/** Splits one CSV line (quotes as RFC 4180). @internal */
export function csvCells(line: string): string[] {
  const out: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted && ch === '"' && line[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      out.push(cell);
      cell = '';
    } else {
      cell += ch;
    }
  }
  out.push(cell);
  return out;
}

/**
 * segments.csv as a profile, and its `name` column when the run wrote one: `segment,count,share`,
 * one column per feature (`nFeatures` of them), then `name`.
 */
export function parseSegmentsCsv(text: string, nFeatures: number, file = 'segments.csv'): { profile: ProfileLike; names: string[] | null } {
  const lines = text.replace(/\r/g, '').split('\n').filter((l) => l !== '');
  const head = csvCells(lines[0] ?? '');
  const hasNames = head.length === 3 + nFeatures + 1 && head[head.length - 1] === 'name';
  if (head.slice(0, 3).join(',') !== 'segment,count,share' || head.length !== 3 + nFeatures + (hasNames ? 1 : 0)) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: expected the columns segment, count, share and ${nFeatures} feature means${hasNames ? ', name' : ''}; got ${head.length} columns`);
  }
  const columns = head.slice(3, 3 + nFeatures);
  const names: string[] = [];
  const rows = lines.slice(1).map((l) => {
    const c = csvCells(l);
    if (hasNames) names.push(c[c.length - 1]);
    return { segment: Number(c[0]), count: Number(c[1]), share: Number(c[2]), values: c.slice(3, 3 + nFeatures).map((v) => (v === '' ? NaN : Number(v))) };
  });
  return { profile: { columns, rows }, names: hasNames ? names : null };
}

function readJson<T>(file: string, option: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${option}: ${file} is not readable JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/** The fit's assignments file in `run`, or null. */
function assignmentsOf(run: OpenRun): string | null {
  const f = ['assignments.arrow', 'assignments.parquet'].find((n) => run.has(n));
  return f ? run.file(f) : null;
}

export interface RunsJob {
  /** A `segtensor fit` (or `update`) output directory. */
  run: string;
  /** A `segtensor churn predict` output (the scores file). */
  churn?: string | null;
  /** A `segtensor sweep` output directory. */
  sweep?: string | null;
  /** A names file (`{ "<segment id>": "name" }`). */
  names?: string | null;
  /** Rows per segment in the sample. Default 2,000. */
  sample?: number;
  /** Seed of the sample. Default 0. */
  seed?: number;
}

/** The report's source from published runs; `record` hears every file read, for the report's manifest. */
export async function sourceFromRuns(job: RunsJob, record: (file: string) => void = () => {}, log: (l: string) => void = () => {}): Promise<ReportSource> {
  const run = await openRun(job.run, '--run', ['fit', 'update']);
  const model = modelOf(run, '--run');
  record(run.file('model.json'));
  const metrics = readJson<FitMetrics>(run.file('metrics.json'), '--run');
  if (!run.has('segments.csv')) throw new SegtensorError('CORRUPT_FILE', `--run '${job.run}': the run has no segments.csv`);
  const { profile, names } = parseSegmentsCsv(fs.readFileSync(run.file('segments.csv'), 'utf8'), model.featureNames.length, run.file('segments.csv'));
  const ids = profile.rows.map((r) => r.segment);
  const overrides = job.names ? readNamesFile(job.names, ids) : {};
  if (job.names) record(job.names);
  const notes: string[] = [];

  // The input table, when it is still the one the run read (rows in the assignments' order).
  let table: ColumnTable | null = null;
  let segmentOf: Float64Array | null = null;
  let assignments: ColumnTable | null = null;
  let sampleNote: string | undefined;
  const af = assignmentsOf(run);
  const input = model.input.path;
  const recorded = run.manifest.inputs.find((i) => i.resolved === input);
  if (!af) sampleNote = 'the run has no assignments file';
  else if (!fs.existsSync(input)) sampleNote = `the input table ${input} is no longer there`;
  else {
    const h = await hashFile(input);
    if (recorded && (h.sha256 !== recorded.sha256 || h.bytes !== recorded.bytes)) sampleNote = `the input table ${input} changed after the run (its SHA-256 differs from the manifest's)`;
    else {
      log(`reading ${input} and ${path.basename(af)}`);
      const o = run.manifest.options as { dtypes?: Record<string, 'string'>; categoricalColumns?: string[]; coerceInvalid?: boolean };
      const dtypes: Record<string, string> = { ...(o.dtypes ?? {}) };
      for (const c of o.categoricalColumns ?? []) dtypes[c] = 'string';
      table = await readTable(input, '--run', { dtypes: Object.keys(dtypes).length ? (dtypes as never) : undefined, coerceInvalid: o.coerceInvalid });
      assignments = await readTable(af, '--run');
      record(input);
      record(af);
      if (assignments.nRows !== table.nRows) {
        sampleNote = `${path.basename(af)} has ${assignments.nRows} rows, the input table ${table.nRows}`;
        table = null;
      } else segmentOf = assignments.numeric('segment');
    }
  }

  let transitionsCsv: string | null = null;
  if (metrics.alignment?.transitions && run.has('transitions.csv')) {
    transitionsCsv = fs.readFileSync(run.file('transitions.csv'), 'utf8');
    record(run.file('transitions.csv'));
  } else if (metrics.alignment) notes.push('The run was aligned without --id, so there are no transitions to draw.');

  const sweep = job.sweep ? await readSweep(job.sweep, record) : null;
  const churn = job.churn ? await readChurn(job.churn, model, assignments, segmentIdsOf(model), record, log) : null;
  const m = run.manifest;
  return {
    model,
    metrics,
    profile,
    names,
    overrides,
    table,
    segmentOf,
    sampleNote,
    run: { runId: m.runId, dir: run.dir, command: m.command, options: m.options, versions: m.versions, startedAt: m.startedAt, endedAt: m.endedAt },
    transitionsCsv,
    sweep,
    churn,
    sample: { perSegment: job.sample, seed: job.seed },
    notes,
  };
}

/** sweep.json of a `segtensor sweep` directory. */
async function readSweep(dir: string, record: (f: string) => void): Promise<SweepPart> {
  const run = await openRun(dir, '--sweep', ['sweep']);
  if (!run.has('sweep.json')) throw new SegtensorError('CORRUPT_FILE', `--sweep '${dir}': the run has no sweep.json`);
  record(run.file('sweep.json'));
  const j = readJson<{ sweep: SweepRow[]; recommendation: Recommendation }>(run.file('sweep.json'), '--sweep');
  return { source: `${dir} (run ${run.manifest.runId})`, rows: j.sweep, recommendedK: j.recommendation.k, clear: j.recommendation.clear, reason: j.recommendation.reason };
}

/**
 * A `churn predict` output: mean P(churn) and band counts per segment, and the calibration table
 * when the scored table holds the churn model's label column.
 */
async function readChurn(target: string, model: ModelFile, assignments: ColumnTable | null, segmentIds: number[], record: (f: string) => void, log: (l: string) => void): Promise<ChurnPart> {
  const run = await openRun(target, '--churn', ['churn predict']);
  const real = fs.realpathSync(target);
  const scoresName = fs.statSync(real).isFile() ? path.basename(real) : path.basename(String(run.manifest.options.out ?? ''));
  if (!run.has(scoresName)) throw new SegtensorError('BAD_INPUT', `--churn '${target}': name the scores file that \`segtensor churn predict --out\` wrote`);
  const scores = await readTable(run.file(scoresName), '--churn');
  record(run.file(scoresName));
  const p = scores.numeric('churn_probability');
  const bandCol = scores.column('risk_band');
  const band = bandCol.type === 'string' ? bandCol.values : [];

  // The churn model's metadata: band order and the label column.
  const metaFile = run.manifest.inputs.find((i) => path.basename(i.resolved) === 'churn.json')?.resolved;
  let meta: { label?: { column: string; positive: string }; riskBands?: { bands: { name: string }[] } } = {};
  if (metaFile && fs.existsSync(metaFile)) meta = readJson(metaFile, '--churn');
  const present = [...new Set(band.filter((b): b is string => b !== null))];
  const ordered = meta.riskBands?.bands.map((b) => b.name) ?? ['low', 'medium', 'high', 'critical'];
  const bandNames = [...ordered.filter((b) => present.includes(b)), ...present.filter((b) => !ordered.includes(b))];

  // Each scored row's segment: the scores' own column, or the fit's assignments joined by id.
  let seg: ArrayLike<number> | null = null;
  if (scores.has('segment')) seg = scores.numeric('segment');
  else if (assignments && model.idColumn && scores.has(model.idColumn) && assignments.has(model.idColumn)) {
    const map = new Map<string, number>();
    const a = assignments.numeric('segment');
    idKeys(idColumn(assignments, model.idColumn, false).values).forEach((k, i) => map.set(k, a[i]));
    seg = idKeys(idColumn(scores, model.idColumn, false).values).map((k) => map.get(k) ?? NaN);
  }
  if (!seg) throw new SegtensorError('BAD_INPUT', `--churn '${target}': the scores have no segment column (run \`churn predict\` with --segments) and no id column in common with the fit's assignments`);
  const bySeg = new Map<number, { n: number; sum: number; bands: number[] }>();
  let outside = 0;
  for (let i = 0; i < p.length; i++) {
    const s = seg[i];
    if (!segmentIds.includes(s) && s !== -1) {
      outside++;
      continue;
    }
    const a = bySeg.get(s) ?? { n: 0, sum: 0, bands: new Array<number>(bandNames.length).fill(0) };
    a.n++;
    a.sum += p[i];
    const b = bandNames.indexOf(band[i] ?? '');
    if (b >= 0) a.bands[b]++;
    bySeg.set(s, a);
  }
  const perSegment = [...bySeg.entries()].sort((a, b) => a[0] - b[0]).map(([segment, a]) => ({ segment, customers: a.n, meanProbability: a.sum / a.n, bands: a.bands }));

  // Calibration needs outcomes: the label column of the scored table, when it has one.
  let calibration: ChurnPart['calibration'] = null;
  let calibrationNote: string;
  const scored = run.manifest.inputs.find((i) => !['churn.json', 'weights.bin'].includes(path.basename(i.resolved)));
  const label = meta.label?.column;
  if (!label) calibrationNote = 'the churn model metadata (churn.json) is not at hand, so the label column is unknown';
  else if (!scored || !fs.existsSync(scored.resolved)) calibrationNote = `the scored table is no longer there, so its '${label}' outcomes are unknown`;
  else {
    const h = await hashFile(scored.resolved);
    const t = h.sha256 === scored.sha256 ? await readTable(scored.resolved, '--churn') : null;
    if (!t) calibrationNote = `the scored table ${scored.resolved} changed after scoring`;
    else if (!t.has(label)) calibrationNote = `the scored table ${path.basename(scored.resolved)} has no label column '${label}' (scores of customers whose outcome is not known yet)`;
    else if (t.nRows !== p.length) calibrationNote = `the scored table has ${t.nRows} rows, the scores ${p.length}`;
    else {
      try {
        const y = parseLabel(t, label, meta.label!.positive, false).y;
        calibration = calibrationTable(y, p, 10);
        calibrationNote = `observed '${label}' = ${meta.label!.positive} in ${path.basename(scored.resolved)}`;
        record(scored.resolved);
      } catch (e) {
        calibrationNote = `the label column '${label}' cannot be read as outcomes (${(e as Error).message})`;
      }
    }
  }
  if (outside) log(`notice: ${outside} scored rows belong to segments this run does not have; left out of the churn charts`);
  return { source: run.file(scoresName), bandNames, perSegment, calibration, calibrationNote };
}
