/**
 * Arrow IPC (file or stream format) into a {@link ColumnTable}, one record batch at a time:
 * numeric buffers are copied straight from each batch's typed arrays, never through row objects.
 * @internal
 */
import fs from 'node:fs';
import { Precision, RecordBatchReader, Type, type DataType, type Float, type Vector } from './arrow.js';
import { SegtensorError } from '../errors.js';
import { readFileBytes } from './read-bytes.js';
import { ColumnTable, chunkedColumn, type Column, type ColumnType, type NumericArray, type NumericChunk } from './table.js';

function kindOf(t: DataType): ColumnType {
  switch (t.typeId) {
    case Type.Int:
    case Type.Float:
      return (t as DataType & { bitWidth?: number }).bitWidth === 64 && t.typeId === Type.Int ? 'bigint' : 'number';
    case Type.Timestamp:
    case Type.Date:
      return 'timestamp';
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Dictionary:
    // One rule for every format: a boolean is the text 'true'/'false', which is how the same
    // column reads from CSV (no yes/no or true/false coercion there).
    case Type.Bool:
      return 'string';
    default:
      return 'other';
  }
}

interface Sink {
  push(v: Vector, n: number): void;
  finish(name: string): Column;
}

function numberSink(type: 'number' | 'timestamp'): Sink {
  const chunks: NumericChunk[] = [];
  return {
    push(v, n) {
      const t = v.type;
      const direct =
        type === 'number' && (t.typeId === Type.Int || (t.typeId === Type.Float && (t as Float).precision !== Precision.HALF));
      if (direct) {
        // Zero-copy: the batch's own buffer, plus a null mask only when there are nulls.
        const values = v.toArray() as NumericArray;
        let nulls: Uint8Array | null = null;
        if (v.nullCount > 0) {
          nulls = new Uint8Array(n);
          for (let i = 0; i < n; i++) if (!v.isValid(i)) nulls[i] = 1;
        }
        chunks.push({ values, nulls });
        return;
      }
      // Half floats and timestamps: converted value by value.
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const x = v.get(i);
        out[i] = x === null || x === undefined ? NaN : x instanceof Date ? x.getTime() : Number(x);
      }
      chunks.push({ values: out, nulls: null });
    },
    finish: (name) => chunkedColumn(name, type, chunks),
  };
}

function bigintSink(): Sink {
  // Each batch's values as the reader gives them (views into the mapped file, or the stream's
  // own chunks), copied once into the column by finish; null masks only for batches with nulls.
  const parts: BigInt64Array[] = [];
  const nullParts: (Uint8Array | null)[] = [];
  return {
    push(v, n) {
      parts.push((v.toArray() as BigInt64Array).subarray(0, n));
      let nulls: Uint8Array | null = null;
      if (v.nullCount > 0) {
        nulls = new Uint8Array(n);
        for (let i = 0; i < n; i++) nulls[i] = v.isValid(i) ? 0 : 1;
      }
      nullParts.push(nulls);
    },
    finish(name) {
      const total = parts.reduce((s, p) => s + p.length, 0);
      const values = new BigInt64Array(total);
      const nulls = nullParts.some((m) => m) ? new Uint8Array(total) : null;
      let at = 0;
      parts.forEach((p, i) => {
        values.set(p, at);
        const m = nullParts[i];
        if (nulls && m) nulls.set(m, at);
        at += p.length;
      });
      return { name, type: 'bigint', values, nulls };
    },
  };
}

function stringSink(): Sink {
  const values: (string | null)[] = [];
  return {
    push(v, n) {
      for (let i = 0; i < n; i++) {
        const s = v.get(i);
        values.push(s === null || s === undefined ? null : String(s));
      }
    },
    finish: (name) => ({ name, type: 'string', values }),
  };
}

/** Reads an Arrow IPC file or stream. */
export async function readArrow(file: string): Promise<ColumnTable> {
  let reader;
  try {
    // Mapped (or read whole) up to 8 GiB: numeric columns then stay views into these bytes.
    // Larger files stream in 4 MiB reads.
    const size = fs.statSync(file).size;
    reader =
      size <= 8 * 2 ** 30
        ? RecordBatchReader.from(readFileBytes(file))
        : await RecordBatchReader.from(fs.createReadStream(file, { highWaterMark: 1 << 22 }));
    reader.open();
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable Arrow IPC file or stream (${firstLine(e)})`);
  }
  const schema = reader.schema;
  if (!schema) throw new SegtensorError('CORRUPT_FILE', `${file}: Arrow data has no schema`);
  const kinds = schema.fields.map((f) => kindOf(f.type));
  const sinks: (Sink | null)[] = kinds.map((k) =>
    k === 'number' || k === 'timestamp' ? numberSink(k) : k === 'bigint' ? bigintSink() : k === 'string' ? stringSink() : null,
  );
  let nRows = 0;
  try {
    for await (const batch of reader) {
      const n = batch.numRows;
      sinks.forEach((s, i) => s?.push(batch.getChildAt(i)!, n));
      nRows += n;
    }
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: Arrow data is truncated or corrupt (${firstLine(e)})`);
  }
  const columns = schema.fields.map(
    (f, i): Column => sinks[i]?.finish(f.name) ?? { name: f.name, type: 'other', typeName: String(f.type) },
  );
  return new ColumnTable(file, nRows, columns);
}

/**
 * An Arrow IPC file or stream as a stream of tables, one per record batch (out-of-core reads,
 * issue 17): memory holds one batch (its size is the writer's choice). Read through a file
 * handle, so the file format's batches are read where its footer says they are: read from a
 * stream, the file format is buffered whole to reach the footer (3.3 GB resident for a 3.2 GB
 * file, against 0.1 GB this way, and 7 × slower).
 */
export async function* arrowBatches(file: string): AsyncGenerator<ColumnTable> {
  const fh = await fs.promises.open(file, 'r');
  try {
    let reader;
    try {
      reader = await RecordBatchReader.from(fh);
      await reader.open();
    } catch (e) {
      throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable Arrow IPC file or stream (${firstLine(e)})`);
    }
    const schema = reader.schema;
    if (!schema) throw new SegtensorError('CORRUPT_FILE', `${file}: Arrow data has no schema`);
    const kinds = schema.fields.map((f) => kindOf(f.type));
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      let next;
      try {
        next = await it.next();
      } catch (e) {
        throw new SegtensorError('CORRUPT_FILE', `${file}: Arrow data is truncated or corrupt (${firstLine(e)})`);
      }
      if (next.done) break;
      const batch = next.value;
      const n = batch.numRows;
      if (n === 0) continue;
      const columns = schema.fields.map((f, i): Column => {
        const k = kinds[i];
        const sink = k === 'number' || k === 'timestamp' ? numberSink(k) : k === 'bigint' ? bigintSink() : k === 'string' ? stringSink() : null;
        if (!sink) return { name: f.name, type: 'other', typeName: String(f.type) };
        sink.push(batch.getChildAt(i)!, n);
        return sink.finish(f.name);
      });
      yield new ColumnTable(file, n, columns);
    }
  } finally {
    await fh.close();
  }
}

export function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
