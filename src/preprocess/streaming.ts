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
import { CategoryCounts, numericStep, OTHER_CATEGORY, Preprocessor, type CategoricalStep, type NumericStep } from './preprocessor.js';
import { quickselectMedian } from './stats.js';

/** A bucket with at most this many values is collected and selected in memory (8 MB). */
export const COLLECT_AT_MOST = 1 << 20;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/**
 * The order-preserving key of a double: its two 32-bit halves with the sign bit flipped for
 * positives and every bit inverted for negatives, so unsigned key order is numeric order (−0
 * just before +0). Computed inline in {@link RankSearch.observeChunk}; digit l (0: most
 * significant) is one 16-bit quarter of it.
 */
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
    /** The first digit's histogram when already counted (by the statistics pass). */
    firstDigits: Float64Array | null = null,
  ) {
    if (firstDigits) this.hist = firstDigits.slice();
  }

  get done(): boolean {
    return this.value !== null;
  }

  /**
   * Counts (or collects) a run of values (nulls and NaN skipped) under the fixed key digits, the
   * key's halves computed inline: no array per value, which was most of a pass's cost at 100 M
   * rows × 32.
   */
  observeChunk(values: ArrayLike<number>, nulls: Uint8Array | null): void {
    if (this.value !== null) return;
    const p = this.prefix;
    const level = p.length;
    // The fixed digits as masks over the key's halves.
    const maskHi = level >= 2 ? 0xffffffff : level === 1 ? 0xffff0000 : 0;
    const wantHi = level >= 2 ? ((p[0] << 16) | p[1]) >>> 0 : level === 1 ? (p[0] << 16) >>> 0 : 0;
    const maskLo = level >= 3 ? 0xffff0000 : 0;
    const wantLo = level >= 3 ? (p[2] << 16) >>> 0 : 0;
    const hist = this.hist;
    const collected = this.collected;
    for (let i = 0; i < values.length; i++) {
      const x = Number(values[i]);
      if ((nulls && nulls[i]) || x !== x) continue;
      f64[0] = x;
      const hi = u32[1];
      const lo = u32[0];
      const neg = hi >>> 31;
      const khi = neg ? ~hi >>> 0 : (hi | 0x80000000) >>> 0;
      const klo = neg ? ~lo >>> 0 : lo;
      if (((khi & maskHi) >>> 0) !== wantHi || ((klo & maskLo) >>> 0) !== wantLo) continue;
      if (collected) collected.push(x);
      else hist![level === 0 ? khi >>> 16 : level === 1 ? khi & 0xffff : level === 2 ? klo >>> 16 : klo & 0xffff]++;
    }
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
  /** Hears the rows of each pass after the first (which counts them) as its batches go by: pass 2, 3, ... */
  onRows?: (pass: number, rows: number, total: number) => void;
  /**
   * Text features, one-hot encoded as in memory (the `maxCategories` most frequent values of
   * each, counted in the first pass). `order` lists every feature in the order given, for the
   * model's inputs; default the numeric ones, then these.
   */
  categorical?: string[];
  maxCategories?: number;
  order?: string[];
  /**
   * Checks that should fail early (ids, text): `batch` sees every batch of the first pass with its
   * first row, `end` runs when that pass is over, before any other.
   */
  firstPass?: { batch(t: ColumnTable, row0: number): void; end(): void };
}

/** Distinct values a text feature may have in a table read in blocks (the counts are held in memory). */
export const MAX_STREAMED_DISTINCT = 1_000_000;

/** Fits the preprocessing of the numeric `features` over the batches `batches()` yields (a fresh stream per call). */
export async function fitStreaming(
  batches: () => AsyncIterable<ColumnTable>,
  o: StreamingPreprocessOptions,
): Promise<{ pre: Preprocessor; nRows: number; beyond: (name: string, kept: readonly string[]) => { distinct: number; rows: number } }> {
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

  /** Calls fn(column, values, nulls, first row) for each run of each feature's values, in row order. */
  let pass = 0;
  const cats = (o.categorical ?? []).map((name) => new CategoryCounts(o.path, name, o.maxCategories ?? 20, MAX_STREAMED_DISTINCT));
  const eachChunk = async (fn: (c: number, values: ArrayLike<number>, nulls: Uint8Array | null, row: number) => void) => {
    let base = 0;
    pass++;
    for await (const t of batches()) {
      if (pass === 1) o.firstPass?.batch(t, base);
      if (pass === 1)
        cats.forEach((counts, j) => {
          const col = t.column(o.categorical![j]);
          if (col.type !== 'string') throw new SegtensorError('BAD_OPTION', `${o.path}: column '${o.categorical![j]}' is ${col.type === 'other' ? col.typeName : col.type} in a batch; a categorical feature must be text throughout`);
          counts.add(col.values);
        });
      for (let c = 0; c < d; c++) {
        let row = base;
        for (const { values, nulls } of numericChunks(t.numericColumn(o.features[c]))) {
          fn(c, values, nulls, row);
          row += values.length;
        }
      }
      base += t.nRows;
      if (pass > 1) o.onRows?.(pass, base, nRows);
    }
    return base;
  };

  // Tight loops per run of values (a call per value cost most of a pass at 100 M rows × 32).
  // The medians' first key digit is counted in this pass too (it needs no mean).
  const median = o.impute === 'median';
  const firstDigits = median ? Array.from({ length: d }, () => new Float64Array(65536)) : null;
  nRows = await eachChunk((c, values, nulls, row0) => {
    const h0 = firstDigits?.[c] ?? null;
    let n = 0;
    let s = sum[c];
    let raw = rawSum[c];
    let lo = min[c];
    let hi = max[c];
    for (let i = 0; i < values.length; i++) {
      const x = Number(values[i]);
      if ((nulls && nulls[i]) || x !== x) continue;
      if (x === Infinity || x === -Infinity) throw new SegtensorError('NON_FINITE', `${o.path}: column '${o.features[c]}' ${dataRow(row0 + i)} is ${x}; values must be finite`);
      n++;
      if (h0) {
        f64[0] = x;
        const hi = u32[1];
        h0[(hi >>> 31 ? ~hi >>> 0 : (hi | 0x80000000) >>> 0) >>> 16]++;
      }
      const v = log ? slog(x) : x;
      s += v;
      if (log) raw += x;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    present[c] += n;
    sum[c] = s;
    rawSum[c] = raw;
    min[c] = lo;
    max[c] = hi;
  });
  o.firstPass?.end();
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
      const h = firstDigits![c];
      const found = n % 2 === 1 ? [new RankSearch((n - 1) / 2, cap, h)] : [new RankSearch(n / 2 - 1, cap, h), new RankSearch(n / 2, cap, h)];
      for (const r of found) r.endPass();
      return found;
    });
  }
  // Pass 2 (deviations, the medians' second digit or their last values), then as many as the medians need.
  let first = true;
  while (first || searches?.some((s) => s.some((r) => !r.done))) {
    const deviations = first;
    await eachChunk((c, values, nulls) => {
      if (deviations) {
        const m = mean[c];
        let acc = ss[c];
        for (let i = 0; i < values.length; i++) {
          const x = Number(values[i]);
          if ((nulls && nulls[i]) || x !== x) continue;
          const t = (log ? slog(x) : x) - m;
          acc += t * t;
        }
        ss[c] = acc;
      }
      if (searches) for (const r of searches[c]) r.observeChunk(values, nulls);
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
  const categorical: CategoricalStep[] = cats.map((counts, j) => ({ name: o.categorical![j], ...counts.step() }));
  const typeOf = new Map(o.features.map((name, c) => [name, o.types?.[c] ?? 'number']));
  const order = o.order ?? [...o.features, ...(o.categorical ?? [])];
  return {
    pre: Preprocessor.fromJSON({
      scaleKind: o.scale,
      imputeKind: o.impute,
      numeric,
      categorical,
      featureNames: [...numeric.map((s) => s.name), ...categorical.flatMap((s) => [...s.categories, OTHER_CATEGORY].map((c) => `${s.name}=${c}`))],
      inputs: order.map((name) => (typeOf.has(name) ? { name, kind: 'numeric', type: typeOf.get(name)! } : { name, kind: 'categorical', type: 'string' })),
    }),
    nRows,
    /** For the notice on values beyond --max-categories, per text feature with rare values. */
    beyond: (name: string, kept: readonly string[]) => cats[o.categorical!.indexOf(name)].beyond(kept),
  };
}
