/**
 * The backend grid (`npm run bench:grid`): segtensor's backends against each other and against the tools users would pick instead —
 * scikit-learn (Debian's python3-sklearn under /usr/bin/python3), ml-kmeans, and PyTorch where it
 * is installed (the GPU anchor) — on the same data file, the same initial centroids and the same
 * number of Lloyd iterations. Every tool runs in its own process, so peak memory is its own.
 *
 *   npm run bench:grid                      # the default subset of the grid
 *   npm run bench:grid -- --full            # N ∈ {1e4..1e7} × k ∈ {8, 64, 1024} × D ∈ {8, 32, 128}
 *   npm run bench:grid -- --only 1000000x32x16 --tools native,sklearn
 *
 * Reports ms per iteration (median and mean), peak RSS, the memory floor (the fastest of 15 multithreaded reads of the
 * data by the native addon), and the inertia each tool's final centroids give on the data. All
 * tools start from the same centroids and run the same number of steps, so the inertias must
 * agree within float32 rounding ({@link SAME_START_RTOL}); the bench exits 1 when they do not.
 * The `native` row is a bounded chain (Hamerly bounds): its steps after the labels settle skip
 * rows, so compare it with nothing but itself; `native-nobounds` reads every row like the
 * others. The like-for-like comparisons (scikit-learn's step in its own thread limits, Elkan to
 * convergence, whole processes, repeated runs) are `npm run bench` (bench/like-for-like.ts).
 * Writes bench/results/<date>-<machine>-grid.{json,md,svg}.
 */
import { execFileSync, spawnSync } from 'node:child_process';
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
import { SAME_START_RTOL, resultStem } from './bench-util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const dataDir = path.join(root, 'bench', 'data');

interface Config {
  n: number;
  d: number;
  k: number;
}

interface Measurement {
  tool: string;
  /** Median over the iterations. */
  msPerIter: number | null;
  /** Mean over the iterations: the native backend's bounded steps vary tenfold within a run. */
  msMean?: number | null;
  peakRssMiB: number | null;
  inertia: number | null;
  note?: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const FULL: Config[] = [1e4, 1e5, 1e6, 1e7].flatMap((n) => [8, 64, 1024].flatMap((k) => [8, 32, 128].map((d) => ({ n, d, k }))));
/** The default: the acceptance case (1M × 32, k = 16), a line over N for the chart, and the extremes of k and D. */
const DEFAULT: Config[] = [
  { n: 1e4, d: 32, k: 16 },
  { n: 1e5, d: 32, k: 16 },
  { n: 1e6, d: 32, k: 16 },
  { n: 1e5, d: 8, k: 8 },
  { n: 1e5, d: 128, k: 1024 },
  { n: 1e6, d: 32, k: 64 },
];

/**
 * Iterations per tool and configuration: enough that the median is a typical iteration of a
 * fit, not one of its first few (the native backend's Hamerly bounds only start pruning from
 * the third step of a chain).
 */
function iterationsFor(c: Config): number {
  return c.n * c.k * c.d >= 1e10 ? 3 : c.n >= 1e6 ? 20 : 10;
}

const name = (c: Config) => `${c.n}x${c.d}x${c.k}`;

/** The data and initial centroids as raw float32 files, made once and cached in bench/data. */
function files(c: Config): { data: string; init: string } {
  fs.mkdirSync(dataDir, { recursive: true });
  const data = path.join(dataDir, `cmp-${c.n}x${c.d}.f32`);
  const init = path.join(dataDir, `cmp-${c.n}x${c.d}-init${c.k}.f32`);
  if (!fs.existsSync(data) || !fs.existsSync(init)) {
    const x = benchData(c.n, c.d);
    if (!fs.existsSync(data)) fs.writeFileSync(data, x);
    // The first k rows: rows are drawn in random order, so these are k random points.
    fs.writeFileSync(init, x.subarray(0, c.k * c.d));
  }
  return { data, init };
}

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

// ---- children: one tool, one configuration --------------------------------------------------

async function childSegtensor(backend: BackendName | 'native-nobounds', c: Config, f: { data: string; init: string }, out: string) {
  // 'native-nobounds': the native backend without its Hamerly bounds, every row scored.
  const be = backend === 'native-nobounds' ? await createNativeBackend({ bounds: false }) : await getBackend(backend);
  const x = { data: readF32(f.data), nRows: c.n, nFeatures: c.d };
  let centroids: Float32Array = readF32(f.init).slice();
  const dx = be.upload(x);
  const iters = iterationsFor(c);
  // Warm-up, not counted: kernels, the buffers a fit allocates once (labels and distances,
  // which later steps recycle, and the native backend's bounds), as scikit-learn's anchor
  // allocates its labels before its loop, and V8's optimizing compiles of the step's JavaScript
  // (TurboFan compiles it after ~8 steps, 13–17 ms per function on a background thread, which
  // takes a core from the kernels while it runs). A chain of steps, at least 2, until 10 or 1 s.
  const t0 = performance.now();
  let w = await lloydStep(be, dx, x, centroids, c.k);
  for (let i = 1; i < 10 && (i < 2 || performance.now() - t0 < 1000); i++) w = await lloydStep(be, dx, x, w.centroids, c.k, w.a);
  const ms: number[] = [];
  // As in K-Means' own loop: each step gets the previous assignment (change counting, and the
  // native backend recycles the buffers of the one before it).
  let prev;
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    const step = await lloydStep(be, dx, x, centroids, c.k, prev);
    ms.push(performance.now() - t0);
    centroids = step.centroids;
    prev = step.a;
  }
  fs.writeFileSync(out, centroids);
  return { msPerIter: median(ms), msMean: mean(ms), description: be.description };
}

async function childMlKmeans(c: Config, f: { data: string; init: string }, out: string) {
  const { kmeans } = await import('ml-kmeans');
  const flat = readF32(f.data);
  // ml-kmeans takes an array of row arrays: building it is part of what a user pays.
  const rows: number[][] = Array.from({ length: c.n }, (_, i) => Array.from(flat.subarray(i * c.d, (i + 1) * c.d)));
  const initFlat = readF32(f.init);
  const init = Array.from({ length: c.k }, (_, j) => Array.from(initFlat.subarray(j * c.d, (j + 1) * c.d)));
  const iters = iterationsFor(c);
  const t0 = performance.now();
  const r = kmeans(rows, c.k, { initialization: init, maxIterations: iters, tolerance: -1 });
  const total = performance.now() - t0;
  fs.writeFileSync(out, Float32Array.from(r.centroids.flat()));
  return { msPerIter: total / iters, msMean: total / iters };
}

async function childFloor(c: Config, f: { data: string }) {
  const { loadNativeAddon } = await import('../src/engine/backends/native.js');
  const addon = loadNativeAddon();
  const x = readF32(f.data);
  addon.streamRead(x);
  const ms: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    addon.streamRead(x);
    ms.push(performance.now() - t0);
  }
  void c;
  // The fastest read: noise on a shared VM only ever adds time, and a floor that noise inflated
  // would flatter every ratio to it.
  return { msPerIter: Math.min(...ms) };
}

async function child(): Promise<void> {
  const spec = JSON.parse(process.env.SEGTENSOR_BENCH_CHILD!) as { tool: string; c: Config; out: string };
  const f = files(spec.c);
  let r: { msPerIter: number; description?: string };
  if (spec.tool === 'ml-kmeans') r = await childMlKmeans(spec.c, f, spec.out);
  else if (spec.tool === 'floor') r = await childFloor(spec.c, f);
  else r = await childSegtensor(spec.tool as BackendName | 'native-nobounds', spec.c, f, spec.out);
  process.stdout.write(JSON.stringify({ ...r, peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
}

// ---- parent ---------------------------------------------------------------------------------

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Environment for scikit-learn: without the OpenBLAS overrides this machine sets, so numpy runs its best kernel. */
function pythonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function runChild(tool: string, c: Config, out: string, timeoutMs: number): { msPerIter: number; msMean?: number; peakRssMiB: number; description?: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, SEGTENSOR_BENCH_CHILD: JSON.stringify({ tool, c, out }) },
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error((r.stderr || r.error?.message || 'failed').trim().split('\n').pop());
  return JSON.parse(r.stdout);
}

function hasPython(module: string): boolean {
  return spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { env: pythonEnv() }).status === 0;
}

/** Inertia of `centroids` on the data, computed by the native backend (or wasm) the same way for every tool. */
async function inertiaOf(c: Config, data: Float32Array, centroids: Float32Array): Promise<number> {
  let be;
  try {
    be = await getBackend('native');
  } catch {
    be = await getBackend('wasm');
  }
  const dx = be.upload({ data, nRows: c.n, nFeatures: c.d });
  const a = await be.assign(dx, centroids, c.k);
  be.release(dx);
  return a.inertia;
}

async function main(): Promise<void> {
  const full = process.argv.includes('--full');
  let configs = full ? FULL : DEFAULT;
  const only = arg('only');
  if (only) configs = only.split(',').map((s) => {
    const [n, d, k] = s.split('x').map(Number);
    return { n, d, k };
  });
  const usable: string[] = [];
  for (const b of AUTO_ORDER) {
    try {
      await getBackend(b);
      usable.push(b);
    } catch (e) {
      process.stderr.write(`skip ${b}: ${(e as Error).message}\n`);
    }
  }
  const sklearn = hasPython('sklearn');
  if (!sklearn) process.stderr.write('skip scikit-learn: /usr/bin/python3 cannot import sklearn (apt-get install python3-sklearn)\n');
  const torch = hasPython('torch');
  if (!torch) process.stderr.write('skip PyTorch: not installed here (the GPU anchor runs where it is)\n');
  const toolsArg = arg('tools')?.split(',');
  const native = usable.includes('native') ? ['native-nobounds'] : [];
  const tools = [...usable, ...native, 'ml-kmeans', ...(sklearn ? ['sklearn'] : []), ...(torch ? ['torch'] : [])].filter((t) => !toolsArg || toolsArg.includes(t));

  const results: { config: Config; iterations: number; floorMs: number | null; rows: Measurement[] }[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bench-'));
  for (const c of configs) {
    const f = files(c);
    const data = readF32(f.data);
    const iters = iterationsFor(c);
    const rows: Measurement[] = [];
    process.stderr.write(`${name(c)} (${iters} iterations)\n`);
    for (const tool of tools) {
      const out = path.join(tmp, `${tool}-${name(c)}.f32`);
      // The pure-JS tools are ~100× slower: place them on the smaller sizes only.
      if ((tool === 'cpu' || tool === 'ml-kmeans') && c.n * c.k * c.d > 2e9) {
        rows.push({ tool, msPerIter: null, peakRssMiB: null, inertia: null, note: 'skipped: too slow at this size' });
        continue;
      }
      try {
        let m: { msPerIter: number; msMean?: number; msPerIterAll?: number[]; peakRssMiB: number };
        if (tool === 'sklearn' || tool === 'torch') {
          const script = path.join(root, 'bench', tool === 'sklearn' ? 'sklearn_anchor.py' : 'torch_anchor.py');
          const o = execFileSync('/usr/bin/python3', [script, f.data, String(c.n), String(c.d), f.init, String(c.k), String(iters), '--centers-out', out], {
            env: pythonEnv(),
            encoding: 'utf8',
            timeout: 600_000,
          });
          m = JSON.parse(o);
          if (m.msPerIterAll?.length) m.msMean = mean(m.msPerIterAll);
        } else {
          m = runChild(tool, c, out, 600_000);
        }
        rows.push({ tool, msPerIter: m.msPerIter, msMean: m.msMean ?? null, peakRssMiB: m.peakRssMiB, inertia: await inertiaOf(c, data, readF32(out)) });
      } catch (e) {
        rows.push({ tool, msPerIter: null, peakRssMiB: null, inertia: null, note: `failed: ${(e as Error).message}` });
      }
      const last = rows[rows.length - 1];
      process.stderr.write(`  ${tool}: ${last.msPerIter !== null ? `${last.msPerIter.toFixed(2)} (mean ${last.msMean?.toFixed(2) ?? '?'})` : last.note} ms/iter\n`);
    }
    let floorMs: number | null = null;
    if (usable.includes('native')) floorMs = runChild('floor', c, '', 120_000).msPerIter;
    results.push({ config: c, iterations: iters, floorMs, rows });
  }

  // Same start, same steps: the final inertias must agree within float32 rounding.
  const failures: string[] = [];
  for (const r of results) {
    const ref = r.rows.find((m) => m.tool === 'native-nobounds' && m.inertia !== null) ?? r.rows.find((m) => m.inertia !== null);
    for (const m of r.rows) {
      if (m.inertia === null || !ref?.inertia) continue;
      const rel = m.inertia / ref.inertia - 1;
      if (Math.abs(rel) > SAME_START_RTOL) failures.push(`${name(r.config)}: ${m.tool}'s inertia ${m.inertia.toPrecision(9)} differs from ${ref.tool}'s ${ref.inertia.toPrecision(9)} by ${rel.toExponential(2)} (allowed ${SAME_START_RTOL})`);
    }
  }
  // Whole fits are in bench/like-for-like.ts (whole processes on both sides, repeated).
  const wholeFit: Record<string, unknown> | null = null;

  fs.rmSync(tmp, { recursive: true, force: true });
  const machine = `${os.cpus()[0]?.model?.trim() ?? 'cpu'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
  const date = new Date().toISOString();
  const stem = resultStem(date, 'grid');
  const report = { bench: 'compare', date, machine, node: process.version, command: `npm run bench:grid -- ${process.argv.slice(2).join(' ')}`.trim(), results, wholeFit, failures };
  fs.writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  fs.writeFileSync(`${stem}.md`, md);
  fs.writeFileSync(`${stem}.svg`, chart(results));
  console.log(md);
  console.log(`\nwritten: ${path.relative(root, stem)}.{json,md,svg}`);
  if (failures.length) {
    console.error(`\nbench:grid: FAILED, inertias disagree:\n${failures.map((f) => `  ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? '—' : v.toFixed(digits);
}

function markdown(r: { date: string; machine: string; node: string; command: string; results: { config: Config; iterations: number; floorMs: number | null; rows: Measurement[] }[]; wholeFit: Record<string, unknown> | null }): string {
  const lines = [`Machine: ${r.machine}; Node ${r.node}; ${r.date.slice(0, 16).replace('T', ' ')} UTC; command: \`${r.command}\``, ''];
  lines.push('| N × D, k | iters | tool | ms / iteration, median | mean | × memory floor (median, mean) | peak RSS MiB | inertia (rel. to native) |', '|---|---|---|---|---|---|---|---|');
  for (const res of r.results) {
    const ref = res.rows.find((m) => m.tool === 'native')?.inertia ?? res.rows.find((m) => m.inertia !== null)?.inertia ?? null;
    const label = `${res.config.n.toExponential(0).replace('e+', 'e')} × ${res.config.d}, ${res.config.k}`;
    if (res.floorMs !== null) lines.push(`| ${label} | ${res.iterations} | *memory floor* | ${fmt(res.floorMs, 2)} | | 1.0 | | |`);
    const ms = (v: number | null | undefined) => (v === null || v === undefined ? '' : fmt(v, v < 10 ? 2 : 1));
    for (const m of res.rows) {
      const rel = m.inertia !== null && ref ? (m.inertia / ref - 1).toExponential(1) : '';
    // (the native row is a bounded chain: see the header comment)
      const ratio = (v: number | null | undefined) => (v !== null && v !== undefined && res.floorMs ? (v / res.floorMs).toFixed(1) : '—');
      const floor = m.msPerIter !== null && res.floorMs ? `${ratio(m.msPerIter)}, ${ratio(m.msMean)}` : '';
      lines.push(`| ${label} | ${res.iterations} | ${m.tool} | ${m.msPerIter !== null ? ms(m.msPerIter) : m.note ?? '—'} | ${ms(m.msMean)} | ${floor} | ${m.peakRssMiB ?? ''} | ${rel} |`);
    }
  }
  if (r.wholeFit) {
    const s = r.wholeFit.segtensor as { seconds: number; peakRssMiB: number; inertia: number; backend: string };
    const k = r.wholeFit.sklearn as { seconds: number; loadSeconds: number; inertia: number } | undefined;
    lines.push('', 'Whole fit, 1M × 32, k = 16, k-means++, n_init 3, tol 1e-4:', '', '| tool | seconds | peak RSS MiB | inertia |', '|---|---|---|---|');
    lines.push(`| segtensor fit (CLI end to end: Arrow load, preprocessing, fit, metrics, outputs; ${s.backend}) | ${fmt(s.seconds, 2)} | ${s.peakRssMiB} | ${s.inertia?.toPrecision(7)} |`);
    if (k) lines.push(`| scikit-learn KMeans.fit (data already in memory; load ${fmt(k.loadSeconds, 2)} s more) | ${fmt(k.seconds, 2)} | | ${k.inertia?.toPrecision(7)} |`);
  }
  return lines.join('\n') + '\n';
}

/** Log-log chart of ms per iteration against N, one line per tool, for D = 32, k = 16. */
function chart(results: { config: Config; rows: Measurement[] }[]): string {
  const series = new Map<string, [number, number][]>();
  for (const r of results) {
    if (r.config.d !== 32 || r.config.k !== 16) continue;
    for (const m of r.rows) if (m.msPerIter) series.set(m.tool, [...(series.get(m.tool) ?? []), [r.config.n, m.msPerIter]]);
  }
  const W = 640;
  const H = 400;
  const pad = 60;
  const pts = [...series.values()].flat();
  if (pts.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">no D = 32, k = 16 data</text></svg>\n`;
  const lx = pts.map((p) => Math.log10(p[0]));
  const ly = pts.map((p) => Math.log10(p[1]));
  const [x0, x1] = [Math.min(...lx) - 0.2, Math.max(...lx) + 0.2];
  const [y0, y1] = [Math.floor(Math.min(...ly)), Math.ceil(Math.max(...ly))];
  const sx = (v: number) => pad + ((Math.log10(v) - x0) / (x1 - x0)) * (W - 2 * pad);
  const sy = (v: number) => H - pad - ((Math.log10(v) - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const colours = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">One Lloyd iteration, D = 32, k = 16 (log-log)</text>`);
  for (let e = y0; e <= y1; e++) {
    const y = sy(10 ** e);
    out.push(`<line x1="${pad}" x2="${W - pad}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${pad - 6}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`);
  }
  for (const n of [...new Set(pts.map((p) => p[0]))]) out.push(`<text x="${sx(n)}" y="${H - pad + 18}" text-anchor="middle">N = ${n.toExponential(0).replace('e+', 'e')}</text>`);
  [...series.entries()].forEach(([tool, p], i) => {
    const c = colours[i % colours.length];
    const sorted = p.sort((a, b) => a[0] - b[0]);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${sorted.map(([n, ms]) => `${sx(n).toFixed(1)},${sy(ms).toFixed(1)}`).join(' ')}"/>`);
    for (const [n, ms] of sorted) out.push(`<circle cx="${sx(n).toFixed(1)}" cy="${sy(ms).toFixed(1)}" r="3" fill="${c}"/>`);
    out.push(`<rect x="${W - pad - 110}" y="${pad + i * 18 - 9}" width="10" height="10" fill="${c}"/><text x="${W - pad - 95}" y="${pad + i * 18}">${tool}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

if (process.env.SEGTENSOR_BENCH_CHILD) await child();
else await main();
