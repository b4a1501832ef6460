/**
 * `segtensor features` (issue 12): ids as written (a DOUBLE id column gives integer ids, never
 * `12346.0`), guards that fail loudly (a churn window past the log, an as-of outside the log,
 * too many invalid rows), and the `churned` label marked in the metadata of every output format
 * and read back by `readLabelColumns`. Expected values are computed here in plain JS from the
 * generated rows.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFeatures, type FeatureJob } from '../../src/features/rfm.js';
import { openSource } from '../../src/features/source.js';
import { duck, sqlString } from '../../src/io/duckdb-reader.js';
import { readTable } from '../../src/io/read-table.js';
import { LABELS_KEY, readLabelColumns } from '../../src/io/table-meta.js';
import { SegtensorError } from '../../src/errors.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-guards-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const AS_OF = '2024-03-01';
const asOfMs = Date.parse(`${AS_OF}T00:00:00Z`);
const IDS = [12346, 12347, 12350, 12360];

interface Tx {
  id: number;
  ms: number;
  amount: number;
}
// 40 valid rows, one every 3 days from 2024-01-01, some returns; the last on 2024-04-27 15:00.
const TX: Tx[] = Array.from({ length: 40 }, (_, i) => ({
  id: IDS[i % IDS.length],
  ms: Date.UTC(2024, 0, 1 + 3 * i, i % 24),
  amount: i % 7 === 0 ? -5 : 10 + i,
}));
const firstMs = Math.min(...TX.map((t) => t.ms));
const lastMs = Math.max(...TX.map((t) => t.ms));
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const line = (t: Tx, id = `${t.id}.0`) => `${id},${iso(t.ms)},${t.amount}`;

/** The features of each customer, worked out here from TX. */
function expected(): { id: number; frequency: number; monetary_total: number }[] {
  const pre = TX.filter((t) => t.ms < asOfMs);
  return [...new Set(pre.map((t) => t.id))]
    .sort((a, b) => a - b)
    .map((id) => ({
      id,
      frequency: pre.filter((t) => t.id === id && t.amount > 0).length,
      monetary_total: pre.filter((t) => t.id === id).reduce((s, t) => s + t.amount, 0),
    }));
}

// DOUBLE ids, as pandas writes an integer id column with missing values: `12346.0`, one blank.
const csvDouble = path.join(dir, 'tx-double.csv');
const pqDouble = path.join(dir, 'tx-double.parquet');
const csvText = path.join(dir, 'tx-text.csv');
const csvClean = path.join(dir, 'tx-clean.csv');
const custDouble = path.join(dir, 'customers-double.csv');

beforeAll(async () => {
  const header = 'customer_id,timestamp,amount';
  fs.writeFileSync(csvDouble, [header, ...TX.map((t) => line(t)), `,${iso(firstMs + DAY)},7`].join('\n') + '\n');
  fs.writeFileSync(csvText, [header, ...TX.map((t) => line(t, `c-${t.id}`))].join('\n') + '\n');
  fs.writeFileSync(csvClean, [header, ...TX.map((t) => line(t, String(t.id)))].join('\n') + '\n');
  fs.writeFileSync(custDouble, ['customer_id,tier', ...[...IDS, 99999].map((id, i) => `${id}.0,t${i}`)].join('\n') + '\n');
  const conn = await duck();
  // The blank id becomes NaN in Parquet: a raw float NaN, as some writers leave it.
  await conn.run(
    `COPY (SELECT CASE WHEN customer_id IS NULL THEN 'NaN'::DOUBLE ELSE CAST(customer_id AS DOUBLE) END AS customer_id,
       CAST(replace("timestamp", 'Z', '') AS TIMESTAMP) AS "timestamp", CAST(amount AS DOUBLE) AS amount
     FROM read_csv(${sqlString(csvDouble)}, all_varchar = true)) TO ${sqlString(pqDouble)} (FORMAT parquet)`,
  );
});

const job = (over: Partial<FeatureJob> & { out: string }): FeatureJob => ({ transactions: csvClean, asOf: AS_OF, ...over, out: path.join(dir, over.out) });

async function parquetRows(file: string): Promise<Record<string, unknown>[]> {
  const conn = await duck();
  return (await conn.runAndReadAll(`SELECT *, typeof(customer_id) AS id_type FROM read_parquet(${sqlString(file)}) ORDER BY 1`)).getRowObjectsJS() as Record<string, unknown>[];
}

describe('features: ids as written (issue 12)', () => {
  it('gives integer ids from a DOUBLE id column in CSV and Parquet; NaN and blank ids are null ids', async () => {
    for (const file of [csvDouble, pqDouble]) {
      const src = await openSource(file, '--transactions');
      expect(src.columns[0].typeName).toBe('DOUBLE'); // the case under test
      await src.dispose();
    }
    const want = expected();
    for (const [file, tag] of [
      [csvDouble, 'csv'],
      [pqDouble, 'pq'],
    ]) {
      const r = await buildFeatures(job({ transactions: file, out: `ids-${tag}.parquet`, maxInvalid: 0.05 }));
      expect(r.meta.rows.invalidNullId).toBe(1);
      const rows = await parquetRows(r.out);
      expect(rows.map((x) => x.id_type)).toEqual(want.map(() => 'BIGINT'));
      expect(rows.map((x) => ({ id: Number(x.customer_id), frequency: Number(x.frequency), monetary_total: x.monetary_total }))).toEqual(want);
    }
  });

  it('writes 12346, not 12346.0, to CSV and Int64 to Arrow; joins DOUBLE ids of --customers', async () => {
    const csv = await buildFeatures(job({ transactions: pqDouble, out: 'ids.csv', maxInvalid: 0.05 }));
    const ids = fs.readFileSync(csv.out, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    expect(ids).toEqual(expected().map((w) => String(w.id)));
    const arrow = await buildFeatures(job({ transactions: csvDouble, out: 'ids.arrow', maxInvalid: 0.05 }));
    const t = await readTable(arrow.out);
    const col = t.columns.find((c) => c.name === 'customer_id')!;
    expect(col.type).toBe('bigint');
    expect(Array.from(col.values as BigInt64Array, Number)).toEqual(expected().map((w) => w.id));
    const joined = await buildFeatures(job({ transactions: csvDouble, customers: custDouble, out: 'ids-joined.csv', maxInvalid: 0.05 }));
    const lines = fs.readFileSync(joined.out, 'utf8').trim().split('\n').slice(1);
    expect(lines.map((l) => l.split(',')[0])).toEqual([...IDS, 99999].map(String));
    expect(lines.map((l) => l.split(',').at(-1))).toEqual([...IDS, 99999].map((_, i) => `t${i}`));
  });

  it('keeps text ids as text', async () => {
    const r = await buildFeatures(job({ transactions: csvText, out: 'ids-text.parquet' }));
    const rows = await parquetRows(r.out);
    expect(rows.map((x) => [x.customer_id, x.id_type])).toEqual(expected().map((w) => [`c-${w.id}`, 'VARCHAR']));
  });
});

describe('features: guards that fail loudly (issue 12)', () => {
  const range = `${csvClean}'s valid rows run from ${iso(firstMs)} to ${iso(lastMs)}`;

  it("refuses a churn window that ends after the day of the log's last valid timestamp, naming both", async () => {
    // The log covers the whole day of its last row (2024-04-27 15:00): a window may end 2024-04-28 00:00.
    const dayAfterLast = Math.floor(lastMs / DAY) * DAY + DAY;
    const fits = Math.floor((dayAfterLast - asOfMs) / DAY); // 58 days
    const err = await buildFeatures(job({ out: 'w.parquet', churnWindow: fits + 1 })).catch((e) => e);
    expect(err).toBeInstanceOf(SegtensorError);
    expect(err.code).toBe('OUT_OF_RANGE');
    expect(err.message).toBe(
      `features: --churn-window ${fits + 1} ends at ${iso(asOfMs + (fits + 1) * DAY)}, after the day of the log's last valid timestamp ${iso(lastMs)} (${range}); ` +
        `use at most ${fits} days from --as-of ${AS_OF}, or an earlier --as-of`,
    );
    // The longest window that fits is accepted, and labels from rows in it.
    const ok = await buildFeatures(job({ out: 'w-ok.parquet', churnWindow: fits }));
    const rows = await parquetRows(ok.out);
    const bought = (id: number) => TX.some((t) => t.id === id && t.amount > 0 && t.ms >= asOfMs && t.ms < asOfMs + fits * DAY);
    expect(rows.map((x) => x.churned)).toEqual(expected().map((w) => !bought(w.id)));
  });

  it('refuses an as-of at or before the first valid timestamp, naming the range', async () => {
    for (const asOf of ['2023-06-01', '2024-01-01']) {
      // 2024-01-01 00:00 is the first row's own time: no row lies strictly before it.
      await expect(buildFeatures(job({ out: 'early.parquet', asOf }))).rejects.toThrow(
        `features: --as-of ${asOf} is not after the log's first valid timestamp (${range}); features read only rows strictly before as-of`,
      );
    }
    expect(fs.existsSync(path.join(dir, 'early.parquet'))).toBe(false);
  });

  it('accepts as-of up to the day after the last valid timestamp, and refuses later ones', async () => {
    const dayAfter = iso(Math.floor(lastMs / DAY) * DAY + DAY).slice(0, 10); // 2024-04-28
    const r = await buildFeatures(job({ out: 'late-ok.parquet', asOf: dayAfter }));
    expect(r.meta.rows.validBeforeAsOf).toBe(TX.length); // every row counts
    const later = iso(Date.parse(`${dayAfter}T00:00:00Z`) + DAY).slice(0, 10);
    const err = await buildFeatures(job({ out: 'late.parquet', asOf: later })).catch((e) => e);
    expect(err.code).toBe('OUT_OF_RANGE');
    expect(err.message).toBe(`features: --as-of ${later} is after the log (${range}); the latest as-of is ${dayAfter}, the day after its last row`);
  });

  it('fails when invalid rows exceed --max-invalid (default 1%), with the counts', async () => {
    // 100 valid rows and 2 invalid ones (a bad timestamp, a bad amount): 2 / 102 ≈ 1.96%.
    const file = path.join(dir, 'tx-invalid.csv');
    const valid = Array.from({ length: 100 }, (_, i) => `${1 + (i % 5)},${iso(Date.UTC(2024, 0, 1) + i * DAY)},${i + 1}`);
    fs.writeFileSync(file, ['customer_id,timestamp,amount', ...valid, `3,not a date,5`, `4,2024-01-05T00:00:00Z,abc`].join('\n') + '\n');
    const err = await buildFeatures(job({ transactions: file, out: 'inv.parquet' })).catch((e) => e);
    expect(err.code).toBe('TOO_MANY_INVALID');
    expect(err.message).toBe(
      `features: 2 of 102 rows read from ${file} are invalid (1.96%: 0 null 'customer_id', 1 null or unparseable 'timestamp', 1 null, unparseable or non-finite 'amount'), ` +
        `more than --max-invalid 0.01 (1%) allows; fix the log or raise --max-invalid`,
    );
    const lines: string[] = [];
    const r = await buildFeatures(job({ transactions: file, out: 'inv.parquet', maxInvalid: 0.02, log: (l) => lines.push(l) }));
    expect(r.meta.rows).toMatchObject({ read: 102, invalidTimestamp: 1, invalidAmount: 1, valid: 100 });
    expect(r.meta.maxInvalid).toBe(0.02);
    expect(lines.filter((l) => l.startsWith('notice:'))).toEqual([
      `notice: 2 of 102 rows read from ${file} are invalid (1.96%: 0 null 'customer_id', 1 null or unparseable 'timestamp', 1 null, unparseable or non-finite 'amount'); skipped (within --max-invalid 0.02), counted in the metadata`,
    ]);
    await expect(buildFeatures(job({ transactions: file, out: 'inv.parquet', maxInvalid: 1.5 }))).rejects.toThrow(/--max-invalid must be a fraction in \[0, 1\]; got '1.5'/);
  });

  it('CLI: exits 1 with one line for a guard, prints the notice on stderr, and 2 for a bad --max-invalid', () => {
    const bin = path.join(root, 'dist/src/cli/main.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, '--quiet', 'features', '--transactions', csvDouble, '--out', path.join(dir, 'cli.csv'), ...args], { encoding: 'utf8' });
    const early = run('--as-of', '2023-06-01');
    expect(early.status).toBe(1);
    expect(early.stderr).toMatch(/^segtensor: error \[OUT_OF_RANGE\]: features: --as-of 2023-06-01 is not after the log's first valid timestamp [^\n]*\n$/);
    const tooMany = run('--as-of', AS_OF);
    expect(tooMany.status).toBe(1);
    expect(tooMany.stderr).toMatch(/^segtensor: error \[TOO_MANY_INVALID\]: features: 1 of 41 rows read from [^\n]*\n$/);
    const ok = run('--as-of', AS_OF, '--max-invalid', '0.05', '--churn-window', '30');
    expect(ok.status).toBe(0);
    expect(ok.stderr).toMatch(/^segtensor: notice: 1 of 41 rows read from [^\n]* are invalid \(2\.44%: 1 null 'customer_id'/);
    expect(ok.stdout).toMatch(/label columns, not features: churned/);
    expect(run('--as-of', AS_OF, '--max-invalid', '2').status).toBe(2);
  });
});

describe('features: the churn label is marked as a label (issue 12)', () => {
  it.each(['parquet', 'arrow', 'arrows', 'csv'])('%s: in the sidecar and the file, read back by readLabelColumns', async (ext) => {
    const labelled = await buildFeatures(job({ out: `labels.${ext}`, churnWindow: 30 }));
    expect(labelled.columns).toContain('churned');
    expect(JSON.parse(fs.readFileSync(labelled.metaFile, 'utf8')).labels).toEqual(['churned']);
    expect(await readLabelColumns(labelled.out)).toEqual(['churned']);
    const plain = await buildFeatures(job({ out: `plain.${ext}` }));
    expect(JSON.parse(fs.readFileSync(plain.metaFile, 'utf8')).labels).toEqual([]);
    expect(await readLabelColumns(plain.out)).toEqual([]);
    if (ext === 'csv') return;
    // The marking travels with the file: without the sidecar, the file's own metadata says it.
    fs.rmSync(labelled.metaFile);
    expect(await readLabelColumns(labelled.out)).toEqual(['churned']);
    if (ext === 'parquet') {
      const conn = await duck();
      const kv = await conn.runAndReadAll(`SELECT decode(value) FROM parquet_kv_metadata(${sqlString(labelled.out)}) WHERE decode(key) = ${sqlString(LABELS_KEY)}`);
      expect(kv.getRows()).toEqual([['["churned"]']]);
    } else {
      expect(tableFromIPC(fs.readFileSync(labelled.out)).schema.metadata.get(LABELS_KEY)).toBe('["churned"]');
    }
  });

  it('reads [] from a table without metadata, and names the file when the marking is malformed', async () => {
    expect(await readLabelColumns(csvClean)).toEqual([]);
    expect(await readLabelColumns(pqDouble)).toEqual([]);
    const bad = path.join(dir, 'bad-labels.csv');
    fs.copyFileSync(csvClean, bad);
    fs.writeFileSync(`${bad}.meta.json`, JSON.stringify({ labels: 'churned' }));
    await expect(readLabelColumns(bad)).rejects.toThrow(`${bad}.meta.json: 'labels' must be a JSON array of column names; got "churned"`);
    await expect(readLabelColumns(path.join(dir, 'missing.parquet'))).rejects.toThrow(/no such file/);
  });
});
