/**
 * Parquet and CSV through DuckDB, streamed in DuckDB's data chunks (2,048 rows), so no row
 * objects are built: each chunk's column vectors are copied into growing column buffers.
 * DuckDB sniffs CSV dialects and types, and reads Parquet row groups in parallel.
 * @internal
 */
import { DuckDBInstance, DuckDBTypeId, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import { SegtensorError } from '../errors.js';
import { firstLine } from './arrow-reader.js';
import { ColumnTable, Float64Builder, type Column, type ColumnType } from './table.js';

const NUMERIC = new Set<DuckDBTypeId>([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.FLOAT,
  DuckDBTypeId.DOUBLE,
  DuckDBTypeId.DECIMAL,
  DuckDBTypeId.BOOLEAN,
]);
const TIME = new Set<DuckDBTypeId>([
  DuckDBTypeId.DATE,
  DuckDBTypeId.TIMESTAMP,
  DuckDBTypeId.TIMESTAMP_S,
  DuckDBTypeId.TIMESTAMP_MS,
  DuckDBTypeId.TIMESTAMP_NS,
  DuckDBTypeId.TIMESTAMP_TZ,
]);

function kindOf(t: DuckDBType): ColumnType {
  if (t.typeId === DuckDBTypeId.BIGINT) return 'bigint';
  if (NUMERIC.has(t.typeId)) return 'number';
  if (TIME.has(t.typeId)) return 'timestamp';
  if (t.typeId === DuckDBTypeId.VARCHAR || t.typeId === DuckDBTypeId.ENUM) return 'string';
  return 'other';
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
  shared ??= DuckDBInstance.create(':memory:').then((db) => db.connect());
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
  const kinds = types.map(kindOf);
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
