/**
 * Issue 12 acceptance: the README's pipeline, as whole processes on the generated population —
 * `features --churn-window`, `fit`, `churn train`, `churn predict --segments` — gives segments
 * that do not use the label, and scores a newer snapshot with segments of that snapshot, never
 * the ones stored for an older table.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePopulation } from '../../src/datasets/population/generate.js';
import { readTable } from '../../src/io/read-table.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-readme-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, '-q', ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, SEGTENSOR_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function ok(r: ReturnType<typeof cli>) {
  expect(r.code, r.err).toBe(0);
  return r;
}

/** id → segment of a table with `customer_id` and `segment`. */
async function segmentsById(file: string): Promise<Map<number, number>> {
  const t = await readTable(file);
  const ids = t.numeric('customer_id');
  const seg = t.numeric('segment');
  return new Map(Array.from(ids, (id, i) => [id, seg[i]]));
}

let fitErr = '';

beforeAll(async () => {
  const pop = path.join(dir, 'pop');
  await generatePopulation({ customers: 3000, seed: 3, out: pop });
  const manifest = JSON.parse(fs.readFileSync(path.join(pop, 'manifest.json'), 'utf8'));
  const log = ['--transactions', 'pop/transactions.parquet', '--customers', 'pop/customers.parquet', '--order-col', 'order_id'];
  // Last night's table, labelled; tonight's snapshot 30 days later, unlabelled.
  ok(cli('features', ...log, '--as-of', manifest.asOf, '--churn-window', String(manifest.churnWindowDays), '--out', 'features.parquet'));
  const later = new Date(Date.parse(manifest.asOf) + 30 * 86_400_000).toISOString().slice(0, 10);
  ok(cli('features', ...log, '--as-of', later, '--out', 'tonight.parquet'));
  fitErr = ok(cli('fit', '--input', 'features.parquet', '--k', '5', '--id', 'customer_id', '--scale', 'log1p', '--out', 'out')).err;
  ok(cli('churn', 'train', '--input', 'features.parquet', '--label', 'churned', '--id', 'customer_id', '--max-epochs', '3', '--backend', 'cpu', '--out', 'churn'));
}, 240_000);

describe("the README pipeline (issue 12)", () => {
  it("fit leaves the label that features marked out of the segments, and says so", () => {
    const model = JSON.parse(fs.readFileSync(path.join(dir, 'out/model.json'), 'utf8'));
    expect(model.featureNames.length).toBeGreaterThan(5);
    expect(model.featureNames.some((f: string) => /churn/.test(f))).toBe(false);
    expect(model.excluded).toContain('churned');
    expect(fitErr).toMatch(/column 'churned' is marked as a label/);
  });

  it('churn predict --segments on a newer snapshot uses that snapshot’s segments', async () => {
    ok(cli('churn', 'predict', '--model', 'churn', '--input', 'tonight.parquet', '--segments', 'out', '--backend', 'cpu', '--out', 'scores.parquet'));
    ok(cli('predict', '--model', 'out', '--input', 'tonight.parquet', '--out', 'tonight-segments.parquet'));
    const scored = await segmentsById(path.join(dir, 'scores.parquet'));
    const current = await segmentsById(path.join(dir, 'tonight-segments.parquet'));
    const stored = await segmentsById(path.join(dir, 'out/assignments.arrow'));
    expect(scored.size).toBe(current.size);
    for (const [id, s] of current) expect(scored.get(id)).toBe(s);
    // The check has teeth: some customers moved segment between the two snapshots.
    let moved = 0;
    for (const [id, s] of current) if (stored.has(id) && stored.get(id) !== s) moved++;
    expect(moved).toBeGreaterThan(0);
  });

  it("a predict output is accepted as --segments for its own snapshot, and refused for another", async () => {
    ok(cli('churn', 'predict', '--model', 'churn', '--input', 'tonight.parquet', '--segments', 'tonight-segments.parquet', '--backend', 'cpu', '--out', 'scores2.parquet'));
    const a = await segmentsById(path.join(dir, 'scores2.parquet'));
    const b = await segmentsById(path.join(dir, 'tonight-segments.parquet'));
    expect([...a]).toEqual([...b]);
    const stale = cli('churn', 'predict', '--model', 'churn', '--input', 'features.parquet', '--segments', 'tonight-segments.parquet', '--backend', 'cpu', '--out', 'scores3.parquet');
    expect(stale.code).toBe(1);
    expect(stale.err).toMatch(/--segments 'tonight-segments\.parquet' holds segments assigned from .*tonight\.parquet, not from features\.parquet/);
  });

  it('fit --format parquet into the same directory leaves no assignments of the earlier k behind', () => {
    ok(cli('fit', '--input', 'features.parquet', '--k', '3', '--id', 'customer_id', '--format', 'parquet', '--out', 'out'));
    expect(fs.readdirSync(path.join(dir, 'out')).sort()).toEqual(['assignments.parquet', 'manifest.json', 'metrics.json', 'model.json', 'segments.csv']);
  });
});
