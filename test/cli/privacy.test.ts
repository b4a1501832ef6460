/**
 * Issue 17, privacy: with --pseudonymize-ids no raw customer id and no byte of the key reaches
 * any output, manifest or log of fit, predict, update, churn train/predict (checked by scanning
 * every file written and everything printed), the pseudonyms are HMAC-SHA-256 as computed here
 * independently, the same key gives the same pseudonyms across runs (so --align-to transitions
 * still join), and --sensitive columns stay out of the features, the profiles and the report.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { Random } from '../../src/util/random.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-privacy-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KEY = 'k3y-for-tests-0123456789-abcdef';
const N = 600;
const ids = Array.from({ length: N }, (_, i) => `cust-zq${(i * 7919) % 100000}-${String(i).padStart(6, '0')}`);
const env = { ...process.env, SEGTENSOR_DEBUG: '', SEGTENSOR_PSEUDONYM_KEY: KEY };

/** HMAC-SHA-256 of the id's text, first 128 bits as hex: computed here without segtensor's code. */
const expected = (id: string) => crypto.createHmac('sha256', Buffer.from(KEY)).update(id).digest('hex').slice(0, 32);

function cli(args: string[], e: NodeJS.ProcessEnv = env) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: e, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const printed: string[] = [];
function ok(args: string[]) {
  const r = cli(args);
  expect(r.code, r.err).toBe(0);
  printed.push(r.out, r.err);
  return r;
}

beforeAll(() => {
  const r = new Random(3);
  const lines = ['customer_id,age,gender,spend,visits,tenure,churned'];
  for (let i = 0; i < N; i++) {
    const g = i % 3;
    const spend = (50 + 120 * g + 15 * r.gauss()).toFixed(2);
    const visits = (3 + 4 * g + r.gauss()).toFixed(2);
    const tenure = (12 + 10 * ((i >> 1) % 3) + 2 * r.gauss()).toFixed(1);
    lines.push(`${ids[i]},${20 + (i % 50)},${i % 2 ? 'f' : 'm'},${spend},${visits},${tenure},${r.next() < 0.2 + 0.2 * (g === 0 ? 1 : 0) ? 1 : 0}`);
  }
  fs.writeFileSync(path.join(dir, 'customers.csv'), lines.join('\n') + '\n');
});

/** Every file under `at` (following the run stores' links once), with its bytes. */
function everyFile(at: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const e of fs.readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isSymbolicLink()) continue; // the links point into the stores, scanned directly
    if (e.isDirectory()) out.push(...everyFile(p));
    else if (e.isFile() && e.name !== 'customers.csv' && e.name !== 'key.txt') out.push([p, fs.readFileSync(p)]);
  }
  return out;
}

describe('--pseudonymize-ids and --sensitive (issue 17)', () => {
  it('no raw id or key in any output, manifest or log; pseudonyms are HMAC-SHA-256; the same key joins runs', async () => {
    const fit = ['fit', '--input', 'customers.csv', '--id', 'customer_id', '--k', '3', '--seed', '1', '--pseudonymize-ids'];
    ok([...fit, '--sensitive', 'age,gender', '--report', '--out', 'night1']);
    const a1 = await readTable(path.join(dir, 'night1', 'assignments.arrow'));
    expect(a1.column('customer_id')).toMatchObject({ type: 'string', values: ids.map(expected) });

    // The next night: the same key, the same pseudonyms, so alignment follows customers.
    ok([...fit, '--sensitive', 'age,gender', '--align-to', 'night1', '--out', 'night2']);
    const metrics = JSON.parse(fs.readFileSync(path.join(dir, 'night2', 'metrics.json'), 'utf8'));
    expect(metrics.alignment.transitions.customersInBoth).toBe(N);
    expect(fs.readFileSync(path.join(dir, 'night2', 'transitions.csv'), 'utf8').trim().split('\n').length).toBeGreaterThan(1);

    ok(['predict', '--model', 'night1', '--input', 'customers.csv', '--out', 'pred.parquet', '--pseudonymize-ids']);
    const pred = await readTable(path.join(dir, 'pred.parquet'));
    expect(pred.column('customer_id')).toMatchObject({ type: 'string', values: ids.map(expected) });

    ok(['update', '--model', 'night1', '--input', 'customers.csv', '--out', 'upd', '--pseudonymize-ids']);
    ok(['churn', 'train', '--input', 'customers.csv', '--label', 'churned', '--id', 'customer_id', '--sensitive', 'age,gender', '--max-epochs', '2', '--out', 'churn']);
    ok(['churn', 'predict', '--model', 'churn', '--input', 'customers.csv', '--segments', 'night1', '--out', 'scores.csv', '--pseudonymize-ids']);
    const scores = fs.readFileSync(path.join(dir, 'scores.csv'), 'utf8');
    expect(scores).toContain(expected(ids[0]));

    // The scan: every file written (outputs, manifests, the report, run stores) and everything printed.
    const keyForms = [KEY, Buffer.from(KEY).toString('hex'), Buffer.from(KEY).toString('base64')];
    const idPattern = /cust-zq\d+-\d{6}/;
    const files = everyFile(dir);
    expect(files.length).toBeGreaterThan(20);
    for (const [file, bytes] of files) {
      const text = bytes.toString('latin1');
      expect(idPattern.exec(text)?.[0] ?? null, `raw id in ${path.relative(dir, file)}`).toBeNull();
      for (const k of keyForms) expect(text.includes(k), `key in ${path.relative(dir, file)}`).toBe(false);
    }
    for (const p of printed) {
      expect(idPattern.exec(p)?.[0] ?? null, 'raw id printed').toBeNull();
      for (const k of keyForms) expect(p.includes(k), 'key printed').toBe(false);
    }
  }, 180_000);

  it('features --pseudonymize-ids writes the same pseudonyms (computed by DuckDB), and no raw id', async () => {
    const lines = ['customer_id,timestamp,amount'];
    for (let i = 0; i < 40; i++) for (let t = 0; t < 3; t++) lines.push(`${ids[i]},2023-0${1 + t}-1${i % 9}T10:00:00Z,${(10 + i + t).toFixed(2)}`);
    fs.writeFileSync(path.join(dir, 'log.csv'), lines.join('\n') + '\n');
    ok(['features', '--transactions', 'log.csv', '--as-of', '2023-03-15', '--out', 'feat.parquet', '--pseudonymize-ids']);
    const f = await readTable(path.join(dir, 'feat.parquet'));
    expect(new Set(f.column('customer_id').values as string[])).toEqual(new Set(ids.slice(0, 40).map(expected)));
    const bytes = fs.readFileSync(fs.realpathSync(path.join(dir, 'feat.parquet'))).toString('latin1') + fs.readFileSync(fs.realpathSync(path.join(dir, 'feat.parquet.meta.json')), 'utf8');
    expect(/cust-zq\d+-\d{6}/.exec(bytes)?.[0] ?? null).toBeNull();
    expect(bytes.includes(KEY)).toBe(false);
  }, 60_000);

  it('--sensitive columns are not features, not in the profiles and not in the report', () => {
    const model = JSON.parse(fs.readFileSync(path.join(dir, 'night1', 'model.json'), 'utf8'));
    expect(model.featureNames).toEqual(['spend', 'visits', 'tenure']);
    expect(model.sensitive).toEqual(['age', 'gender']);
    expect(fs.readFileSync(path.join(dir, 'night1', 'segments.csv'), 'utf8').split('\n')[0]).toBe('segment,count,share,spend,visits,tenure,name');
    const report = fs.readFileSync(path.join(dir, 'night1', 'report.html'), 'utf8');
    // The report's data names its features; neither sensitive column is among them.
    expect(report).toContain('"spend"');
    expect(report).not.toMatch(/"(age|gender)"/);
    const churn = JSON.parse(fs.readFileSync(path.join(dir, 'churn', 'churn.json'), 'utf8'));
    expect(JSON.stringify(churn.preprocessing ?? churn)).not.toMatch(/"(age|gender)"/);
  });

  it('a key from a file gives the same pseudonyms; a missing or short key is one line, exit 2, nothing written', async () => {
    fs.writeFileSync(path.join(dir, 'key.txt'), KEY + '\n');
    const noEnv = { ...env, SEGTENSOR_PSEUDONYM_KEY: '' };
    const r = cli(['predict', '--model', 'night1', '--input', 'customers.csv', '--out', 'pred-file.arrow', '--pseudonymize-ids', '--pseudonym-key-file', 'key.txt'], noEnv);
    expect(r.code, r.err).toBe(0);
    expect((await readTable(path.join(dir, 'pred-file.arrow'))).column('customer_id')).toMatchObject({ values: ids.map(expected) });

    const missing = cli(['predict', '--model', 'night1', '--input', 'customers.csv', '--out', 'x.arrow', '--pseudonymize-ids'], noEnv);
    expect(missing.code).toBe(2);
    expect(missing.err.trim()).toBe('segtensor: error [BAD_OPTION]: --pseudonymize-ids needs a key: set SEGTENSOR_PSEUDONYM_KEY or pass --pseudonym-key-file <file> (at least 16 bytes)');
    const short = cli(['fit', '--input', 'customers.csv', '--k', '2', '--out', 'y', '--pseudonymize-ids'], { ...env, SEGTENSOR_PSEUDONYM_KEY: 'tiny-secret' });
    expect(short.code).toBe(2);
    expect(short.err.trim()).toBe('segtensor: error [BAD_OPTION]: environment variable SEGTENSOR_PSEUDONYM_KEY: the key has 11 bytes; at least 16 are needed');
    expect(short.err).not.toContain('tiny-secret');
    for (const f of ['x.arrow', 'y']) expect(fs.existsSync(path.join(dir, f))).toBe(false);
  }, 60_000);

  it('--sensitive that clashes with --features, --id or a missing column is one line, exit 2', () => {
    const base = ['fit', '--input', 'customers.csv', '--id', 'customer_id', '--k', '2', '--out', 'z'];
    const clash = cli([...base, '--features', 'spend,age', '--sensitive', 'age']);
    expect(clash.code).toBe(2);
    expect(clash.err.trim()).toBe('segtensor: error [BAD_OPTION]: --sensitive age is also named in --features; sensitive columns are kept out of the features: drop it from one of them');
    const id = cli([...base, '--sensitive', 'customer_id']);
    expect(id.code).toBe(2);
    expect(id.err).toMatch(/--sensitive customer_id is the --id column; .*--pseudonymize-ids/);
    const missing = cli([...base, '--sensitive', 'salary']);
    expect(missing.code).toBe(1);
    expect(missing.err.trim()).toMatch(/^segtensor: error \[MISSING_COLUMN\]: customers\.csv: no column 'salary'/);
    expect(fs.existsSync(path.join(dir, 'z'))).toBe(false);
  });
});
