/** The id column: passed through to outputs unchanged, checked for duplicates. @internal */
import { dataRow, SegtensorError } from '../errors.js';
import type { ColumnTable } from '../io/table.js';
import type { OutColumn } from '../io/write-table.js';
import { pseudonyms, type jobPseudonymKey } from '../util/pseudonym.js';

export { jobPseudonymKey, type PseudonymJob } from '../util/pseudonym.js';

/** Ids as join keys (text; null as ''), whatever their stored type. */
export function idKeys(c: OutColumn['values']): string[] {
  return Array.from(c as ArrayLike<unknown>, (v) => (v === null || v === undefined ? '' : String(v)));
}

/**
 * Replaces the id column `name` of `table` by its pseudonyms, in place, so that every later use
 * (outputs, joins, duplicate checks and their messages) sees only pseudonyms. No-op when `key` or
 * `name` is null, or the table has no such column (the caller's check names it).
 */
export function pseudonymizeIds(table: ColumnTable, name: string | null, key: ReturnType<typeof jobPseudonymKey>): void {
  if (!key || !name || !table.has(name)) return;
  const c = table.column(name);
  let raw: ArrayLike<string | number | bigint | null>;
  if (c.type === 'string') raw = c.values;
  else if (c.type === 'number') raw = c.values;
  else if (c.type === 'bigint') raw = c.nulls ? Array.from(c.values, (v, i) => (c.nulls![i] ? null : v)) : c.values;
  else throw new SegtensorError('BAD_INPUT', `${table.path}: id column '${name}' has unsupported type ${c.type === 'other' ? c.typeName : c.type}`);
  table.replace({ name, type: 'string', values: pseudonyms(key, raw) });
}

/**
 * The id column's values as an output column; with no id column, the 0-based row number as `row`
 * (counted from `firstRow`: a batch of a table read in blocks).
 */
export function idColumn(table: ColumnTable, name: string | null, checkUnique: boolean, firstRow = 0): OutColumn {
  if (!name) return { name: 'row', values: BigInt64Array.from({ length: table.nRows }, (_, i) => BigInt(firstRow + i)) };
  const c = table.column(name);
  let values: OutColumn['values'];
  if (c.type === 'string' || c.type === 'bigint' || c.type === 'number') values = c.values;
  else throw new SegtensorError('BAD_INPUT', `${table.path}: id column '${name}' has unsupported type ${c.type === 'other' ? c.typeName : c.type}`);
  if (checkUnique) {
    const nullAt = c.type === 'bigint' && c.nulls ? c.nulls.indexOf(1) : -1;
    if (nullAt >= 0) throw new SegtensorError('BAD_INPUT', `${table.path}: id column '${name}' is null at ${dataRow(nullAt)}`);
    checkIds(table.path, name, values);
  }
  return { name, values };
}

/**
 * Nulls and duplicates are errors naming the first offending row. Numeric ids are checked by
 * sorting a typed copy (a Set of a million BigInts takes seconds); the row is looked up only on failure.
 */
function checkIds(file: string, name: string, values: OutColumn['values'], showValue = true): void {
  const fail = (i: number, what: string): never => {
    throw new SegtensorError(what === 'null' ? 'BAD_INPUT' : 'DUPLICATE_ID', what === 'null'
      ? `${file}: id column '${name}' is null at ${dataRow(i)}`
      : `${file}: id column '${name}' repeats ${showValue ? `'${String(values[i])}' ` : 'a value '}at ${dataRow(i)}`);
  };
  if (Array.isArray(values)) {
    const seen = new Set<string>();
    values.forEach((v, i) => {
      if (v === null) fail(i, 'null');
      if (seen.has(v!)) fail(i, 'dup');
      seen.add(v!);
    });
    return;
  }
  // Ids usually come sorted: one allocation-free pass proves them unique (no NaN passes it).
  if (strictlyIncreasing(values)) return;
  for (let i = 0; i < values.length; i++) if (typeof values[i] === 'number' && Number.isNaN(values[i])) fail(i, 'null');
  const sorted = values.slice().sort();
  let dup: number | bigint | null = null;
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) {
      dup = sorted[i];
      break;
    }
  }
  if (dup === null) return;
  // The second occurrence in row order is the row to name.
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    if (values[i] === dup) {
      if (first >= 0) fail(i, 'dup');
      first = i;
    }
  }
}

/**
 * Whether every value exceeds the one before (so all are distinct and none is NaN). 64-bit
 * integers are compared as (signed high, unsigned low) 32-bit halves, which creates no BigInt
 * per value.
 */
export function strictlyIncreasing(values: Exclude<OutColumn['values'], unknown[]>): boolean {
  if (values instanceof BigInt64Array) {
    const w = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
    // Little-endian: the low half first.
    for (let i = 2; i < w.length; i += 2) {
      const hi = w[i + 1];
      const prevHi = w[i - 1];
      if (hi < prevHi || (hi === prevHi && w[i] >>> 0 <= w[i - 2] >>> 0)) return false;
    }
    return true;
  }
  if (values.length && !(values[0] === values[0])) return false;
  for (let i = 1; i < values.length; i++) if (!(values[i] > values[i - 1])) return false;
  return true;
}

/**
 * The id column's nulls and duplicates, as the resident fit checks them ({@link checkIds}), over
 * batches: nulls in each batch; numeric ids (8 bytes a row) gathered and checked for duplicates
 * once; text ids would need them all in memory, so their duplicates are not checked, and a notice
 * says so. With `showValues` false (ids to be pseudonymised) a duplicate is named by its row only.
 */
export class IdCheck {
  private nums: Float64Array[] = [];
  private bigs: BigInt64Array[] = [];
  private text = false;
  constructor(
    private readonly file: string,
    private readonly name: string | null,
    private readonly showValues = true,
  ) {}

  /** The ids of one batch, whose first row is data row `at` + 1. */
  add(b: ColumnTable, at: number): void {
    if (!this.name) return;
    const c = b.column(this.name);
    const nullAt = (i: number) => {
      throw new SegtensorError('BAD_INPUT', `${this.file}: id column '${this.name}' is null at ${dataRow(at + i)}`);
    };
    if (c.type === 'bigint') {
      const i = c.nulls ? c.nulls.indexOf(1) : -1;
      if (i >= 0) nullAt(i);
      this.bigs.push(c.values.slice());
    } else if (c.type === 'number') {
      for (let i = 0; i < c.values.length; i++) if (Number.isNaN(c.values[i])) nullAt(i);
      this.nums.push(c.values.slice());
    } else if (c.type === 'string') {
      const i = c.values.indexOf(null);
      if (i >= 0) nullAt(i);
      this.text = true;
    } else throw new SegtensorError('BAD_INPUT', `${this.file}: id column '${this.name}' has unsupported type ${c.type === 'other' ? c.typeName : c.type}`);
  }

  finish(log: (l: string) => void): void {
    if (this.text) {
      log(`notice: id column '${this.name}' holds text: not checked for duplicates on a table read in blocks (it would take every id in memory)`);
      return;
    }
    const parts: (Float64Array | BigInt64Array)[] = this.bigs.length ? this.bigs : this.nums;
    if (!parts.length) return;
    const total = parts.reduce((s, p) => s + p.length, 0);
    const v = this.bigs.length ? new BigInt64Array(total) : new Float64Array(total);
    let at = 0;
    for (const p of parts) {
      (v as Float64Array).set(p as Float64Array, at);
      at += p.length;
    }
    this.bigs = [];
    this.nums = [];
    checkIds(this.file, this.name!, v, this.showValues);
  }
}
