/**
 * The population generator (issue 4): same seed → same bytes, the file contract, and the
 * stated rules of datasets/README.md checked on 20,000 customers; the churn label that
 * `segtensor features` computes equals the ground truth for every customer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePopulation, type GenerateResult } from '../../src/datasets/population/generate.js';
import { NOISE, SEGMENTS } from '../../src/datasets/population/spec.js';
import { buildFeatures } from '../../src/features/rfm.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { readTable } from '../../src/io/read-table.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-population-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 20_000;
const a = path.join(dir, 'a');
let gen: GenerateResult;

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const conn = await duck();
  const r = await conn.runAndReadAll(sql);
  return (r.getRowObjectsJS() as Record<string, unknown>[]).map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
  );
}
const pq = (name: string) => `read_parquet(${sqlString(path.join(a, name))})`;

beforeAll(async () => {
  gen = await generatePopulation({ customers: N, seed: 3, out: a });
});

describe('datasets generate: determinism and contract', () => {
  it('writes the same bytes for the same seed, and different bytes for another seed', async () => {
    const b = path.join(dir, 'b');
    const c = path.join(dir, 'c');
    await generatePopulation({ customers: N, seed: 3, out: b });
    await generatePopulation({ customers: N, seed: 4, out: c });
    for (const f of ['customers.parquet', 'transactions.parquet', 'truth.parquet', 'manifest.json']) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f))), f).toBe(true);
    }
    for (const f of ['customers.parquet', 'transactions.parquet', 'truth.parquet']) {
      expect(fs.readFileSync(path.join(c, f)).equals(fs.readFileSync(path.join(a, f))), f).toBe(false);
    }
  });

  it('follows the file contract', async () => {
    const types = async (name: string) =>
      Object.fromEntries((await query(`DESCRIBE SELECT * FROM ${pq(name)}`)).map((r) => [r.column_name, r.column_type]));
    expect(await types('customers.parquet')).toMatchObject({
      customer_id: 'BIGINT', age_band: 'VARCHAR', region: 'VARCHAR', signup_channel: 'VARCHAR', signup_date: 'DATE',
      sessions_per_month: 'DOUBLE', pages_per_session: 'DOUBLE', cart_abandon_rate: 'DOUBLE', satisfaction: 'INTEGER',
    });
    expect(await types('transactions.parquet')).toEqual({ customer_id: 'BIGINT', order_id: 'BIGINT', timestamp: 'TIMESTAMP', amount: 'DOUBLE', category: 'VARCHAR' });
    expect(await types('truth.parquet')).toEqual({ customer_id: 'BIGINT', segment: 'INTEGER', segment_name: 'VARCHAR', churn_probability: 'DOUBLE', churned: 'BOOLEAN' });
    const m = JSON.parse(fs.readFileSync(path.join(a, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ seed: 3, asOf: '2024-01-01', churnWindowDays: 90, periodStart: '2021-01-01', periodEnd: '2024-03-30' });
    expect(m.counts.customers).toBe(N);
    expect(m.segments.map((s: { share: number }) => s.share)).toEqual(SEGMENTS.map((s) => s.share));
    expect(m.churnRule).toMatch(/recency_days.*frequency.*trend.*satisfaction/);
    const [{ n, lo, hi }] = await query(`SELECT count(*) AS n, min("timestamp")::VARCHAR AS lo, max("timestamp")::VARCHAR AS hi FROM ${pq('transactions.parquet')}`);
    expect(n).toBe(m.counts.transactions);
    expect(String(lo) >= '2021-01-01').toBe(true);
    expect(String(hi) < '2024-03-31').toBe(true);
  });
});

describe('datasets generate: the stated rules', () => {
  it('draws segments with the stated shares (within 4 binomial standard deviations)', async () => {
    const rows = await query(`SELECT segment, count(*) AS n FROM ${pq('truth.parquet')} GROUP BY 1 ORDER BY 1`);
    for (const s of SEGMENTS) {
      const share = Number(rows.find((r) => r.segment === s.id)!.n) / N;
      expect(Math.abs(share - s.share)).toBeLessThan(4 * Math.sqrt((s.share * (1 - s.share)) / N));
    }
    expect(gen.manifest.counts.segments.reduce((x, y) => x + y)).toBe(N);
  });

  it('churns at the mean churn probability, overall and per segment', async () => {
    const rows = await query(`SELECT segment, avg(churned::INTEGER) AS rate, avg(churn_probability) AS p, count(*) AS n FROM ${pq('truth.parquet')} GROUP BY ALL ORDER BY 1`);
    for (const r of rows) {
      const p = Number(r.p);
      expect(Math.abs(Number(r.rate) - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / Number(r.n)) + 1e-3);
    }
    // The rule orders the segments: lapsing churn most, loyal least.
    const p = rows.map((r) => Number(r.p));
    expect(p[4]).toBeGreaterThan(0.6);
    expect(p[0]).toBeLessThan(0.05);
  });

  it('logs returns, exact duplicates and malformed rows at the stated rates', async () => {
    const [r] = await query(`SELECT count(*) AS rows, count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM ${pq('transactions.parquet')})) AS dups,
        count(*) FILTER (customer_id IS NULL) AS null_id, count(*) FILTER ("timestamp" IS NULL) AS null_ts, count(*) FILTER (isnan(amount)) AS nan_amount,
        count(*) FILTER (amount > 0) AS purchases, count(*) FILTER (amount < 0) AS returns
      FROM ${pq('transactions.parquet')}`);
    const rows = Number(r.rows);
    const dupRate = Number(r.dups) / rows;
    expect(Math.abs(dupRate - NOISE.duplicate)).toBeLessThan(4 * Math.sqrt(NOISE.duplicate / rows));
    const items = Number(r.purchases); // about one purchase row per item (duplicates and malformed copies are rare)
    for (const k of ['null_id', 'null_ts', 'nan_amount']) {
      const expected = (items * NOISE.malformed) / 3;
      expect(Math.abs(Number(r[k]) - expected), k).toBeLessThan(5 * Math.sqrt(expected));
    }
    // Per segment, returns / purchase items ≈ the stated return rate (a few returns fall after the log's end).
    const seg = await query(`SELECT t.segment, count(*) FILTER (amount > 0) AS p, count(*) FILTER (amount < 0) AS r
      FROM ${pq('transactions.parquet')} x JOIN ${pq('truth.parquet')} t USING (customer_id) GROUP BY 1 ORDER BY 1`);
    for (const s of seg) {
      const ratio = Number(s.r) / Number(s.p);
      const rate = SEGMENTS[Number(s.segment)].returnRate;
      expect(ratio, `segment ${s.segment}`).toBeGreaterThan(0.85 * rate);
      expect(ratio, `segment ${s.segment}`).toBeLessThan(1.1 * rate);
    }
  });

  it('leaves about 30% of satisfaction answers missing and keeps scores in 1..5', async () => {
    const [r] = await query(`SELECT avg((satisfaction IS NULL)::INTEGER) AS missing, min(satisfaction) AS lo, max(satisfaction) AS hi FROM ${pq('customers.parquet')}`);
    expect(Math.abs(Number(r.missing) - NOISE.satisfactionMissing)).toBeLessThan(0.02);
    expect([r.lo, r.hi]).toEqual([1, 5]);
  });

  it('puts no purchase of a churner, and at least one of every other customer, in the churn window', async () => {
    const [r] = await query(`SELECT count(*) FILTER (t.churned AND w.n > 0) AS churners_buying, count(*) FILTER (NOT t.churned AND coalesce(w.n, 0) = 0) AS stayers_not_buying
      FROM ${pq('truth.parquet')} t LEFT JOIN (SELECT customer_id, count(*) AS n FROM ${pq('transactions.parquet')}
        WHERE amount > 0 AND "timestamp" >= TIMESTAMP '2024-01-01' GROUP BY 1) w USING (customer_id)`);
    expect(r).toEqual({ churners_buying: 0, stayers_not_buying: 0 });
  });
});

describe('datasets generate → features', () => {
  it("gives a 'churned' label equal to truth.churned for every customer (manifest asOf and window)", async () => {
    const m = gen.manifest;
    const out = path.join(dir, 'features.parquet');
    await buildFeatures({
      transactions: path.join(a, 'transactions.parquet'),
      customers: path.join(a, 'customers.parquet'),
      asOf: m.asOf,
      churnWindow: m.churnWindowDays,
      orderCol: 'order_id',
      out,
    });
    const [r] = await query(`SELECT count(*) AS n, count(*) FILTER (f.churned IS DISTINCT FROM t.churned) AS differ
      FROM read_parquet(${sqlString(out)}) f FULL OUTER JOIN ${pq('truth.parquet')} t USING (customer_id)`);
    expect(r).toEqual({ n: N, differ: 0 });
  });

  it('writes Arrow IPC copies with --arrow that hold the same rows', async () => {
    const d = path.join(dir, 'arrow');
    const r = await generatePopulation({ customers: 2_000, seed: 5, out: d, arrow: true });
    const t = await readTable(path.join(d, 'transactions.arrow'));
    expect(t.nRows).toBe(r.manifest.counts.transactions);
    const fromParquet = await readTable(path.join(d, 'transactions.parquet'));
    const amount = (x: typeof t) => (x.columns.find((c) => c.name === 'amount')!.values as Float64Array).slice(0, 500);
    expect(Array.from(amount(t))).toEqual(Array.from(amount(fromParquet)));
    const ts = (x: typeof t) => (x.columns.find((c) => c.name === 'timestamp')!.values as Float64Array).slice(0, 500);
    expect(Array.from(ts(t))).toEqual(Array.from(ts(fromParquet)));
  });
});
