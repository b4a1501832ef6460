/**
 * The preprocessing of a table read as a stream of batches (issue 17, out-of-core): the same
 * fitted steps as {@link Preprocessor.fit} on the whole table, from a few passes that each hold
 * one batch. Numeric features only (one-hot categories of a table larger than memory are not
 * supported yet, and say so).
 *
 * - Pass 1: per column, present and missing counts, the sum in row order (so the mean is the
 *   resident fit's, bit for bit), min, max, a non-finite check naming the row; and, for the median,
 *   a histogram of the top 16 bits of each value's order-preserving 64-bit key.
 * - Pass 2: the sum of squared deviations from that mean, in row order (the resident fit's
 *   two-pass standard deviation), and the median's next refinement.
 * - Further passes only while a median is not pinned down: each narrows its rank to the values
 *   sharing 16 more key bits, or, once at most {@link COLLECT_AT_MOST} values remain, collects
 *   them and selects exactly. The median is exact (the resident fit's value), for any data.
 *
 * @example
 * const pre = await fitStreaming(() => tableBatches(file), { features: ['a', 'b'], scale: 'standard', impute: 'median', path: file });
 */
import { dataRow, SegtensorError } from '../errors.js';
import { numericChunks, type ColumnTable } from '../io/table.js';
import type { ImputeKind, ScaleKind } from './kinds.js';
import { numericStep, Preprocessor, type NumericStep } from './preprocessor.js';
import { quickselectMedian } from './stats.js';

/** A bucket with at most this many values is collected and selected in memory (8 MB). */
export const COLLECT_AT_MOST = 1 << 20;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The order-preserving key of a double as two unsigned 32-bit halves (sign flipped, negatives inverted). */
function keyOf(x: number): [number, number] {
  f64[0] = x;
  const hi = u32[1];
  const lo = u32[0];
  return hi & 0x80000000 ? [~hi >>> 0, ~lo >>> 0] : [(hi | 0x80000000) >>> 0, lo];
}

/** The 16-bit digit `level` (0: most significant) of a key. */
function digit(k: [number, number], level: number): number {
  return level === 0 ? k[0] >>> 16 : level === 1 ? k[0] & 0xffff : level === 2 ? k[1] >>> 16 : k[1] & 0xffff;
}

/** The rank-th smallest present value of a column, found over passes (see the module comment). @internal */
export class RankSearch {
  /** Key digits fixed so far. */
  private prefix: number[] = [];
  private hist: Float64Array | null = new Float64Array(65536);
  private collected: number[] | null = null;
  value: number | null = null;

  constructor(
    private rank: number,
    private readonly collectAtMost = COLLECT_AT_MOST,
  ) {}

  get done(): boolean {
    return this.value !== null;
  }

  observe(x: number): void {
    if (this.value !== null) return;
    const k = keyOf(x);
    for (let l = 0; l < this.prefix.length; l++) if (digit(k, l) !== this.prefix[l]) return;
    if (this.collected) this.collected.push(x);
    else this.hist![digit(k, this.prefix.length)]++;
  }

  /** Ends a pass: narrows the rank to one bucket, or selects among the collected values. */
  endPass(): void {
    if (this.value !== null) return;
    if (this.collected) {
      const v = Float64Array.from(this.collected).sort();
      this.value = v[this.rank];
      this.collected = null;
      return;
    }
    const h = this.hist!;
    let b = 0;
    while (this.rank >= h[b]) this.rank -= h[b++];
    const inBucket = h[b];
    this.prefix.push(b);
    if (this.prefix.length === 4) {
      // Every key digit fixed: one key, one value.
      const hi = (((this.prefix[0] << 16) | this.prefix[1]) >>> 0);
      const lo = (((this.prefix[2] << 16) | this.prefix[3]) >>> 0);
      [u32[1], u32[0]] = hi & 0x80000000 ? [(hi & 0x7fffffff) >>> 0, lo] : [~hi >>> 0, ~lo >>> 0];
      this.value = f64[0];
      this.hist = null;
      return;
    }
    if (inBucket <= this.collectAtMost) {
      this.collected = [];
      this.hist = null;
    } else this.hist = new Float64Array(65536);
  }
}

export interface StreamingPreprocessOptions {
  /** Numeric feature columns, in matrix order. */
  features: string[];
  /** Their stored types (`number` or `bigint`), recorded in the model as the resident fit does. Default `number`. */
  types?: ('number' | 'bigint')[];
  scale: ScaleKind;
  impute: ImputeKind;
  /** The input's path, for messages. */
  path: string;
  /** Values a median bucket may hold to be collected rather than refined further. Default {@link COLLECT_AT_MOST}. */
  collectAtMost?: number;
}

/** Fits the preprocessing of the numeric `features` over the batches `batches()` yields (a fresh stream per call). */
export async function fitStreaming(batches: () => AsyncIterable<ColumnTable>, o: StreamingPreprocessOptions): Promise<{ pre: Preprocessor; nRows: number }> {
  const d = o.features.length;
  const log = o.scale === 'log1p';
  const slog = (x: number) => Math.sign(x) * Math.log1p(Math.abs(x));
  const present = new Float64Array(d);
  const sum = new Float64Array(d);
  /** With log1p: the sum of the raw values too (--impute mean fills with their mean). */
  const rawSum = new Float64Array(d);
  const min = new Float64Array(d).fill(Infinity);
  const max = new Float64Array(d).fill(-Infinity);
  const ss = new Float64Array(d);
  let searches: RankSearch[][] | null = null;
  let nRows = 0;

  /** Calls fn(column, value) for each present value of each feature, in row order per column. */
  const eachValue = async (fn: (c: number, x: number, row: number) => void) => {
    let base = 0;
    for await (const t of batches()) {
      for (let c = 0; c < d; c++) {
        const col = t.numericColumn(o.features[c]);
        let row = base;
        for (const { values, nulls } of numericChunks(col)) {
          for (let i = 0; i < values.length; i++, row++) {
            const x = values[i];
            if ((nulls && nulls[i]) || Number.isNaN(x)) continue;
            fn(c, x, row);
          }
        }
      }
      base += t.nRows;
    }
    return base;
  };

  nRows = await eachValue((c, x, row) => {
    if (!Number.isFinite(x)) throw new SegtensorError('NON_FINITE', `${o.path}: column '${o.features[c]}' ${dataRow(row)} is ${x}; values must be finite`);
    present[c]++;
    const v = log ? slog(x) : x;
    sum[c] += v;
    if (log) rawSum[c] += x;
    if (v < min[c]) min[c] = v;
    if (v > max[c]) max[c] = v;
  });
  if (nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${o.path}: the table has no rows`);
  for (let c = 0; c < d; c++) {
    if (present[c] === 0) throw new SegtensorError('ALL_NULL_COLUMN', `${o.path}: column '${o.features[c]}' has no values (all ${nRows} are null)`);
  }
  const mean = Float64Array.from(sum, (s, c) => s / present[c]);
  if (o.impute === 'median') {
    // The resident fit's median: the middle value, or the mean of the two middle ones.
    searches = Array.from({ length: d }, (_, c) => {
      const n = present[c];
      const cap = o.collectAtMost ?? COLLECT_AT_MOST;
      return n % 2 === 1 ? [new RankSearch((n - 1) / 2, cap)] : [new RankSearch(n / 2 - 1, cap), new RankSearch(n / 2, cap)];
    });
  }
  // Pass 2 (deviations, the medians' first digit), then as many as the medians need.
  let first = true;
  while (first || searches?.some((s) => s.some((r) => !r.done))) {
    await eachValue((c, x) => {
      if (first) {
        const t = (log ? slog(x) : x) - mean[c];
        ss[c] += t * t;
      }
      if (searches) for (const r of searches[c]) r.observe(x);
    });
    if (searches) for (const s of searches) for (const r of s) r.endPass();
    first = false;
  }

  const numeric: NumericStep[] = o.features.map((name, c) => {
    const m = { mean: mean[c], std: Math.sqrt(ss[c] / present[c]), min: min[c], max: max[c] };
    let fill = 0;
    if (o.impute === 'mean') {
      // The mean of the raw values (with log1p the moments above are of the transformed ones).
      fill = log ? rawSum[c] / present[c] : m.mean;
    } else if (o.impute === 'median') {
      const [a, b] = searches![c].map((r) => r.value!);
      fill = b === undefined ? (a === 0 ? 0 : a) : quickselectMedian(Float64Array.of(a, b));
    }
    return numericStep(name, fill, log ? slog(fill) : fill, log, m, present[c], nRows - present[c], o.scale);
  });
  return {
    pre: Preprocessor.fromJSON({ scaleKind: o.scale, imputeKind: o.impute, numeric, categorical: [], featureNames: numeric.map((s) => s.name), inputs: o.features.map((name, c) => ({ name, kind: 'numeric', type: o.types?.[c] ?? 'number' })) }),
    nRows,
  };
}
