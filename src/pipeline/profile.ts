/**
 * Segment profiles: size, share and the mean of each input feature per segment, in the
 * input's units (nulls ignored), plus category shares for one-hot features.
 */
import type { Matrix } from '../core/matrix.js';
import { numericChunks, type ColumnTable, type NumericChunk } from '../io/table.js';
import type { Preprocessor } from '../preprocess/preprocessor.js';
import { nativeHelper } from '../util/native-addon.js';

type LabelSums = (cols: NumericChunk['values'][][], nulls: (Uint8Array | null)[][], labels: Int32Array, k: number) => Float64Array;

export interface SegmentProfile {
  columns: string[];
  rows: { segment: number; count: number; share: number; values: number[] }[];
}

export function profileSegments(table: ColumnTable, pre: Preprocessor, x: Matrix, labels: Int32Array, k: number): SegmentProfile {
  const p = new ProfileSums(pre, k);
  p.add(table, x, labels);
  return p.result();
}

/**
 * Segment profiles added up batch by batch: {@link profileSegments} is one batch of it (a whole
 * table), a table read in blocks (`--memory-limit`) adds each batch with its preprocessed rows and
 * labels; the same additions in the same row order, so both give the same profile.
 *
 * @example
 * const p = new ProfileSums(pre, k);
 * for await (const b of batches) p.add(b, pre.transform(b), labelsOf(b));
 * const profile = p.result();
 */
export class ProfileSums {
  private readonly count: Float64Array;
  private readonly sums: Float64Array[];
  private readonly cnts: Float64Array[];
  private nRows = 0;

  constructor(
    private readonly pre: Preprocessor,
    private readonly k: number,
  ) {
    const d = pre.state.featureNames.length;
    this.count = new Float64Array(k);
    this.sums = Array.from({ length: d }, () => new Float64Array(k));
    this.cnts = pre.state.numeric.map(() => new Float64Array(k));
  }

  /** One batch: its input columns, its preprocessed rows, and the segment row of each. */
  add(b: ColumnTable, x: Matrix, labels: Int32Array): void {
    const { numeric } = this.pre.state;
    for (let i = 0; i < labels.length; i++) this.count[labels[i]]++;
    const chunks = numeric.map((s) => numericChunks(b.numericColumn(s.name)));
    // The first batch (a whole table in memory) in the addon when it is built: its sums start
    // from zero and add in row order per label, so they are the loop's bits.
    const native = this.nRows === 0 && chunks.length ? nativeHelper<LabelSums>('labelSums') : null;
    const all = native?.(
      chunks.map((cs) => cs.map((c) => c.values)),
      chunks.map((cs) => cs.map((c) => c.nulls)),
      labels,
      this.k,
    );
    chunks.forEach((cs, c) => {
      const sum = this.sums[c];
      const cnt = this.cnts[c];
      if (all) {
        sum.set(all.subarray(2 * this.k * c, 2 * this.k * c + this.k));
        cnt.set(all.subarray(2 * this.k * c + this.k, 2 * this.k * (c + 1)));
        return;
      }
      let row = 0;
      for (const { values, nulls } of cs) {
        for (let i = 0; i < values.length; i++, row++) {
          const v = Number(values[i]);
          if ((nulls && nulls[i]) || Number.isNaN(v)) continue;
          sum[labels[row]] += v;
          cnt[labels[row]]++;
        }
      }
    });
    const d = x.nFeatures;
    for (let f = numeric.length; f < d; f++) {
      const sum = this.sums[f];
      for (let i = 0; i < labels.length; i++) sum[labels[i]] += x.data[i * d + f];
    }
    this.nRows += labels.length;
  }

  result(): SegmentProfile {
    const { numeric, featureNames } = this.pre.state;
    const columns = [...numeric.map((s) => s.name), ...featureNames.slice(numeric.length)];
    const values = this.sums.map((sum, c) => sum.map((t, j) => (c < numeric.length ? (this.cnts[c][j] ? t / this.cnts[c][j] : NaN) : this.count[j] ? t / this.count[j] : NaN)));
    const rows = [...this.count.keys()].map((j) => ({ segment: j, count: this.count[j], share: this.count[j] / this.nRows, values: values.map((v) => v[j]) }));
    return { columns, rows };
  }
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(6)).toString();
}

/** CSV text: segment,count,share,<feature means...>, and a last column `name` when `names` (one per row) are given. */
export function profileCsv(p: SegmentProfile, names?: string[]): string {
  const quote = (c: string) => (/[",\n]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c);
  const head = ['segment', 'count', 'share', ...p.columns, ...(names ? ['name'] : [])].map(quote);
  const lines = [head.join(',')];
  p.rows.forEach((r, j) => {
    const cells = [r.segment, r.count, r.share, ...r.values].map((v) => (Number.isNaN(v) ? '' : String(v)));
    if (names) cells.push(quote(names[j]));
    lines.push(cells.join(','));
  });
  return lines.join('\n') + '\n';
}

/** A fixed-width text table for the terminal; wide profiles show the first `maxColumns` features. */
export function profileTable(p: SegmentProfile, maxColumns = 8): string {
  const cols = p.columns.slice(0, maxColumns);
  const header = ['segment', 'count', 'share', ...cols];
  const body = p.rows.map((r) => [String(r.segment), String(r.count), (r.share * 100).toFixed(1) + '%', ...r.values.slice(0, maxColumns).map(fmt)]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  const more = p.columns.length > maxColumns ? `\n(${p.columns.length - maxColumns} more feature columns in segments.csv)` : '';
  return [line(header), ...body.map(line)].join('\n') + more;
}
