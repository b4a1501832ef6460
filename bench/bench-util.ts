/**
 * Shared pieces of the benchmarks: repeated-run statistics, the machine's name, the Python
 * environment the anchors run in, child processes, and where results go.
 *
 * @example
 * const s = spread([3.1, 2.9, 3.4]); // { n: 3, median: 3.1, min: 2.9, max: 3.4, all: [...] }
 * @internal
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, from bench/ or dist/bench/. */
export const ROOT = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
export const DATA_DIR = path.join(ROOT, 'bench', 'data');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** The Python anchors live next to the TypeScript sources (not compiled). */
export const PY_ANCHOR = path.join(ROOT, 'bench', 'py_anchor.py');
export const PYTHON = '/usr/bin/python3';

/**
 * Same start, same algorithm: the tools' final inertias differ only by float32 rounding. Centroids
 * are float32 means (relative error ~1e-7 from the summation order), and the expansion
 * ‖x‖² − 2x·c + ‖c‖² in float32 errs by ~1e-7 × ‖x‖², enough to flip a row that sits on a
 * bisector; such a flip moves the inertia by less than 1e-6 of it. The old grid saw at most
 * 8.9e-6 (1e5 × 128, k = 1024, 3 steps). 1e-4 is ten times that, and ten times smaller than what
 * a wrong step or a different local optimum gives.
 */
/** (SEGTENSOR_BENCH_RTOL overrides it, to see the gate fire.) */
export const SAME_START_RTOL = Number(process.env.SEGTENSOR_BENCH_RTOL ?? 1e-4);
/**
 * Different starts (k-means++ draws, FAISS's random rows) land in different local optima: a
 * difference is reported, not failed. Past this ratio to the best tool the run is broken.
 */
export const BROKEN_RATIO = 1.5;

/** Median and range of repeated measurements (the median of an even count is the lower middle). */
export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  all: number[];
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, median: s[Math.floor((s.length - 1) / 2)], min: s[0], max: s[s.length - 1], all: xs };
}

export function median(xs: number[]): number {
  return spread(xs).median;
}

/**
 * A over B as median/median, with the widest range the runs allow ([min A / max B, max A / min B]),
 * so that a ratio is never quoted tighter than its runs support.
 */
export function ratio(a: Spread, b: Spread): { median: number; min: number; max: number } {
  return { median: a.median / b.median, min: a.min / b.max, max: a.max / b.min };
}

/** `3.12 [2.98, 3.40]` with digits chosen by magnitude. */
export function fmtSpread(s: Spread | null | undefined, unit = ''): string {
  if (!s) return '—';
  return `${fmt(s.median)} [${fmt(s.min)}, ${fmt(s.max)}]${unit}`;
}

export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

export function fmtRatio(r: { median: number; min: number; max: number }): string {
  return `${r.median.toFixed(2)} × [${r.min.toFixed(2)}, ${r.max.toFixed(2)}]`;
}

/** `AMD EPYC … × 2, 24 GiB`. */
export function machineDescription(): string {
  return `${os.cpus()[0]?.model?.trim() ?? 'cpu'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

/**
 * File stem for results on this machine: bench/results/<date>-<host>[-suffix], with -2, -3 …
 * added when `ext` already exists, so that a second run the same day keeps the first.
 */
export function resultStem(date: string, suffix = '', ext = '.json'): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const base = path.join(RESULTS_DIR, `${date.slice(0, 10)}-${os.hostname()}${suffix ? `-${suffix}` : ''}`);
  let stem = base;
  for (let i = 2; fs.existsSync(stem + ext); i++) stem = `${base}-${i}`;
  return stem;
}

/** Environment for the Python anchors: without the OpenBLAS overrides this VM sets, so numpy runs its best kernel. */
export function pythonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export function hasPython(module: string): boolean {
  return spawnSync(PYTHON, ['-c', `import ${module}`], { env: pythonEnv(), stdio: 'ignore' }).status === 0;
}

/** Runs a command, returns its last stdout line parsed as JSON; throws with its stderr's last lines on failure. */
export function runJson<T>(cmd: string, args: string[], opts: SpawnSyncOptions = {}): T {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 1_800_000, ...opts });
  if (r.status !== 0) {
    const err = String(r.stderr ?? r.error?.message ?? 'failed').trim().split('\n').slice(-4).join(' | ');
    throw new Error(`${path.basename(cmd)} ${args.slice(0, 2).join(' ')}: exit ${r.status ?? r.signal}: ${err}`);
  }
  const lines = String(r.stdout).trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** Runs the Python anchor with one subcommand. */
export function py<T>(sub: string, args: (string | number)[]): T {
  return runJson<T>(PYTHON, [PY_ANCHOR, sub, ...args.map(String)], { env: pythonEnv() });
}

export function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/**
 * Refuses options a bench does not know (a typo, or `--help`, must not start a long run):
 * `--help` prints `usage` and exits 0; an unknown `--option` prints it to stderr and exits 2.
 */
export function checkArgs(known: { values: string[]; flags: string[] }, usage: string): void {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(usage.trim() + '\n');
      process.exit(0);
    }
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name !== null && known.values.includes(name)) i++;
    else if (name === null || !known.flags.includes(name)) {
      process.stderr.write(`unknown argument '${a}'\n\n${usage.trim()}\n`);
      process.exit(2);
    }
  }
}

/** The Arrow feature table both sides of a whole fit read (bench/make-table.ts: the same blobs plus customer_id). */
export function arrowFile(n: number, d: number): string {
  const f = path.join(DATA_DIR, `wf-${n}x${d}.arrow`);
  if (!fs.existsSync(f)) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'make-table.js'), '--rows', String(n), '--features', String(d), '--out', f], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make-table ${n} × ${d}: ${String(r.stderr).trim()}`);
  }
  return f;
}
