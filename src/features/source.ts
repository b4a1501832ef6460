/**
 * Registers an input table (Parquet, CSV or Arrow IPC) with the shared DuckDB connection as a
 * SQL relation, and describes its columns. Parquet and CSV are read by DuckDB in place
 * (streamed, parallel); Arrow IPC goes through our Arrow reader into a temp table, since
 * DuckDB 1.5 has no built-in Arrow IPC reader.
 * @internal
 */
import { DOUBLE, BIGINT, VARCHAR, TIMESTAMP, DuckDBDataChunk, DuckDBTimestampValue, DuckDBTypeId, type DuckDBType } from '@duckdb/node-api';
import { SegtensorError } from '../errors.js';
import { firstLine } from '../io/arrow-reader.js';
import { csvRelation, duck, sqlString } from '../io/duckdb-reader.js';
import { checkInputFile, readTable } from '../io/read-table.js';

export interface SourceColumn {
  name: string;
  typeId: DuckDBTypeId;
  typeName: string;
}

export interface Source {
  /** The file, for error messages. */
  file: string;
  /** A SQL relation expression (`read_parquet(...)` or a temp table name). */
  relation: string;
  columns: SourceColumn[];
  /** Drops any temp table made for it. */
  dispose(): Promise<void>;
}

/** Double-quotes an identifier for SQL. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

let counter = 0;

/** Opens `file` (format by extension) as a DuckDB relation. `option` names the CLI option in errors. */
export async function openSource(file: string, option: string): Promise<Source> {
  const format = checkInputFile(file, option);
  const conn = await duck();
  let relation: string;
  let dispose = async () => {};
  if (format === 'arrow') {
    relation = `st_src_${process.pid}_${++counter}`;
    await arrowToTemp(file, option, relation);
    dispose = async () => void (await conn.run(`DROP TABLE IF EXISTS temp.${relation}`));
  } else {
    relation = format === 'parquet' ? `read_parquet(${sqlString(file)})` : await csvRelation(file);
  }
  try {
    const probe = await conn.run(`SELECT * FROM ${relation} LIMIT 0`);
    const types = probe.columnTypes();
    const columns = probe.columnNames().map((name, i) => ({ name, typeId: types[i].typeId, typeName: String(types[i]) }));
    return { file, relation, columns, dispose };
  } catch (e) {
    await dispose();
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable ${format === 'parquet' ? 'Parquet' : 'CSV'} file (${firstLine(e)})`);
  }
}

/** Loads an Arrow IPC file into a temp table through {@link readTable}; timestamps arrive as epoch ms. */
async function arrowToTemp(file: string, option: string, table: string): Promise<void> {
  const t = await readTable(file, option);
  const cols = t.columns.filter((c) => c.type !== 'other');
  const types: DuckDBType[] = cols.map((c) => (c.type === 'bigint' ? BIGINT : c.type === 'string' ? VARCHAR : c.type === 'timestamp' ? TIMESTAMP : DOUBLE));
  const conn = await duck();
  await conn.run(`CREATE TEMP TABLE ${table} (${cols.map((c, i) => `${ident(c.name)} ${types[i]}`).join(', ')})`);
  const appender = await conn.createAppender(table, 'main', 'temp');
  const step = 2048;
  for (let start = 0; start < t.nRows; start += step) {
    const m = Math.min(step, t.nRows - start);
    const chunk = DuckDBDataChunk.create(types, m);
    cols.forEach((c, i) => {
      const part: unknown[] = new Array(m);
      if (c.type === 'string') for (let r = 0; r < m; r++) part[r] = c.values[start + r];
      else if (c.type === 'bigint') for (let r = 0; r < m; r++) part[r] = c.nulls?.[start + r] ? null : c.values[start + r];
      else if (c.type === 'timestamp') {
        for (let r = 0; r < m; r++) {
          const v = c.values[start + r];
          part[r] = Number.isNaN(v) ? null : new DuckDBTimestampValue(BigInt(Math.round(v * 1000)));
        }
      } else if (c.type === 'number') {
        for (let r = 0; r < m; r++) part[r] = c.values[start + r];
      }
      chunk.setColumnValues(i, part as never);
    });
    appender.appendDataChunk(chunk);
  }
  appender.closeSync();
}

const TIME_TYPES = new Set<DuckDBTypeId>([
  DuckDBTypeId.DATE,
  DuckDBTypeId.TIMESTAMP,
  DuckDBTypeId.TIMESTAMP_S,
  DuckDBTypeId.TIMESTAMP_MS,
  DuckDBTypeId.TIMESTAMP_NS,
]);
const NUMERIC_TYPES = new Set<DuckDBTypeId>([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.FLOAT,
  DuckDBTypeId.DOUBLE,
  DuckDBTypeId.DECIMAL,
]);

/** The column named `name`, or a MISSING_COLUMN error naming the file, the option and the columns there. */
export function column(src: Source, name: string, option: string): SourceColumn {
  const c = src.columns.find((x) => x.name === name);
  if (!c) {
    throw new SegtensorError(
      'MISSING_COLUMN',
      `${src.file}: no column '${name}' (${option}); columns are ${src.columns.map((x) => x.name).join(', ')}`,
    );
  }
  return c;
}

/**
 * SQL turning the time column into a TIMESTAMP (UTC), NULL where it does not parse. ISO 8601
 * strings with an offset are converted to UTC; strings without one are taken as UTC.
 */
export function timestampExpr(src: Source, c: SourceColumn, option: string): string {
  const q = ident(c.name);
  if (TIME_TYPES.has(c.typeId)) return `CAST(${q} AS TIMESTAMP)`;
  if (c.typeId === DuckDBTypeId.TIMESTAMP_TZ) return `timezone('UTC', ${q})`;
  if (c.typeId === DuckDBTypeId.VARCHAR) {
    // A plain cast to TIMESTAMP would silently drop an offset; with one, go through TIMESTAMPTZ.
    const trimmed = `trim(${q})`;
    return `CASE WHEN regexp_matches(${trimmed}, '\\d:\\d{2}(:\\d{2}(\\.\\d*)?)?\\s*(Z|z|[+-]\\d{2}(:?\\d{2})?)$') THEN timezone('UTC', TRY_CAST(${trimmed} AS TIMESTAMPTZ)) ELSE TRY_CAST(${trimmed} AS TIMESTAMP) END`;
  }
  throw new SegtensorError(
    'BAD_INPUT',
    `${src.file}: column '${c.name}' (${option}) must hold timestamps, dates or ISO 8601 strings; got ${c.typeName}`,
  );
}

const FRACTIONAL_TYPES = new Set<DuckDBTypeId>([DuckDBTypeId.FLOAT, DuckDBTypeId.DOUBLE, DuckDBTypeId.DECIMAL]);

/**
 * SQL for an id column as written (issue 12): a FLOAT, DOUBLE or DECIMAL column whose values
 * are all whole numbers becomes BIGINT, so ids read `12346`, as assignments hold them, never
 * `12346.0` (pandas stores an integer id column with missing values as float64, and an Arrow
 * log may reach DuckDB as DOUBLE through {@link openSource}). NaN is a null id. Text and integer columns, and a
 * column with a fractional or out-of-range value, keep their type.
 *
 * @example
 * await idExpr(src, column(src, 'CustomerID', '--customer-col')); // CASE WHEN isnan(...) THEN NULL ELSE CAST(... AS BIGINT) END
 */
export async function idExpr(src: Source, c: SourceColumn): Promise<string> {
  const q = ident(c.name);
  if (!FRACTIONAL_TYPES.has(c.typeId)) return q;
  const d = `CAST(${q} AS DOUBLE)`;
  const conn = await duck();
  // ±9.2e18 keeps the cast inside BIGINT's range (2^63 ≈ 9.22e18).
  const [[fractional]] = (
    await conn.runAndReadAll(`SELECT count(*) FILTER (NOT isnan(${d}) AND (NOT isfinite(${d}) OR ${d} <> trunc(${d}) OR abs(${d}) > 9.2e18)) FROM ${src.relation}`)
  ).getRows();
  return Number(fractional) === 0 ? `CASE WHEN isnan(${d}) THEN NULL ELSE CAST(${q} AS BIGINT) END` : `CASE WHEN isnan(${d}) THEN NULL ELSE ${q} END`;
}

/** SQL turning the amount column into a DOUBLE, NULL where it does not parse. */
export function amountExpr(src: Source, c: SourceColumn, option: string): string {
  const q = ident(c.name);
  if (NUMERIC_TYPES.has(c.typeId)) return `CAST(${q} AS DOUBLE)`;
  if (c.typeId === DuckDBTypeId.VARCHAR) return `TRY_CAST(${q} AS DOUBLE)`;
  throw new SegtensorError('NON_NUMERIC_COLUMN', `${src.file}: column '${c.name}' (${option}) must be numeric or numeric text; got ${c.typeName}`);
}
