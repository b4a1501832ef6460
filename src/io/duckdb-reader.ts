/**
 * Parquet and CSV through DuckDB, streamed in DuckDB's data chunks (2,048 rows), so no row
 * objects are built: each chunk's column vectors are copied into growing column buffers.
 * DuckDB reads Parquet row groups in parallel. For CSV we find the delimiter on the header line
 * ourselves and let DuckDB's sniffer pick the column types (never BOOLEAN: yes/no and true/false
 * stay text, as in Arrow and Parquet), then read with those types in strict mode, so a ragged or
 * truncated line is an error naming its file line instead of a silent one-column table.
 * @internal
 */
import fs from 'node:fs';
import type { DuckDBConnection, DuckDBType } from '@duckdb/node-api';

type DuckModule = typeof import('@duckdb/node-api');

let mod: Promise<DuckModule> | null = null;
/** DuckDB's module, loaded on first use: it costs ~0.5 s at start-up, which Arrow-only runs skip. @internal */
export function duckModule(): Promise<DuckModule> {
  mod ??= import('@duckdb/node-api');
  return mod;
}
import { SegtensorError } from '../errors.js';
import { firstLine } from './arrow-reader.js';
import { ColumnTable, Float64Builder, type Column, type ColumnType } from './table.js';
import { onAbort } from './run-dir.js';

function kindOf(t: DuckDBType, { DuckDBTypeId: T }: DuckModule): ColumnType {
  switch (t.typeId) {
    case T.BIGINT:
      return 'bigint';
    case T.TINYINT:
    case T.SMALLINT:
    case T.INTEGER:
    case T.UTINYINT:
    case T.USMALLINT:
    case T.UINTEGER:
    case T.UBIGINT:
    case T.HUGEINT:
    case T.FLOAT:
    case T.DOUBLE:
    case T.DECIMAL:
      return 'number';
    case T.DATE:
    case T.TIMESTAMP:
    case T.TIMESTAMP_S:
    case T.TIMESTAMP_MS:
    case T.TIMESTAMP_NS:
    case T.TIMESTAMP_TZ:
      return 'timestamp';
    case T.VARCHAR:
    case T.ENUM:
    // One rule for every format: a native boolean is the text 'true'/'false', as the same
    // column written to CSV reads (see arrow-reader.ts).
    case T.BOOLEAN:
      return 'string';
    default:
      return 'other';
  }
}

/** SQL expression that makes DuckDB hand us a simple physical type for each kind. */
function select(name: string, kind: ColumnType): string {
  const q = `"${name.replaceAll('"', '""')}"`;
  if (kind === 'number') return `CAST(${q} AS DOUBLE)`;
  if (kind === 'timestamp') return `CAST(epoch_ms(CAST(${q} AS TIMESTAMP)) AS DOUBLE)`;
  if (kind === 'string') return `CAST(${q} AS VARCHAR)`;
  return q;
}

export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

let shared: Promise<DuckDBConnection> | null = null;

/**
 * One in-process DuckDB connection for the whole run. An aborted run (a signal) interrupts its
 * query first, so DuckDB's threads stop writing spill and output files into the staging
 * directory being removed. @internal
 */
export function duck(): Promise<DuckDBConnection> {
  shared ??= duckModule()
    .then((m) => m.DuckDBInstance.create(':memory:'))
    .then((db) => db.connect())
    .then((c) => {
      onAbort(() => c.interrupt());
      return c;
    });
  return shared;
}

/** What {@link readWithDuckDB} returns: the table, and for CSV a way to find a cell's file line. */
export interface DuckRead {
  table: ColumnTable;
  /** The file line (1-based, the header is line 1) where data row `i` (0-based) starts. */
  lineOf?: (i: number) => number;
}

/**
 * Reads a Parquet or CSV file. `varchar` names CSV columns to read as text whatever they look
 * like (the `--dtypes` columns: converted later, by the same rule for every format).
 */
export async function readWithDuckDB(file: string, format: 'parquet' | 'csv', varchar: readonly string[] = []): Promise<DuckRead> {
  if (format === 'parquet') return { table: await readSource(file, `read_parquet(${sqlString(file)})`, 'Parquet') };
  const csv = await csvDialect(file);
  const types = new Map(csv.columns);
  for (const v of varchar) if (types.has(v)) types.set(v, 'VARCHAR');
  // A column the sniffer typed from its sample may hold a cell further down that does not
  // convert: read that column as text and let read-table's mixed-column rule judge it.
  for (let tries = 0; ; tries++) {
    try {
      const table = await readSource(file, csvSource(file, csv, types), 'CSV');
      return { table, lineOf: (i) => physicalLine(file, i + 2) };
    } catch (e) {
      const col = e instanceof CsvConversion ? e.column : null;
      if (col === null || !types.has(col) || types.get(col) === 'VARCHAR' || tries > csv.columns.length) throw e;
      types.set(col, 'VARCHAR');
    }
  }
}

/**
 * A CSV as a DuckDB relation for SQL over it (the `features` log): the same delimiter detection,
 * types and strict parser as {@link readWithDuckDB}, so a malformed file fails up front naming
 * its line.
 */
export async function csvRelation(file: string): Promise<string> {
  const d = await csvDialect(file);
  return csvSource(file, d, new Map(d.columns));
}

/** A CSV's dialect and the sniffed type of each column. @internal */
interface CsvDialect {
  delim: string;
  columns: [string, string][];
  dateFormat: string | null;
  timestampFormat: string | null;
}

/** DuckDB's sniffer may pick any of these; BOOLEAN is left out on purpose (see the module comment). */
const TYPE_CANDIDATES = "['BIGINT', 'DOUBLE', 'TIMESTAMP', 'TIMESTAMPTZ', 'DATE', 'VARCHAR']";

/** A cell DuckDB could not convert to the column's sniffed type. */
class CsvConversion extends Error {
  constructor(readonly column: string, message: string) {
    super(message);
  }
}

/**
 * The header line of a CSV (BOM stripped), from its first 1 MiB. Only blank lines is an
 * `EMPTY_TABLE` error.
 */
function headerLine(file: string): string {
  const fd = fs.openSync(file, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(Math.min(1 << 20, fs.fstatSync(fd).size));
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    text = buf.subarray(0, n).toString('utf8').replace(/^\uFEFF/, '');
  } finally {
    fs.closeSync(fd);
  }
  if (text.trim() === '') throw new SegtensorError('EMPTY_TABLE', `${file}: the file holds no header line (only blank lines)`);
  const end = text.search(/\r?\n/);
  const line = end < 0 ? text : text.slice(0, end);
  if (line.trim() === '') throw new SegtensorError('CORRUPT_FILE', `${file}: line 1 is blank; a CSV's first line must be its header`);
  return line;
}

/** Count of `ch` in `line` outside double quotes. */
function countOutsideQuotes(line: string, ch: string): number {
  let n = 0;
  let quoted = false;
  for (const c of line) {
    if (c === '"') quoted = !quoted;
    else if (c === ch && !quoted) n++;
  }
  return n;
}

/**
 * The delimiter: whichever of , ; tab | occurs most often outside quotes on the header line
 * (a comma when none does: a single column). DuckDB's own sniffer gives up on a ragged file
 * and falls back to one column named after the whole header line.
 */
export function detectDelimiter(header: string): string {
  let best = ',';
  let most = 0;
  for (const d of [',', ';', '\t', '|']) {
    const n = countOutsideQuotes(header, d);
    if (n > most) [best, most] = [d, n];
  }
  return best;
}

/** The fields of one CSV line ("" inside quotes is a quote). */
function splitLine(line: string, delim: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === delim) out.push(cur), (cur = '');
    else cur += c;
  }
  out.push(cur);
  return out;
}

const dialectArgs = (d: { delim: string }) => `delim=${sqlString(d.delim)}, quote='"', escape='"', header=true`;

function structSql(columns: Iterable<[string, string]>): string {
  return `{${[...columns].map(([n, t]) => `${sqlString(n)}: ${sqlString(t)}`).join(', ')}}`;
}

/** read_csv with fixed types and DuckDB's strict parser: structural errors name the file line. */
function csvSource(file: string, d: CsvDialect, types: Map<string, string>): string {
  const fmt = (d.dateFormat ? `, dateformat=${sqlString(d.dateFormat)}` : '') + (d.timestampFormat ? `, timestampformat=${sqlString(d.timestampFormat)}` : '');
  return `read_csv(${sqlString(file)}, auto_detect=false, strict_mode=true, ${dialectArgs(d)}, columns=${structSql(types)}${fmt})`;
}

async function csvDialect(file: string): Promise<CsvDialect> {
  const header = headerLine(file);
  const delim = detectDelimiter(header);
  const names = splitLine(header, delim);
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    const first = seen.get(n);
    // DuckDB would rename the second to `<name>_1`: a model would then fit on a column the file does not name.
    if (first !== undefined) throw new SegtensorError('CORRUPT_FILE', `${file}: line 1 names column '${n}' twice (fields ${first + 1} and ${i + 1}); column names must be unique`);
    seen.set(n, i);
  });
  const conn = await duck();
  let sniffed: CsvDialect | null = null;
  let why = '';
  try {
    const r = await conn.runAndReadAll(
      // The whole file, not a sample: a cell far down ('n/a', '1.5' in an integer column) must
      // decide the type, or DuckDB's fixed-type read fails on it, or rounds 1.5 to 2 for BIGINT.
      `SELECT Columns, DateFormat, TimestampFormat FROM sniff_csv(${sqlString(file)}, ${dialectArgs({ delim })}, sample_size=-1, auto_type_candidates=${TYPE_CANDIDATES})`,
    );
    const [cols, dateFormat, timestampFormat] = r.getRowObjectsJS().map((o) => [o.Columns, o.DateFormat, o.TimestampFormat])[0] as [
      { name: string; type: string }[],
      string | null,
      string | null,
    ];
    sniffed = { delim, columns: cols.map((c) => [c.name, c.type]), dateFormat, timestampFormat };
  } catch (e) {
    why = firstLine(e);
  }
  // The sniffer may also "succeed" on a malformed file by taking a data line for the header.
  if (sniffed && sniffed.columns.length === names.length) return sniffed;
  const all: [string, string][] = names.map((n) => [n, 'VARCHAR']);
  await readSource(file, csvSource(file, { delim, columns: all, dateFormat: null, timestampFormat: null }, new Map(all)), 'CSV');
  throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable CSV file (${why || `its header has ${names.length} fields, DuckDB found ${sniffed?.columns.length}`})`);
}

/**
 * The file line where CSV record `record` starts (the header is record 1). DuckDB's "CSV Error
 * on Line: N" counts records, so a quoted value holding a line break shifts every later line.
 */
export function physicalLine(file: string, record: number): number {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let line = 1;
    let rec = 1;
    let quoted = false;
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return line;
      for (let i = 0; i < n; i++) {
        if (rec >= record) return line;
        const c = buf[i];
        if (c === 0x22) quoted = !quoted;
        else if (c === 0x0a) {
          line++;
          if (!quoted) rec++;
        }
      }
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A DuckDB CSV error as one line: a structural error names the file line and what is wrong;
 * a conversion error becomes {@link CsvConversion}.
 */
function csvError(file: string, e: unknown): Error {
  const msg = String(e instanceof Error ? e.message : e);
  const line = /CSV Error on Line: (\d+)/.exec(msg)?.[1];
  const conv = /Error when converting column "((?:[^"]|"")*)"/.exec(msg);
  if (conv) return new CsvConversion(conv[1].replaceAll('""', '"'), msg);
  if (!line) return new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
  const fields = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(msg);
  const what = fields
    ? `expected ${fields[1]} fields, found ${fields[2]}`
    : /unterminated quote/i.test(msg)
      ? 'a quoted value is never closed (unterminated quote)'
      : firstLine(msg.split('\n').find((l) => l.trim() && !/^(Invalid Input|Conversion) Error/.test(l)) ?? msg);
  return new SegtensorError('CORRUPT_FILE', `${file}: malformed CSV at line ${physicalLine(file, Number(line))}: ${what}`);
}

/** A DuckDB table function's columns, their kinds, and the query that reads them typed. */
async function probeSource(file: string, source: string, kind: 'Parquet' | 'CSV') {
  const conn = await duck();
  let names: string[];
  let types: DuckDBType[];
  try {
    const probe = await conn.run(`SELECT * FROM ${source} LIMIT 0`);
    names = probe.columnNames();
    types = probe.columnTypes();
  } catch (e) {
    if (kind === 'CSV') throw csvError(file, e);
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable Parquet file (${firstLine(e)})`);
  }
  const m = await duckModule();
  const kinds = types.map((t) => kindOf(t, m));
  const sql = `SELECT ${names.map((n, i) => select(n, kinds[i])).join(', ')} FROM ${source}`;
  return { conn, names, types, kinds, sql };
}

/** Reads a table from a DuckDB table function (`read_parquet(...)`, `read_csv(...)`). */
async function readSource(file: string, source: string, kind: 'Parquet' | 'CSV'): Promise<ColumnTable> {
  const { conn, names, types, kinds, sql } = await probeSource(file, source, kind);
  const { nums, bigs, strs } = newBuilders(kinds);
  let nRows = 0;
  try {
    // The node bindings end a stream silently when DuckDB fails mid-way (a cell, a line or a
    // page that does not parse): its fetch just returns no chunk. CSV is read materialised, so
    // every error is thrown, and a Parquet stream's row count is checked against the metadata.
    const result = kind === 'CSV' ? await conn.run(sql) : await conn.stream(sql);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      appendChunk(chunk, kinds, nums, bigs, strs);
      nRows += chunk.rowCount;
    }
    if (kind === 'Parquet') {
      const expected = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0][0]);
      if (expected !== nRows) {
        await conn.run(sql); // throws DuckDB's own message, when it has one
        throw new Error(`the read stopped after ${nRows} of ${expected} rows`);
      }
    }
  } catch (e) {
    if (kind === 'CSV') throw csvError(file, e);
    throw new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
  }
  return new ColumnTable(file, nRows, finishColumns(names, kinds, types, nums, bigs, strs));
}

type Builders = { nums: (Float64Builder | null)[]; bigs: ((bigint | null)[] | null)[]; strs: ((string | null)[] | null)[] };

function newBuilders(kinds: ColumnType[]): Builders {
  return {
    nums: kinds.map((k) => (k === 'number' || k === 'timestamp' ? new Float64Builder() : null)),
    bigs: kinds.map((k) => (k === 'bigint' ? ([] as (bigint | null)[]) : null)),
    strs: kinds.map((k) => (k === 'string' ? ([] as (string | null)[]) : null)),
  };
}

/** One DuckDB data chunk's values appended to the column builders. */
function appendChunk(chunk: DuckChunk, kinds: ColumnType[], nums: Builders['nums'], bigs: Builders['bigs'], strs: Builders['strs']): void {
  const n = chunk.rowCount;
  for (let c = 0; c < kinds.length; c++) {
    if (kinds[c] === 'other') continue;
    const vec = chunk.getColumnVector(c);
    const nb = nums[c];
    if (nb) {
      const out = nb.tail(n);
      for (let i = 0; i < n; i++) {
        const v = vec.getItem(i) as number | null;
        out[i] = v === null ? NaN : v;
      }
      nb.commit(n);
    } else {
      const arr = (bigs[c] ?? strs[c]) as unknown[];
      for (let i = 0; i < n; i++) arr.push(vec.getItem(i));
    }
  }
}

function finishColumns(names: string[], kinds: ColumnType[], types: DuckDBType[], nums: Builders['nums'], bigs: Builders['bigs'], strs: Builders['strs']): Column[] {
  return names.map((name, c): Column => {
    const k = kinds[c];
    if (k === 'number' || k === 'timestamp') return { name, type: k, values: nums[c]!.finish() };
    if (k === 'bigint') {
      const src = bigs[c]!;
      const values = new BigInt64Array(src.length);
      let nulls: Uint8Array | null = null;
      src.forEach((v, i) => {
        if (v === null) (nulls ??= new Uint8Array(src.length))[i] = 1;
        else values[i] = v;
      });
      return { name, type: 'bigint', values, nulls };
    }
    if (k === 'string') return { name, type: 'string', values: strs[c]! };
    return { name, type: 'other', typeName: String(types[c]) };
  });
}

type DuckChunk = { rowCount: number; getColumnVector(c: number): { getItem(i: number): unknown } };

/**
 * A Parquet or CSV file as a stream of tables of about `batchRows` rows each (out-of-core
 * reads, issue 17): DuckDB streams the file, so memory holds one batch. Columns as
 * {@link readWithDuckDB} types them from the schema (CSV: DuckDB's sniffed types; a CSV column
 * with a cell that does not convert is an error here, not re-read as text). The row count is
 * checked at the end, as a DuckDB stream may stop early on an error without raising it.
 */
export async function* duckBatches(file: string, format: 'parquet' | 'csv', batchRows: number): AsyncGenerator<ColumnTable> {
  // A streaming fit reads the file several times: its dialect and row count are found once.
  const st = fs.statSync(file);
  const identity = `${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  let facts = batchFacts.get(identity);
  if (!facts) batchFacts.set(identity, (facts = { dialect: format === 'csv' ? await csvDialect(file) : null, rows: null }));
  const dialect = facts.dialect;
  const source = dialect ? csvSource(file, dialect, new Map(dialect.columns)) : `read_parquet(${sqlString(file)})`;
  const kind = format === 'parquet' ? 'Parquet' : 'CSV';
  const { conn, names, types, kinds, sql } = await probeSource(file, source, kind);
  let b = newBuilders(kinds);
  let inBatch = 0;
  let nRows = 0;
  let result;
  try {
    result = await conn.stream(sql);
  } catch (e) {
    if (kind === 'CSV') throw csvError(file, e);
    throw new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
  }
  for (;;) {
    let chunk;
    try {
      chunk = await result.fetchChunk();
    } catch (e) {
      if (kind === 'CSV') throw csvError(file, e);
      throw new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
    }
    const done = !chunk || chunk.rowCount === 0;
    if (!done) {
      appendChunk(chunk!, kinds, b.nums, b.bigs, b.strs);
      inBatch += chunk!.rowCount;
      nRows += chunk!.rowCount;
    }
    if (inBatch > 0 && (done || inBatch >= batchRows)) {
      yield new ColumnTable(file, inBatch, finishColumns(names, kinds, types, b.nums, b.bigs, b.strs));
      b = newBuilders(kinds);
      inBatch = 0;
    }
    if (done) break;
  }
  if (facts.rows === null) {
    try {
      facts.rows = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0][0]);
    } catch (e) {
      if (kind === 'CSV') throw csvError(file, e);
      throw new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
    }
  }
  if (facts.rows !== nRows) throw new SegtensorError('CORRUPT_FILE', `${file}: the read stopped after ${nRows} of ${facts.rows} rows`);
}

/** Per file (path, inode, size, modification time): its CSV dialect and row count, for {@link duckBatches}' later passes. */
const batchFacts = new Map<string, { dialect: Awaited<ReturnType<typeof csvDialect>> | null; rows: number | null }>();
