/**
 * What the report shows, as plain data ({@link ReportData}), built from what a fit produced
 * ({@link ReportSource}): the profile, names and sentences, the data sample and its projection,
 * churn, transitions, the sweep and the run's metadata. The source is filled either from a
 * published run directory (./collect.ts, for `segtensor report`) or from the fit in memory
 * (`fit --report`), so both draw the same report.
 *
 * @example
 * const data = await buildReportData(source);
 * const html = renderReport(data); // ./html.ts
 */
import path from 'node:path';
import type { ColumnTable } from '../io/table.js';
import type { FitMetrics } from '../pipeline/fit.js';
import type { ModelFile } from '../pipeline/model-file.js';
import type { SweepRow } from '../pipeline/sweep.js';
import { Preprocessor } from '../preprocess/preprocessor.js';
import { describeSegment, moneyColumn, nameRuleText, NOISE_SEGMENT, referenceOf, segmentNames, type ProfileLike } from './naming.js';
import { reportSample, SAMPLE_DEFAULTS, type BoxStats } from './sample.js';

/** Most profile columns the heatmap shows (those that separate the segments most). */
export const HEATMAP_MAX_COLUMNS = 30;

/** Churn scores per segment, from a `churn predict` output. */
export interface ChurnPart {
  /** The scores file. */
  source: string;
  bandNames: string[];
  perSegment: { segment: number; customers: number; meanProbability: number; bands: number[] }[];
  /** 10 uniform bins of predicted probability against the observed churn rate; null without labels. */
  calibration: { lo: number; hi: number; count: number; meanPredicted: number | null; observedRate: number | null }[] | null;
  /** The label column the calibration used, or why there is none. */
  calibrationNote: string;
}

export interface SweepPart {
  /** Where the curves come from: a sweep directory, or this fit's `--k auto`. */
  source: string;
  rows: SweepRow[];
  recommendedK: number;
  clear: boolean;
  reason: string;
}

/** Everything the report needs, gathered by the caller. */
export interface ReportSource {
  model: ModelFile;
  metrics: FitMetrics;
  profile: ProfileLike;
  /** Names as the run wrote them (segments.csv); derived by the naming rules when absent. */
  names?: string[] | null;
  /** `--names`: segment id → name, applied over the run's names. */
  overrides?: Record<number, string>;
  /** The run's input table and the segment id of each of its rows; null when not at hand (then `sampleNote` says why). */
  table: ColumnTable | null;
  segmentOf: ArrayLike<number> | null;
  sampleNote?: string;
  run: {
    runId: string;
    /** The run directory (or where it is being written). */
    dir: string;
    command: string;
    options: Record<string, unknown>;
    versions: { segtensor: string; node: string; platform: string };
    startedAt: string | null;
    endedAt: string | null;
  };
  /** transitions.csv's text, with an aligned fit. */
  transitionsCsv: string | null;
  sweep: SweepPart | null;
  churn: ChurnPart | null;
  /** Sample options. */
  sample?: { perSegment?: number; seed?: number };
  /** Extra notes (inputs that were given but could not be used). */
  notes?: string[];
}

export interface SegmentRow {
  segment: number;
  name: string;
  /** `<id>: <name>`, the key colours and axes use. */
  label: string;
  count: number;
  share: number;
  revenueShare: number | null;
  description: string;
}

export interface ReportData {
  title: string;
  generatedAt: string;
  segments: SegmentRow[];
  nameRule: string;
  /** The column the revenue share sums, or null. */
  money: string | null;
  heatmap: { columns: string[]; cells: { label: string; feature: string; mean: number; z: number }[]; basis: string };
  sample: { size: number; perSegment: number; seed: number; explained: [number, number]; points: { x: number; y: number; s: number }[] } | null;
  boxes: BoxStats[] | null;
  boxFeatures: string[];
  /** How the "distinct" differences are measured. */
  spreadBasis: string;
  churn: ChurnPart | null;
  transitions: { rows: { from: number; to: number; customers: number }[]; counts: { customersInBoth: number; onlyPrevious: number; onlyCurrent: number } | null } | null;
  sweep: SweepPart | null;
  meta: { label: string; value: string }[];
  parameters: Record<string, unknown>;
  timingsMs: Record<string, number>;
  notes: string[];
}

/** transitions.csv (`previous_segment,segment,customers`) as rows. */
export function parseTransitions(csv: string): { from: number; to: number; customers: number }[] {
  return csv
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const [from, to, customers] = l.split(',').map(Number);
      return { from, to, customers };
    });
}

/** Builds the report's data; reads nothing from disk (the caller did). */
export async function buildReportData(src: ReportSource): Promise<ReportData> {
  const { model, metrics, profile } = src;
  const notes = [...(src.notes ?? [])];
  const names = segmentNames(profile, {});
  const base = src.names && src.names.length === profile.rows.length ? src.names : names;
  const finalNames = src.overrides && Object.keys(src.overrides).length ? segmentNames({ ...profile }, { ...namesAsOverrides(profile, base, src.overrides), ...src.overrides }) : base;

  // The data sample: projection, spreads, box plots.
  let sample: Awaited<ReturnType<typeof reportSample>> | null = null;
  const perSegment = src.sample?.perSegment ?? SAMPLE_DEFAULTS.perSegment;
  const seed = src.sample?.seed ?? SAMPLE_DEFAULTS.seed;
  if (src.table && src.segmentOf) {
    sample = await reportSample(src.table, Preprocessor.fromJSON(model.preprocessing), profile, src.segmentOf, { perSegment, seed });
  } else {
    notes.push(`No data sample: ${src.sampleNote ?? 'the input table is not at hand'}. The projection and the distributions are left out, and differences are measured against the spread of the segment means.`);
  }

  const money = moneyColumn(profile.columns);
  const mc = money === null ? -1 : profile.columns.indexOf(money);
  let revenueTotal = 0;
  if (mc >= 0) for (const r of profile.rows) if (Number.isFinite(r.values[mc])) revenueTotal += r.count * r.values[mc];
  const spread = sample ? sample.pooledSd : undefined;
  const segments: SegmentRow[] = profile.rows.map((r, j) => ({
    segment: r.segment,
    name: finalNames[j],
    label: r.segment === NOISE_SEGMENT ? 'noise' : `${r.segment}: ${finalNames[j]}`,
    count: r.count,
    share: r.share,
    revenueShare: mc >= 0 && revenueTotal !== 0 && Number.isFinite(r.values[mc]) ? (r.count * r.values[mc]) / revenueTotal : null,
    description: describeSegment(profile, r.segment, finalNames[j], { spread, top: 3 }),
  }));

  // Heatmap: (segment mean − customers' mean) / customers' standard deviation.
  const ref = referenceOf(profile);
  const popMean = profile.columns.map((_, c) => {
    let n = 0;
    let s = 0;
    for (const r of profile.rows) {
      if (!Number.isFinite(r.values[c])) continue;
      n += r.count;
      s += r.count * r.values[c];
    }
    return n ? s / n : NaN;
  });
  const sd = sample ? sample.totalSd : ref.spread;
  const order = profile.columns
    .map((c, i) => [i, sample ? sample.separation[i] : 1] as const)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, HEATMAP_MAX_COLUMNS)
    .map(([i]) => i)
    .sort((a, b) => a - b);
  if (profile.columns.length > HEATMAP_MAX_COLUMNS) notes.push(`The heatmap shows the ${HEATMAP_MAX_COLUMNS} of ${profile.columns.length} feature columns that separate the segments most; segments.csv has them all.`);
  const cells: ReportData['heatmap']['cells'] = [];
  profile.rows.forEach((r, j) => {
    for (const c of order) {
      const z = (r.values[c] - popMean[c]) / sd[c];
      if (Number.isFinite(z)) cells.push({ label: segments[j].label, feature: profile.columns[c], mean: round(r.values[c], 6), z: round(z, 3) });
    }
  });

  let transitions: ReportData['transitions'] = null;
  if (src.transitionsCsv !== null) transitions = { rows: parseTransitions(src.transitionsCsv), counts: metrics.alignment?.transitions ?? null };

  const sweep = src.sweep ?? (metrics.sweep ? { source: 'this fit (--k auto)', rows: metrics.sweep.rows, recommendedK: metrics.sweep.recommendation.k, clear: metrics.sweep.recommendation.clear, reason: metrics.sweep.recommendation.reason } : null);

  const fmtQ = (v: number | null | undefined, digits: number) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
  const o = src.run.options;
  const meta: ReportData['meta'] = [
    { label: 'input', value: model.input.path },
    { label: 'rows', value: String(metrics.rows) },
    { label: 'features', value: `${metrics.features}: ${model.featureNames.join(', ')}` },
    { label: 'excluded columns', value: (model.excluded ?? []).join(', ') || 'none' },
    { label: 'id column', value: model.idColumn ?? 'none (row numbers)' },
    { label: 'weight column', value: model.weightColumn ?? 'none' },
    { label: 'method', value: String(metrics.method) },
    { label: 'segments (k)', value: `${metrics.k}${typeof metrics.noise === 'number' ? `, plus ${metrics.noise} noise rows` : ''}` },
    { label: 'preprocessing', value: `scale ${model.preprocessing.scaleKind}, impute ${model.preprocessing.imputeKind}` },
    { label: 'quality', value: `inertia ${metrics.inertia.toPrecision(7)}, silhouette ${fmtQ(metrics.silhouette, 3)} (sample of ${metrics.silhouetteSampleSize}), Calinski-Harabasz ${fmtQ(metrics.calinskiHarabasz, 1)}, Davies-Bouldin ${fmtQ(metrics.daviesBouldin, 3)}` },
    { label: 'iterations', value: `${metrics.nIter} (${metrics.converged ? 'converged' : 'not converged'})` },
    { label: 'backend', value: metrics.backend },
    { label: 'run', value: `${src.run.runId} (${src.run.dir})` },
    { label: 'command', value: `segtensor ${src.run.command}` },
    ...(src.run.startedAt ? [{ label: 'started / ended', value: `${src.run.startedAt} / ${src.run.endedAt ?? 'n/a'}` }] : []),
    { label: 'versions', value: `segtensor ${src.run.versions.segtensor} (model written by ${model.segtensorVersion}), Node ${src.run.versions.node}, ${src.run.versions.platform}` },
  ];
  if (model.pca) meta.push({ label: 'PCA (--pca)', value: `${model.pca.nComponents} components` });
  if (metrics.alignment) meta.push({ label: 'aligned to', value: `${metrics.alignment.previous.dir} (run ${metrics.alignment.previous.runId})` });
  if (sample && src.table) meta.push({ label: 'report sample', value: `${sample.size} rows: at most ${perSegment} per segment, seed ${seed}` });

  return {
    title: `Segments of ${path.basename(model.input.path)}`,
    generatedAt: new Date().toISOString(),
    segments,
    nameRule: nameRuleText(profile) + (src.overrides && Object.keys(src.overrides).length ? ` Names of segments ${Object.keys(src.overrides).join(', ')} come from the names file.` : ''),
    money,
    heatmap: { columns: order.map((c) => profile.columns[c]), cells, basis: sample ? 'standard deviations of the customers (from the sample)' : 'spread of the segment means (no data sample)' },
    sample: sample ? { size: sample.size, perSegment, seed, explained: sample.explained, points: sample.points } : null,
    boxes: sample ? sample.boxes : null,
    boxFeatures: sample ? sample.boxFeatures : [],
    spreadBasis: sample ? 'pooled within-segment standard deviations (from the sample)' : 'the spread of the segment means',
    churn: src.churn,
    transitions,
    sweep,
    meta,
    parameters: { ...model.params, ...pick(o, ['features', 'exclude', 'categoricalColumns', 'pca', 'alignTo', 'warmStart']) },
    timingsMs: metrics.timingsMs,
    notes,
  };
}

/** The run's names as overrides for every row not overridden, so that `--names` changes only its own segments. */
function namesAsOverrides(p: ProfileLike, names: string[], overrides: Record<number, string>): Record<number, string> {
  const taken = new Set(Object.values(overrides));
  const out: Record<number, string> = {};
  p.rows.forEach((r, j) => {
    if (!Object.hasOwn(overrides, r.segment) && !taken.has(names[j])) out[r.segment] = names[j];
  });
  return out;
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined && o[k] !== null).map((k) => [k, o[k]]));
}

function round(v: number, digits: number): number {
  if (!Number.isFinite(v)) return v;
  return Number(v.toPrecision(digits));
}
