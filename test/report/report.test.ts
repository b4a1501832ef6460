/**
 * `segtensor report` and `fit --report` through the built CLI (issue 16), without a browser: the
 * names in segments.csv and the assignments, the report published with the run or as a run of
 * its own, a self-contained page, and one-line errors. test/report/browser.test.ts draws it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { csvCells } from '../../src/report/collect.js';
import { compileCharts } from '../../src/report/html.js';
import { BIN, cliRunner, ROOT } from '../helpers/cli.js';

const wine = path.join(ROOT, 'test/fixtures/wine.csv');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-report-'));
const run = cliRunner(dir);
const at = (...p: string[]) => path.join(dir, ...p);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function ok(r: ReturnType<typeof run>) {
  expect(r.code, `${r.err}\n${r.out}`).toBe(0);
  return r;
}

/** A failure: the exit code, and stderr one line in the CLI's error shape. */
function oneLineError(r: ReturnType<typeof run>, code: number, pattern: RegExp) {
  expect(r.code, r.err).toBe(code);
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^segtensor: error \[[A-Z_]+\]: /);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run 'npm test' (it builds first) or 'npm run build'`);
  fs.writeFileSync(at('names.json'), JSON.stringify({ 1: 'the middle, of course' }));
  ok(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--out', 'fit', '--report', '--names', 'names.json', '-q'));
});

describe('fit --report --names', () => {
  it('keeps printing the profile table and publishes report.html with the run', () => {
    const r = ok(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--out', 'fit-again', '--report'));
    expect(r.out).toMatch(/^segment\s+count\s+share\s+alcohol/m);
    expect(r.out).toMatch(/report\.html/);
    const m = JSON.parse(fs.readFileSync(at('fit', 'manifest.json'), 'utf8'));
    expect(m.outputs.map((o: { path: string }) => o.path)).toContain('report.html');
    expect(m.inputs.map((i: { path: string }) => path.basename(i.path))).toContain('names.json');
    expect(JSON.parse(fs.readFileSync(at('fit', 'metrics.json'), 'utf8')).timingsMs.report).toBeGreaterThan(0);
  });

  it('writes the names as the last column of segments.csv, the override included', () => {
    const lines = fs.readFileSync(at('fit', 'segments.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^segment,count,share,alcohol,.*,proline,name$/);
    expect(lines[2]).toMatch(/^1,.*,"the middle, of course"$/);
    // Wine has no RFM columns: generic "high X, low Y" names, all different.
    const names = lines.slice(1).map((l) => csvCells(l).at(-1));
    expect(names[0]).toMatch(/^(high|low) [a-z0-9_]+(, (high|low) [a-z0-9_]+)?$/);
    expect(new Set(names).size).toBe(3);
  });

  it('adds segment_name to the assignments, agreeing with segment', async () => {
    const t = await readTable(at('fit', 'assignments.arrow'));
    expect(t.names).toEqual(['wine_id', 'segment', 'distance', 'segment_name']);
    const seg = t.numeric('segment');
    const name = t.column('segment_name');
    expect(name.type).toBe('string');
    const values = name.type === 'string' ? name.values : [];
    for (let i = 0; i < t.nRows; i++) if (seg[i] === 1) expect(values[i]).toBe('the middle, of course');
    expect(new Set(values).size).toBe(3);
  });

  it('writes one self-contained page: the chart library inlined, nothing to fetch', () => {
    const html = fs.readFileSync(at('fit', 'report.html'), 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    // Every <script> is inline; outside the scripts, nothing points elsewhere.
    expect(/<script[^>]*\ssrc=/i.test(html)).toBe(false);
    const markup = html.replace(/<script>[\s\S]*?<\/script>/g, '<script></script>');
    expect(markup.length).toBeLessThan(200_000);
    expect(markup).not.toMatch(/\s(src|href)="(?!#)|<link|@import|url\(/i);
    expect(html.includes('new vega.View(')).toBe(true);
    expect(markup).toContain('the middle, of course');
    expect(markup).toMatch(/Segment 0 \([^)]+, \d+ % of customers\): \w+ is \d\.\d standard deviations (above|below) the rest/);
    const data = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]);
    expect(data.charts.map((c: { id: string }) => c.id)).toEqual(['sizes', 'scatter', 'heatmap', 'distributions']);
    expect(data.points.x).toHaveLength(178);
    expect(Buffer.byteLength(html)).toBeLessThan(1.5e6);
  });

  it('writes segment_name as text in Parquet assignments too', async () => {
    ok(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--format', 'parquet', '--names', 'names.json', '--out', 'pq', '-q'));
    const t = await readTable(at('pq', 'assignments.parquet'));
    const seg = t.numeric('segment');
    const name = t.column('segment_name');
    const values = name.type === 'string' ? name.values : [];
    const csvNames = fs.readFileSync(at('pq', 'segments.csv'), 'utf8').trim().split('\n').slice(1).map((l) => csvCells(l).at(-1));
    for (let i = 0; i < t.nRows; i++) expect(values[i]).toBe(csvNames[seg[i]]);
  });

  it('names dbscan noise "noise", in segments.csv and the assignments', async () => {
    ok(run('fit', '--input', wine, '--method', 'dbscan', '--eps', '2.2', '--min-samples', '5', '--id', 'wine_id', '--out', 'db', '--report', '-q'));
    const lines = fs.readFileSync(at('db', 'segments.csv'), 'utf8').trim().split('\n');
    expect(lines.find((l) => l.startsWith('-1,'))).toMatch(/,noise$/);
    const t = await readTable(at('db', 'assignments.arrow'));
    const seg = t.numeric('segment');
    const name = t.column('segment_name');
    const values = name.type === 'string' ? name.values : [];
    for (let i = 0; i < t.nRows; i++) expect(values[i] === 'noise').toBe(seg[i] === -1);
    expect(fs.readFileSync(at('db', 'report.html'), 'utf8')).toContain('Noise (');
  });
});

describe('segtensor report', () => {
  it('publishes the report of a fit directory as a run of its own, recording what it read', () => {
    const r = ok(run('report', '--run', 'fit', '--out', 'out/report.html'));
    expect(r.out).toMatch(/^segments: 0: .+; 1: the middle, of course; 2: .+$/m);
    expect(r.out).toMatch(/wrote .*report\.html \(\d+\.\d\d MB\)/);
    expect(fs.lstatSync(at('out', 'report.html')).isSymbolicLink()).toBe(true);
    const m = JSON.parse(fs.readFileSync(at('out', '.report.html.runs', 'current', 'manifest.json'), 'utf8'));
    expect(m.command).toBe('report');
    const read = m.inputs.map((i: { path: string }) => path.basename(i.path));
    for (const f of ['model.json', 'wine.csv', 'assignments.arrow']) expect(read).toContain(f);
    // The run's names carry over; the same sample and seed give the same points as fit --report.
    const page = (f: string) => JSON.parse(/id="report-data">([\s\S]*?)<\/script>/.exec(fs.readFileSync(f, 'utf8'))![1]);
    expect(page(at('out', 'report.html')).points).toEqual(page(at('fit', 'report.html')).points);
  });

  it('applies --names over the run\'s names', () => {
    fs.writeFileSync(at('names2.json'), JSON.stringify({ 0: 'zero' }));
    const r = ok(run('report', '--run', 'fit', '--names', 'names2.json', '--out', 'named.html'));
    expect(r.out).toMatch(/^segments: 0: zero; 1: the middle, of course; 2: .+$/m);
  });

  it('draws without the input table, saying why', () => {
    fs.copyFileSync(wine, at('wine-copy.csv'));
    ok(run('fit', '--input', 'wine-copy.csv', '--k', '2', '--id', 'wine_id', '--out', 'gone', '-q'));
    fs.rmSync(at('wine-copy.csv'));
    const r = ok(run('report', '--run', 'gone', '--out', 'gone.html'));
    expect(r.err).toMatch(/notice: No data sample: the input table .*wine-copy\.csv is no longer there/);
    const html = fs.readFileSync(at('gone.html'), 'utf8');
    expect(JSON.parse(/id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]).charts.map((c: { id: string }) => c.id)).toEqual(['sizes', 'heatmap']);
  });

  it('refuses what is not a fit, a non-HTML --out, and bad names files, in one line naming the file', () => {
    fs.mkdirSync(at('empty'));
    oneLineError(run('report', '--run', 'empty', '--out', 'x.html'), 1, /--run 'empty' has no manifest\.json/);
    oneLineError(run('report', '--run', 'fit', '--out', 'x.txt'), 2, /--out must name an \.html file; got 'x\.txt'/);
    fs.writeFileSync(at('unknown.json'), '{"9": "ghosts"}');
    oneLineError(run('report', '--run', 'fit', '--names', 'unknown.json', '--out', 'x.html'), 1, /--names 'unknown\.json': '9' is not a segment id of this run \(segments: 0, 1, 2\)/);
    fs.writeFileSync(at('bad.json'), '{"0": ');
    oneLineError(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--out', 'never', '--names', 'bad.json'), 1, /--names 'bad\.json': not valid JSON/);
    expect(fs.existsSync(at('never'))).toBe(false);
    oneLineError(run('fit', '--input', wine, '--k', '3', '--id', 'wine_id', '--out', 'never2', '--names', 'unknown.json', '-q'), 1, /--names 'unknown\.json': '9' is not a segment id of this run/);
    expect(fs.existsSync(at('never2', 'model.json'))).toBe(false);
  });
});

describe('chart specs', () => {
  it("pass Vega-Lite's warnings on, naming the chart", () => {
    const warnings: string[] = [];
    const spec = { data: { values: [{ a: 1, b: 'x' }] }, mark: 'bar', encoding: { x: { field: 'a', type: 'quantitative' }, color: { field: 'b', type: 'nominal', scale: { type: 'log' } } } };
    const [c] = compileCharts([{ id: 'bad', renderer: 'svg', spec }], (w) => warnings.push(w));
    expect(c.vega).toHaveProperty('marks');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatch(/^report chart 'bad': Vega-Lite warning: /);
  });
});

describe('segtensor demo', () => {
  it('writes the report and prints its path; the RFM rule names the sample\'s segments', () => {
    const r = ok(run('demo', '--customers', '3000', '--dir', 'demo', '-q'));
    const m = /^report: (.+report\.html)/m.exec(r.out);
    expect(m).not.toBeNull();
    expect(fs.existsSync(path.resolve(dir, m![1]))).toBe(true);
    const names = fs.readFileSync(at('demo', 'out', 'segments.csv'), 'utf8').trim().split('\n').slice(1).map((l) => csvCells(l).at(-1));
    // The sample's five segments (src/datasets/sample.ts): the rule finds the named ones among them.
    for (const n of ['loyal high spenders', 'new customers', 'lapsing occasional buyers']) expect(names).toContain(n);
  });
});
