/**
 * One schema whatever the format (issue 12): the same data from CSV text, Arrow (apache-arrow)
 * and Parquet (DuckDB's COPY) reads with the same column types and values; malformed CSV and
 * mixed columns are errors naming the file line (CSV) or data row; `dtypes` and `coerceInvalid`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bool, Float64, Int64, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { readTable } from '../../src/io/read-table.js';
import type { ColumnTable } from '../../src/io/table.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-schema-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text?: string) => {
  const f = path.join(dir, name);
  if (text !== undefined) fs.writeFileSync(f, text);
  return f;
};

/** The table as plain JS values, with the type each column must read as in every format. */
const N = 40;
const data = {
  id: Array.from({ length: N }, (_, i) => 12346n + BigInt(i)),
  n: Array.from({ length: N }, (_, i) => (i % 7 === 3 ? null : BigInt(i * 3 - 20))),
  x: Array.from({ length: N }, (_, i) => (i % 5 === 1 ? null : i / 7 - 1.25)),
  yn: Array.from({ length: N }, (_, i) => (i % 9 === 4 ? null : i % 3 ? 'Yes' : 'No')),
  flag: Array.from({ length: N }, (_, i) => (i % 11 === 2 ? null : i % 2 === 0)),
};
const expectedTypes = { id: 'bigint', n: 'bigint', x: 'number', yn: 'string', flag: 'string' };
const expectedValues = { ...data, flag: data.flag.map((b) => (b === null ? null : String(b))) };

/** A column's values as plain JS (null for missing), whatever its type. */
function plain(t: ColumnTable, name: string): unknown[] {
  const c = t.column(name);
  if (c.type === 'bigint') return Array.from(c.values, (v, i) => (c.nulls?.[i] ? null : v));
  if (c.type === 'number' || c.type === 'timestamp') return Array.from(c.values, (v) => (Number.isNaN(v) ? null : v));
  if (c.type === 'string') return c.values;
  return [];
}

async function writeAll(): Promise<{ csv: string; arrow: string; parquet: string }> {
  const csv = file('t.csv');
  const cell = (v: unknown) => (v === null ? '' : String(v));
  const lines = ['id,n,x,yn,flag', ...data.id.map((_, i) => [data.id[i], data.n[i], data.x[i], data.yn[i], data.flag[i]].map(cell).join(','))];
  fs.writeFileSync(csv, lines.join('\n') + '\n');
  const arrow = file('t.arrow');
  const t = new Table({
    id: vectorFromArray(data.id, new Int64()),
    n: vectorFromArray(data.n, new Int64()),
    x: vectorFromArray(data.x, new Float64()),
    yn: vectorFromArray(data.yn, new Utf8()),
    flag: vectorFromArray(data.flag, new Bool()),
  });
  fs.writeFileSync(arrow, tableToIPC(t, 'file'));
  // Parquet with native types (a BOOLEAN flag) through DuckDB's own writer.
  const parquet = file('t.parquet');
  const conn = await duck();
  const rows = data.id.map((_, i) => {
    // Every value as a string literal cast to its type: a bare 0.1 would be parsed as a DECIMAL first.
    const s = (v: unknown) => (v === null ? 'NULL' : sqlString(String(v)));
    return `(${s(data.id[i])}::BIGINT, ${s(data.n[i])}::BIGINT, ${s(data.x[i])}::DOUBLE, ${s(data.yn[i])}::VARCHAR, ${s(data.flag[i])}::BOOLEAN)`;
  });
  await conn.run(`COPY (SELECT * FROM (VALUES ${rows.join(', ')}) AS v(id, n, x, yn, flag)) TO ${sqlString(parquet)} (FORMAT parquet)`);
  return { csv, arrow, parquet };
}

describe('one schema whatever the format', () => {
  it('CSV, Arrow and Parquet give identical column types and values (ints, floats, yes/no and true/false text, nulls)', async () => {
    const files = await writeAll();
    for (const f of Object.values(files)) {
      const t = await readTable(f);
      expect(t.nRows).toBe(N);
      expect(Object.fromEntries(t.columns.map((c) => [c.name, c.type])), f).toEqual(expectedTypes);
      for (const name of Object.keys(expectedValues) as (keyof typeof expectedValues)[]) expect(plain(t, name), `${f} ${name}`).toEqual(expectedValues[name]);
    }
  });

  it('keeps integer ids as integers and ids with leading zeros as written', async () => {
    const t = await readTable(file('ids.csv', 'id,code,a\n12346,007,1\n12347,012,2\n'));
    expect(plain(t, 'id')).toEqual([12346n, 12347n]);
    expect(plain(t, 'code')).toEqual(['007', '012']);
    // the same text in Arrow follows the same rule
    const arrow = file('ids.arrow');
    fs.writeFileSync(arrow, tableToIPC(new Table({ id: vectorFromArray(['12346', '12347'], new Utf8()), code: vectorFromArray(['007', '012'], new Utf8()) })));
    const u = await readTable(arrow);
    expect(plain(u, 'id')).toEqual([12346n, 12347n]);
    expect(plain(u, 'code')).toEqual(['007', '012']);
  });
});

describe('malformed CSV names the file and line', () => {
  const big = ['id,a,b', ...Array.from({ length: 30000 }, (_, i) => `${i},${i},${i}`)];
  it.each([
    ['ragged.csv', 'id,a,b\n1,2,3\n4,5\n6,7,8\n', 'line 3: expected 3 fields, found 2'],
    ['long.csv', 'id,a,b\n1,2,3\n4,5,6,7\n', 'line 3: expected 3 fields, found 4'],
    ['truncated.csv', 'id,a,b\n1,2,3\n4,5,6\n7,8', 'line 4: expected 3 fields, found 2'],
    ['quote.csv', 'id,a,b\n1,2,3\n4,"5,6\n7,8,9\n', 'line 3: a quoted value is never closed'],
    ['semicolons.csv', 'id;a;b\n1;2;3\n4;5\n', 'line 3: expected 3 fields, found 2'],
    ['late.csv', [...big.slice(0, 25001), '25000,1', ...big.slice(25002)].join('\n'), 'line 25002: expected 3 fields, found 2'],
  ])('%s', async (name, text, msg) => {
    const f = file(name, text);
    const err = await readTable(f).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(`${f}: malformed CSV at ${msg}`);
    expect(err.message).not.toContain('\n');
  });

  it.each([
    ['blank.csv', '\n\n', 'EMPTY_TABLE', 'the file holds no header line'],
    ['empty.csv', '', 'EMPTY_TABLE', 'the file is empty'],
  ])('%s is a one-line error', async (name, text, code, msg) => {
    const err = await readTable(file(name, text)).catch((e) => e);
    expect(err.code).toBe(code);
    expect(err.message).toContain(msg);
    expect(err.message).not.toContain('\n');
  });

  it('reads a header-only CSV as a table with no rows', async () => {
    const t = await readTable(file('header.csv', 'id,a\n'));
    expect(t.nRows).toBe(0);
    expect(t.names).toEqual(['id', 'a']);
  });
});

describe('mixed columns', () => {
  // A quoted value with a line break: the bad cell's file line (5) is not data row + 1 (3 + 1).
  const text = 'id,a,note\n1,12,"two\nlines"\n2,13,x\n3,n/a,y\n4,15,z\n5,16,w\n';

  it('a mostly numeric CSV column with a text cell is an error naming the file line and the cell', async () => {
    const f = file('mixed.csv', text);
    const err = await readTable(f).catch((e) => e);
    expect(err.code).toBe('MIXED_COLUMN');
    expect(err.message).toContain(`${f}: column 'a' is mostly numbers (4 of 5 cells) but line 5 holds 'n/a'`);
  });

  it('a bad cell beyond the CSV sniffer sample is found too', async () => {
    const lines = ['id,a', ...Array.from({ length: 30000 }, (_, i) => `${i},${i}`)];
    lines[27000] = '26999,n/a';
    const f = file('late-mixed.csv', lines.join('\n'));
    const err = await readTable(f).catch((e) => e);
    expect(err.code).toBe('MIXED_COLUMN');
    expect(err.message).toContain("line 27001 holds 'n/a'");
  });

  it('in Arrow, the same column names the data row (1-based)', async () => {
    const f = file('mixed.arrow');
    fs.writeFileSync(f, tableToIPC(new Table({ a: vectorFromArray(['12', '13', 'n/a', '15'], new Utf8()) })));
    const err = await readTable(f).catch((e) => e);
    expect(err.code).toBe('MIXED_COLUMN');
    expect(err.message).toContain("column 'a' is mostly numbers (3 of 4 cells) but data row 3 holds 'n/a'");
  });

  it('coerceInvalid reads the bad cells as null and counts them per column', async () => {
    const f = file('mixed2.csv', 'id,a,b\n1,12,1.5\n2,n/a,?\n3,14,2.5\n4,-,3.5\n');
    const t = await readTable(f, '--input', { coerceInvalid: true });
    expect(t.coercions).toEqual({ a: 2, b: 1 });
    expect(plain(t, 'a')).toEqual([12n, null, 14n, null]);
    expect(plain(t, 'b')).toEqual([1.5, null, 2.5, 3.5]);
  });

  it('mostly text stays text (categorical)', async () => {
    const t = await readTable(file('text.csv', 'id,size\n1,S\n2,M\n3,L\n4,10\n'));
    expect(plain(t, 'size')).toEqual(['S', 'M', 'L', '10']);
  });
});

describe('dtypes', () => {
  const text = 'id,zip,amount,when\n1,01234,12,2024-01-02 10:00:00\n2,98765,abc,2024-01-03\n3,11111,14,2024-01-04\n';

  it('declares types for any format, and names a cell that does not convert', async () => {
    const f = file('dt.csv', text);
    const err = await readTable(f, '--input', { dtypes: { amount: 'number', zip: 'string' } }).catch((e) => e);
    expect(err.code).toBe('MIXED_COLUMN');
    expect(err.message).toContain(`${f}: column 'amount' is declared number (--dtypes) but line 3 holds 'abc'`);
    const t = await readTable(f, '--input', { dtypes: { amount: 'number', zip: 'string', when: 'timestamp', id: 'string' }, coerceInvalid: true });
    expect(t.coercions).toEqual({ amount: 1 });
    expect(plain(t, 'zip')).toEqual(['01234', '98765', '11111']);
    expect(plain(t, 'id')).toEqual(['1', '2', '3']);
    expect(plain(t, 'amount')).toEqual([12, null, 14]);
    expect(plain(t, 'when')).toEqual([Date.UTC(2024, 0, 2, 10), Date.UTC(2024, 0, 3), Date.UTC(2024, 0, 4)]);
  });

  it('integer from Arrow floats: a fraction is an error naming the data row; unknown columns are named', async () => {
    const f = file('dt.arrow');
    fs.writeFileSync(f, tableToIPC(new Table({ a: vectorFromArray([1, 2, 2.5], new Float64()) })));
    const ok = await readTable(f, '--input', { dtypes: { a: 'string' } });
    expect(plain(ok, 'a')).toEqual(['1', '2', '2.5']);
    const err = await readTable(f, '--input', { dtypes: { a: 'integer' } }).catch((e) => e);
    expect(err.message).toContain("column 'a' is declared integer (--dtypes) but data row 3 holds '2.5'");
    const miss = await readTable(f, '--input', { dtypes: { b: 'number' } }).catch((e) => e);
    expect(miss.code).toBe('MISSING_COLUMN');
    expect(miss.message).toContain("--dtypes names column 'b'");
  });
});
