/**
 * The segment report in a real browser (issue 16): reports of a wine fit (`fit --report`), of a
 * fit with a k sweep and of an aligned fit with transitions, and of a fit with churn scores
 * (`segtensor report`) are opened in headless Chromium. A test fails on any console error,
 * uncaught exception, failed load or request for anything outside the file; every chart must
 * draw (an SVG with shapes, or for the map's points a canvas with ink) the number of marks worked
 * out here from the run's own files; a screenshot of each report is saved under test-artifacts/.
 *
 * Without Chromium on PATH (`.ci/run` installs Debian's `chromium`) the suite is skipped, and says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { churnSample, writeChurnSample } from '../helpers/churn-data.js';
import { BIN, cliRunner, ROOT } from '../helpers/cli.js';
import { findChromium, launchBrowser, type Browser, type BrowserResult } from './cdp.js';

const chromium = findChromium();
if (!chromium) console.warn('test/report/browser.test.ts: SKIPPED — no chromium or chromium-browser on PATH; install it (apt-get install -y chromium) to test the report in a browser');

const wine = path.join(ROOT, 'test/fixtures/wine.csv');
const artifacts = path.join(ROOT, 'test-artifacts');
const dir = chromium ? fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-report-browser-')) : os.tmpdir();
const run = cliRunner(dir);
const at = (...p: string[]) => path.join(dir, ...p);
let browser: Browser;

/** A run that exits 0, without Vega-Lite warnings about the report's charts. */
function ok(r: ReturnType<typeof run>) {
  expect(r.code, `${r.err}\n${r.out}`).toBe(0);
  expect(r.err).not.toMatch(/warning: report chart/);
  return r;
}

/** segments.csv rows: segment id and count. */
function segmentsOf(runDir: string): { segment: number; count: number }[] {
  const lines = fs.readFileSync(path.join(runDir, 'segments.csv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [segment, count] = l.split(',').map(Number);
    return { segment, count };
  });
}

/** Marks every report has: bars, points, heatmap cells, box plots, from the run's files. */
function baseExpectations(runDir: string): Record<string, Record<string, number>> {
  const segs = segmentsOf(runDir);
  const model = JSON.parse(fs.readFileSync(path.join(runDir, 'model.json'), 'utf8'));
  const nCols = Math.min(30, model.featureNames.length);
  const numeric = model.preprocessing.numeric.length;
  const boxes = Math.min(4, numeric);
  const box: Record<string, number> = {};
  for (let i = 0; i < boxes; i++) for (const part of ['whisker', 'iqr', 'median']) box[`box_${part}_${i}_marks`] = segs.length;
  return {
    sizes: { sizes_marks: segs.length },
    scatter: { scatter_marks: segs.reduce((a, s) => a + Math.min(2000, s.count), 0) },
    heatmap: { heatmap_marks: segs.length * nCols },
    distributions: box,
  };
}

function sweepExpectations(sweepDir: string): Record<string, number> {
  const j = JSON.parse(fs.readFileSync(path.join(sweepDir, 'sweep.json'), 'utf8'));
  const out: Record<string, number> = {};
  ['silhouette', 'calinski_harabasz', 'davies_bouldin', 'inertia'].forEach((m, i) => {
    out[`sweep_line_${i}_marks`] = 1;
    out[`sweep_points_${i}_marks`] = j.sweep.filter((r: Record<string, unknown>) => typeof r[m] === 'number').length;
    out[`sweep_rec_${i}_marks`] = 1;
  });
  return out;
}

/** Opens a report, checks errors and marks against `expected`, and saves the screenshot. */
async function check(name: string, file: string, expected: Record<string, Record<string, number>>): Promise<BrowserResult> {
  const r = await browser.open(file, { screenshot: path.join(artifacts, `report-${name}.png`) });
  console.log(`report ${name}: ${(fs.statSync(file).size / 1e6).toFixed(2)} MB, load event at ${r.loadMs?.toFixed(0)} ms, all charts drawn at ${r.drawnMs?.toFixed(0)} ms${r.warnings.length ? `; warnings: ${r.warnings.join(' | ')}` : ''}`);
  expect(r.errors).toEqual([]);
  expect(r.warnings).toEqual([]); // Vega's warnings flag spec mistakes
  expect(r.ready).toBe(true);
  expect(r.requests).toEqual([expect.stringMatching(/^file:.*\.html$/)]);
  expect(Object.keys(r.charts).sort()).toEqual(Object.keys(expected).sort());
  for (const [chart, marks] of Object.entries(expected)) {
    const got = r.charts[chart];
    // The map's thousands of points go to a canvas (counted in Vega's scenegraph); the rest are SVG.
    expect(got.kind, chart).toBe(chart === 'scatter' ? 'canvas' : 'svg');
    expect(got.drawn, chart).toBe(true);
    expect(got.area, chart).toBeGreaterThan(100);
    for (const [mark, n] of Object.entries(marks)) expect(got.marks[mark] ?? 0, `${chart}: ${mark}`).toBe(n);
  }
  expect(fs.statSync(path.join(artifacts, `report-${name}.png`)).size).toBeGreaterThan(10_000);
  return r;
}

describe.skipIf(!chromium)('the report in headless Chromium', () => {
  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run 'npm test' (it builds first) or 'npm run build'`);
    browser = await launchBrowser(chromium!);
  });
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fit --report on wine: sizes, map, profiles and distributions draw, nothing is fetched', async () => {
    ok(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--out', 'fit3', '--report', '-q'));
    await check('wine', at('fit3', 'report.html'), baseExpectations(at('fit3')));
  });

  it('report --sweep: the k-sweep curves with the recommended k', async () => {
    ok(run('sweep', '--input', wine, '--k', '2..5', '--stability', '0', '--id', 'wine_id', '--out', 'sweep', '-q'));
    ok(run('report', '--run', 'fit3', '--sweep', 'sweep', '--out', 'sweep-report.html', '-q'));
    await check('sweep', at('sweep-report.html'), { ...baseExpectations(at('fit3')), sweep: sweepExpectations(at('sweep')) });
  });

  it('an aligned fit: the transitions matrix', async () => {
    ok(run('fit', '--input', wine, '--k', '4', '--id', 'wine_id', '--align-to', 'fit3', '--out', 'fit4', '--report', '-q'));
    const pairs = fs.readFileSync(at('fit4', 'transitions.csv'), 'utf8').trim().split('\n').length - 1;
    expect(pairs).toBeGreaterThan(3);
    await check('aligned', at('fit4', 'report.html'), { ...baseExpectations(at('fit4')), transitions: { transitions_marks: pairs, transitions_text_marks: pairs } });
  });

  it('report --churn: revenue share, churn risk per segment and the calibration plot', async () => {
    await writeChurnSample(at('customers.csv'), churnSample(1500, 11));
    ok(run('churn', 'train', '--input', 'customers.csv', '--label', 'churned', '--id', 'customer_id', '--out', 'churn', '--seed', '3', '--max-epochs', '3', '--backend', 'wasm', '-q'));
    ok(run('fit', '--input', 'customers.csv', '--k', '4', '--id', 'customer_id', '--features', 'recency_days,frequency,monetary,tenure_months', '--out', 'seg', '-q'));
    ok(run('churn', 'predict', '--model', 'churn', '--input', 'customers.csv', '--segments', 'seg', '--out', 'scores.parquet', '--backend', 'wasm'));
    const rep = ok(run('report', '--run', 'seg', '--churn', 'scores.parquet', '--out', 'churn-report.html'));
    expect(rep.out).toMatch(/^segments: 0: .+; 1: .+; 2: .+; 3: .+$/m);

    // Independent counts from the scores: segments, non-empty (segment, band) pairs, non-empty probability bins.
    const t = await readTable(at('scores.parquet'));
    const seg = t.numeric('segment');
    const p = t.numeric('churn_probability');
    const bandCol = t.column('risk_band');
    const bands = bandCol.type === 'string' ? bandCol.values : [];
    const pairs = new Set(Array.from(seg, (s, i) => `${s}/${bands[i]}`));
    const bins = new Set(Array.from(p, (v) => Math.min(9, Math.floor(v * 10))));
    const segs = segmentsOf(at('seg'));
    await check('churn', at('churn-report.html'), {
      ...baseExpectations(at('seg')),
      revenue: { revenue_marks: segs.length },
      churn: { churn_mean_marks: new Set(seg).size, churn_bands_marks: pairs.size },
      calibration: { calibration_points_marks: bins.size, calibration_line_marks: 1, calibration_diagonal_marks: 1 },
    });
  });
});
