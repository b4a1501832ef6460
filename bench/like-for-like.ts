/**
 * segtensor against scikit-learn and FAISS, like for like: the same algorithm, the same data
 * file, the same start, each figure from repeated runs that alternate the tools (A B A B …),
 * reported as median [min, max]. Three sections:
 *
 * - `lloyd`: one plain Lloyd step. segtensor's native step without bounds (`native-nobounds`,
 *   every row read and scored) against scikit-learn's `lloyd_iter_chunked_dense` inside
 *   `threadpool_limits(limits=1, user_api="blas")`, as `_kmeans_single_lloyd` runs it, on the same
 *   data and the same sequence of T centroid sets (a real Lloyd chain from the first k rows,
 *   computed once and stored), and against the memory floor (fastest of 15 multithreaded reads
 *   of the data). Per run: the median over the T steps, after an untimed pass.
 * - `converge`: a fit run to convergence from the same initial centroids (the first k rows),
 *   tol 1e-4 (× mean feature variance on both sides), max_iter 300, n_init 1: segtensor's
 *   default `native` (Hamerly bounds where k ≤ one SIMD vector) and `native-nobounds` against
 *   scikit-learn's `KMeans(algorithm="elkan")` (its bounded variant) and `algorithm="lloyd"`.
 *   Seconds in `fit` and the steps taken.
 * - `whole`: whole fits as whole processes from the same Arrow file: `segtensor fit` (CLI,
 *   `--n-init 1 --tol 0 --scale none --backend native`) against a Python process that reads the
 *   file and runs `KMeans(n_init=1, tol=0, init='k-means++')`, and, where k ≥ 256, FAISS's
 *   `Kmeans` (random-row init, every row used). Wall time of the process and the fit's own time.
 *
 * Inertias: every tool's final centroids are scored the same way, one float64 pass over the data
 * (`py_anchor.py inertia`). Runs from the same start (lloyd, converge) must agree within
 * {@link SAME_START_RTOL}, else the bench exits 1; whole fits start from different seeds, so their
 * differences are reported, and the bench fails only past {@link BROKEN_RATIO}.
 *
 *   npm run build && npm run bench                   # full: ~40 min on the 2-core dev VM
 *   npm run bench -- --quick                         # smoke test: small sizes, 2 runs, ~2 min
 *   npm run bench -- --sections lloyd,converge --reps 7
 *   npm run bench -- --sections whole --whole-k 16,1024
 *
 * Writes bench/results/<date>-<host>.{json,md}; `node dist/bench/summary.js <json>` makes the
 * goal table from it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/engine/backends/index.js';
import { createNativeBackend, loadNativeAddon } from '../src/engine/backends/native.js';
import { getBackend } from '../src/engine/registry.js';
import { KMeans, lloydStep } from '../src/models/kmeans.js';
import {
  DATA_DIR,
  ROOT,
  arg,
  flag,
  fmt,
  fmtRatio,
  fmtSpread,
  hasPython,
  machineDescription,
  median,
  arrowFile,
  checkArgs,
  py,
  pythonEnv,
  ratio,
  readF32,
  resultStem,
  runJson,
  spread,
  type Spread,
  SAME_START_RTOL,
  BROKEN_RATIO,
} from './bench-util.js';
import { benchData } from './data.js';


interface Shape {
  n: number;
  d: number;
  k: number;
}
interface WholeCase extends Shape {
  iters: number;
  faiss: boolean;
}

const tag = (c: Shape) => `${c.n >= 1e6 ? `${c.n / 1e6}M` : `${c.n / 1e3}k`}x${c.d}:k${c.k}`;

/**
 * Rough seconds per repetition (all tools of a row) on the 2-core dev VM, for the up-front
 * estimate. G = n·d·k / 1e9 multiply-adds per pass. Rates from issue 13's figures: scikit-learn's
 * Lloyd step 15–55 G/s (taken as 20), its greedy k-means++ (2 + ln k) passes at ~5 G/s; the
 * native step ~50 G/s, segtensor's seeding ≤ (2 + ln k) passes at ~25 G/s and its Davies–Bouldin
 * k²·d; FAISS ~25 G/s per iteration; ~1 s to start each Python process, 0.5 s each Node one.
 */
function estimate(c: Shape & { iters?: number }, section: string, steps = 10, faiss = false): number {
  const G = (c.n * c.d * c.k) / 1e9;
  const passes = 2 + Math.log(c.k);
  if (section === 'lloyd') return 3 + 2 * steps * (G / 20 + G / 50);
  if (section === 'converge') return 6 + 30 * G * 2 * (1 / 20 + 1 / 50);
  const it = c.iters ?? 10;
  const skl = 1.5 + (it * G) / 20 + (G * passes) / 5;
  const seg = 1 + (it * G) / 15 + (G * passes) / 25 + (c.k * c.k * c.d) / 1e8;
  return skl + seg + (faiss ? 1 + (it * G) / 25 : 0);
}

// ---- data ------------------------------------------------------------------------------------

function dataFile(n: number, d: number): string {
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const f = path.join(DATA_DIR, `cmp-${n}x${d}.f32`);
  if (!fs.existsSync(f)) fs.writeFileSync(f, benchData(n, d));
  return f;
}

/** The first k rows (rows are drawn in random order, so these are k random points). */
function initFile(c: Shape): string {
  const f = path.join(DATA_DIR, `cmp-${c.n}x${c.d}-init${c.k}.f32`);
  if (!fs.existsSync(f)) fs.writeFileSync(f, readF32(dataFile(c.n, c.d)).subarray(0, c.k * c.d));
  return f;
}

/** T + 1 centroid sets of a plain native Lloyd chain from the first k rows, made once. */
async function sequenceFile(c: Shape, steps: number): Promise<string> {
  const f = path.join(DATA_DIR, `seq-${c.n}x${c.d}-k${c.k}-t${steps}.f32`);
  if (fs.existsSync(f)) return f;
  const be = await createNativeBackend({ bounds: false });
  const x = { data: readF32(dataFile(c.n, c.d)), nRows: c.n, nFeatures: c.d };
  const dx = be.upload(x);
  let cs: Float32Array = readF32(initFile(c)).slice();
  const out = new Float32Array((steps + 1) * c.k * c.d);
  let prev;
  for (let t = 0; t <= steps; t++) {
    out.set(cs, t * c.k * c.d);
    if (t === steps) break;
    const s = await lloydStep(be, dx, x, cs, c.k, prev);
    cs = s.centroids;
    prev = s.a;
  }
  be.release(dx);
  fs.writeFileSync(f, out);
  return f;
}

// ---- children (SEGTENSOR_BENCH_CHILD): one measurement in a fresh Node process ----------------

interface ChildSpec {
  kind: 'lloyd' | 'floor' | 'converge';
  tool: string;
  c: Shape;
  steps?: number;
  tol?: number;
  maxIter?: number;
  out?: string;
}

async function child(spec: ChildSpec): Promise<unknown> {
  const { c } = spec;
  const x = { data: readF32(dataFile(c.n, c.d)), nRows: c.n, nFeatures: c.d };
  const rss = () => Math.round(process.resourceUsage().maxRSS / 1024);
  if (spec.kind === 'floor') {
    const addon = loadNativeAddon();
    addon.streamRead(x.data);
    const ms: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      addon.streamRead(x.data);
      ms.push(performance.now() - t0);
    }
    // The fastest read: noise on a shared VM only adds time, and an inflated floor would flatter every ratio to it.
    return { ms: Math.min(...ms) };
  }
  const be = spec.tool === 'native-nobounds' ? await createNativeBackend({ bounds: false }) : await getBackend('native');
  if (spec.kind === 'lloyd') {
    const steps = spec.steps!;
    const seq = readF32(await sequenceFile(c, steps));
    const dx = be.upload(x);
    const ms: number[] = [];
    let last: Float32Array = new Float32Array(0);
    // An untimed pass over the same sequence first (kernels, buffers, V8's optimizing compiles),
    // as the Python side does; each step gets the previous assignment, as K-Means' loop passes it.
    for (const timed of [false, true]) {
      let prev;
      for (let t = 0; t < steps; t++) {
        const cs = seq.subarray(t * c.k * c.d, (t + 1) * c.k * c.d);
        const t0 = performance.now();
        const s = await lloydStep(be, dx, x, cs, c.k, prev);
        if (timed) ms.push(performance.now() - t0);
        prev = s.a;
        last = s.centroids;
      }
    }
    fs.writeFileSync(spec.out!, last);
    return { msAll: ms, description: be.description, peakRssMiB: rss() };
  }
  const km = new KMeans({ k: c.k, nInit: 1, maxIter: spec.maxIter!, tol: spec.tol!, init: readF32(initFile(c)).slice() });
  const t0 = performance.now();
  const r = await km.fit(be, x);
  const seconds = (performance.now() - t0) / 1000;
  fs.writeFileSync(spec.out!, r.centroids);
  return { seconds, nIter: r.nIter, converged: r.converged, inertia: r.inertia, description: be.description, peakRssMiB: rss() };
}

function runChild<T>(spec: ChildSpec): T {
  return runJson<T>(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, SEGTENSOR_BENCH_CHILD: JSON.stringify(spec) } });
}

// ---- sections --------------------------------------------------------------------------------

interface ToolResult {
  tool: string;
  what: string;
  /** The figure per run (ms per step, or seconds). */
  figure: Spread | null;
  unit: string;
  extra?: Record<string, unknown>;
  inertia?: number | null;
  /** Relative to the section's reference tool. */
  inertiaRel?: number | null;
  note?: string;
}
interface Row {
  id: string;
  section: 'lloyd' | 'converge' | 'whole';
  config: Shape & { iters?: number; steps?: number; tol?: number };
  command: string;
  tools: ToolResult[];
  ratios: { label: string; a: string; b: string; median: number; min: number; max: number }[];
}

const failures: string[] = [];

function checkInertias(row: Row, ref: string, sameStart: boolean): void {
  const r = row.tools.find((t) => t.tool === ref)?.inertia;
  const vals = row.tools.map((t) => t.inertia).filter((v): v is number => typeof v === 'number');
  const best = Math.min(...vals);
  for (const t of row.tools) {
    if (typeof t.inertia !== 'number') continue;
    t.inertiaRel = r ? t.inertia / r - 1 : null;
    if (sameStart && r && Math.abs(t.inertiaRel!) > SAME_START_RTOL) {
      failures.push(`${row.id}: ${t.tool}'s final inertia ${t.inertia.toPrecision(9)} differs from ${ref}'s ${r.toPrecision(9)} by ${t.inertiaRel!.toExponential(2)} (same start: allowed ${SAME_START_RTOL})`);
    }
    if (!sameStart && t.inertia > BROKEN_RATIO * best) {
      failures.push(`${row.id}: ${t.tool}'s final inertia ${t.inertia.toPrecision(6)} is ${(t.inertia / best).toFixed(2)} × the best tool's: a broken run, not a different seed`);
    }
  }
}

function addRatio(row: Row, label: string, a: string, b: string): void {
  const A = row.tools.find((t) => t.tool === a)?.figure;
  const B = row.tools.find((t) => t.tool === b)?.figure;
  if (A && B) row.ratios.push({ label, a, b, ...ratio(A, B) });
}

/** Runs `tools` in alternation, `reps` times: A B C A B C … Each call returns the run's figure. */
function alternate(reps: number, tools: string[], run: (tool: string, rep: number) => number, log: string): Map<string, number[]> {
  const got = new Map<string, number[]>(tools.map((t) => [t, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const tool of tools) {
      try {
        got.get(tool)!.push(run(tool, rep));
      } catch (e) {
        failures.push(`${log} ${tool}: ${(e as Error).message}`);
        got.set(tool, []);
      }
    }
    process.stderr.write(`  ${log} run ${rep + 1}/${reps}: ${tools.map((t) => `${t} ${fmt(got.get(t)!.at(-1))}`).join(', ')}\n`);
  }
  return got;
}

async function lloydSection(c: Shape, steps: number, reps: number, sklearn: boolean, tmp: string): Promise<Row> {
  const data = dataFile(c.n, c.d);
  const seq = await sequenceFile(c, steps);
  const id = `lloyd:${tag(c)}`;
  const out = (tool: string) => path.join(tmp, `${id.replace(/:/g, '_')}-${tool}.f32`);
  const tools = ['native-nobounds', ...(sklearn ? ['sklearn-lloyd'] : []), 'floor'];
  const extra = new Map<string, Record<string, unknown>>();
  const got = alternate(reps, tools, (tool) => {
    if (tool === 'floor') return runChild<{ ms: number }>({ kind: 'floor', tool, c }).ms;
    if (tool === 'native-nobounds') {
      const r = runChild<{ msAll: number[]; description: string; peakRssMiB: number }>({ kind: 'lloyd', tool, c, steps, out: out(tool) });
      extra.set(tool, { description: r.description, peakRssMiB: r.peakRssMiB, lastRunMsPerStep: r.msAll.map((v) => +v.toFixed(3)) });
      return median(r.msAll);
    }
    const r = py<{ msAll: number[]; nThreads: number; threadpools: unknown; sklearn: string; peakRssMiB: number }>('lloyd', [data, c.n, c.d, seq, c.k, steps, out(tool)]);
    extra.set(tool, { sklearn: r.sklearn, nThreads: r.nThreads, threadpools: r.threadpools, peakRssMiB: r.peakRssMiB, lastRunMsPerStep: r.msAll.map((v) => +v.toFixed(3)) });
    return median(r.msAll);
  }, id);
  const what: Record<string, string> = {
    'native-nobounds': 'segtensor native, plain step (no bounds: every row read and scored)',
    'sklearn-lloyd': 'scikit-learn lloyd_iter_chunked_dense in threadpool_limits(1, "blas")',
    floor: 'memory floor: fastest of 15 multithreaded reads of the data',
  };
  const row: Row = {
    id,
    section: 'lloyd',
    config: { ...c, steps },
    command: `npm run bench -- --sections lloyd --lloyd ${c.n}x${c.d}x${c.k}`,
    tools: tools.map((t) => ({ tool: t, what: what[t], figure: got.get(t)!.length ? spread(got.get(t)!) : null, unit: 'ms/step', extra: extra.get(t) })),
    ratios: [],
  };
  const files = tools.filter((t) => t !== 'floor' && got.get(t)!.length).map((t) => [t, out(t)] as const);
  if (files.length) {
    const r = py<{ inertia: number[] }>('inertia', [data, c.n, c.d, c.k, ...files.map(([, f]) => f)]);
    files.forEach(([t], i) => (row.tools.find((x) => x.tool === t)!.inertia = r.inertia[i]));
  }
  checkInertias(row, 'native-nobounds', true);
  addRatio(row, 'plain step / scikit-learn Lloyd step', 'native-nobounds', 'sklearn-lloyd');
  addRatio(row, 'plain step / memory floor', 'native-nobounds', 'floor');
  addRatio(row, 'scikit-learn Lloyd step / memory floor', 'sklearn-lloyd', 'floor');
  return row;
}

async function convergeSection(c: Shape, reps: number, sklearn: boolean, tmp: string): Promise<Row> {
  const data = dataFile(c.n, c.d);
  const init = initFile(c);
  const tol = 1e-4;
  const maxIter = 300;
  const id = `converge:${tag(c)}`;
  const out = (tool: string) => path.join(tmp, `${id.replace(/:/g, '_')}-${tool}.f32`);
  const tools = ['native', ...(sklearn ? ['sklearn-elkan'] : []), 'native-nobounds', ...(sklearn ? ['sklearn-lloyd'] : [])];
  const extra = new Map<string, Record<string, unknown>>();
  const got = alternate(reps, tools, (tool) => {
    if (tool.startsWith('native')) {
      const r = runChild<{ seconds: number; nIter: number; converged: boolean; description: string; peakRssMiB: number }>({ kind: 'converge', tool, c, tol, maxIter, out: out(tool) });
      const steps = (extra.get(tool)?.steps as number[]) ?? [];
      extra.set(tool, { steps: [...steps, r.nIter], converged: r.converged, description: r.description, peakRssMiB: r.peakRssMiB });
      return r.seconds;
    }
    const r = py<{ seconds: number; nIter: number; sklearn: string; peakRssMiB: number }>('converge', [data, c.n, c.d, init, c.k, tol, maxIter, tool.slice('sklearn-'.length), out(tool)]);
    const steps = (extra.get(tool)?.steps as number[]) ?? [];
    extra.set(tool, { steps: [...steps, r.nIter], sklearn: r.sklearn, peakRssMiB: r.peakRssMiB });
    return r.seconds;
  }, id);
  const what: Record<string, string> = {
    native: 'segtensor KMeans.fit, native (Hamerly bounds where k ≤ one SIMD vector)',
    'native-nobounds': 'segtensor KMeans.fit, native without bounds',
    'sklearn-elkan': 'scikit-learn KMeans(algorithm="elkan").fit',
    'sklearn-lloyd': 'scikit-learn KMeans(algorithm="lloyd").fit',
  };
  const row: Row = {
    id,
    section: 'converge',
    config: { ...c, tol },
    command: `npm run bench -- --sections converge --converge ${c.n}x${c.d}x${c.k}`,
    tools: tools.map((t) => ({ tool: t, what: what[t], figure: got.get(t)!.length ? spread(got.get(t)!) : null, unit: 's to convergence', extra: extra.get(t) })),
    ratios: [],
  };
  const files = tools.filter((t) => got.get(t)!.length).map((t) => [t, out(t)] as const);
  const r = py<{ inertia: number[] }>('inertia', [data, c.n, c.d, c.k, ...files.map(([, f]) => f)]);
  files.forEach(([t], i) => (row.tools.find((x) => x.tool === t)!.inertia = r.inertia[i]));
  checkInertias(row, 'native', true);
  addRatio(row, 'bounded native / scikit-learn elkan, time to convergence', 'native', 'sklearn-elkan');
  addRatio(row, 'plain native / scikit-learn lloyd, time to convergence', 'native-nobounds', 'sklearn-lloyd');
  return row;
}

async function wholeSection(c: WholeCase, reps: number, sklearn: boolean, faiss: boolean, tmp: string): Promise<Row> {
  const arrow = arrowFile(c.n, c.d);
  const id = `whole:${tag(c)}:it${c.iters}`;
  const out = (tool: string) => path.join(tmp, `${id.replace(/:/g, '_')}-${tool}.f32`);
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const tools = ['segtensor', ...(sklearn ? ['sklearn'] : []), ...(faiss && c.faiss ? ['faiss'] : [])];
  const inProcess = new Map<string, number[]>(tools.map((t) => [t, []]));
  const rss = new Map<string, number[]>(tools.map((t) => [t, []]));
  const extra = new Map<string, Record<string, unknown>>();
  /** Wall seconds of a whole process, with GNU time's peak RSS. */
  const timed = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => {
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', 'peakRssKiB=%M', cmd, ...args], { encoding: 'utf8', env, maxBuffer: 64 << 20, timeout: 3_600_000 });
    const wall = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`exit ${r.status ?? r.signal}: ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`);
    const kib = Number(/peakRssKiB=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
    return { wall, stdout: r.stdout, rssMiB: Math.round(kib / 1024) };
  };
  const got = alternate(reps, tools, (tool) => {
    if (tool === 'segtensor') {
      const dir = path.join(tmp, `fit-${process.pid}-${Date.now()}`);
      const args = [cli, 'fit', '--input', arrow, '--id', 'customer_id', '--k', String(c.k), '--n-init', '1', '--max-iter', String(c.iters), '--tol', '0', '--scale', 'none', '--backend', 'native', '--seed', '0', '--out', dir, '--quiet'];
      const r = timed(process.execPath, args);
      const metrics = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8'));
      const model = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      fs.writeFileSync(out(tool), Float32Array.from((model.centroidsScaled as number[][]).flat()));
      fs.rmSync(dir, { recursive: true, force: true });
      inProcess.get(tool)!.push((metrics.timingsMs?.fit ?? NaN) / 1000);
      rss.get(tool)!.push(r.rssMiB);
      const init = model.init ?? model.kmeans?.init ?? model.params?.init ?? model.parameters?.init ?? metrics.init ?? 'not recorded';
      extra.set(tool, { nIter: metrics.nIter, timingsMs: metrics.timingsMs, init, command: `node dist/src/cli/main.js ${args.slice(1).join(' ').replace(dir, 'OUT')}` });
      return r.wall;
    }
    const r = timed('/usr/bin/python3', [path.join(ROOT, 'bench', 'py_anchor.py'), 'fit', tool, arrow, String(c.k), String(c.iters), '0', out(tool)], pythonEnv());
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    inProcess.get(tool)!.push(j.fitSeconds);
    rss.get(tool)!.push(r.rssMiB);
    extra.set(tool, { nIter: j.nIter, init: j.init, reader: j.reader, loadSeconds: j.loadSeconds, versions: { sklearn: j.sklearn, faiss: j.faiss, numpy: j.numpy } });
    return r.wall;
  }, id);
  const what: Record<string, string> = {
    segtensor: 'segtensor fit (CLI: Arrow read, preprocessing, fit, metrics, outputs)',
    sklearn: 'python: read the Arrow file, KMeans(init="k-means++", n_init=1, tol=0).fit',
    faiss: 'python: read the Arrow file, faiss.Kmeans(nredo=1, every row).train (random-row init)',
  };
  const row: Row = {
    id,
    section: 'whole',
    config: { n: c.n, d: c.d, k: c.k, iters: c.iters },
    command: `npm run bench -- --sections whole --whole ${c.n}x${c.d}x${c.k}x${c.iters}`,
    tools: [],
    ratios: [],
  };
  for (const t of tools) {
    row.tools.push({ tool: t, what: what[t], figure: got.get(t)!.length ? spread(got.get(t)!) : null, unit: 's whole process', extra: { ...extra.get(t), peakRssMiB: rss.get(t)!.length ? median(rss.get(t)!) : null } });
    row.tools.push({ tool: `${t} (fit only)`, what: 'time inside the process: init + Lloyd iterations', figure: inProcess.get(t)!.length ? spread(inProcess.get(t)!) : null, unit: 's in fit' });
  }
  const files = tools.filter((t) => got.get(t)!.length).map((t) => [t, out(t)] as const);
  if (files.length) {
    const r = py<{ inertia: number[] }>('inertia', [arrow, c.n, c.d, c.k, ...files.map(([, f]) => f)]);
    files.forEach(([t], i) => (row.tools.find((x) => x.tool === t)!.inertia = r.inertia[i]));
  }
  checkInertias(row, sklearn ? 'sklearn' : 'segtensor', false);
  addRatio(row, 'segtensor / scikit-learn, whole process', 'segtensor', 'sklearn');
  addRatio(row, 'segtensor / scikit-learn, fit only', 'segtensor (fit only)', 'sklearn (fit only)');
  addRatio(row, 'segtensor / FAISS, whole process', 'segtensor', 'faiss');
  addRatio(row, 'segtensor / FAISS, fit only', 'segtensor (fit only)', 'faiss (fit only)');
  return row;
}

// ---- report ----------------------------------------------------------------------------------

function markdown(rep: { date: string; machine: string; node: string; python: string; command: string; reps: number; rows: Row[]; failures: string[] }): string {
  const L = [
    `Machine: ${rep.machine}; Node ${rep.node}; ${rep.python}; ${rep.date.slice(0, 16).replace('T', ' ')} UTC`,
    `Command: \`${rep.command}\`; every figure is the median [min, max] of ${rep.reps} runs, tools alternating (A B A B …).`,
    `Inertia: each tool's final centroids scored by one float64 pass over the data (py_anchor.py inertia), relative to the row's reference tool.`,
    '',
  ];
  const sections: [Row['section'], string][] = [
    ['lloyd', 'Plain Lloyd step, same data and the same centroid sequence (ms per step; per run the median over its steps)'],
    ['converge', 'To convergence from the same initial centroids (first k rows), tol 1e-4, max_iter 300, n_init 1 (seconds in fit)'],
    ['whole', 'Whole fits as whole processes from the same Arrow file, n_init 1, tol 0 (seconds)'],
  ];
  for (const [s, title] of sections) {
    const rows = rep.rows.filter((r) => r.section === s);
    if (!rows.length) continue;
    L.push(`### ${title}`, '', '| row | tool | figure | steps | inertia (float64) | rel. to ref | peak RSS MiB | what |', '|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      for (const t of r.tools) {
        const steps = t.extra?.steps ? [...new Set(t.extra.steps as number[])].join('/') : t.extra?.nIter ?? (r.config.steps && t.tool !== 'floor' ? `${r.config.steps} timed` : '');
        L.push(`| \`${r.id}\` | ${t.tool} | ${fmtSpread(t.figure)} ${t.figure ? t.unit : ''} | ${steps} | ${typeof t.inertia === 'number' ? t.inertia.toPrecision(9) : ''} | ${typeof t.inertiaRel === 'number' ? t.inertiaRel.toExponential(1) : ''} | ${t.extra?.peakRssMiB ?? ''} | ${t.what} |`);
      }
    }
    L.push('', '| row | ratio | median [range] |', '|---|---|---|');
    for (const r of rows) for (const q of r.ratios) L.push(`| \`${r.id}\` | ${q.label} | ${fmtRatio(q)} |`);
    L.push('');
  }
  const whole = rep.rows.filter((r) => r.section === 'whole');
  if (whole.length) {
    L.push('Whole-fit details (last run): segtensor phase timings (ms) and init; the Python sides\' reader and load seconds.', '');
    for (const r of whole) {
      for (const t of r.tools.filter((x) => x.extra)) {
        const e = t.extra!;
        const bits = t.tool === 'segtensor' ? `init ${String(e.init)}; ${JSON.stringify(e.timingsMs)}` : `init ${String(e.init)}; reader ${String(e.reader)}; load ${fmt(e.loadSeconds as number)} s`;
        L.push(`- \`${r.id}\` ${t.tool}: ${bits}`);
      }
    }
    L.push('');
  }
  L.push(rep.failures.length ? `**FAILED** (${rep.failures.length}):\n\n${rep.failures.map((f) => `- ${f}`).join('\n')}` : 'All inertia checks passed.');
  return L.join('\n') + '\n';
}

// ---- main ------------------------------------------------------------------------------------

function parseShapes(s: string | undefined): number[][] | null {
  return s ? s.split(',').map((x) => x.split('x').map(Number)) : null;
}

const USAGE = `
npm run bench -- [options]   (after npm run build)
  --quick                 smoke test: small sizes, 2 runs
  --dry-run               print the cases and the time estimate, run nothing
  --sections LIST         lloyd,converge,whole (default all three)
  --reps N                runs per figure (default 5; 2 with --quick)
  --steps T               Lloyd steps per run in the lloyd section (default 10)
  --lloyd NxDxK,...       lloyd cases      (default 1000000x32x16,1000000x32x64,100000x128x1024)
  --converge NxDxK,...    converge cases   (default 1000000x32x16,1000000x32x64)
  --whole NxDxKxIT,...    whole-fit cases  (default 1000000x32x16x20 and 200000x128x{256,1024,4096}x10)
  --whole-k LIST          keep only the whole-fit cases with these k
`;

async function main(): Promise<void> {
  checkArgs({ values: ['reps', 'steps', 'sections', 'lloyd', 'converge', 'whole', 'whole-k'], flags: ['quick', 'dry-run'] }, USAGE);
  const quick = flag('quick');
  const reps = Number(arg('reps') ?? (quick ? 2 : 5));
  const steps = Number(arg('steps') ?? (quick ? 5 : 10));
  const sections = (arg('sections') ?? 'lloyd,converge,whole').split(',');
  const lloyd: Shape[] = (parseShapes(arg('lloyd')) ?? (quick ? [[1e5, 32, 16]] : [[1e6, 32, 16], [1e6, 32, 64], [1e5, 128, 1024]])).map(([n, d, k]) => ({ n, d, k }));
  const converge: Shape[] = (parseShapes(arg('converge')) ?? (quick ? [[1e5, 32, 16]] : [[1e6, 32, 16], [1e6, 32, 64]])).map(([n, d, k]) => ({ n, d, k }));
  let whole: WholeCase[] = (parseShapes(arg('whole')) ?? (quick ? [[1e5, 32, 16, 20], [2e4, 128, 256, 10]] : [[1e6, 32, 16, 20], [2e5, 128, 256, 10], [2e5, 128, 1024, 10], [2e5, 128, 4096, 10]])).map(([n, d, k, iters]) => ({ n, d, k, iters, faiss: k >= 256 }));
  const wk = arg('whole-k')?.split(',').map(Number);
  if (wk) whole = whole.filter((c) => wk.includes(c.k));

  const sklearn = hasPython('sklearn');
  const faiss = hasPython('faiss');
  if (!hasPython('numpy')) throw new Error('/usr/bin/python3 with numpy is needed: it scores every tool\'s centroids (apt-get install python3-sklearn)');
  if (!sklearn) failures.push('scikit-learn missing: /usr/bin/python3 cannot import sklearn (apt-get install python3-sklearn)');
  if (!faiss && sections.includes('whole') && whole.some((c) => c.faiss)) failures.push("FAISS missing: /usr/bin/python3 cannot import faiss (apt-get install python3-faiss)");
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('build first: npm run build');

  const est =
    (sections.includes('lloyd') ? lloyd.reduce((s, c) => s + estimate(c, 'lloyd', steps), 0) : 0) +
    (sections.includes('converge') ? converge.reduce((s, c) => s + estimate(c, 'converge'), 0) : 0) +
    (sections.includes('whole') ? whole.reduce((s, c) => s + estimate(c, 'whole', steps, c.faiss && faiss), 0) : 0);
  process.stderr.write(`like-for-like: ${reps} runs per figure; estimated ${Math.ceil((est * reps) / 60)} min on the 2-core dev VM (plus data generation on a first run)\n`);
  const plan = [
    ...(sections.includes('lloyd') ? lloyd.map((c) => [`lloyd:${tag(c)}`, estimate(c, 'lloyd', steps)] as const) : []),
    ...(sections.includes('converge') ? converge.map((c) => [`converge:${tag(c)}`, estimate(c, 'converge')] as const) : []),
    ...(sections.includes('whole') ? whole.map((c) => [`whole:${tag(c)}:it${c.iters}`, estimate(c, 'whole', steps, c.faiss && faiss)] as const) : []),
  ];
  for (const [id, sec] of plan) process.stderr.write(`  ${id}: ~${Math.round(sec * reps)} s\n`);
  if (flag('dry-run')) return;

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-lfl-'));
  const rows: Row[] = [];
  const t0 = performance.now();
  try {
    if (sections.includes('lloyd')) for (const c of lloyd) rows.push(await lloydSection(c, steps, reps, sklearn, tmp));
    if (sections.includes('converge')) for (const c of converge) rows.push(await convergeSection(c, reps, sklearn, tmp));
    if (sections.includes('whole')) for (const c of whole) rows.push(await wholeSection(c, reps, sklearn, faiss, tmp));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const versions = spawnSync('/usr/bin/python3', ['-c', 'import sys, numpy, sklearn\ntry:\n import faiss; f = faiss.__version__\nexcept Exception: f = "absent"\nprint(f"Python {sys.version.split()[0]}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, FAISS {f}")'], { encoding: 'utf8' }).stdout.trim();
  const date = new Date().toISOString();
  const report = {
    bench: 'like-for-like',
    date,
    machine: machineDescription(),
    node: process.version,
    python: versions || 'Python anchors unavailable',
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    quick,
    reps,
    seconds: (performance.now() - t0) / 1000,
    sameStartRtol: SAME_START_RTOL,
    brokenRatio: BROKEN_RATIO,
    rows,
    failures,
  };
  const stem = resultStem(date, quick ? 'quick' : '');
  fs.writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  fs.writeFileSync(`${stem}.md`, md);
  console.log(md);
  console.log(`written: ${path.relative(ROOT, stem)}.{json,md} in ${(report.seconds / 60).toFixed(1)} min; goal table: node dist/bench/summary.js ${path.relative(ROOT, stem)}.json`);
  if (failures.length) {
    console.error(`\nlike-for-like: FAILED, ${failures.length} check(s):\n${failures.map((f) => `  ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

if (process.env.SEGTENSOR_BENCH_CHILD) process.stdout.write(JSON.stringify(await child(JSON.parse(process.env.SEGTENSOR_BENCH_CHILD) as ChildSpec)) + '\n');
else await main();
