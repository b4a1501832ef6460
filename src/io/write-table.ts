/**
 * Writes a result table (assignments, scores) as Arrow IPC, Parquet or CSV, chosen by the
 * destination's extension, atomically.
 *
 * @example
 * await writeTable('out/assignments.arrow', [
 *   { name: 'customer_id', values: ids },
 *   { name: 'segment', values: labels },
 * ]);
 */
import type { DuckDBType } from '@duckdb/node-api';
import {
  Dictionary,
  Int32,
  Int64,
  Utf8,
  makeData,
  makeVector,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Table,
  vectorFromArray,
  type Vector,
} from './arrow.js';
import fs from 'node:fs';
import { atomicProduce, atomicWrite, tempPathFor } from './atomic.js';
import { duck, duckModule, sqlString } from './duckdb-reader.js';
import { formatOf } from './format.js';

/**
 * One output column. Strings may hold nulls; numbers use NaN for null in float columns. With
 * `dictionary`, `values` (an Int32Array) are indices into it, a negative index null: text with a
 * few distinct values (a segment name per customer), written as an Arrow dictionary column. Its
 * cost is the indices', where an array of a million strings takes seconds to encode and is
 * stored in full.
 */
export interface OutColumn {
  name: string;
  values: Int32Array | Float32Array | Float64Array | BigInt64Array | (string | null)[];
  dictionary?: readonly string[];
}

/** The text of row `i` of a dictionary column. */
function dictValue(c: OutColumn, i: number): string | null {
  const code = (c.values as Int32Array)[i];
  return code < 0 ? null : c.dictionary![code];
}

function toArrow(c: OutColumn, shared?: Vector): Vector {
  const v = c.values;
  if (c.dictionary) {
    if (!(v instanceof Int32Array)) throw new TypeError(`writeTable: column '${c.name}' has a dictionary, so its values must be an Int32Array of indices`);
    let nullCount = 0;
    for (let i = 0; i < v.length; i++) if (v[i] < 0) nullCount++;
    let nullBitmap: Uint8Array | undefined;
    if (nullCount) {
      nullBitmap = new Uint8Array((v.length + 7) >> 3);
      for (let i = 0; i < v.length; i++) if (v[i] >= 0) nullBitmap[i >> 3] |= 1 << (i & 7);
    }
    // A later batch of a streamed file shares the first one's dictionary and type (its id), so
    // the schema stays the same and the dictionary is written once.
    const dictionary = shared?.data[0].dictionary ?? vectorFromArray([...c.dictionary], new Utf8());
    const type = (shared?.type as InstanceType<typeof Dictionary> | undefined) ?? new Dictionary(new Utf8(), new Int32());
    return makeVector(makeData({ type, length: v.length, nullCount, nullBitmap, data: v, dictionary }));
  }
  if (Array.isArray(v)) return vectorFromArray(v, new Utf8());
  if (v instanceof BigInt64Array) return makeVector(makeData({ type: new Int64(), data: v }));
  return makeVector(v);
}

function duckType(c: OutColumn, { VARCHAR, BIGINT, INTEGER, FLOAT, DOUBLE }: typeof import('@duckdb/node-api')): DuckDBType {
  const v = c.values;
  if (Array.isArray(v)) return VARCHAR;
  if (v instanceof BigInt64Array) return BIGINT;
  if (v instanceof Int32Array) return INTEGER;
  if (v instanceof Float32Array) return FLOAT;
  return DOUBLE;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isNaN(v) ? '' : String(v);
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * An Arrow IPC file written batch by batch (out-of-core outputs, issue 17), into a temporary
 * name renamed over `dest` by {@link ArrowBatchWriter.close}: a reader never sees half a file.
 * Every batch has the same columns; a dictionary column reuses the first batch's dictionary
 * vector, so it is written once.
 */
export class ArrowBatchWriter {
  private readonly tmp: string;
  private readonly writer = new RecordBatchFileWriter();
  /** The writer's bytes written to the temporary file as they come. */
  private readonly piped: Promise<void>;
  private readonly dictionaries = new Map<string, Vector>();

  constructor(
    readonly dest: string,
    /** `sync: false` for scratch files: not flushed to disk before the rename. */
    { sync = true }: { sync?: boolean } = {},
  ) {
    this.tmp = tempPathFor(dest);
    const fd = fs.openSync(this.tmp, 'w');
    // Drained whenever the caller awaits (between batches): the queue holds one batch's bytes.
    this.piped = (async () => {
      try {
        for await (const piece of this.writer) {
          for (let at = 0; at < piece.length; ) at += fs.writeSync(fd, piece, at, piece.length - at);
        }
        if (sync) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    })();
    this.piped.catch(() => {}); // reported by close()
  }

  /** Appends one batch of rows. */
  write(columns: OutColumn[]): void {
    const vectors = Object.fromEntries(
      columns.map((c) => {
        if (!c.dictionary) return [c.name, toArrow(c)];
        const v = toArrow(c, this.dictionaries.get(c.name));
        if (!this.dictionaries.has(c.name)) this.dictionaries.set(c.name, v);
        return [c.name, v];
      }),
    );
    for (const batch of new Table(vectors).batches) this.writer.write(batch);
  }

  /** Finishes the file, syncs it and renames it into place. */
  async close(): Promise<void> {
    this.writer.finish();
    await this.piped;
    fs.renameSync(this.tmp, this.dest);
  }

  /** Removes the temporary file (after a failure). */
  async abort(): Promise<void> {
    this.writer.abort();
    await this.piped.catch(() => {});
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Writes `columns` (all the same length) to `dest`; the format follows the extension. */
export async function writeTable(dest: string, columns: OutColumn[], option = '--out'): Promise<void> {
  const format = formatOf(dest, option);
  const n = columns[0]?.values.length ?? 0;
  if (format === 'arrow') {
    const table = new Table(Object.fromEntries(columns.map((c) => [c.name, toArrow(c)])));
    const streamExt = /\.arrows$/i.test(dest);
    // The writer's pieces written as they are: joining them first (tableToIPC) copies the whole
    // file once more into fresh memory.
    const writer = (streamExt ? RecordBatchStreamWriter : RecordBatchFileWriter).writeAll(table);
    const pieces: Uint8Array[] = [];
    for await (const piece of writer) pieces.push(piece);
    atomicWrite(dest, pieces);
    return;
  }
  if (format === 'csv') {
    const lines: string[] = [columns.map((c) => csvCell(c.name)).join(',')];
    for (let i = 0; i < n; i++) lines.push(columns.map((c) => csvCell(c.dictionary ? dictValue(c, i) : c.values[i])).join(','));
    atomicWrite(dest, lines.join('\n') + '\n');
    return;
  }
  // Parquet: append the columns to a DuckDB temp table in vector-sized chunks, then COPY.
  const conn = await duck();
  const m = await duckModule();
  const tbl = `segtensor_out_${process.pid}_${Date.now()}`;
  const types = columns.map((c) => duckType(c, m));
  await conn.run(
    `CREATE TEMP TABLE ${tbl} (${columns.map((c, i) => `"${c.name.replaceAll('"', '""')}" ${types[i]}`).join(', ')})`,
  );
  try {
    const appender = await conn.createAppender(tbl, 'main', 'temp');
    const step = 2048;
    for (let start = 0; start < n; start += step) {
      const rows = Math.min(step, n - start);
      const chunk = m.DuckDBDataChunk.create(types, rows);
      columns.forEach((c, i) => {
        const part = Array.isArray(c.values) ? c.values.slice(start, start + rows) : Array.from(c.values.subarray(start, start + rows) as ArrayLike<number | bigint>);
        chunk.setColumnValues(i, part.map((v) => (typeof v === 'number' && Number.isNaN(v) ? null : v)));
      });
      appender.appendDataChunk(chunk);
    }
    appender.closeSync();
    // Dictionary columns went in as their indices (integers append fast); the text is looked up
    // in the COPY's SELECT.
    const select = columns
      .map((c) => {
        const q = `"${c.name.replaceAll('"', '""')}"`;
        if (!c.dictionary) return q;
        const list = `[${c.dictionary.map(sqlString).join(', ')}]::VARCHAR[]`;
        return `CASE WHEN ${q} >= 0 THEN (${list})[${q} + 1] END AS ${q}`;
      })
      .join(', ');
    await atomicProduce(dest, (tmp) => conn.run(`COPY (SELECT ${select} FROM ${tbl}) TO ${sqlString(tmp)} (FORMAT parquet)`).then(() => undefined));
  } finally {
    await conn.run(`DROP TABLE IF EXISTS temp.${tbl}`);
  }
}

