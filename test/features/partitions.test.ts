/**
 * `segtensor features` in customer partitions (issue 4, the 10 M-customer run): a log split into
 * customer-disjoint partitions gives the same features, cleaning counts and output as one pass,
 * on a seeded log with exact duplicates (also across orders and after as-of), null ids, bad
 * timestamps and amounts, returns and multi-row orders; integer ids (range partitions) and
 * text ids (hash partitions).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFeatures, customerPartitions, type FeatureJob } from '../../src/features/rfm.js';
import { openSource } from '../../src/features/source.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { rng } from '../helpers/reference.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-partitions-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;


const CATS = ['home', 'beauty', 'sports', 'grocery'];
const csvInt = path.join(dir, 'tx-int.csv');
const csvText = path.join(dir, 'tx-text.csv');
const pqInt = path.join(dir, 'tx-int.parquet');
const customers = path.join(dir, 'customers.csv');

beforeAll(async () => {
  const r = rng(4);
  const lines: string[] = [];
  let order = 0;
  // Customers in shuffled order, not sorted: partitions must not assume a sorted log.
  const ids = Array.from({ length: 60 }, (_, i) => i + 1).sort(() => r() - 0.5);
  for (const id of ids) {
    const nOrders = Math.floor(r() * 6);
    for (let o = 0; o < nOrders; o++) {
      order++;
      const day = 1 + Math.floor(r() * 420); // 2023-01-01 + day: some after the 2024-01-01 as-of
      const ts = new Date(Date.UTC(2023, 0, day, Math.floor(r() * 24), Math.floor(r() * 60))).toISOString();
      for (let item = 0; item < 1 + Math.floor(r() * 3); item++) {
        const amount = r() < 0.1 ? -(5 + Math.round(r() * 50)) : Math.round(r() * 20000) / 100;
        const line = `${id},O${order},${ts},${amount},${CATS[Math.floor(r() * CATS.length)]}`;
        lines.push(line);
        if (r() < 0.15) lines.push(line); // an exact duplicate
      }
    }
  }
  lines.push(',O0,2023-05-01T00:00:00Z,10,home', ',O0,2023-05-01T00:00:00Z,10,home', '7,O9999,not a date,10,home', '8,O9998,2023-06-01T00:00:00Z,abc,home');
  const shuffled = lines.sort(() => r() - 0.5);
  const header = 'customer_id,order_id,timestamp,amount,category';
  fs.writeFileSync(csvInt, [header, ...shuffled].join('\n') + '\n');
  fs.writeFileSync(csvText, [header, ...shuffled.map((l) => (l.startsWith(',') ? l : `c-${l}`))].join('\n') + '\n');
  fs.writeFileSync(customers, ['customer_id,tier', ...Array.from({ length: 70 }, (_, i) => `${i + 1},t${i % 3}`)].join('\n') + '\n');
  const conn = await duck();
  await conn.run(`COPY (SELECT * FROM read_csv(${sqlString(csvInt)})) TO ${sqlString(pqInt)} (FORMAT parquet)`);
});

async function rows(file: string): Promise<Row[]> {
  const conn = await duck();
  const r = await conn.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(file)}) ORDER BY 1`);
  return r.getRowObjectsJS() as Row[];
}

/**
 * Equal values, doubles to 1e-12 relative: DuckDB sums in parallel, so the order in which a
 * customer's amounts are added (and a double's last bit) varies from run to run anyway.
 */
function expectSameRows(got: Row[], want: Row[]): void {
  expect(got.map((r) => Object.keys(r))).toEqual(want.map((r) => Object.keys(r)));
  got.forEach((r, i) => {
    for (const [k, v] of Object.entries(r)) {
      const w = want[i][k];
      if (typeof v === 'number' && typeof w === 'number' && !Number.isInteger(w)) {
        expect(Math.abs(v - w), `row ${i} ${k}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(w)));
      } else expect(v, `row ${i} ${k}`).toEqual(w);
    }
  });
}

async function run(job: Omit<FeatureJob, 'out' | 'asOf'>, out: string) {
  const file = path.join(dir, out);
  const r = await buildFeatures({ asOf: '2024-01-01', ...job, out: file });
  return { rows: await rows(file), meta: r.meta };
}

describe('segtensor features: customer partitions give the one-pass result', () => {
  const cases: [string, Omit<FeatureJob, 'out' | 'asOf'>][] = [
    ['integer ids, Parquet, per row', { transactions: pqInt, churnWindow: 45 }],
    ['integer ids, Parquet, per order, customers, winsorized', { transactions: pqInt, orderCol: 'order_id', customers, churnWindow: 45, winsorize: 0.05 }],
    ['integer ids, CSV, per order', { transactions: csvInt, orderCol: 'order_id' }],
    ['text ids (hash partitions), per order', { transactions: csvText, orderCol: 'order_id', churnWindow: 30 }],
  ];
  it.each(cases)('%s', async (name, job) => {
    const tag = name.replace(/\W+/g, '-');
    const one = await run(job, `${tag}-one.parquet`);
    const split = await run({ ...job, partitionRows: 40 }, `${tag}-split.parquet`);
    expect(one.meta.engine.partitions).toBe(1);
    expect(split.meta.engine.partitions).toBeGreaterThan(3);
    expect(one.meta.rows.duplicatesRemoved).toBeGreaterThan(20);
    expect(one.meta.rows.invalidNullId).toBe(1); // the null-id row and its duplicate collapse to one
    expectSameRows(split.rows, one.rows);
    const { engine: _a, ...metaOne } = one.meta;
    const { engine: _b, ...metaSplit } = split.meta;
    expect(metaSplit).toEqual(metaOne);
  });

  it('puts every row, null ids included, in exactly one partition', async () => {
    const conn = await duck();
    for (const file of [pqInt, csvText]) {
      const src = await openSource(file, '--transactions');
      const parts = await customerPartitions(conn, src, src.columns[0], 40);
      expect(parts.length).toBeGreaterThan(3);
      const [[total, ...counts]] = (
        await conn.runAndReadAll(`SELECT count(*), ${parts.map((p) => `count(*) FILTER (${p})`).join(', ')} FROM ${src.relation}`)
      ).getRowsJS();
      expect(counts.reduce((a, b) => Number(a) + Number(b), 0)).toBe(Number(total));
      const [[multi]] = (await conn.runAndReadAll(`SELECT count(*) FROM ${src.relation} WHERE (${parts.map((p) => `(${p})::INTEGER`).join(' + ')}) <> 1`)).getRowsJS();
      expect(Number(multi)).toBe(0);
      await src.dispose();
    }
  });

  it('removes its spill directory and restores DuckDB settings', async () => {
    await run({ transactions: pqInt, memoryLimit: '1GB' }, 'settings.parquet');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.segtensor-spill-'))).toEqual([]);
    const conn = await duck();
    const [[t, p]] = (await conn.runAndReadAll(`SELECT current_setting('temp_directory'), current_setting('preserve_insertion_order')`)).getRowsJS();
    expect([t, p]).toEqual(['.tmp', true]);
    await expect(buildFeatures({ transactions: pqInt, asOf: '2024-01-01', out: path.join(dir, 'x.parquet'), memoryLimit: 'lots' })).rejects.toThrow(
      /features: --memory-limit must be a size such as '8GB' or '512MiB'; got 'lots'/,
    );
  });
});
