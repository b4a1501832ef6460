/**
 * Churn data preparation on column tables and float32 matrices: the binary label, the seeded
 * stratified train/validation/test split, and row selection (no per-row JS objects).
 *
 * @example
 * const lab = parseLabel(table, 'churned', null);   // { y: Uint8Array, positive: '1', negative: '0' }
 * const s = stratifiedSplit(lab.y, [0.7, 0.15, 0.15], 0, 'customers.parquet');
 * const xTrain = takeMatrixRows(x, s.train);
 */
import type { Matrix } from '../../core/matrix.js';
import { dataRow, SegtensorError } from '../../errors.js';
import { ColumnTable, type Column } from '../../io/table.js';
import { Random } from '../../util/random.js';

/** A binary label: y = 1 where the value means churned. */
export interface BinaryLabel {
  y: Uint8Array;
  /** The value that means churned, as it appears in the table. */
  positive: string;
  /** The other value, or null when the table holds only the positive one (evaluate only). */
  negative: string | null;
}

/** Label values taken as churned when `--positive` is not given (case-insensitive). */
export const DEFAULT_POSITIVES: readonly string[] = Object.freeze(['1', 'true', 'yes']);

const norm = (s: string): string => s.trim().toLowerCase();

/** The label column's values as strings (numbers printed canonically), null for missing. */
function labelStrings(table: ColumnTable, name: string): (string | null)[] {
  const c: Column = table.column(name);
  if (c.type === 'string') return c.values;
  if (c.type === 'number') return Array.from(c.values, (v) => (Number.isNaN(v) ? null : String(v)));
  if (c.type === 'bigint') return Array.from(c.values, (v, i) => (c.nulls?.[i] ? null : String(v)));
  const what = c.type === 'other' ? c.typeName : c.type;
  throw new SegtensorError('BAD_INPUT', `${table.path}: label column '${name}' is ${what}; it must hold two values (0/1, true/false, yes/no, …)`);
}

/**
 * Words that name the same label value as 1/0: a native boolean reads as 'true'/'false', and
 * models from before CSV yes/no stayed text recorded their positive label as '1'.
 */
const AS_BOOLEAN: Readonly<Record<string, string>> = Object.freeze({ true: '1', yes: '1', false: '0', no: '0' });

/** A label value's canonical form: numbers as numbers ('1.0' → '1'), yes/true → '1', no/false → '0', else lower case. */
function canon(s: string): string {
  const t = norm(s);
  if (AS_BOOLEAN[t] !== undefined) return AS_BOOLEAN[t];
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? String(n) : t;
}

/** Does `value` (from --positive or a model) name the label value `v`? */
function same(value: string, v: string): boolean {
  return canon(value) === canon(v);
}

/**
 * Reads the label column as 0/1. Errors (one line, naming file and column): missing column, a null
 * label, more than two values, a single class (`requireBothClasses`), a `positive` that is not
 * one of the values, or no way to tell which value means churned.
 */
export function parseLabel(table: ColumnTable, name: string, positive: string | null, requireBothClasses = true): BinaryLabel {
  const values = labelStrings(table, name);
  const distinct: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) throw new SegtensorError('BAD_INPUT', `${table.path}: label column '${name}' is null at ${dataRow(i)}; every row needs a label`);
    if (distinct.length < 3 && !distinct.some((d) => d === v)) distinct.push(v);
    if (distinct.length > 2) {
      throw new SegtensorError(
        'BAD_INPUT',
        `${table.path}: label column '${name}' is not binary: it holds '${distinct[0]}', '${distinct[1]}', '${distinct[2]}'${distinct.length > 3 ? ', …' : ''} (${dataRow(i)})`,
      );
    }
  }
  if (distinct.length === 0) throw new SegtensorError('EMPTY_TABLE', `${table.path}: the table has no rows`);
  if (distinct.length === 1 && requireBothClasses) {
    throw new SegtensorError('BAD_INPUT', `${table.path}: label column '${name}' has a single class ('${distinct[0]}' in all ${values.length} rows); a classifier needs both`);
  }
  let pos: string | undefined;
  if (positive !== null) {
    pos = distinct.find((d) => same(positive, d));
    if (pos === undefined) {
      if (distinct.length === 2 || requireBothClasses) {
        throw new SegtensorError('BAD_OPTION', `--positive '${positive}' is not a value of label column '${name}' in ${table.path} (values: ${distinct.map((d) => `'${d}'`).join(', ')})`);
      }
      // Evaluate on a table with only non-churners.
      return { y: new Uint8Array(values.length), positive, negative: distinct[0] };
    }
  } else {
    const hits = distinct.filter((d) => DEFAULT_POSITIVES.some((p) => same(p, d)));
    if (hits.length !== 1) {
      throw new SegtensorError(
        'BAD_OPTION',
        `${table.path}: cannot tell which value of label column '${name}' means churned (values: ${distinct.map((d) => `'${d}'`).join(', ')}); pass --positive <value>`,
      );
    }
    pos = hits[0];
  }
  const y = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) y[i] = values[i] === pos ? 1 : 0;
  return { y, positive: pos, negative: distinct.find((d) => d !== pos) ?? null };
}

/** Row indices of each split, ascending. */
export interface Split {
  train: Int32Array;
  validation: Int32Array;
  test: Int32Array;
}

/**
 * Stratified split with a seed: each class is shuffled on its own and cut at the fractions, so
 * every split keeps the churn rate. Every split must hold both classes (`BAD_INPUT` otherwise,
 * naming the split and both counts).
 */
export function stratifiedSplit(y: Uint8Array, fractions: [number, number, number], seed: number, file = 'input'): Split {
  const sum = fractions[0] + fractions[1] + fractions[2];
  if (fractions.some((f) => !(f > 0)) || Math.abs(sum - 1) > 1e-9) {
    throw new SegtensorError('BAD_OPTION', `--split must be three positive fractions summing to 1; got ${fractions.join(',')}`);
  }
  const rng = new Random(seed);
  let n1 = 0;
  for (let i = 0; i < y.length; i++) n1 += y[i];
  const sizes = [0, 0, 0];
  const cuts: [number, number][] = [];
  for (const nc of [y.length - n1, n1]) {
    const nTrain = Math.round(nc * fractions[0]);
    const nVal = Math.round(nc * fractions[1]);
    cuts.push([nTrain, nTrain + nVal]);
    sizes[0] += nTrain;
    sizes[1] += nVal;
    sizes[2] += nc - nTrain - nVal;
  }
  const parts = sizes.map((n) => new Int32Array(n));
  const fill = [0, 0, 0];
  for (const cls of [0, 1]) {
    const idx = new Int32Array(cls ? n1 : y.length - n1);
    for (let i = 0, j = 0; i < y.length; i++) if (y[i] === cls) idx[j++] = i;
    for (let i = idx.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    const [a, b] = cuts[cls];
    for (let r = 0; r < idx.length; r++) {
      const s = r < a ? 0 : r < b ? 1 : 2;
      parts[s][fill[s]++] = idx[r];
    }
  }
  const names = ['training', 'validation', 'test'];
  const totalPos = n1;
  const out = parts.map((p, s) => {
    const a = p.sort();
    let pos = 0;
    for (const i of a) pos += y[i];
    if (pos === 0 || pos === a.length) {
      throw new SegtensorError(
        'BAD_INPUT',
        `${file}: the ${names[s]} split has ${pos === 0 ? 'no positives' : 'no negatives'} (${pos} of ${a.length} rows; ${totalPos} positives and ${y.length - totalPos} negatives in all); a stratified ${fractions.map((f) => Math.round(f * 100)).join('/')} split needs at least a few of each class`,
      );
    }
    return a;
  });
  return { train: out[0], validation: out[1], test: out[2] };
}

/** The rows `idx` of a matrix, as a new matrix. */
export function takeMatrixRows(x: Matrix, idx: Int32Array): Matrix {
  const d = x.nFeatures;
  const data = new Float32Array(idx.length * d);
  for (let r = 0; r < idx.length; r++) data.set(x.data.subarray(idx[r] * d, idx[r] * d + d), r * d);
  return { data, nRows: idx.length, nFeatures: d };
}

/** The entries `idx` of a typed array, as a new array of the same type. */
export function takeRows<T extends Float64Array | Float32Array | Uint8Array | Int32Array>(v: T, idx: Int32Array): T {
  const out = new (v.constructor as new (n: number) => T)(idx.length);
  for (let r = 0; r < idx.length; r++) out[r] = v[idx[r]];
  return out;
}

/** The rows `idx` of a column table (for fitting the preprocessing on the training split only). */
export function takeTableRows(table: ColumnTable, idx: Int32Array): ColumnTable {
  const cols = table.columns.map((c): Column => {
    switch (c.type) {
      case 'number':
      case 'timestamp':
        return { name: c.name, type: c.type, values: takeRows(c.values, idx) };
      case 'bigint': {
        const values = new BigInt64Array(idx.length);
        for (let r = 0; r < idx.length; r++) values[r] = c.values[idx[r]];
        return { name: c.name, type: 'bigint', values, nulls: c.nulls ? takeRows(c.nulls, idx) : null };
      }
      case 'string':
        return { name: c.name, type: 'string', values: Array.from(idx, (i) => c.values[i]) };
      default:
        return c;
    }
  });
  return new ColumnTable(table.path, idx.length, cols);
}
