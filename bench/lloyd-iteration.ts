/**
 * One Lloyd iteration (assign + segmentSum) per available backend, on nRows × nFeatures float32
 * with k centroids: fixed work (same data, same centroids, seed 1), inertia reported next to the
 * time so a fast wrong answer shows. Each backend runs in its own child process so its peak RSS
 * is its own.
 *
 *   npm run bench:lloyd -- [--rows 1000000] [--features 32] [--k 16] [--reps 5] [--backends wasm,cpu]
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
import { AUTO_ORDER, getBackend } from '../src/engine/registry.js';
import { lloydStep } from '../src/models/kmeans.js';
import { benchData } from './data.js';

interface Row {
  backend: string;
  description: string;
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

async function child(name: BackendName, nRows: number, d: number, k: number, reps: number): Promise<Row> {
  const be = await getBackend(name);
  const data = benchData(nRows, d);
  const x = { data, nRows, nFeatures: d };
  const dx = be.upload(x);
  const centroids = data.slice(0, k * d);
  await lloydStep(be, dx, x, centroids, k); // warm-up
  const ms: number[] = [];
  let inertia = 0;
  let prev;
  for (let r = 0; r < reps; r++) {
    // Same centroids each time (fixed work); the previous assignment is passed as K-Means does.
    const t0 = performance.now();
    const s = await lloydStep(be, dx, x, centroids, k, prev);
    ms.push(performance.now() - t0);
    inertia = s.a.inertia;
    prev = s.a;
  }
  be.release(dx);
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    backend: name,
    description: be.description,
    msPerIter: sorted[Math.floor(sorted.length / 2)],
    msAll: ms.map((v) => Math.round(v * 10) / 10),
    inertia,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function main() {
  const nRows = Number(arg('rows', '1000000'));
  const d = Number(arg('features', '32'));
  const k = Number(arg('k', '16'));
  const reps = Number(arg('reps', '5'));
  const only = process.env.SEGTENSOR_BENCH_CHILD;
  if (only) {
    process.stdout.write(JSON.stringify(await child(only as BackendName, nRows, d, k, reps)));
    return;
  }
  const wanted = arg('backends', AUTO_ORDER.join(',')).split(',') as BackendName[];
  const rows: Row[] = [];
  for (const name of wanted) {
    try {
      await getBackend(name);
    } catch (e) {
      rows.push({ backend: name, description: '', msPerIter: null, msAll: [], inertia: null, peakRssMiB: 0, note: (e as Error).message });
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
  console.log(`| backend | ms / iteration (median of ${reps}) | inertia | peak RSS (MiB) |\n|---|---|---|---|`);
  for (const r of rows) {
    console.log(`| ${r.backend} | ${r.msPerIter?.toFixed(1) ?? 'n/a'} | ${r.inertia?.toPrecision(8) ?? ''} | ${r.peakRssMiB || ''} | ${r.note ?? ''}`);
  }
  console.log(`\n${machine}; node ${process.version}; ${nRows} × ${d}, k = ${k}; written to ${path.relative(process.cwd(), file)}`);
}

await main();
