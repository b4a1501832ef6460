/**
 * Parquet and CSV through DuckDB, streamed in DuckDB's data chunks (2,048 rows), so no row
 * objects are built: each chunk's column vectors are copied into growing column buffers.
 * DuckDB sniffs CSV dialects and types, and reads Parquet row groups in parallel.
 * @internal
 */
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
    case T.BOOLEAN:
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

/** One in-process DuckDB connection for the whole run. @internal */
export function duck(): Promise<DuckDBConnection> {
  shared ??= duckModule().then((m) => m.DuckDBInstance.create(':memory:')).then((db) => db.connect());
  return shared;
}

/** Reads a Parquet or CSV file. */
export async function readWithDuckDB(file: string, format: 'parquet' | 'csv'): Promise<ColumnTable> {
  const conn = await duck();
  const source = format === 'parquet' ? `read_parquet(${sqlString(file)})` : `read_csv(${sqlString(file)})`;
  let names: string[];
  let types: DuckDBType[];
  try {
    const probe = await conn.run(`SELECT * FROM ${source} LIMIT 0`);
    names = probe.columnNames();
    types = probe.columnTypes();
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable ${format === 'parquet' ? 'Parquet' : 'CSV'} file (${firstLine(e)})`);
  }
  const m = await duckModule();
  const kinds = types.map((t) => kindOf(t, m));
  const sql = `SELECT ${names.map((n, i) => select(n, kinds[i])).join(', ')} FROM ${source}`;
  const nums = kinds.map((k) => (k === 'number' || k === 'timestamp' ? new Float64Builder() : null));
  const bigs = kinds.map((k) => (k === 'bigint' ? ([] as (bigint | null)[]) : null));
  const strs = kinds.map((k) => (k === 'string' ? ([] as (string | null)[]) : null));
  let nRows = 0;
  try {
    const result = await conn.stream(sql);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      for (let c = 0; c < names.length; c++) {
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
      nRows += n;
    }
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: could not be read (${firstLine(e)})`);
  }
  const columns = names.map((name, c): Column => {
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
  return new ColumnTable(file, nRows, columns);
}
