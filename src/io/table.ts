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

/** Typed arrays a numeric chunk may hold (Arrow buffers are used as they are, without copying). */
export type NumericArray = Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | Uint32Array | Uint16Array | Uint8Array;

/** A run of a numeric column's values; `nulls[i] === 1` marks a null (the value is then garbage). */
export interface NumericChunk {
  values: NumericArray;
  nulls: Uint8Array | null;
}

export type Column =
  | {
      name: string;
      type: 'number' | 'timestamp';
      /** All values as float64, NaN for null (materialised on first use when the column is chunked). */
      readonly values: Float64Array;
      /** The column as read, batch by batch; absent when `values` is the only form. */
      readonly chunks?: NumericChunk[];
    }
  | { name: string; type: 'bigint'; values: BigInt64Array; nulls: Uint8Array | null }
  | { name: string; type: 'string'; values: (string | null)[] }
  | { name: string; type: 'other'; typeName: string };

/**
 * A numeric column over record-batch chunks, without copying them. `values` (one float64 array
 * with NaN for null) is built only if something asks for it: on a million rows that copy costs
 * more than the hot loop.
 */
export function chunkedColumn(name: string, type: 'number' | 'timestamp', chunks: NumericChunk[]): Column {
  let cached: Float64Array | null = null;
  return {
    name,
    type,
    chunks,
    get values() {
      if (cached) return cached;
      const n = chunks.reduce((s, c) => s + c.values.length, 0);
      const out = new Float64Array(n);
      let at = 0;
      for (const c of chunks) {
        const v = c.values;
        const nulls = c.nulls;
        for (let i = 0; i < v.length; i++) out[at + i] = nulls && nulls[i] ? NaN : v[i];
        at += v.length;
      }
      cached = out;
      return out;
    },
  };
}

/** The chunks of a numeric column (one chunk over `values` when it was built unchunked). */
export function numericChunks(c: Column & { type: 'number' | 'timestamp' }): NumericChunk[] {
  return c.chunks ?? [{ values: c.values, nulls: null }];
}

export class ColumnTable {
  private readonly byName: Map<string, Column>;
  /**
   * Cells read as null because they did not convert to their column's type, per column
   * (`--coerce-invalid`; see readTable). Empty when nothing was coerced.
   */
  coercions: Record<string, number> = {};

  constructor(
    readonly path: string,
    readonly nRows: number,
    readonly columns: Column[],
  ) {
    this.byName = new Map(columns.map((c) => [c.name, c]));
  }

  /** Replaces the column of the same name (e.g. ids by their pseudonyms, see src/util/pseudonym.ts). */
  replace(column: Column): void {
    const at = this.columns.findIndex((c) => c.name === column.name);
    if (at < 0) this.column(column.name); // MISSING_COLUMN naming the file
    this.columns[at] = column;
    this.byName.set(column.name, column);
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
    return this.numericColumn(name).values;
  }

  /** The numeric column itself (chunked when read from Arrow), with the same errors as {@link numeric}. */
  numericColumn(name: string): Column & { type: 'number' | 'timestamp' } {
    const c = this.column(name);
    if (c.type === 'number' || c.type === 'timestamp') return c;
    if (c.type === 'bigint') {
      const out = new Float64Array(c.values.length);
      for (let i = 0; i < out.length; i++) out[i] = c.nulls?.[i] ? NaN : Number(c.values[i]);
      return { name, type: 'number', values: out };
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
