/**
 * `segtensor update` (issue 14): partial_fit steps of new rows move a saved model's centroids
 * toward a drift we generated, by the amount the counts give (half the way when as many new
 * rows as old arrive, most of it with a short half-life); ids, preprocessing and the model
 * directory contract carry over, so predict and the next update read the result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fitSegmentation } from '../../src/pipeline/fit.js';
import { predictSegments } from '../../src/pipeline/predict.js';
import { parseHalfLife, updateModel } from '../../src/pipeline/update.js';
import { cliRunner } from '../helpers/cli.js';
import { rng } from '../helpers/reference.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-update-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);

const CENTRES = [
  [0, 0, 0],
  [12, 0, 0],
  [0, 12, 0],
];
const DRIFT = [2, -1.5, 1];

/** A CSV of n customers (ids from id0) around CENTRES (+ drift × scale), unit noise, segments in turn. */
function population(name: string, n: number, id0: number, drift: number, seed: number): string {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const lines = ['customer_id,a,b,c'];
  for (let i = 0; i < n; i++) {
    const c = CENTRES[i % 3];
    lines.push([id0 + i, ...c.map((v, f) => (v + DRIFT[f] * drift + gauss()).toFixed(4))].join(','));
  }
  const f = at(name);
  fs.writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

/** Each fitted centroid (input units) with the index of the true centre it sits at. */
function byTrueCentre(centroids: number[][]): number[][] {
  const out: number[][] = [];
  for (const c of CENTRES) {
    const near = centroids.reduce((best, x) => (dist(x, c) < dist(best, c) ? x : best));
    out.push(near);
  }
  return out;
}
const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]));

describe('segtensor update', () => {
  const old = population('old.csv', 3000, 0, 0, 1);
  const drifted = population('new.csv', 3000, 10_000, 1, 2);
  const fitted = at('fit');

  it('moves each centroid halfway toward the drifted centre when as many new rows arrive as the model holds', async () => {
    const f = await fitSegmentation({ input: old, k: 3, id: 'customer_id', out: fitted, backend: 'native', scale: 'none', nInit: 3 });
    expect(f.model.centreCounts).toEqual(f.metrics.sizes);
    const r = await updateModel({ model: fitted, input: drifted, out: at('upd'), backend: 'native', reassignmentRatio: 0 });
    const before = byTrueCentre(f.model.centroidsOriginal);
    const after = byTrueCentre(r.model.centroidsOriginal);
    CENTRES.forEach((c, j) => {
      const target = c.map((v, i) => v + DRIFT[i]);
      const half = c.map((v, i) => v + DRIFT[i] / 2);
      // The count-weighted mean of 1,000 old and 1,000 new rows: halfway (noise ~ 1/√1000).
      expect(dist(after[j], half), `segment at ${c}`).toBeLessThan(0.2);
      expect(dist(after[j], target)).toBeLessThan(dist(before[j], target));
    });
    expect(r.model.centreCounts!.reduce((a, b) => a + b)).toBeCloseTo(6000, 6);
    expect(r.model.preprocessing).toEqual(f.model.preprocessing);
    expect(JSON.parse(fs.readFileSync(at('upd/manifest.json'), 'utf8')).command).toBe('update');
  });

  it('with a short half-life, follows the new rows most of the way', async () => {
    const r = await updateModel({ model: fitted, input: drifted, out: at('upd-hl'), backend: 'native', reassignmentRatio: 0, halfLife: { rows: 300 } });
    const after = byTrueCentre(r.model.centroidsOriginal);
    CENTRES.forEach((c, j) => {
      const target = c.map((v, i) => v + DRIFT[i]);
      expect(dist(after[j], target), `segment at ${c}`).toBeLessThan(0.3);
    });
  });

  it('halves the counts per half-life in days since the model was made', async () => {
    const made = Date.parse(JSON.parse(fs.readFileSync(at('fit/model.json'), 'utf8')).createdAt);
    // 30 days later with a 30-day half-life: the old rows count half (500 against 1,000 new per
    // segment), so each centre lands two thirds of the way to the drifted one.
    const r = await updateModel({ model: fitted, input: drifted, out: at('upd-days'), backend: 'native', reassignmentRatio: 0, halfLife: { days: 30 }, now: new Date(made + 30 * 86_400_000) });
    const after = byTrueCentre(r.model.centroidsOriginal);
    CENTRES.forEach((c, j) => {
      const twoThirds = c.map((v, i) => v + (DRIFT[i] * 2) / 3);
      expect(dist(after[j], twoThirds), `segment at ${c}`).toBeLessThan(0.2);
    });
    expect(r.model.centreCounts!.reduce((a, b) => a + b)).toBeCloseTo(1500 + 3000, 3);
  });

  it('writes a model directory that predict and the next update read, with the same segment ids', async () => {
    const out = at('pred.arrow');
    const p = await predictSegments({ model: at('upd'), input: drifted, out });
    expect(p.rows).toBe(3000);
    const again = await updateModel({ model: at('upd'), input: old, out: at('upd2'), backend: 'native', reassignmentRatio: 0 });
    expect(again.model.updatedFrom!.runId).toBe(JSON.parse(fs.readFileSync(at('upd/manifest.json'), 'utf8')).runId);
    // An update may replace a fit's outputs (both are model directories).
    await updateModel({ model: at('upd'), input: old, out: fitted, backend: 'native' });
  });

  it('CLI: writes the model directory, and refuses a bad --half-life or input without the features in one line', () => {
    const run = cliRunner(dir);
    const ok = run('update', '--model', fitted, '--input', drifted, '--out', at('cli-upd'), '--half-life', '30d', '--backend', 'native');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^updated 3 segments; inertia on the new rows/);
    for (const f of ['model.json', 'metrics.json', 'assignments.arrow', 'segments.csv', 'manifest.json']) expect(fs.existsSync(at(`cli-upd/${f}`))).toBe(true);
    const bad = run('update', '--model', fitted, '--input', drifted, '--out', at('cli-bad'), '--half-life', '2w');
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toEqual(["segtensor: error [BAD_OPTION]: --half-life must be a positive number of rows (500000) or days (30d); got '2w'"]);
    const noCol = at('no-c.csv');
    fs.writeFileSync(noCol, 'customer_id,a,b\n1,0,0\n2,1,1\n');
    const missing = run('update', '--model', fitted, '--input', noCol, '--out', at('cli-missing'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^segtensor: error \[MISSING_COLUMN\]: .*no-c\.csv: no column 'c'/);
    expect(fs.existsSync(at('cli-missing'))).toBe(false);
  });

  it('parses --half-life in rows or days and refuses anything else', () => {
    expect(parseHalfLife('500000')).toEqual({ rows: 500000 });
    expect(parseHalfLife('30d')).toEqual({ days: 30 });
    expect(parseHalfLife('7 days')).toEqual({ days: 7 });
    expect(() => parseHalfLife('0')).toThrow('--half-life must be a positive number of rows (500000) or days (30d)');
    expect(() => parseHalfLife('2w')).toThrow("got '2w'");
  });
});
