/**
 * `segtensor churn train | evaluate | predict` through the built binary (issue 5): outputs,
 * the segment join, and one-line errors with non-zero exits and no stack trace.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { churnSample, writeChurnSample } from '../helpers/churn-data.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-churn-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, SEGTENSOR_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A failure: the exit code, and stderr exactly one line in the CLI's error shape. */
function expectOneLineError(r: ReturnType<typeof run>, code: number, pattern: RegExp) {
  expect(r.code, r.err).toBe(code);
  const lines = r.err.trim().split('\n').filter((l) => !l.includes('notice:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^segtensor: error \[[A-Z_]+\]: /);
  expect(lines[0]).toMatch(pattern);
}

const csv = path.join(dir, 'customers.csv');
const model = path.join(dir, 'churn');
const seg = path.join(dir, 'seg');
const fast = ['--max-epochs', '3', '--backend', 'wasm'];
let train: ReturnType<typeof run>;

beforeAll(async () => {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run 'npm test' (it builds first) or 'npm run build'`);
  await writeChurnSample(csv, churnSample(4000, 11));
  train = run('churn', 'train', '--input', csv, '--label', 'churned', '--id', 'customer_id', '--out', model, '--seed', '3', ...fast);
  const fit = run('fit', '--input', csv, '--k', '3', '--id', 'customer_id', '--features', 'recency_days,frequency,tenure_months', '--out', seg, '--backend', 'wasm', '-q');
  expect(fit.code, fit.err).toBe(0);
});

describe('segtensor churn train', () => {
  it('exits 0, prints MLP and baseline metrics, writes the model directory and metrics.json', () => {
    expect(train.code, train.err).toBe(0);
    expect(train.out).toMatch(/^mlp\s+ROC-AUC 0\.\d{4}/m);
    expect(train.out).toMatch(/^baseline\s+ROC-AUC 0\.\d{4}/m);
    for (const f of ['model.json', 'weights.bin', 'churn.json', 'metrics.json']) expect(fs.existsSync(path.join(model, f))).toBe(true);
    const m = JSON.parse(fs.readFileSync(path.join(model, 'metrics.json'), 'utf8'));
    for (const k of ['rocAuc', 'prAuc', 'logLoss', 'brier', 'baselineRocAuc']) expect(typeof m[k]).toBe('number');
    expect(m.split).toMatchObject({ train: 2800, validation: 600, test: 600 });
    expect(m.calibration).toHaveLength(10);
    const meta = JSON.parse(fs.readFileSync(path.join(model, 'churn.json'), 'utf8'));
    expect(meta).toMatchObject({ format: 'segtensor-churn', formatVersion: 1, label: { column: 'churned', positive: 'yes', negative: 'no' }, idColumn: 'customer_id' });
    expect(meta.featureNames).toContain('plan=basic');
    expect(meta.featureNames).not.toContain('customer_id');
    expect(meta.riskBands.bands.map((b: { name: string }) => b.name)).toEqual(['low', 'medium', 'high', 'critical']);
  });

});

describe('segtensor churn predict and evaluate', () => {
  it('predict writes id, churn_probability, risk_band and segment (joined by id), plus the risk table', async () => {
    const dest = path.join(dir, 'scores.parquet');
    const r = run('churn', 'predict', '--model', model, '--input', csv, '--out', dest, '--segments', seg, '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^segment\s+customers\s+mean_p\s+expected\s+low\s+medium\s+high\s+critical$/m);
    const t = await readTable(dest);
    expect(t.names).toEqual(['customer_id', 'churn_probability', 'risk_band', 'segment']);
    expect(t.nRows).toBe(4000);
    const a = await readTable(path.join(seg, 'assignments.arrow'));
    expect([...t.numeric('segment')]).toEqual([...a.numeric('segment')]);
    const risk = fs.readFileSync(path.join(dir, 'scores.segment-risk.csv'), 'utf8').trim().split('\n');
    expect(risk[0]).toBe('segment,customers,mean_probability,expected_churners,low,medium,high,critical');
    expect(risk).toHaveLength(4);
    const bands = (t.column('risk_band') as { values: string[] }).values;
    const p = t.numeric('churn_probability');
    const meta = JSON.parse(fs.readFileSync(path.join(model, 'churn.json'), 'utf8'));
    for (let i = 0; i < 200; i++) {
      const b = meta.riskBands.bands.find((x: { name: string }) => x.name === bands[i]);
      expect(p[i]).toBeGreaterThanOrEqual(b.from);
      expect(p[i] < b.to || b.to === 1).toBe(true);
    }
  });

  it('evaluate prints the metrics at the model threshold and writes them as JSON', () => {
    const dest = path.join(dir, 'eval.json');
    const r = run('churn', 'evaluate', '--model', model, '--input', csv, '--label', 'churned', '--out', dest, '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^mlp\s+ROC-AUC 0\.\d{4}/m);
    const m = JSON.parse(fs.readFileSync(dest, 'utf8'));
    expect(m.rows).toBe(4000);
    expect(m.threshold).toBe(JSON.parse(fs.readFileSync(path.join(model, 'churn.json'), 'utf8')).threshold.value);
  });
});

describe('bad input: one line naming the file, column or option, no stack trace', () => {
  it('label column missing (exit 1)', () => {
    expectOneLineError(run('churn', 'train', '--input', csv, '--label', 'left', '--out', path.join(dir, 'x1')), 1, /customers\.csv: no column 'left'/);
  });

  it('--positive not a label value (exit 2)', () => {
    expectOneLineError(run('churn', 'train', '--input', csv, '--label', 'churned', '--positive', 'maybe', '--out', path.join(dir, 'x3')), 2, /--positive 'maybe' is not a value of label column 'churned'/);
  });

  it('a segmentation directory given as --model (exit 1)', () => {
    expectOneLineError(run('churn', 'predict', '--model', seg, '--input', csv, '--out', path.join(dir, 'y.csv')), 1, /--model '.*seg' holds the outputs of `segtensor fit`; expected `segtensor churn train`/);
  });
});
