/**
 * `segtensor features` (issue 4) against values worked out by hand on a small log: returns,
 * an exact duplicate, an order of two items, a customer with one purchase, one with none
 * before as-of, invalid rows; ISO text and native timestamps; no leakage from after as-of.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFeatures, type FeatureJob } from '../../src/features/rfm.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { copyQueryToArrow } from '../../src/features/duck-arrow.js';
import { readTable } from '../../src/io/read-table.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-features-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const HEADER = 'customer_id,order_id,timestamp,amount,category';
// As-of 2024-03-01. Customer 1: order A1 (two items), A2 (logged twice), a return against A1,
// and a purchase after as-of. Customer 2: one purchase. Customer 3: only after as-of.
// Then three invalid rows: null id, bad timestamp, bad amount. Customer 9's late purchase
// extends the log past the 30-day churn windows (issue 12: a window must end within the log).
const LOG = [
  '1,A1,2024-01-10T10:00:00Z,100,electronics',
  '1,A1,2024-01-10T10:00:00Z,50,home',
  '1,A2,2024-02-20 12:00:00,30,home',
  '1,A2,2024-02-20 12:00:00,30,home',
  '1,A1,2024-02-25T09:00:00+00:00,-50,home',
  '1,A3,2024-03-05 00:00:00,20,home',
  '2,B1,2023-11-01T10:00:00+02:00,40,beauty',
  '3,C1,2024-03-10 00:00:00,10,home',
  ',X1,2024-01-01 00:00:00,10,home',
  '1,X2,not a date,10,home',
  '2,X3,2023-12-01 00:00:00,abc,home',
  '9,Z1,2024-06-01 00:00:00,5,home',
];

const tx = path.join(dir, 'tx.csv');
const customers = path.join(dir, 'customers.csv');

type Row = Record<string, unknown>;

async function rows(file: string): Promise<Row[]> {
  const conn = await duck();
  const src = file.endsWith('.csv') ? `read_csv(${sqlString(file)})` : `read_parquet(${sqlString(file)})`;
  const r = await conn.runAndReadAll(`SELECT * FROM ${src} ORDER BY 1`);
  // BIGINT columns come back as bigint; compare plain numbers.
  return (r.getRowObjectsJS() as Row[]).map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
}

async function features(job: Partial<FeatureJob> & { out: string }): Promise<Row[]> {
  // 3 invalid rows of 12: allowed here, to test how they are counted.
  await buildFeatures({ transactions: tx, asOf: '2024-03-01', maxInvalid: 0.5, ...job, out: path.join(dir, job.out) });
  return rows(path.join(dir, job.out));
}

beforeAll(() => {
  fs.writeFileSync(tx, [HEADER, ...LOG].join('\n') + '\n');
  fs.writeFileSync(customers, 'customer_id,tier\n1,gold\n2,silver\n3,bronze\n4,bronze\n');
});

describe('segtensor features: hand-computed values', () => {
  it('counts each purchase row without --order-col; returns, duplicates and invalid rows as stated', async () => {
    const out = await features({ out: 'rows.parquet', churnWindow: 30 });
    expect(out.map((r) => r.customer_id)).toEqual([1, 2]); // customer 3 bought only after as-of
    const [c1, c2] = out;
    // Customer 1 after dedup: 100 + 50 (01-10 10:00), 30 (02-20 12:00) purchases, −50 return.
    expect(c1).toMatchObject({ frequency: 3, recency_days: 10, tenure_days: 51, monetary_total: 130, return_count: 1, churned: false });
    expect(c1.monetary_mean).toBeCloseTo(130 / 3, 10);
    expect(c1.mean_gap_days).toBeCloseTo((41 + 2 / 24) / 2, 10);
    expect(c1.return_rate).toBeCloseTo(1 / 3, 12);
    expect(c1.share_electronics).toBeCloseTo(100 / 180, 12);
    expect(c1.share_home).toBeCloseTo(80 / 180, 12);
    expect(c1.share_beauty).toBe(0);
    expect(c1).toMatchObject({ spend_last_90d: 180, spend_prev_90d: 0, spend_trend: 1 });
    // Customer 2: one purchase, 2023-11-01 08:00 UTC (10:00+02:00).
    expect(c2).toMatchObject({ frequency: 1, recency_days: 121, tenure_days: 121, monetary_total: 40, monetary_mean: 40, mean_gap_days: null });
    expect(c2).toMatchObject({ return_count: 0, return_rate: 0, share_beauty: 1, spend_last_90d: 0, spend_prev_90d: 40, spend_trend: -1, churned: true });
  });

  it('records the cleaning steps in the Parquet metadata and the sidecar', async () => {
    const file = path.join(dir, 'rows.parquet');
    const meta = JSON.parse(fs.readFileSync(`${file}.meta.json`, 'utf8'));
    expect(meta.rows).toEqual({ read: 12, duplicatesRemoved: 1, invalidNullId: 1, invalidTimestamp: 1, invalidAmount: 1, valid: 8, validBeforeAsOf: 5 });
    expect(meta.cleaning[0]).toMatch(/exact duplicate rows removed: 1/);
    const conn = await duck();
    const kv = await conn.runAndReadAll(`SELECT decode(value) FROM parquet_kv_metadata(${sqlString(file)}) WHERE decode(key) = 'segtensor:features'`);
    expect(JSON.parse(String(kv.getRows()[0][0])).rows).toEqual(meta.rows);
  });

  it('counts one purchase per order with --order-col', async () => {
    const [c1, c2] = await features({ out: 'orders.parquet', orderCol: 'order_id' });
    expect(c1).toMatchObject({ frequency: 2, recency_days: 10, tenure_days: 51, monetary_total: 130, monetary_mean: 65, return_count: 1, return_rate: 0.5 });
    expect(c1.mean_gap_days).toBeCloseTo(41 + 2 / 24, 10);
    expect(c2).toMatchObject({ frequency: 1, monetary_total: 40 });
    expect(c1).not.toHaveProperty('churned');
  });

  it('keeps customers of --customers without a purchase before as-of, with zeros and nulls', async () => {
    const out = await features({ out: 'joined.parquet', customers, churnWindow: 30 });
    expect(out.map((r) => [r.customer_id, r.tier])).toEqual([[1, 'gold'], [2, 'silver'], [3, 'bronze'], [4, 'bronze']]);
    for (const r of out.slice(2)) {
      expect(r).toMatchObject({ frequency: 0, monetary_total: 0, return_count: 0, spend_last_90d: 0, spend_prev_90d: 0 });
      expect(r).toMatchObject({ recency_days: null, tenure_days: null, monetary_mean: null, mean_gap_days: null, return_rate: null, spend_trend: null, share_home: null });
    }
    expect(out.map((r) => r.churned)).toEqual([false, true, false, true]); // 3 bought on 03-10, inside the window
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'joined.parquet.meta.json'), 'utf8'));
    expect(meta.output).toEqual({ rows: 4, fromTransactions: 2, withoutPurchaseBeforeAsOf: 2, notInCustomersTable: 0 });
  });

  it('gives the same features from native Parquet timestamps and from Arrow IPC as from ISO text', async () => {
    const conn = await duck();
    const native = path.join(dir, 'tx-native.parquet');
    const typed = `SELECT customer_id, order_id, TRY_CAST(timezone('UTC', TRY_CAST("timestamp" AS TIMESTAMPTZ)) AS TIMESTAMP) AS "timestamp", TRY_CAST(amount AS DOUBLE) AS amount, category FROM read_csv(${sqlString(tx)}, all_varchar = true)`;
    await conn.run(`COPY (SELECT TRY_CAST(customer_id AS BIGINT) AS customer_id, * EXCLUDE (customer_id) FROM (${typed})) TO ${sqlString(native)} (FORMAT parquet)`);
    const fromText = await features({ out: 'text.parquet', orderCol: 'order_id', churnWindow: 30 });
    const fromParquet = await features({ transactions: native, out: 'native.parquet', orderCol: 'order_id', churnWindow: 30 });
    expect(fromParquet).toEqual(fromText);
    const arrow = path.join(dir, 'tx.arrow');
    await copyQueryToArrow(`SELECT * FROM read_parquet(${sqlString(native)})`, arrow);
    const fromArrow = await features({ transactions: arrow, out: 'arrow.parquet', orderCol: 'order_id', churnWindow: 30 });
    expect(fromArrow).toEqual(fromText);
  });

  it('winsorizes |amount| at the (1 − q) quantile over valid rows before as-of', async () => {
    // |amount| before as-of: 100, 50, 30, 30, 50, 40 → 0.8 quantile (linear) = 50.
    const [c1] = await features({ out: 'winsor.parquet', winsorize: 0.2 });
    expect(c1.monetary_total).toBe(80);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'winsor.parquet.meta.json'), 'utf8'));
    expect(meta.winsorize).toEqual({ q: 0.2, cap: 50, clipped: 1 });
  });

  it('writes CSV and Arrow outputs with the same values', async () => {
    const pq = await features({ out: 'same.parquet', churnWindow: 30 });
    const csv = await features({ out: 'same.csv', churnWindow: 30 });
    expect(csv.map((r) => r.frequency)).toEqual(pq.map((r) => r.frequency));
    await buildFeatures({ transactions: tx, asOf: '2024-03-01', out: path.join(dir, 'same.arrow'), churnWindow: 30, maxInvalid: 0.5 });
    const t = await readTable(path.join(dir, 'same.arrow'));
    const freq = t.columns.find((c) => c.name === 'frequency')!;
    expect(Array.from(freq.values as BigInt64Array, Number)).toEqual([3, 1]);
  });
});

describe('segtensor features: no leakage', () => {
  it('changing, adding or removing rows after as-of changes no feature, only the label', async () => {
    const changed = path.join(dir, 'tx-changed.csv');
    const after = [
      '1,A3,2024-03-05 00:00:00,999,electronics', // changed amount and category
      '1,A4,2024-03-06 00:00:00,5,sports', // a new category, only after as-of
      '1,A4,2024-03-06 00:00:00,5,sports',
      '5,E1,2024-03-02 00:00:00,70,home', // a new customer after as-of
    ];
    fs.writeFileSync(changed, [HEADER, ...LOG.filter((l) => !/2024-03-(05|10)/.test(l)), ...after].join('\n') + '\n');
    for (const orderCol of [null, 'order_id']) {
      const base = await features({ out: 'leak-a.parquet', orderCol, churnWindow: 30 });
      const other = await features({ transactions: changed, out: 'leak-b.parquet', orderCol, churnWindow: 30 });
      const drop = (r: Row[]) => r.map(({ churned, ...rest }) => rest);
      expect(drop(other)).toEqual(drop(base));
      const noLabel = await features({ transactions: changed, out: 'leak-c.parquet', orderCol });
      expect(noLabel).toEqual(drop(base));
    }
  });
});

describe('segtensor features: errors', () => {
  it('names the file and the column when a column is missing', async () => {
    await expect(buildFeatures({ transactions: tx, asOf: '2024-03-01', out: path.join(dir, 'x.parquet'), timeCol: 'ts' })).rejects.toThrow(
      /tx\.csv: no column 'ts' \(--time-col\); columns are customer_id, order_id, timestamp, amount, category/,
    );
  });

  it('prints one line and exits 1 from the CLI; bad options exit 2', () => {
    const bin = path.join(root, 'dist/src/cli/main.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, SEGTENSOR_DEBUG: '' } });
    const r = run('features', '--transactions', tx, '--as-of', '2024-03-01', '--out', path.join(dir, 'y.parquet'), '--amount-col', 'value');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`segtensor: error [MISSING_COLUMN]: ${tx}: no column 'value' (--amount-col); columns are customer_id, order_id, timestamp, amount, category\n`);
    const bad = run('features', '--transactions', tx, '--as-of', '2024-02-30', '--out', path.join(dir, 'y.parquet'));
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^segtensor: error \[BAD_OPTION\]: features: --as-of must be a date YYYY-MM-DD; got '2024-02-30'\n$/);
  });
});
