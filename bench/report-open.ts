/**
 * The segment report at scale (issue 16): `segtensor fit --report` on a generated table, then the
 * report opened in headless Chromium `--runs` times (a fresh browser each time): its size, the
 * load event (navigation timing) and the moment the page records every chart drawn, with the
 * marks each chart drew and any console error. Chromium must be installed (Debian's `chromium`).
 *
 *   npm run build && npm run bench:report -- [--rows 1000000] [--features 16] [--k 8] [--runs 10]
 *
 * Writes bench/results/<date>-<host>-report.{json,md}.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findChromium, openInBrowser } from '../test/report/cdp.js';
import { arg, checkArgs, DATA_DIR, fmtSpread, machineDescription, resultStem, ROOT, spread } from './bench-util.js';

const USAGE = `
npm run bench:report -- [options]   (after npm run build)
  --rows N        customers (default 1000000)
  --features D    features (default 16)
  --k K           segments (default 8)
  --runs N        browser openings (default 10)
`;

async function main(): Promise<void> {
  checkArgs({ values: ['rows', 'features', 'k', 'runs'], flags: [] }, USAGE);
  const n = Number(arg('rows') ?? 1_000_000);
  const d = Number(arg('features') ?? 16);
  const k = Number(arg('k') ?? 8);
  const runs = Number(arg('runs') ?? 10);
  const chromium = findChromium();
  if (!chromium) throw new Error('no chromium on PATH (apt-get install chromium)');
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error('build first: npm run build');
  const table = path.join(DATA_DIR, `report-${n}x${d}.arrow`);
  if (!fs.existsSync(table)) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'make-table.js'), '--rows', String(n), '--features', String(d), '--out', table], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make-table: ${r.stderr}`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bench-report-'));
  const out = path.join(tmp, 'out');
  const fit = spawnSync(process.execPath, [cli, 'fit', '--input', table, '--k', String(k), '--id', 'customer_id', '--backend', 'native', '--out', out, '--report', '--quiet'], { encoding: 'utf8' });
  if (fit.status !== 0) throw new Error(`fit: ${fit.stderr}`);
  const file = path.join(out, 'report.html');
  const bytes = fs.statSync(file).size;
  const reportMs = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).timingsMs.report as number;
  const load: number[] = [];
  const drawn: number[] = [];
  let charts: unknown = null;
  const errors: string[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await openInBrowser(chromium, file);
    if (r.loadMs !== null) load.push(r.loadMs / 1000);
    if (r.drawnMs !== null) drawn.push(r.drawnMs / 1000);
    errors.push(...r.errors);
    charts = r.charts;
    console.log(`open ${i + 1}/${runs}: load ${r.loadMs?.toFixed(0)} ms, all charts drawn ${r.drawnMs?.toFixed(0)} ms, ${r.errors.length} errors`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const L = [
    `Machine: ${machineDescription()}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${chromium}`,
    `Command: \`npm run bench:report -- --rows ${n} --features ${d} --k ${k} --runs ${runs}\`; median [min, max] of ${runs} openings, each in a fresh headless browser.`,
    '',
    '| customers | report size | written in the fit | load event (s) | all charts drawn (s) | console errors |',
    '|---|---|---|---|---|---|',
    `| ${n.toLocaleString('en-US')} × ${d}, k = ${k} | ${(bytes / 1e6).toFixed(2)} MB | ${(reportMs / 1000).toFixed(2)} s | ${fmtSpread(spread(load))} | ${fmtSpread(spread(drawn))} | ${errors.length} |`,
    '',
    `Marks per chart (last opening): ${JSON.stringify(charts)}`,
  ];
  const md = L.join('\n') + '\n';
  console.log('\n' + md);
  const stem = resultStem(new Date().toISOString().slice(0, 10), 'report', '.json');
  fs.writeFileSync(`${stem}.md`, md);
  fs.writeFileSync(`${stem}.json`, JSON.stringify({ n, d, k, runs, bytes, reportMs, load, drawn, errors, charts }, null, 2) + '\n');
  console.log(`written: ${path.relative(ROOT, stem)}.{json,md}`);
}

await main();
