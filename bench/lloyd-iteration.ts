/**
 * Lloyd iterations per available backend along a real Lloyd chain, on nRows × nFeatures float32
 * with k centroids: the same data and start (the first k rows, seed 1) for every backend; step r
 * starts from the centroids step r − 1 produced and gets its assignment, as K-Means' loop runs.
 * Inertia is reported next to the time so a fast wrong answer shows, and each backend runs in its
 * own child process so its peak RSS is its own.
 *
 * What a row times, in its `mode` column: `native` (the default, Hamerly bounds) is a real
 * *bounded* chain, whose steps after the labels settle skip the rows their bounds clear (the
 * `rows not read` column says how many), so its median depends on how soon the chain settles;
 * `native-nobounds` and every other backend read and score every row in every step (full steps).
 * Before issue 13 this bench repeated one centroid set, so from the third rep on the bounded path
 * timed steps that skipped every row.
 *
 *   npm run bench:lloyd -- [--rows 1000000] [--features 32] [--k 16] [--reps 10] [--backends native,native-nobounds,wasm,cpu]
 *
 * Writes bench/results/<date>-<host>-lloyd.json and prints a Markdown table.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/engine/backends/index.js';
import type { BackendName } from '../src/engine/backend.js';
import { createNativeBackend } from '../src/engine/backends/native.js';
import { AUTO_ORDER, getBackend } from '../src/engine/registry.js';
import { lloydStep } from '../src/models/kmeans.js';
import { benchData } from './data.js';

interface Row {
  backend: string;
  description: string;
  mode: string;
  msMean: number | null;
  /** Per timed step: the share of rows the bounds test decided without reading them. */
  notRead: number[];
  msPerIter: number | null;
  msAll: number[];
  inertia: number | null;
  peakRssMiB: number;
  note?: string;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const FULL = 'chain, full steps (every row read)';
const BOUNDED = 'chain, bounded (settled steps skip rows)';

async function child(name: string, nRows: number, d: number, k: number, reps: number): Promise<Row> {
  const be = name === 'native-nobounds' ? await createNativeBackend({ bounds: false }) : await getBackend(name as BackendName);
  const data = benchData(nRows, d);
  const x = { data, nRows, nFeatures: d };
  const dx = be.upload(x);
  const c0 = data.slice(0, k * d);
  // Warm-up, not timed: two chained steps (kernels, the buffers a chain allocates once).
  let w = await lloydStep(be, dx, x, c0, k);
  w = await lloydStep(be, dx, x, w.centroids, k, w.a);
  const ms: number[] = [];
  const notRead: number[] = [];
  let inertia = 0;
  let centroids: Float32Array = c0;
  let prev;
  for (let r = 0; r < reps; r++) {
    // A real chain from the first k rows: each step from the previous step's centroids.
    const t0 = performance.now();
    const s = await lloydStep(be, dx, x, centroids, k, prev);
    ms.push(performance.now() - t0);
    inertia = s.a.inertia;
    notRead.push(Math.round((100 * ((s.a as { nPruned?: number }).nPruned ?? 0)) / nRows) / 100);
    centroids = s.centroids;
    prev = s.a;
  }
  be.release(dx);
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    backend: name,
    description: be.description,
    mode: name === 'native' ? BOUNDED : FULL,
    msPerIter: sorted[Math.floor((sorted.length - 1) / 2)],
    msMean: ms.reduce((a, b) => a + b, 0) / ms.length,
    msAll: ms.map((v) => Math.round(v * 100) / 100),
    notRead,
    inertia,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function main() {
  const nRows = Number(arg('rows', '1000000'));
  const d = Number(arg('features', '32'));
  const k = Number(arg('k', '16'));
  const reps = Number(arg('reps', '10'));
  const only = process.env.SEGTENSOR_BENCH_CHILD;
  if (only) {
    process.stdout.write(JSON.stringify(await child(only, nRows, d, k, reps)));
    return;
  }
  const wanted = arg('backends', [...AUTO_ORDER, 'native-nobounds'].join(',')).split(',');
  const rows: Row[] = [];
  for (const name of wanted) {
    try {
      await getBackend((name === 'native-nobounds' ? 'native' : name) as BackendName);
    } catch (e) {
      rows.push({ backend: name, description: '', mode: '', msMean: null, notRead: [], msPerIter: null, msAll: [], inertia: null, peakRssMiB: 0, note: (e as Error).message });
      continue;
    }
    // tfjs cpu is ~100× slower: one timed iteration is enough to place it.
    const r = name === 'cpu' ? '1' : String(reps);
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--rows', String(nRows), '--features', String(d), '--k', String(k), '--reps', r], {
      env: { ...process.env, SEGTENSOR_BENCH_CHILD: name },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    rows.push(JSON.parse(out) as Row);
    process.stderr.write(`${name}: ${rows[rows.length - 1].msPerIter?.toFixed(1)} ms\n`);
  }
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
  const result = { bench: 'lloyd-iteration', date: new Date().toISOString(), machine, node: process.version, nRows, nFeatures: d, k, reps, rows };
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.date.slice(0, 10)}-${os.hostname()}-lloyd.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`| backend | mode | ms / step, median of ${reps} steps | mean | per step (ms) | rows not read per step | inertia after the last step | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    const nr = r.notRead.some((v) => v > 0) ? r.notRead.map((v) => `${Math.round(v * 100)} %`).join(', ') : r.msPerIter !== null ? 'none' : '';
    console.log(`| ${r.backend} | ${r.mode} | ${r.msPerIter?.toFixed(2) ?? 'n/a'} | ${r.msMean?.toFixed(2) ?? ''} | ${r.msAll.join(', ')} | ${nr} | ${r.inertia?.toPrecision(8) ?? ''} | ${r.peakRssMiB || ''} | ${r.note ?? ''}`);
  }
  console.log(`\n${machine}; node ${process.version}; ${nRows} × ${d}, k = ${k}; written to ${path.relative(process.cwd(), file)}`);
}

await main();
