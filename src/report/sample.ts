/**
 * The report's data sample: a seeded sample of at most `perSegment` rows of each segment, its
 * 2-D PCA projection (of the rows as the model's preprocessing scales them), and statistics in the
 * input's units that the report draws and writes about: the pooled within-segment spread of each
 * feature, box-plot figures per segment and how strongly each feature separates the segments.
 *
 * Sampled rows stand for their segment: segment j's rows weigh size_j / sampled_j in every
 * statistic, so small segments are seen (up to `perSegment` rows each) without skewing the
 * population figures.
 *
 * @example
 * const s = await reportSample(table, pre, profile, segmentOfRow, { perSegment: 2000, seed: 0 });
 * s.points; // [{ x, y, s }] for the scatter
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend, BackendName } from '../engine/backend.js';
import { numericChunks, ColumnTable, type Column } from '../io/table.js';
import type { Preprocessor } from '../preprocess/preprocessor.js';
import { quantileSorted } from '../preprocess/stats.js';
import { Random } from '../util/random.js';
import type { ProfileLike } from './naming.js';

export interface SampleOptions {
  /** Rows sampled per segment at most. Default 2,000. */
  perSegment: number;
  /** Seed of the sample. Default 0. */
  seed: number;
}

export const SAMPLE_DEFAULTS: Readonly<SampleOptions> = Object.freeze({ perSegment: 2000, seed: 0 });

/** Box-plot figures of one feature in one segment (whiskers at the last values within 1.5 IQR of the box). */
export interface BoxStats {
  feature: string;
  segment: number;
  lo: number;
  q1: number;
  median: number;
  q3: number;
  hi: number;
}

export interface ReportSample {
  /** Rows sampled (all segments). */
  size: number;
  /** Each sampled row: its coordinates on the first two principal components and its segment. */
  points: { x: number; y: number; s: number }[];
  /** Variance share of the two components. */
  explained: [number, number];
  /** Per profile column: the pooled within-segment standard deviation (weighted), in input units. */
  pooledSd: number[];
  /** Per profile column: the customers' standard deviation (weighted). */
  totalSd: number[];
  /** Per profile column: between-segment share of the variance (η², correlation ratio), weighted. */
  separation: number[];
  /** Box-plot figures of the `boxFeatures` numeric features that separate segments most. */
  boxes: BoxStats[];
  boxFeatures: string[];
}

/**
 * Seeded stratified sample: for each segment id (noise −1 included), at most `perSegment` of its
 * rows, drawn without replacement (partial Fisher-Yates over its rows). Returns the row indices in
 * ascending order.
 *
 * @example
 * stratifiedSample(Int32Array.from([0, 0, 1, 0]), 2, 0); // e.g. Int32Array [0, 2, 3]
 */
export function stratifiedSample(segments: ArrayLike<number>, perSegment: number, seed: number): Int32Array {
  const ids = new Map<number, number>();
  for (let i = 0; i < segments.length; i++) ids.set(segments[i], (ids.get(segments[i]) ?? 0) + 1);
  const keys = [...ids.keys()].sort((a, b) => a - b);
  const members = new Map(keys.map((k) => [k, new Int32Array(ids.get(k)!)]));
  const fill = new Map(keys.map((k) => [k, 0]));
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    const at = fill.get(s)!;
    members.get(s)![at] = i;
    fill.set(s, at + 1);
  }
  const rng = new Random(seed);
  const out: number[] = [];
  for (const k of keys) {
    const m = members.get(k)!;
    const take = Math.min(perSegment, m.length);
    for (let i = 0; i < take; i++) {
      const j = i + rng.int(m.length - i);
      const t = m[i];
      m[i] = m[j];
      m[j] = t;
      out.push(m[i]);
    }
  }
  return Int32Array.from(out).sort();
}

/** The rows `idx` (ascending) of the named columns, without materialising whole chunked columns. */
export function takeColumns(table: ColumnTable, names: string[], idx: Int32Array): ColumnTable {
  const cols = names.map((name): Column => {
    const c = table.column(name);
    if (c.type === 'number' || c.type === 'timestamp') {
      const out = new Float64Array(idx.length);
      let base = 0;
      let r = 0;
      for (const { values, nulls } of numericChunks(c)) {
        const end = base + values.length;
        for (; r < idx.length && idx[r] < end; r++) {
          const i = idx[r] - base;
          out[r] = nulls && nulls[i] ? NaN : values[i];
        }
        base = end;
      }
      return { name, type: c.type, values: out };
    }
    if (c.type === 'bigint') {
      const values = new BigInt64Array(idx.length);
      const nulls = c.nulls ? new Uint8Array(idx.length) : null;
      idx.forEach((i, r) => {
        values[r] = c.values[i];
        if (nulls) nulls[r] = c.nulls![i];
      });
      return { name, type: 'bigint', values, nulls };
    }
    if (c.type === 'string') return { name, type: 'string', values: Array.from(idx, (i) => c.values[i]) };
    return c;
  });
  return new ColumnTable(table.path, idx.length, cols);
}

/** A backend on this machine's CPU: the report computes nothing on an accelerator. */
async function hostBackend(): Promise<Backend> {
  await import('../engine/backends/index.js');
  const { getBackend } = await import('../engine/registry.js');
  let last: unknown = null;
  for (const name of ['native', 'wasm', 'cpu'] as BackendName[]) {
    try {
      return await getBackend(name);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/**
 * Samples `table` (the run's input, rows aligned with `segmentOf`), projects the sample on its
 * first two principal components and computes the per-feature statistics.
 *
 * @param profile the run's profile: its columns name the statistics' columns, its counts weigh the sample.
 * @param boxFeatures how many numeric features get box plots (those with the largest η²). Default 4.
 */
export async function reportSample(
  table: ColumnTable,
  pre: Preprocessor,
  profile: ProfileLike,
  segmentOf: ArrayLike<number>,
  o: Partial<SampleOptions> & { boxFeatures?: number } = {},
): Promise<ReportSample> {
  const { perSegment, seed } = { ...SAMPLE_DEFAULTS, ...o };
  const idx = stratifiedSample(segmentOf, perSegment, seed);
  const sub = takeColumns(table, pre.inputColumns, idx);
  const x: Matrix = pre.transform(sub);
  const seg = Int32Array.from(idx, (i) => segmentOf[i]);
  const n = idx.length;

  // Weights: each sampled row stands for size / sampled rows of its segment.
  const sizeOf = new Map(profile.rows.map((r) => [r.segment, r.count]));
  const sampled = new Map<number, number>();
  for (const s of seg) sampled.set(s, (sampled.get(s) ?? 0) + 1);
  const w = Float64Array.from(seg, (s) => (sizeOf.get(s) ?? sampled.get(s)!) / sampled.get(s)!);

  // 2-D projection of the scaled rows.
  let xy: Float32Array;
  let explained: [number, number] = [0, 0];
  const d = x.nFeatures;
  if (d >= 2 && n >= 3) {
    const { fitPca, applyPca } = await import('../models/pca.js');
    const be = await hostBackend();
    const model = await fitPca(be, x, null, { components: 2 });
    xy = applyPca(model, x).data;
    explained = [model.explainedVarianceRatio[0] ?? 0, model.explainedVarianceRatio[1] ?? 0];
  } else {
    xy = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) xy[2 * i] = d ? x.data[i * d] : 0;
  }
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const points = Array.from(seg, (s, i) => ({ x: round(xy[2 * i]), y: round(xy[2 * i + 1]), s }));

  // Per profile column, the sampled values in input units: numeric columns from the table,
  // one-hot columns (`col=value`) from the matrix (0/1 there, as the profile's shares).
  const numericNames = new Set(pre.state.numeric.map((s) => s.name));
  const valuesOf = (col: string): Float64Array => {
    if (numericNames.has(col)) return Float64Array.from(sub.numeric(col));
    const f = pre.featureNames.indexOf(col);
    return Float64Array.from({ length: n }, (_, i) => (f < 0 ? NaN : x.data[i * d + f]));
  };
  const pooledSd: number[] = [];
  const totalSd: number[] = [];
  const separation: number[] = [];
  const columnValues = profile.columns.map(valuesOf);
  for (const v of columnValues) {
    const sum = new Map<number, [number, number]>();
    let W = 0;
    let S = 0;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(v[i])) continue;
      const a = sum.get(seg[i]) ?? [0, 0];
      a[0] += w[i];
      a[1] += w[i] * v[i];
      sum.set(seg[i], a);
      W += w[i];
      S += w[i] * v[i];
    }
    const grand = S / W;
    let within = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(v[i])) continue;
      const [ws, ss] = sum.get(seg[i])!;
      within += w[i] * (v[i] - ss / ws) ** 2;
      total += w[i] * (v[i] - grand) ** 2;
    }
    pooledSd.push(W > 0 ? Math.sqrt(within / W) : NaN);
    totalSd.push(W > 0 ? Math.sqrt(total / W) : NaN);
    separation.push(total > 0 ? 1 - within / total : 0);
  }

  // Box plots for the numeric features that separate the segments most.
  const nBox = o.boxFeatures ?? 4;
  const boxFeatures = profile.columns
    .map((c, i) => [c, separation[i], i] as const)
    .filter(([c]) => numericNames.has(c))
    .sort((a, b) => b[1] - a[1] || a[2] - b[2])
    .slice(0, nBox)
    .map(([c]) => c);
  const segIds = [...sampled.keys()].sort((a, b) => a - b);
  const boxes: BoxStats[] = [];
  for (const feature of boxFeatures) {
    const v = columnValues[profile.columns.indexOf(feature)];
    for (const s of segIds) {
      const vals: number[] = [];
      for (let i = 0; i < n; i++) if (seg[i] === s && Number.isFinite(v[i])) vals.push(v[i]);
      if (!vals.length) continue;
      const sorted = Float64Array.from(vals).sort();
      const q1 = quantileSorted(sorted, 0.25);
      const q3 = quantileSorted(sorted, 0.75);
      const iqr = q3 - q1;
      // Whiskers: the most extreme values still within 1.5 IQR of the box (Tukey).
      const lo = sorted.find((x) => x >= q1 - 1.5 * iqr) ?? sorted[0];
      let top = sorted.length - 1;
      while (top > 0 && sorted[top] > q3 + 1.5 * iqr) top--;
      const hi = sorted[top];
      boxes.push({ feature, segment: s, lo, q1, median: quantileSorted(sorted, 0.5), q3, hi });
    }
  }
  return { size: n, points, explained, pooledSd, totalSd, separation, boxes, boxFeatures };
}
