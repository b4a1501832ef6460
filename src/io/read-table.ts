import fs from 'node:fs';
import { dataRow, SegtensorError } from '../errors.js';
import { arrowBatches, readArrow } from './arrow-reader.js';
import { duckBatches, readWithDuckDB, type DuckRead } from './duckdb-reader.js';
import { formatOf, type TableFormat } from './format.js';
import { ColumnTable, type Column } from './table.js';

/** Types `--dtypes col:type` may declare. */
import { DTYPES, type DType } from './dtypes.js';
export { DTYPES, type DType };

/** How {@link readTable} types columns. */
export interface ReadOptions {
  /** Declared column types (`--dtypes`), applied after reading, the same way for every format. Default none. */
  dtypes?: Readonly<Record<string, DType>>;
  /**
   * Read cells that do not convert to their column's type (a stray 'n/a' in a numeric column,
   * or a cell against `dtypes`) as null, counted in `table.coercions`, instead of failing.
   * Default false.
   */
  coerceInvalid?: boolean;
}

/**
 * A text column counts as mostly numeric, and so as a numeric column with bad cells, when at
 * least this share of its present cells are numbers.
 */
export const MIXED_THRESHOLD = 0.5;

/**
 * Reads a customer table; the format follows the extension (`.arrow`/`.arrows`/`.feather`,
 * `.parquet`, `.csv`). Errors name the file.
 *
 * One schema whatever the format: native types are kept (a boolean is the text 'true'/'false'),
 * and text is typed by its content by one rule for every format (CSV cells are all text):
 * - a text column whose cells are all numbers is numeric (64-bit integers when all are integers),
 *   except when an integer is written with a leading zero (ids like `00123` stay as written);
 * - a text column of which at least {@link MIXED_THRESHOLD} of the present cells are numbers but
 *   some are not is a `MIXED_COLUMN` error naming the first bad cell (its file line for CSV,
 *   else `data row N`); with `coerceInvalid` those cells are null and counted in `coercions`;
 * - other text stays text (categorical).
 * Columns named in `dtypes` are converted to the declared type instead, with the same errors.
 *
 * @example
 * const t = await readTable('customers.arrow');
 * const u = await readTable('churn.csv', '--input', { dtypes: { plan: 'string' }, coerceInvalid: true });
 * u.coercions; // { spend: 2 }
 */
export async function readTable(file: string, option = '--input', options: ReadOptions = {}): Promise<ColumnTable> {
  const format = checkInputFile(file, option);
  const dtypes = options.dtypes ?? {};
  for (const [name, type] of Object.entries(dtypes)) {
    if (!DTYPES.includes(type)) throw new SegtensorError('BAD_OPTION', `--dtypes: type of '${name}' must be one of ${DTYPES.join(', ')}; got '${type}'`);
  }
  const read: DuckRead = format === 'arrow' ? { table: await readArrow(file) } : await readWithDuckDB(file, format, Object.keys(dtypes));
  const dup = read.table.names.find((n, i) => read.table.names.indexOf(n) !== i);
  if (dup !== undefined) throw new SegtensorError('CORRUPT_FILE', `${file}: column '${dup}' appears twice; column names must be unique`);
  return typeColumns(read, dtypes, options.coerceInvalid ?? false);
}

/** `notice:` lines for the cells a read coerced to null, for a job's log. */
export function coercionNotices(table: ColumnTable): string[] {
  return Object.entries(table.coercions).map(
    ([name, n]) => `notice: ${table.path}: column '${name}': ${n} cell${n === 1 ? '' : 's'} that did not convert read as null (--coerce-invalid)`,
  );
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL = /^[+-]?(inf|infinity|nan)$/i;
const INTEGER = /^[+-]?\d+$/;
const INT64_MAX = 2n ** 63n - 1n;

/** A text cell as a number (NaN for 'nan'), or null when it is not one. Blank cells are never passed. */
function parseNumber(t: string): number | null {
  return NUMBER.test(t) || SPECIAL.test(t) ? Number(t.replace(/inf(inity)?$/i, 'Infinity').replace(/^([+-]?)nan$/i, 'NaN')) : null;
}

/** A text cell as a 64-bit integer, or null when it is not one. */
function parseInteger(t: string): bigint | null {
  if (!INTEGER.test(t)) return null;
  const b = BigInt(t);
  return b > INT64_MAX || b < -INT64_MAX - 1n ? null : b;
}

/** A text cell as ms since the epoch (NaN when it is not a date); a time without a zone is UTC, as DuckDB reads it. */
function parseTimestamp(t: string): number {
  const naive = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t);
  return Date.parse(naive ? `${t.replace(' ', 'T')}Z` : t);
}

/** A converted column, plus its cells that did not convert. */
interface Converted {
  column: Column;
  bad: number[];
}

/** The first bad cell of a conversion, and how many. */
interface BadCells {
  name: string;
  first: number;
  value: string;
  count: number;
}

function numbersFrom(name: string, values: (string | null)[], asInteger: boolean): Converted {
  const bad: number[] = [];
  if (asInteger) {
    const out = new BigInt64Array(values.length);
    let nulls: Uint8Array | null = null;
    values.forEach((v, i) => {
      const t = v?.trim() ?? '';
      const b = t === '' ? null : parseInteger(t);
      if (b === null) {
        if (t !== '') bad.push(i);
        (nulls ??= new Uint8Array(values.length))[i] = 1;
      } else out[i] = b;
    });
    return { column: { name, type: 'bigint', values: out, nulls }, bad };
  }
  const out = new Float64Array(values.length);
  values.forEach((v, i) => {
    const t = v?.trim() ?? '';
    const x = t === '' ? NaN : parseNumber(t);
    if (x === null) bad.push(i);
    out[i] = x ?? NaN;
  });
  return { column: { name, type: 'number', values: out }, bad };
}

/**
 * The counts behind the text-by-content rule of {@link readTable} for one text column, over
 * one array of cells or a column read in batches (`add` each): whether the column would be
 * read as numbers (`numeric`), and as integers.
 */
export class TextNumbers {
  private present = 0;
  private numbers = 0;
  private integers = true;
  private leadingZero = false;

  add(values: readonly (string | null)[]): void {
    for (const v of values) {
      const t = v?.trim() ?? '';
      if (t === '') continue;
      this.present++;
      if (parseNumber(t) === null) continue;
      this.numbers++;
      if (this.integers && parseInteger(t) === null) this.integers = false;
      else if (!this.leadingZero && /^[+-]?0\d/.test(t)) this.leadingZero = true;
    }
  }

  /** Whether {@link readTable} reads the column as numbers (or fails on its cells that are not). */
  get numeric(): boolean {
    if (this.numbers === 0 || this.numbers < MIXED_THRESHOLD * this.present) return false;
    return !(this.numbers === this.present && this.leadingZero);
  }

  get asIntegers(): boolean {
    return this.integers && this.numbers > 0;
  }
}

/** The text-by-content rule of {@link readTable} for one text column: null when it stays text. */
function inferText(name: string, values: (string | null)[]): Converted | null {
  const counts = new TextNumbers();
  counts.add(values);
  return counts.numeric ? numbersFrom(name, values, counts.asIntegers) : null;
}

/**
 * `t` with the columns `names` read as text, as `--dtypes name:string` (and `--categorical`)
 * read them in memory: numbers as JavaScript prints them, timestamps in ISO form, nulls null.
 * For a table read in batches, one batch at a time.
 */
export function asTextColumns(t: ColumnTable, names: readonly string[]): ColumnTable {
  if (!names.length) return t;
  const columns = t.columns.map((c) => (names.includes(c.name) ? convertDeclared(t, c, 'string').column : c));
  return new ColumnTable(t.path, t.nRows, columns);
}

function convertDeclared(table: ColumnTable, c: Column, type: DType): Converted {
  const name = c.name;
  if (c.type === 'other') {
    throw new SegtensorError('BAD_OPTION', `--dtypes: column '${name}' of ${table.path} is ${c.typeName}, which cannot be read as ${type}`);
  }
  const nullAt = (i: number) => (c.type === 'bigint' ? c.nulls?.[i] === 1 : c.type === 'string' ? c.values[i] === null : Number.isNaN(c.values[i]));
  const text = (i: number): string | null => {
    if (nullAt(i)) return null;
    if (c.type === 'string') return c.values[i];
    if (c.type === 'timestamp') return new Date(c.values[i]).toISOString();
    return String(c.values[i]);
  };
  const n = table.nRows;
  if (type === 'string') {
    if (c.type === 'string') return { column: c, bad: [] };
    return { column: { name, type: 'string', values: Array.from({ length: n }, (_, i) => text(i)) }, bad: [] };
  }
  if (c.type === 'string') {
    if (type === 'timestamp') {
      const out = new Float64Array(n);
      const bad: number[] = [];
      c.values.forEach((v, i) => {
        const t = v?.trim() ?? '';
        out[i] = t === '' ? NaN : parseTimestamp(t);
        if (t !== '' && Number.isNaN(out[i])) bad.push(i);
      });
      return { column: { name, type: 'timestamp', values: out }, bad };
    }
    return numbersFrom(name, c.values, type === 'integer');
  }
  // From a native number, integer or timestamp (ms since the epoch).
  if (type === 'integer') {
    if (c.type === 'bigint') return { column: c, bad: [] };
    const out = new BigInt64Array(n);
    let nulls: Uint8Array | null = null;
    const bad: number[] = [];
    c.values.forEach((v, i) => {
      if (Number.isSafeInteger(v)) out[i] = BigInt(v);
      else {
        if (!Number.isNaN(v)) bad.push(i);
        (nulls ??= new Uint8Array(n))[i] = 1;
      }
    });
    return { column: { name, type: 'bigint', values: out, nulls }, bad };
  }
  let values: Float64Array;
  if (c.type === 'bigint') {
    // A plain loop: `Float64Array.from` with a mapping function costs ~0.2 s per million values.
    const src = c.values;
    values = new Float64Array(src.length);
    for (let i = 0; i < src.length; i++) values[i] = c.nulls?.[i] ? NaN : Number(src[i]);
  } else values = c.values;
  return { column: { name, type: type === 'timestamp' ? 'timestamp' : 'number', values }, bad: [] };
}

/** Where a bad cell is: its file line for CSV, else its data row. */
function where(read: DuckRead, row: number): string {
  return read.lineOf ? `line ${read.lineOf(row)}` : dataRow(row);
}

/** Applies `dtypes` and the text-by-content rule (see {@link readTable}) to every column. */
async function typeColumns(read: DuckRead, dtypes: Readonly<Record<string, DType>>, coerce: boolean): Promise<ColumnTable> {
  const table = read.table;
  for (const name of Object.keys(dtypes)) {
    if (!table.has(name)) {
      const known = table.names.slice(0, 20).join(', ') + (table.names.length > 20 ? ', …' : '');
      throw new SegtensorError('MISSING_COLUMN', `--dtypes names column '${name}', which ${table.path} does not have (columns: ${known})`);
    }
  }
  const coercions: Record<string, number> = {};
  let changed = false;
  const columns: Column[] = [];
  for (const c of table.columns) {
    const declared = dtypes[c.name];
    const conv = declared ? convertDeclared(table, c, declared) : c.type === 'string' ? inferText(c.name, c.values) : null;
    if (!conv) {
      columns.push(c);
      continue;
    }
    if (conv.bad.length) {
      const first = conv.bad[0];
      const raw = c.type === 'string' ? c.values[first] : c.type === 'bigint' ? String(c.values[first]) : c.type === 'other' ? '' : String(c.values[first]);
      const bad: BadCells = { name: c.name, first, value: raw ?? '', count: conv.bad.length };
      if (!coerce) {
        const at = where(read, first);
        const count = bad.count > 1 ? ` (${bad.count} cells do not convert)` : '';
        const present = c.type === 'string' ? c.values.filter((v) => v !== null && v.trim() !== '').length : table.nRows;
        throw new SegtensorError(
          'MIXED_COLUMN',
          declared
            ? `${table.path}: column '${c.name}' is declared ${declared} (--dtypes) but ${at} holds '${bad.value}'${count}; fix the file or pass --coerce-invalid to read such cells as null`
            : `${table.path}: column '${c.name}' is mostly numbers (${present - bad.count} of ${present} cells) but ${at} holds '${bad.value}'${count}; fix the file, pass --coerce-invalid to read such cells as null, or --dtypes ${c.name}:string to keep the column as text`,
        );
      }
      coercions[c.name] = bad.count;
    }
    columns.push(conv.column);
    changed = true;
  }
  const out = changed ? new ColumnTable(table.path, table.nRows, columns) : table;
  out.coercions = coercions;
  return out;
}

/**
 * The checks every input file gets before a reader opens it — a known extension, present, a
 * regular file, not empty — as one-line errors naming `option`. Returns its format.
 */
/**
 * A table as a stream of batches, for tables larger than memory (issue 17): Arrow IPC record
 * batches as written, Parquet and CSV through DuckDB in batches of about `batchRows` rows. Columns
 * keep their stored types (no content-based typing, which needs the whole column; `--dtypes` and
 * `--coerce-invalid` are not applied). Each call opens a new stream from the start.
 */
export function readTableBatches(file: string, option = '--input', batchRows = 1 << 16): AsyncGenerator<ColumnTable> {
  const format = checkInputFile(file, option);
  return format === 'arrow' ? arrowBatches(file) : duckBatches(file, format, batchRows);
}

export function checkInputFile(file: string, option: string): TableFormat {
  const format = formatOf(file, option);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${file}': no such file`);
  }
  if (!st.isFile()) throw new SegtensorError('BAD_INPUT', `${option} '${file}': not a regular file`);
  if (st.size === 0) throw new SegtensorError('EMPTY_TABLE', `${file}: the file is empty`);
  return format;
}
