/**
 * Fitted preprocessing: feature selection, imputation, scaling and one-hot encoding, fitted on
 * the training table and saved in model.json so `predict` transforms new customers identically.
 *
 * Scalers (per numeric feature, after imputation):
 * - `standard`: (x − mean) / std with the population std (scikit-learn's StandardScaler; std 0 → 1).
 * - `minmax`: (x − min) / (max − min) (range 0 → 1).
 * - `log1p`: sign(x)·ln(1 + |x|), then standardised: tames heavy-tailed spend and counts while
 *   keeping negative values (returns) legal.
 * - `none`: unchanged.
 * Categorical (string) columns become one 0/1 column per category, the most frequent first,
 * capped at `maxCategories`; rarer, unseen and null values go to `<col>=__other__`.
 *
 * @example
 * const pre = Preprocessor.fit(table, { features: ['age', 'spend'], scale: 'standard' });
 * const m = pre.transform(table); // { data: Float32Array, nRows, nFeatures }
 */
import type { Matrix } from '../core/matrix.js';
import { dataRow, SegtensorError } from '../errors.js';
import { numericChunks, type Column, type ColumnTable, type ColumnType, type NumericChunk } from '../io/table.js';

import { allocFloat32, nativeHelper } from '../util/native-addon.js';
import { medianInPlace, momentsDense } from './stats.js';

type NumericCol = Column & { type: 'number' | 'timestamp' };

type FillRows = (
  out: Float32Array,
  d: number,
  cols: NumericChunk['values'][],
  nulls: (Uint8Array | null)[],
  fill: Float64Array,
  center: Float64Array,
  scale: Float64Array,
) => number;

type NumericStatsFn = (cols: NumericChunk['values'][][], nulls: (Uint8Array | null)[][], median: boolean) => Float64Array;

/** The addon's numericStats (every column's fit statistics at once), or null. */
const nativeNumericStats = () => nativeHelper<NumericStatsFn>('numericStats');

/** The addon's fillRows (the numeric part of transform for one record batch), or null. */
const nativeFillRows = () => nativeHelper<FillRows>('fillRows');

import { IMPUTES, SCALES, type ImputeKind, type ScaleKind } from './kinds.js';
export { IMPUTES, SCALES, type ImputeKind, type ScaleKind };

export interface PreprocessOptions {
  /** Columns to use; default every numeric column except `exclude`. String columns are one-hot encoded. */
  features: string[] | null;
  /** Columns never used as features (the id and weight columns). */
  exclude: string[];
  /** Scaler for numeric features. Default `standard`. */
  scale: ScaleKind;
  /** Fill for missing numeric values, fitted on the training table. Default `median`. */
  impute: ImputeKind;
  /** Most one-hot columns per categorical feature, besides `__other__`. Default 20. */
  maxCategories: number;
}

export const PREPROCESS_DEFAULTS: Readonly<PreprocessOptions> = Object.freeze({
  features: null,
  exclude: [],
  scale: 'standard' as const,
  impute: 'median' as const,
  maxCategories: 20,
});

/** A fitted numeric feature: y = (t(x) − center) / scale, with t = signed log1p for `log1p`. */
export interface NumericStep {
  name: string;
  fill: number;
  log: boolean;
  center: number;
  scale: number;
  /** Count of missing values seen when fitting. */
  missing: number;
}

export interface CategoricalStep {
  name: string;
  categories: string[];
  /**
   * Values seen when fitting that were too rare for a column of their own (they go to
   * `__other__` too, but are not unseen); at most {@link MAX_RARE} kept. Absent in older models.
   */
  rare?: string[];
}

/** An input column as the model was fitted on it: what `transform` checks a new table against. */
export interface InputColumn {
  name: string;
  /** Numbers (scaled) or text (one-hot). */
  kind: 'numeric' | 'categorical';
  /** The column's type as read: number, bigint (64-bit integers), timestamp or string. */
  type: ColumnType;
}

/** Values not among a categorical feature's fitted ones, found by `transform` (scored as `__other__`). */
export interface UnseenCategories {
  /** Cells holding such a value. */
  count: number;
  /** Distinct such values (counted up to 1,000). */
  distinct: number;
  /** The first few of them, in row order. */
  examples: string[];
}

/** Most rare category names kept in a model (see {@link CategoricalStep.rare}). */
export const MAX_RARE = 1000;

/** The JSON form saved in model.json. */
export interface PreprocessState {
  scaleKind: ScaleKind;
  imputeKind: ImputeKind;
  numeric: NumericStep[];
  categorical: CategoricalStep[];
  /** Output column names, in matrix order: numeric features, then `<col>=<category>`. */
  featureNames: string[];
  /** The input columns and their types when fitted, in feature order. Absent in older models. */
  inputs?: InputColumn[];
}

const OTHER = '__other__';
/** The one-hot column of a categorical feature's values outside its categories. */
export const OTHER_CATEGORY = OTHER;

export class Preprocessor {
  private constructor(readonly state: PreprocessState) {}

  /** Restores a fitted preprocessor from model.json. */
  static fromJSON(state: PreprocessState): Preprocessor {
    return new Preprocessor(state);
  }

  toJSON(): PreprocessState {
    return this.state;
  }

  get featureNames(): string[] {
    return this.state.featureNames;
  }

  /** Names of the input columns the transform reads. */
  get inputColumns(): string[] {
    return [...this.state.numeric.map((s) => s.name), ...this.state.categorical.map((s) => s.name)];
  }

  static fit(table: ColumnTable, options: Partial<PreprocessOptions> = {}): Preprocessor {
    return Preprocessor.fitWith(table, options, () => {});
  }

  /**
   * Fits on `table` and transforms it. The same result as fit then transform, faster on large
   * tables: the matrix's memory is faulted in on a background thread while the column
   * statistics are computed.
   */
  static fitTransform(table: ColumnTable, options: Partial<PreprocessOptions> = {}): { pre: Preprocessor; matrix: Matrix } {
    let out: Float32Array | undefined;
    const pre = Preprocessor.fitWith(table, options, (nFeatures) => {
      out = allocFloat32(table.nRows * nFeatures);
    });
    return { pre, matrix: pre.transform(table, out) };
  }

  /** `fit`, calling `planned(nFeatures)` once the output width is known, before the numeric statistics. */
  private static fitWith(table: ColumnTable, options: Partial<PreprocessOptions>, planned: (nFeatures: number) => void): Preprocessor {
    const o = { ...PREPROCESS_DEFAULTS, ...options };
    if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${table.path}: the table has no rows`);
    if (!SCALES.includes(o.scale)) {
      throw new SegtensorError('BAD_OPTION', `--scale must be one of ${SCALES.join(', ')}; got '${o.scale}'`);
    }
    if (!IMPUTES.includes(o.impute)) {
      throw new SegtensorError('BAD_OPTION', `--impute must be one of ${IMPUTES.join(', ')}; got '${o.impute}'`);
    }
    const names =
      o.features ??
      table.columns
        .filter((c) => (c.type === 'number' || c.type === 'bigint') && !o.exclude.includes(c.name))
        .map((c) => c.name);
    if (names.length === 0) {
      throw new SegtensorError('BAD_INPUT', `${table.path}: no numeric feature columns (columns: ${table.names.join(', ')})`);
    }
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new SegtensorError('BAD_OPTION', `--features names '${dup}' twice`);
    const categorical: CategoricalStep[] = [];
    const numericNames: string[] = [];
    const inputs: InputColumn[] = [];
    for (const name of names) {
      const col = table.column(name);
      if (o.exclude.includes(name)) {
        throw new SegtensorError('BAD_OPTION', `--features: '${name}' is the id or weight column and cannot be a feature`);
      }
      if (col.type === 'string') {
        const counts = new CategoryCounts(table.path, name, o.maxCategories);
        counts.add(col.values);
        categorical.push({ name, ...counts.step() });
      } else if (col.type === 'other') {
        throw new SegtensorError('NON_NUMERIC_COLUMN', `${table.path}: column '${name}' is ${col.typeName}, neither numeric nor categorical`);
      } else numericNames.push(name);
      inputs.push({ name, kind: col.type === 'string' ? 'categorical' : 'numeric', type: col.type });
    }
    planned(numericNames.length + categorical.reduce((s, c) => s + c.categories.length + 1, 0));
    // Categorical columns first (cheap), so the width is known; the numeric statistics after.
    const numericCols = numericNames.map((name) => table.numericColumn(name));
    const stats = o.scale === 'log1p' ? null : nativeNumericStats();
    let numeric: NumericStep[];
    if (stats && numericCols.length) {
      numeric = fitNumericNative(table.path, numericCols, stats, o.scale, o.impute);
    } else {
      const scratch = numericNames.length ? new Float64Array(table.nRows) : null;
      numeric = numericCols.map((col) => fitNumeric(table.path, col, scratch!, o.scale, o.impute));
    }
    const featureNames = [
      ...numeric.map((s) => s.name),
      ...categorical.flatMap((s) => [...s.categories, OTHER].map((c) => `${s.name}=${c}`)),
    ];
    return new Preprocessor({ scaleKind: o.scale, imputeKind: o.impute, numeric, categorical, featureNames, inputs });
  }

  /**
   * Each input column must have the kind (numbers or text) the model was fitted on: otherwise a
   * `TYPE_MISMATCH` error naming the file and column, saying what to do.
   */
  checkTypes(table: ColumnTable): void {
    const { numeric, categorical, inputs } = this.state;
    const fitted: InputColumn[] = inputs ?? [
      ...numeric.map((s): InputColumn => ({ name: s.name, kind: 'numeric', type: 'number' })),
      ...categorical.map((s): InputColumn => ({ name: s.name, kind: 'categorical', type: 'string' })),
    ];
    for (const f of fitted) {
      const c = table.column(f.name);
      const kind = c.type === 'string' ? 'categorical' : c.type === 'other' ? null : 'numeric';
      if (kind === f.kind) continue;
      const here = c.type === 'string' ? 'text' : c.type === 'other' ? c.typeName : c.type === 'timestamp' ? 'timestamps' : 'numbers';
      const hint =
        f.kind === 'categorical' && kind === 'numeric'
          ? `declare --dtypes ${f.name}:string to read it as text`
          : `refit the model on data of these types, or fix the column`;
      throw new SegtensorError(
        'TYPE_MISMATCH',
        `${table.path}: column '${f.name}' is ${here} here but the model was fitted on ${f.kind === 'numeric' ? 'numbers' : 'text'} (${f.type}); ${hint}`,
      );
    }
  }

  /**
   * The row-major float32 feature matrix of `table`. The columns are checked against the fitted
   * types first ({@link checkTypes}); every value is checked: NaN or ±Inf after preprocessing is
   * a `NON_FINITE` error naming the column and data row. `unseen` counts, per categorical
   * feature, the values never seen when fitting (scored as `__other__`); absent columns had none.
   */
  transform(table: ColumnTable, out?: Float32Array): Matrix & { unseen: Record<string, UnseenCategories> } {
    const { numeric, categorical, featureNames } = this.state;
    const nRows = table.nRows;
    if (nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${table.path}: the table has no rows`);
    this.checkTypes(table);
    const d = featureNames.length;
    if (out && out.length !== nRows * d) throw new RangeError(`Preprocessor.transform: 'out' must hold ${nRows * d} values; got ${out.length}`);
    // `out` must be zero-filled: one-hot columns only write their ones.
    const data = out ?? new Float32Array(nRows * d);
    const cols = numeric.map((s) => numericChunks(table.numericColumn(s.name)));
    // Columns usually share their record-batch boundaries: then fill the matrix row by row
    // (sequential writes) rather than column by column (a cache line per value, d passes).
    const aligned = cols.every((c) => c.length === cols[0].length && c.every((ch, b) => ch.values.length === cols[0][b].values.length));
    const batches = aligned && cols.length > 0 ? cols[0].length : 0;
    const nNum = numeric.length;
    const fill = numeric.map((s) => s.fill);
    const center = numeric.map((s) => s.center);
    const scale = numeric.map((s) => s.scale);
    const anyLog = numeric.some((s) => s.log);
    let bad = -1;
    let row0 = 0;
    // The same arithmetic in the addon when it is built (~10× faster: no per-value dispatch on
    // the column's array type); log1p stays here, where Math.log1p defines the bits.
    const native = anyLog ? null : nativeFillRows();
    const args = native ? { fill: Float64Array.from(fill), center: Float64Array.from(center), scale: Float64Array.from(scale) } : null;
    for (let b = 0; b < batches && bad < 0; b++) {
      const vals = cols.map((c) => c[b].values);
      const nulls = cols.map((c) => c[b].nulls);
      const n = vals[0].length;
      if (native && args) {
        const r = native(data.subarray(row0 * d, (row0 + n) * d), d, vals, nulls, args.fill, args.center, args.scale);
        if (r >= 0) bad = row0 + r;
        row0 += n;
        continue;
      }
      for (let i = 0; i < n; i++) {
        const base = (row0 + i) * d;
        for (let f = 0; f < nNum; f++) {
          const nl = nulls[f];
          let x: number = nl !== null && nl[i] ? NaN : vals[f][i];
          if (x !== x) x = fill[f];
          if (anyLog && numeric[f].log) x = Math.sign(x) * Math.log1p(Math.abs(x));
          const y = (x - center[f]) / scale[f];
          data[base + f] = y;
          // Checked without a branch per value in the common case: NaN and overflow fail the test.
          if (!(y <= 3.4e38 && y >= -3.4e38)) bad = row0 + i;
        }
        if (bad >= 0) break;
      }
      row0 += n;
    }
    if (!aligned || bad >= 0) {
      // The general path, which also names the first offending value exactly.
      numeric.forEach((s, f) => {
        let row = 0;
        for (const { values, nulls } of cols[f]) {
          for (let i = 0; i < values.length; i++, row++) {
            let x = nulls && nulls[i] ? NaN : values[i];
            const raw = x;
            if (Number.isNaN(x)) x = s.fill;
            if (s.log) x = Math.sign(x) * Math.log1p(Math.abs(x));
            const y = (x - s.center) / s.scale;
            if (!(Math.abs(y) <= 3.4e38)) {
              throw new SegtensorError('NON_FINITE', `${table.path}: column '${s.name}' ${dataRow(row)} is ${raw}, which gives ${y} after preprocessing`);
            }
            data[row * d + f] = y;
          }
        }
      });
    }
    let f = numeric.length;
    const unseen: Record<string, UnseenCategories> = {};
    for (const s of categorical) {
      const col = table.column(s.name);
      if (col.type !== 'string') throw new Error(`unreachable: '${s.name}' passed checkTypes as ${col.type}`);
      const index = new Map(s.categories.map((c, j) => [c, j]));
      const rare = new Set(s.rare ?? []);
      const other = s.categories.length;
      const found = new Set<string>();
      let count = 0;
      for (let i = 0; i < nRows; i++) {
        const val = col.values[i];
        const j = val === null ? other : (index.get(val) ?? other);
        data[i * d + f + j] = 1;
        if (j === other && val !== null && !rare.has(val)) {
          count++;
          if (found.size < 1000) found.add(val);
        }
      }
      if (count) unseen[s.name] = { count, distinct: found.size, examples: [...found].slice(0, 3) };
      f += s.categories.length + 1;
    }
    return { data, nRows, nFeatures: d, unseen };
  }

  /**
   * The inverse of {@link inverse} for one vector: values in the input's units (one-hot columns
   * as shares), in featureNames order, to this preprocessing's scaled units. Used to compare
   * centroids of two fits in one space (`--align-to`) and to start from another fit's centroids
   * (`--warm-start`).
   */
  forward(values: ArrayLike<number>): number[] {
    const { numeric, featureNames } = this.state;
    if (values.length !== featureNames.length) throw new RangeError(`Preprocessor.forward: need ${featureNames.length} values; got ${values.length}`);
    return Array.from({ length: featureNames.length }, (_, f) => {
      const x = values[f];
      if (f >= numeric.length) return x;
      const s = numeric[f];
      const t = s.log ? Math.sign(x) * Math.log1p(Math.abs(x)) : x;
      return (t - s.center) / s.scale;
    });
  }

  /** Centroids (k × nFeatures, scaled units) back in the input's units: one-hot columns become shares. */
  inverse(centroids: Float32Array, k: number): number[][] {
    const { numeric, featureNames } = this.state;
    const d = featureNames.length;
    const out: number[][] = [];
    for (let j = 0; j < k; j++) {
      const row: number[] = [];
      for (let f = 0; f < d; f++) {
        const y = centroids[j * d + f];
        if (f < numeric.length) {
          const s = numeric[f];
          const t = y * s.scale + s.center;
          row.push(s.log ? Math.sign(t) * Math.expm1(Math.abs(t)) : t);
        } else row.push(y);
      }
      out.push(row);
    }
    return out;
  }
}

/**
 * Fits one numeric feature. `scratch` (nRows float64, shared across columns so a wide table
 * does not allocate a copy per column) receives the present values; the fill value then stands
 * in for the missing ones in every statistic.
 */
function fitNumeric(path: string, col: NumericCol, scratch: Float64Array, scale: ScaleKind, impute: ImputeKind): NumericStep {
  const name = col.name;
  let present = 0;
  let row = 0;
  for (const { values, nulls } of numericChunks(col)) {
    for (let i = 0; i < values.length; i++, row++) {
      const x = values[i];
      if ((nulls && nulls[i]) || Number.isNaN(x)) continue;
      if (!Number.isFinite(x)) throw new SegtensorError('NON_FINITE', `${path}: column '${name}' ${dataRow(row)} is ${x}; values must be finite`);
      scratch[present++] = x;
    }
  }
  const missing = row - present;
  if (present === 0) throw new SegtensorError('ALL_NULL_COLUMN', `${path}: column '${name}' has no values (all ${row} are null)`);
  const v = scratch.subarray(0, present);
  const log = scale === 'log1p';
  // Moments in row order, never after the median has reordered v, so they do not depend on how
  // the median is selected (the addon's radix select and the quickselect here permute it
  // differently). With log1p the median takes a copy, and v is transformed in row order.
  const raw = log ? null : momentsDense(v);
  const fill = impute === 'median' ? medianInPlace(log ? v.slice() : v) : impute === 'mean' ? (raw ?? momentsDense(v)).mean : 0;
  const slog = (x: number) => Math.sign(x) * Math.log1p(Math.abs(x));
  if (log) for (let i = 0; i < present; i++) v[i] = slog(v[i]);
  return numericStep(name, fill, log ? slog(fill) : fill, log, raw ?? momentsDense(v), present, missing, scale);
}

/**
 * {@link fitNumeric} for every column at once through the addon (columns in parallel, the same
 * arithmetic: see numericStats in kernels/cpu/data.cc), for every scaler but log1p. Errors are
 * raised for the first offending column, as the column-by-column path does.
 */
function fitNumericNative(path: string, cols: NumericCol[], stats: NumericStatsFn, scale: ScaleKind, impute: ImputeKind): NumericStep[] {
  const chunks = cols.map((c) => numericChunks(c));
  const out = stats(
    chunks.map((cs) => cs.map((ch) => ch.values)),
    chunks.map((cs) => cs.map((ch) => ch.nulls)),
    impute === 'median',
  );
  return cols.map((col, c) => {
    const [present, bad, med, mean, std, min, max] = out.subarray(7 * c, 7 * c + 7);
    if (bad >= 0) {
      let row = bad;
      let value = NaN;
      for (const ch of chunks[c]) {
        if (row < ch.values.length) {
          value = ch.values[row];
          break;
        }
        row -= ch.values.length;
      }
      throw new SegtensorError('NON_FINITE', `${path}: column '${col.name}' ${dataRow(bad)} is ${value}; values must be finite`);
    }
    const rows = chunks[c].reduce((s, ch) => s + ch.values.length, 0);
    if (present === 0) throw new SegtensorError('ALL_NULL_COLUMN', `${path}: column '${col.name}' has no values (all ${rows} are null)`);
    const fill = impute === 'median' ? med : impute === 'mean' ? mean : 0;
    return numericStep(col.name, fill, fill, false, { mean, std, min, max }, present, rows - present, scale);
  });
}

/**
 * A numeric column's fitted step from the statistics of its present values (after log1p when
 * `log`); `fill` is the imputed value in the input's units, `f` the same after log1p. Shared
 * with the streaming fit (./streaming.ts). @internal
 */
export function numericStep(
  name: string,
  fill: number,
  f: number,
  log: boolean,
  m: { mean: number; std: number; min: number; max: number },
  present: number,
  missing: number,
  scale: ScaleKind,
): NumericStep {
  // Statistics of the imputed (and transformed) column: the present values plus `missing` copies of f.
  const n = present + missing;
  const mean = (m.mean * present + f * missing) / n;
  const ss = m.std * m.std * present + present * (m.mean - mean) ** 2 + missing * (f - mean) ** 2;
  const std = Math.sqrt(ss / n);
  const min = missing ? Math.min(m.min, f) : m.min;
  const max = missing ? Math.max(m.max, f) : m.max;
  let center = 0;
  let s = 1;
  if (scale === 'standard' || scale === 'log1p') {
    center = mean;
    s = std > 0 ? std : 1;
  } else if (scale === 'minmax') {
    center = min;
    s = max > min ? max - min : 1;
  }
  return { name, fill, log, center, scale: s, missing };
}

/**
 * A string column is one-hot encoded only if it looks categorical. Numbers stored as text with
 * a few bad cells ('n/a', '12%') and near-unique strings (emails, ids) are errors that say so,
 * rather than hundreds of silent one-hot columns. Then the `cap` most frequent values (ties by
 * value) are its categories, and up to {@link MAX_RARE} of the rest are kept as rare.
 *
 * The counts come from one array of cells or from a column read in batches (`add` each, with
 * its first row); `maxDistinct` bounds the values counted (a table read in blocks), beyond which
 * the column is refused as an identifier.
 *
 * @example
 * const c = new CategoryCounts('t.csv', 'region', 20);
 * c.add(values);
 * const { categories, rare } = c.step();
 */
export class CategoryCounts {
  private readonly counts = new Map<string, number>();
  private rows = 0;
  private present = 0;
  private numeric = 0;
  private firstBad = -1;
  private firstBadValue = '';
  private overflow = false;

  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly cap: number,
    private readonly maxDistinct = Infinity,
  ) {}

  add(values: readonly (string | null)[]): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null) continue;
      this.present++;
      const c = this.counts.get(v);
      if (c !== undefined) this.counts.set(v, c + 1);
      else if (this.counts.size < this.maxDistinct) this.counts.set(v, 1);
      else this.overflow = true;
      if (v.trim() !== '' && Number.isFinite(Number(v))) this.numeric++;
      else if (this.firstBad < 0) {
        this.firstBad = this.rows + i;
        this.firstBadValue = v;
      }
    }
    this.rows += values.length;
  }

  /** The checks (errors naming the file and column), then the categories. */
  step(): { categories: string[]; rare?: string[] } {
    const { path, name } = this;
    if (this.present === 0) throw new SegtensorError('ALL_NULL_COLUMN', `${path}: column '${name}' has no values (all ${this.rows} are null)`);
    if (this.numeric >= 0.9 * this.present && this.firstBad >= 0) {
      throw new SegtensorError(
        'NON_NUMERIC_COLUMN',
        `${path}: column '${name}' is not numeric: ${dataRow(this.firstBad)} is '${this.firstBadValue}' (${this.present - this.numeric} of ${this.present} values are not numbers)`,
      );
    }
    const limit = Math.max(1000, this.cap, this.rows / 2);
    if (this.overflow || this.counts.size > limit) {
      throw new SegtensorError(
        'NON_NUMERIC_COLUMN',
        this.overflow
          ? `${path}: column '${name}' is text with over ${this.maxDistinct} distinct values: an identifier, not a category, or too many categories to count in blocks; leave it out of --features or pass it as --id`
          : `${path}: column '${name}' is text with over ${Math.floor(limit)} distinct values in ${this.rows} rows: an identifier, not a category; leave it out of --features or pass it as --id`,
      );
    }
    const sorted = [...this.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
    const categories = sorted.slice(0, this.cap);
    return sorted.length > this.cap ? { categories, rare: sorted.slice(this.cap, this.cap + MAX_RARE) } : { categories };
  }

  /** For the notice on values beyond the cap: distinct values, and rows outside the `kept` ones. */
  beyond(kept: readonly string[]): { distinct: number; rows: number } {
    const k = new Set(kept);
    let rows = 0;
    for (const [v, c] of this.counts) if (!k.has(v)) rows += c;
    return { distinct: this.counts.size, rows };
  }
}
