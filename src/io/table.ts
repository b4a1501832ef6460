/**
 * The in-memory form of an input table: columns, not rows. Numeric columns are float64 with NaN
 * for null; strings stay strings (for one-hot encoding); an id column keeps its original values
 * so it passes through to the output unchanged.
 *
 * @example
 * const t = await readTable('customers.parquet');
 * t.nRows; t.column('age'); // { type: 'number', values: Float64Array }
 */
import { SegtensorError } from '../errors.js';

export type ColumnType = 'number' | 'string' | 'timestamp' | 'bigint' | 'other';

export type Column =
  | { name: string; type: 'number' | 'timestamp'; values: Float64Array }
  | { name: string; type: 'bigint'; values: BigInt64Array; nulls: Uint8Array | null }
  | { name: string; type: 'string'; values: (string | null)[] }
  | { name: string; type: 'other'; typeName: string };

export class ColumnTable {
  private readonly byName: Map<string, Column>;

  constructor(
    readonly path: string,
    readonly nRows: number,
    readonly columns: Column[],
  ) {
    this.byName = new Map(columns.map((c) => [c.name, c]));
  }

  get names(): string[] {
    return this.columns.map((c) => c.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The named column; an unknown name is a `MISSING_COLUMN` error that lists what exists. */
  column(name: string): Column {
    const c = this.byName.get(name);
    if (!c) {
      const known = this.names.slice(0, 20).join(', ') + (this.names.length > 20 ? ', …' : '');
      throw new SegtensorError('MISSING_COLUMN', `${this.path}: no column '${name}' (columns: ${known})`);
    }
    return c;
  }

  /**
   * Values of a numeric-like column as float64 (NaN for null): numbers, timestamps (ms since
   * the epoch) and 64-bit integers. Strings are a `NON_NUMERIC_COLUMN` error.
   */
  numeric(name: string): Float64Array {
    const c = this.column(name);
    if (c.type === 'number' || c.type === 'timestamp') return c.values;
    if (c.type === 'bigint') {
      const out = new Float64Array(c.values.length);
      for (let i = 0; i < out.length; i++) out[i] = c.nulls?.[i] ? NaN : Number(c.values[i]);
      return out;
    }
    const what = c.type === 'other' ? c.typeName : 'string';
    throw new SegtensorError('NON_NUMERIC_COLUMN', `${this.path}: column '${name}' is ${what}, not numeric`);
  }
}

/** Grows a Float64Array as record batches arrive, so no row count is needed up front. */
export class Float64Builder {
  private buf = new Float64Array(1024);
  length = 0;

  reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.length + extra) cap *= 2;
    const next = new Float64Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Writable view of the next `n` slots; call {@link commit} after filling them. */
  tail(n: number): Float64Array {
    this.reserve(n);
    return this.buf.subarray(this.length, this.length + n);
  }

  commit(n: number): void {
    this.length += n;
  }

  finish(): Float64Array {
    return this.buf.length === this.length ? this.buf : this.buf.slice(0, this.length);
  }
}
