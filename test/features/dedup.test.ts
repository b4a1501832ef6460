/**
 * Exact-duplicate removal behind the row-hash prefilter (issue 17): only rows whose 64-bit row
 * hash repeats go through the exact `GROUP BY ALL`. Checked against a plain-JS reference on a
 * seeded log with copies (two and three of a row, nulls in them, invalid rows, rows after as-of),
 * near-duplicates that differ in exactly one column (a column no feature reads included), NULL
 * order ids, and orders whose items have different times; and with the hash cut to 2 bits, so
 * that nearly every row collides with an unequal one and the exact comparison alone must keep
 * them apart: same output as the full hash.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFeatures, type FeatureJob, type FeatureMeta } from '../../src/features/rfm.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { rng } from '../helpers/reference.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-dedup-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const AS_OF = Date.UTC(2024, 0, 1);
const DAY = 86_400_000;
const CATS = ['home', 'beauty', 'sports'];

/** One log row as written: null is an empty CSV field. */
interface Tx {
  customer_id: number | null;
  order_id: string | null;
  timestamp: string | null;
  amount: string | null;
  category: string | null;
  note: string | null;
}

const log: Tx[] = [];
const file = path.join(dir, 'tx.parquet');

beforeAll(async () => {
  const r = rng(17);
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  let order = 0;
  for (let id = 1; id <= 80; id++) {
    for (let o = 0; o < 1 + Math.floor(r() * 5); o++) {
      order++;
      // Some orders have no id (NULL orders of one customer form one event); items of an order
      // may differ in time (the event is timed at the earliest).
      const ord = r() < 0.1 ? null : `O${order}`;
      const t0 = AS_OF - Math.floor(r() * 400) * DAY + Math.floor(r() * DAY) + (r() < 0.2 ? 60 * DAY : 0);
      for (let item = 0; item < 1 + Math.floor(r() * 3); item++) {
        const row: Tx = {
          customer_id: id,
          order_id: ord,
          timestamp: iso(t0 + (r() < 0.3 ? Math.floor(r() * 3) * 3_600_000 : 0)),
          amount: r() < 0.1 ? String(-(1 + Math.round(r() * 30))) : (Math.round(r() * 20000) / 100).toFixed(2),
          category: r() < 0.1 ? null : CATS[Math.floor(r() * CATS.length)],
          note: r() < 0.5 ? null : `n${Math.floor(r() * 3)}`,
        };
        log.push(row);
        const u = r();
        if (u < 0.15) log.push({ ...row }); // two copies
        else if (u < 0.2) log.push({ ...row }, { ...row }); // three copies
        else if (u < 0.35) {
          // A near-duplicate: equal but for one column, so not a copy.
          const k = (['customer_id', 'order_id', 'timestamp', 'amount', 'category', 'note'] as const)[Math.floor(r() * 6)];
          const near: Tx = { ...row };
          if (k === 'customer_id') near.customer_id = row.customer_id! + 1;
          else if (k === 'order_id') near.order_id = row.order_id === null ? 'O-near' : null;
          else if (k === 'timestamp') near.timestamp = iso(Date.parse(row.timestamp!) + 1000);
          else if (k === 'amount') near.amount = (Number(row.amount) + 0.01).toFixed(2);
          else if (k === 'category') near.category = row.category === null ? 'home' : null;
          else near.note = row.note === null ? 'n-near' : null;
          log.push(near);
        }
      }
    }
  }
  // Invalid rows and their copies; a zero amount and its copy written as -0.
  const bad: Tx[] = [
    { customer_id: null, order_id: 'X1', timestamp: '2023-05-01T00:00:00Z', amount: '10', category: 'home', note: null },
    { customer_id: null, order_id: 'X1', timestamp: '2023-05-01T00:00:00Z', amount: '10', category: 'home', note: null },
    { customer_id: 5, order_id: 'X2', timestamp: null, amount: '10', category: 'home', note: null },
    { customer_id: 5, order_id: 'X2', timestamp: null, amount: '10', category: 'home', note: null },
    { customer_id: 6, order_id: 'X3', timestamp: '2023-06-01T00:00:00Z', amount: null, category: null, note: null },
    { customer_id: 7, order_id: 'X4', timestamp: '2023-07-01T00:00:00Z', amount: '0', category: 'home', note: null },
    { customer_id: 7, order_id: 'X4', timestamp: '2023-07-01T00:00:00Z', amount: '-0', category: 'home', note: null },
    { customer_id: 8, order_id: 'Z', timestamp: '2024-03-30T00:00:00Z', amount: '5', category: 'home', note: null },
  ];
  log.push(...bad);
  // Shuffled: the prefilter must not rely on copies being adjacent.
  for (let i = log.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [log[i], log[j]] = [log[j], log[i]];
  }
  const csv = path.join(dir, 'tx.csv');
  const field = (v: unknown) => (v === null ? '' : String(v));
  fs.writeFileSync(csv, ['customer_id,order_id,timestamp,amount,category,note', ...log.map((t) => Object.values(t).map(field).join(','))].join('\n') + '\n');
  const conn = await duck();
  await conn.run(
    `COPY (SELECT * FROM read_csv(${sqlString(csv)}, header = true, columns = {'customer_id': 'BIGINT', 'order_id': 'VARCHAR', 'timestamp': 'TIMESTAMP', 'amount': 'DOUBLE', 'category': 'VARCHAR', 'note': 'VARCHAR'}))
     TO ${sqlString(file)} (FORMAT parquet)`,
  );
});

/** Features of the log worked out row by row in JS: copies are rows equal in every column (-0 = 0). */
function reference() {
  const seen = new Map<string, Tx>();
  for (const t of log) seen.set(JSON.stringify([t.customer_id, t.order_id, t.timestamp && Date.parse(t.timestamp), t.amount === null ? null : Number(t.amount) + 0, t.category, t.note]), t);
  const distinct = [...seen.values()];
  const valid = distinct.filter((t) => t.customer_id !== null && t.timestamp !== null && t.amount !== null);
  const byCustomer = new Map<number, { frequency: number; return_count: number; monetary_total: number; last: number; first: number }>();
  for (const id of new Set(valid.map((t) => t.customer_id!))) {
    const pre = valid.filter((t) => t.customer_id === id && Date.parse(t.timestamp!) < AS_OF);
    if (pre.length === 0) continue;
    const events = (sign: number) => {
      const m = new Map<string, number>();
      for (const t of pre.filter((x) => Math.sign(Number(x.amount)) === sign)) {
        const k = JSON.stringify(t.order_id);
        m.set(k, Math.min(m.get(k) ?? Infinity, Date.parse(t.timestamp!)));
      }
      return [...m.values()];
    };
    const buys = events(1);
    byCustomer.set(id, {
      frequency: buys.length,
      return_count: events(-1).length,
      monetary_total: pre.reduce((s, t) => s + Number(t.amount), 0),
      last: buys.length ? Math.max(...buys) : NaN,
      first: buys.length ? Math.min(...pre.filter((t) => Number(t.amount) > 0).map((t) => Date.parse(t.timestamp!))) : NaN,
    });
  }
  return {
    duplicatesRemoved: log.length - distinct.length,
    invalidNullId: distinct.filter((t) => t.customer_id === null).length,
    invalidTimestamp: distinct.filter((t) => t.customer_id !== null && t.timestamp === null).length,
    invalidAmount: distinct.filter((t) => t.customer_id !== null && t.timestamp !== null && t.amount === null).length,
    byCustomer,
  };
}

type Row = Record<string, unknown>;

async function run(job: Partial<FeatureJob>, out: string): Promise<{ rows: Row[]; meta: FeatureMeta }> {
  const dest = path.join(dir, out);
  const r = await buildFeatures({ transactions: file, asOf: '2024-01-01', orderCol: 'order_id', churnWindow: 60, maxInvalid: 0.5, ...job, out: dest });
  const conn = await duck();
  const rows = (await conn.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(dest)}) ORDER BY 1`)).getRowObjectsJS() as Row[];
  return { rows: rows.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))), meta: r.meta };
}

const dayOf = (ms: number) => Math.floor(ms / DAY);

describe('segtensor features: duplicate removal behind the row-hash prefilter (issue 17)', () => {
  it('removes exact copies only, as a plain-JS reference does', async () => {
    const want = reference();
    expect(want.duplicatesRemoved).toBeGreaterThan(30);
    const { rows, meta } = await run({}, 'full.parquet');
    expect(meta.rows).toMatchObject({
      read: log.length,
      duplicatesRemoved: want.duplicatesRemoved,
      invalidNullId: want.invalidNullId,
      invalidTimestamp: want.invalidTimestamp,
      invalidAmount: want.invalidAmount,
    });
    expect(rows.map((x) => x.customer_id)).toEqual([...want.byCustomer.keys()].sort((a, b) => a - b));
    for (const row of rows) {
      const w = want.byCustomer.get(row.customer_id as number)!;
      expect(row, `customer ${row.customer_id}`).toMatchObject({ frequency: w.frequency, return_count: w.return_count });
      expect(row.monetary_total as number, `customer ${row.customer_id}`).toBeCloseTo(w.monetary_total, 9);
      expect(row.recency_days, `customer ${row.customer_id}`).toBe(Number.isNaN(w.last) ? null : dayOf(AS_OF) - dayOf(w.last));
      expect(row.tenure_days, `customer ${row.customer_id}`).toBe(Number.isNaN(w.first) ? null : dayOf(AS_OF) - dayOf(w.first));
    }
  });

  it('gives the same output when a 2-bit hash sends nearly every row to the exact comparison', async () => {
    const full = await run({}, 'full-2.parquet');
    for (const [name, job] of [
      ['2-bit hash', { rowHashBits: 2 }],
      ['2-bit hash, customer partitions', { rowHashBits: 2, partitionRows: 60 }],
      ['1-bit hash, per row', { rowHashBits: 1, orderCol: null }],
    ] as [string, Partial<FeatureJob>][]) {
      const narrow = await run(job, `${name.replace(/\W+/g, '-')}.parquet`);
      const base = job.orderCol === null ? await run({ orderCol: null }, 'full-rows.parquet') : full;
      expect(narrow.meta.rows, name).toEqual(base.meta.rows);
      expect(narrow.rows.length, name).toBe(base.rows.length);
      narrow.rows.forEach((row, i) => {
        for (const [k, v] of Object.entries(row)) {
          const w = base.rows[i][k];
          if (typeof v === 'number' && typeof w === 'number') expect(Math.abs(v - w), `${name}: row ${i} ${k}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(w)));
          else expect(v, `${name}: row ${i} ${k}`).toEqual(w);
        }
      });
    }
  });

  it('refuses a row-hash width outside [1, 64]', async () => {
    await expect(run({ rowHashBits: 0 }, 'x.parquet')).rejects.toThrow(/rowHashBits must be an integer in \[1, 64\]; got '0'/);
  });
});
