/**
 * Readers and writers against data generated together with its plain JS values.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Bool,
  Dictionary,
  Float32,
  Float64,
  Int32,
  Int64,
  Table,
  TimestampMillisecond,
  Utf8,
  makeData,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { writeTable } from '../../src/io/write-table.js';
import { rng } from '../helpers/reference.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-io-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function expected(n: number, seed: number) {
  const r = rng(seed);
  const f64 = Array.from({ length: n }, (_, i) => (i % 17 === 3 ? null : r() * 100 - 50));
  const f32 = Array.from({ length: n }, () => Math.fround(r() * 10));
  const i32 = Array.from({ length: n }, (_, i) => (i % 11 === 5 ? null : Math.floor(r() * 1000) - 500));
  const ids = Array.from({ length: n }, (_, i) => BigInt(9_000_000_000 + i));
  const s = Array.from({ length: n }, (_, i) => (i % 13 === 0 ? null : ['north', 'south', 'east'][i % 3]));
  const b = Array.from({ length: n }, (_, i) => i % 2 === 0);
  const ts = Array.from({ length: n }, (_, i) => Date.UTC(2024, 0, 1) + i * 3_600_000);
  return { f64, f32, i32, ids, s, b, ts };
}

function arrowTable(n: number, seed: number) {
  const e = expected(n, seed);
  return {
    e,
    table: new Table({
      id: makeVector(makeData({ type: new Int64(), data: BigInt64Array.from(e.ids) })),
      f64: vectorFromArray(e.f64, new Float64()),
      f32: vectorFromArray(e.f32, new Float32()),
      i32: vectorFromArray(e.i32, new Int32()),
      s: vectorFromArray(e.s, new Utf8()),
      dict: vectorFromArray(e.s, new Dictionary(new Utf8(), new Int32(), 0)),
      b: vectorFromArray(e.b, new Bool()),
      ts: vectorFromArray(e.ts, new TimestampMillisecond()),
    }),
  };
}

function check(t: Awaited<ReturnType<typeof readTable>>, e: ReturnType<typeof expected>, withDict: boolean) {
  const n = e.f64.length;
  expect(t.nRows).toBe(n);
  const f64 = t.numeric('f64');
  const f32 = t.numeric('f32');
  const i32 = t.numeric('i32');
  for (let i = 0; i < n; i++) {
    if (e.f64[i] === null) expect(f64[i]).toBeNaN();
    else expect(f64[i]).toBe(e.f64[i]);
    expect(f32[i]).toBe(e.f32[i]);
    if (e.i32[i] === null) expect(i32[i]).toBeNaN();
    else expect(i32[i]).toBe(e.i32[i]);
  }
  const id = t.column('id');
  expect(id.type).toBe('bigint');
  if (id.type === 'bigint') expect([...id.values]).toEqual(e.ids);
  const s = t.column('s');
  expect(s.type).toBe('string');
  if (s.type === 'string') expect(s.values).toEqual(e.s);
  if (withDict) {
    const d = t.column('dict');
    if (d.type === 'string') expect(d.values).toEqual(e.s);
    else expect.fail('dictionary column should read as strings');
  }
  // Booleans read as the text 'true'/'false' in every format (issue 12: one schema, whatever the format).
  const b = t.column('b');
  expect(b.type).toBe('string');
  if (b.type === 'string') expect(b.values).toEqual(e.b.map(String));
  expect([...t.numeric('ts')]).toEqual(e.ts);
}

describe('readTable', () => {
  it('reads Arrow IPC files and streams with many record batches, nulls included', async () => {
    const { e, table: one } = arrowTable(3507, 1);
    // Slices of one batch share its dictionary, which the Arrow file format requires.
    const whole = one.batches[0];
    const table = new Table([whole.slice(0, 1000), whole.slice(1000, 3500), whole.slice(3500)]);
    expect(table.batches.length).toBe(3);
    for (const [ext, fmt] of [['arrow', 'file'], ['arrows', 'stream'], ['feather', 'file']] as const) {
      const f = path.join(dir, `t.${ext}`);
      fs.writeFileSync(f, tableToIPC(table, fmt));
      check(await readTable(f), e, true);
    }
  });

  it('reads Parquet and CSV written by DuckDB', async () => {
    const { e, table } = arrowTable(3000, 4);
    // The same values through DuckDB's own writers: an independent path from ours.
    const src = path.join(dir, 'src.csv');
    const lines = ['id,f64,f32,i32,s,b,ts'];
    for (let i = 0; i < 3000; i++) {
      lines.push([e.ids[i], e.f64[i] ?? '', e.f32[i], e.i32[i] ?? '', e.s[i] ?? '', e.b[i], new Date(e.ts[i]).toISOString()].join(','));
    }
    fs.writeFileSync(src, lines.join('\n'));
    void table;
    const conn = await duck();
    const pq = path.join(dir, 't.parquet');
    await conn.run(`COPY (SELECT * FROM read_csv(${sqlString(src)})) TO ${sqlString(pq)} (FORMAT parquet)`);
    check(await readTable(pq), e, false);
    check(await readTable(src), e, false);
  });

  it.each([
    ['missing.arrow', 'FILE_NOT_FOUND', "--input 'DIR/missing.arrow': no such file"],
    ['bad.arrow', 'CORRUPT_FILE', 'DIR/bad.arrow: not a readable Arrow'],
    ['bad.parquet', 'CORRUPT_FILE', 'DIR/bad.parquet: not a readable Parquet file'],
    ['empty.csv', 'EMPTY_TABLE', 'DIR/empty.csv: the file is empty'],
    ['t.xlsx', 'UNSUPPORTED_FORMAT', "unknown extension '.xlsx'"],
  ])('%s gives %s naming the file', async (name, code, msg) => {
    fs.writeFileSync(path.join(dir, 'bad.arrow'), 'definitely not arrow');
    fs.writeFileSync(path.join(dir, 'bad.parquet'), 'PAR1 but not really');
    fs.writeFileSync(path.join(dir, 'empty.csv'), '');
    fs.writeFileSync(path.join(dir, 't.xlsx'), 'x');
    const err = await readTable(path.join(dir, name)).catch((e) => e);
    expect(err.code).toBe(code);
    expect(err.message).toContain(msg.replace('DIR', dir));
    expect(err.message).not.toContain('\n');
  });

  it('reports a truncated Arrow file as corrupt', async () => {
    const { table } = arrowTable(5000, 5);
    const bytes = tableToIPC(table, 'stream');
    const f = path.join(dir, 'trunc.arrows');
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const err = await readTable(f).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
  });
});

describe('writeTable', () => {
  const cols = [
    { name: 'customer_id', values: ['a', 'b', 'c,"quoted"'] },
    { name: 'segment', values: Int32Array.from([2, 0, 1]) },
    { name: 'distance', values: Float32Array.from([0.5, 1.25, 3]) },
  ];
  it.each(['arrow', 'arrows', 'parquet', 'csv'])('round-trips through .%s', async (ext) => {
    const f = path.join(dir, `out.${ext}`);
    await writeTable(f, cols);
    const t = await readTable(f);
    expect(t.nRows).toBe(3);
    const id = t.column('customer_id');
    expect(id.type === 'string' && id.values).toEqual(['a', 'b', 'c,"quoted"']);
    expect([...t.numeric('segment')]).toEqual([2, 0, 1]);
    expect([...t.numeric('distance')]).toEqual([0.5, 1.25, 3]);
    // no temporary files left behind
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('writes Arrow that apache-arrow reads with the right types', async () => {
    const f = path.join(dir, 'typed.arrow');
    await writeTable(f, [{ name: 'id', values: BigInt64Array.from([1n, 2n]) }, { name: 'segment', values: Int32Array.from([0, 1]) }]);
    const t = tableFromIPC(fs.readFileSync(f));
    expect(String(t.schema.fields[0].type)).toBe('Int64');
    expect(String(t.schema.fields[1].type)).toBe('Int32');
  });
});
