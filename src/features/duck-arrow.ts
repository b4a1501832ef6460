/**
 * Streams a DuckDB query's result into an Arrow IPC file, one record batch per 65,536 rows,
 * written atomically. DuckDB (1.5) cannot write Arrow IPC itself without an extension, so the
 * rows travel through JavaScript; each batch's buffers are built from typed arrays and written
 * out before the next batch is fetched, so memory stays at one batch whatever the row count.
 *
 * Types: BIGINT → Int64, INTEGER/SMALLINT/TINYINT → Int32, DOUBLE/FLOAT/DECIMAL → Float64,
 * BOOLEAN → Bool, VARCHAR → Utf8, DATE → Date32 (days), TIMESTAMP* → Timestamp(µs);
 * anything else is written as its text form.
 *
 * @example
 * await copyQueryToArrow("SELECT * FROM read_parquet('t.parquet')", 'out/t.arrow');
 * @internal (an io helper; it lives here because io/ belongs to another owner)
 */
import fs from 'node:fs';
import { DuckDBTypeId } from '@duckdb/node-api';
import {
  Bool,
  DateDay,
  Float64,
  Int32,
  Int64,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Field,
  Struct,
  TimestampMicrosecond,
  Utf8,
  makeData,
  vectorFromArray,
  type DataType,
} from '../io/arrow.js';
import { atomicProduce } from '../io/atomic.js';
import { duck } from '../io/duckdb-reader.js';

type Kind = 'int64' | 'int32' | 'float64' | 'bool' | 'utf8' | 'date' | 'timestamp';

function kindOf(id: DuckDBTypeId): Kind {
  switch (id) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
      return 'int64';
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UTINYINT:
      return 'int32';
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DECIMAL:
    case DuckDBTypeId.UINTEGER:
      return 'float64';
    case DuckDBTypeId.BOOLEAN:
      return 'bool';
    case DuckDBTypeId.DATE:
      return 'date';
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return 'timestamp';
    default:
      return 'utf8';
  }
}

function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The SQL that hands each kind over in a simple physical form. */
function selectFor(name: string, kind: Kind): string {
  switch (kind) {
    case 'int64':
      return `CAST(${q(name)} AS BIGINT)`;
    case 'int32':
      return `CAST(${q(name)} AS INTEGER)`;
    case 'float64':
      return `CAST(${q(name)} AS DOUBLE)`;
    case 'date':
      return `CAST(${q(name)} - DATE '1970-01-01' AS INTEGER)`;
    case 'timestamp':
      return `epoch_us(CAST(${q(name)} AS TIMESTAMP))`;
    case 'bool':
      return q(name);
    default:
      return `CAST(${q(name)} AS VARCHAR)`;
  }
}

function arrowType(kind: Kind): DataType {
  switch (kind) {
    case 'int64':
      return new Int64();
    case 'int32':
      return new Int32();
    case 'float64':
      return new Float64();
    case 'bool':
      return new Bool();
    case 'date':
      return new DateDay();
    case 'timestamp':
      return new TimestampMicrosecond();
    default:
      return new Utf8();
  }
}

const BATCH = 65_536;

/** Column buffers for one batch. */
class Buf {
  values: BigInt64Array | Int32Array | Float64Array | Uint8Array | (string | null)[];
  valid = new Uint8Array(BATCH);
  nulls = 0;
  constructor(readonly kind: Kind) {
    this.values =
      kind === 'int64' || kind === 'timestamp'
        ? new BigInt64Array(BATCH)
        : kind === 'int32' || kind === 'date'
          ? new Int32Array(BATCH)
          : kind === 'float64'
            ? new Float64Array(BATCH)
            : kind === 'bool'
              ? new Uint8Array(BATCH)
              : [];
  }

  set(i: number, v: unknown): void {
    if (this.kind === 'utf8') {
      (this.values as (string | null)[])[i] = v === null ? null : String(v);
      if (v === null) this.nulls++;
      return;
    }
    if (v === null || v === undefined) {
      this.valid[i] = 0;
      this.nulls++;
      return;
    }
    this.valid[i] = 1;
    if (this.kind === 'bool') (this.values as Uint8Array)[i] = v ? 1 : 0;
    else (this.values as Float64Array)[i] = v as number;
  }

  data(type: DataType, n: number) {
    if (this.kind === 'utf8') return vectorFromArray((this.values as (string | null)[]).slice(0, n), new Utf8()).data[0];
    const nullBitmap = this.nulls ? packBits(this.valid, n) : undefined;
    const values = this.kind === 'bool' ? packBits(this.values as Uint8Array, n) : (this.values as Float64Array).slice(0, n);
    return makeData({ type: type as InstanceType<typeof Float64>, length: n, nullCount: this.nulls, nullBitmap, data: values as Float64Array });
  }
}

function packBits(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (bytes[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

/**
 * Runs `sql` and writes its rows to `dest` as an Arrow IPC file (`.arrows` → stream format).
 * `metadata` goes into the schema's custom metadata (e.g. `segtensor.labels`). Returns the
 * number of rows written.
 */
export async function copyQueryToArrow(sql: string, dest: string, metadata?: Map<string, string>): Promise<number> {
  const conn = await duck();
  const probe = await conn.run(`SELECT * FROM (${sql}) LIMIT 0`);
  const names = probe.columnNames();
  const kinds = probe.columnTypes().map((t) => kindOf(t.typeId));
  const types = kinds.map(arrowType);
  const schema = new Schema(names.map((n, i) => new Field(n, types[i], true)), metadata);
  const structType = new Struct(schema.fields);
  let rows = 0;
  await atomicProduce(dest, async (tmp) => {
    const writer = /\.arrows$/i.test(dest) ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    const fd = fs.openSync(tmp, 'w');
    // The writer's output queue is drained as it fills (the consumer runs whenever we await).
    const drained = (async () => {
      for await (const bytes of writer) fs.writeSync(fd, bytes);
    })();
    try {
      writer.reset(undefined, schema);
      const result = await conn.stream(`SELECT ${names.map((n, i) => `${selectFor(n, kinds[i])} AS ${q(n)}`).join(', ')} FROM (${sql})`);
      let bufs = kinds.map((k) => new Buf(k));
      let fill = 0;
      const flush = () => {
        if (fill === 0) return;
        const children = bufs.map((b, c) => b.data(types[c], fill));
        writer.write(new RecordBatch(schema, makeData({ type: structType, length: fill, nullCount: 0, children })));
        rows += fill;
        fill = 0;
        bufs = kinds.map((k) => new Buf(k));
      };
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        let start = 0;
        while (start < chunk.rowCount) {
          const m = Math.min(chunk.rowCount - start, BATCH - fill);
          for (let c = 0; c < names.length; c++) {
            const vec = chunk.getColumnVector(c);
            const b = bufs[c];
            for (let i = 0; i < m; i++) b.set(fill + i, vec.getItem(start + i));
          }
          fill += m;
          start += m;
          if (fill === BATCH) flush();
        }
      }
      flush();
      writer.finish();
      await drained;
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  return rows;
}
