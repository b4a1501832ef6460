/**
 * Issue 12: a run killed at any point leaves either the complete old outputs or the complete new
 * ones, never a mix, and the next run removes what the dead one left.
 *
 * Each command is killed with SIGKILL by strace's fault injection at its 1st, 2nd, … rename(2)
 * and symlink(2) (every output file is renamed into place; the staging directory is renamed to
 * its run id; the links are swapped), until a run gets through; then with SIGTERM at a few
 * moments. After each kill the published paths must show exactly the previous run (same bytes)
 * or a new run that matches its manifest; the next run must succeed and leave no staging,
 * temporary or spill files and at most two runs in the store.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRun, storeOf } from '../../src/io/run-dir.js';
import { churnSample, writeChurnSample } from '../helpers/churn-data.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-kill-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const hasStrace = spawnSync('strace', ['-V']).status === 0;
const env = { ...process.env, SEGTENSOR_DEBUG: '' };

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, '-q', ...args], { encoding: 'utf8', cwd: dir, env });
  return { code: r.status, err: r.stderr };
}

/** The command under strace, SIGKILLed at the n-th call of `syscall`. */
function killedAt(args: string[], syscall: string, n: number) {
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${syscall}`, '-e', `inject=${syscall}:signal=SIGKILL:when=${n}`, process.execPath, bin, '-q', ...args], {
    encoding: 'utf8',
    cwd: dir,
    env,
  });
  return { killed: r.signal === 'SIGKILL' || r.status === 137, code: r.status, err: r.stderr };
}

function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** What a reader sees at the published paths: each path's bytes, or null where nothing is. */
function visible(paths: string[]): Record<string, string | null> {
  return Object.fromEntries(
    paths.map((p) => {
      const abs = path.join(dir, p);
      if (!fs.existsSync(abs)) return [p, null];
      if (fs.statSync(abs).isDirectory()) return [p, fs.readdirSync(abs).sort().map((f) => `${f}:${sha(path.join(abs, f))}`).join(',')];
      return [p, sha(abs)];
    }),
  );
}

/** The published paths are one complete run: they resolve into one run directory that matches its manifest. */
async function expectWholeRun(paths: string[]): Promise<string> {
  const dirs = new Set(paths.map((p) => {
    const real = fs.realpathSync(path.join(dir, p));
    return fs.statSync(real).isDirectory() ? real : path.dirname(real);
  }));
  expect(dirs.size).toBe(1);
  const run = await openRun(path.join(dir, paths[0]), '--test');
  return run.manifest.runId;
}

const LEFTOVER = /\.staging-\d+$|\.tmp-\d+-|\.segtensor-spill-|\.link-\d+-/;

function leftovers(at: string): string[] {
  const found: string[] = [];
  for (const e of fs.readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (LEFTOVER.test(e.name)) found.push(p);
    else if (e.isDirectory() && !e.isSymbolicLink()) found.push(...leftovers(p));
  }
  return found;
}

function runsInStore(out: string): number {
  return fs.readdirSync(storeOf(path.join(dir, out))).filter((n) => n !== 'current').length;
}

interface Case {
  name: string;
  args: string[];
  /** Published paths, relative to the test directory; the first is --out. */
  paths: string[];
  /** Also in the syscall-injection matrix (the arrow fit shares its renames with the parquet one). */
  inject?: false;
}

const cases: Case[] = [
  { name: 'fit', args: ['fit', '-i', 'customers.csv', '-k', '3', '--id', 'customer_id', '--n-init', '1', '-o', 'seg'], paths: ['seg'], inject: false },
  { name: 'fit --format parquet', args: ['fit', '-i', 'customers.csv', '-k', '4', '--id', 'customer_id', '--n-init', '1', '--format', 'parquet', '-o', 'seg-pq'], paths: ['seg-pq'] },
  { name: 'predict', args: ['predict', '--model', 'model-seg', '-i', 'customers.csv', '-o', 'assigned.parquet'], paths: ['assigned.parquet'] },
  // Issue 14's commands publish through the same run directories.
  { name: 'sweep', args: ['sweep', '-i', 'customers.csv', '--k', '2..3', '--id', 'customer_id', '--n-init', '1', '--stability', '1', '-o', 'sweep'], paths: ['sweep'] },
  { name: 'update', args: ['update', '--model', 'model-seg', '-i', 'customers.csv', '-o', 'updated'], paths: ['updated'] },
  {
    name: 'features',
    args: ['features', '--transactions', 'tx.csv', '--time-col', 'ts', '--as-of', '2023-09-01', '--churn-window', '60', '-o', 'features.parquet'],
    paths: ['features.parquet', 'features.parquet.meta.json'],
  },
  { name: 'churn train', args: ['churn', 'train', '-i', 'customers.csv', '--label', 'churned', '--id', 'customer_id', '--max-epochs', '2', '--backend', 'cpu', '-o', 'churn'], paths: ['churn'] },
  {
    name: 'churn predict',
    args: ['churn', 'predict', '--model', 'model-churn', '-i', 'customers.csv', '--segments', 'model-seg', '--backend', 'cpu', '-o', 'scores.csv'],
    paths: ['scores.csv', 'scores.segment-risk.csv'],
  },
];

beforeAll(async () => {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run 'npm test' (it builds first) or 'npm run build'`);
  await writeChurnSample(path.join(dir, 'customers.csv'), churnSample(300, 5));
  // A small transaction log: 40 customers over 2023.
  const lines = ['customer_id,ts,amount'];
  for (let c = 0; c < 40; c++) {
    for (let t = 0; t < 3 + (c % 7); t++) {
      const day = 1 + ((c * 37 + t * 53) % 360);
      lines.push(`${1000 + c},${new Date(Date.UTC(2023, 0, day, 10)).toISOString()},${(5 + ((c * t) % 40)).toFixed(2)}`);
    }
  }
  lines.push(`1000,2023-12-31T12:00:00Z,10.00`);
  fs.writeFileSync(path.join(dir, 'tx.csv'), lines.join('\n') + '\n');
  // The models predict and churn predict read.
  expect(cli(['fit', '-i', 'customers.csv', '-k', '3', '--id', 'customer_id', '-o', 'model-seg']).code).toBe(0);
  const r = cli(['churn', 'train', '-i', 'customers.csv', '--label', 'churned', '--id', 'customer_id', '--max-epochs', '2', '--backend', 'cpu', '-o', 'model-churn']);
  expect(r.code, r.err).toBe(0);
}, 120_000);

describe.skipIf(!hasStrace)('SIGKILL at every rename and symlink: old outputs or new ones, never a mix (needs strace)', () => {
  it.each(cases.filter((c) => c.inject !== false))('$name', async ({ args, paths }) => {
    const first = cli(args);
    expect(first.code, first.err).toBe(0);
    let before = visible(paths);
    let beforeId = await expectWholeRun(paths);
    let kills = 0;
    for (const syscall of ['rename', 'symlink']) {
      for (let n = 1; n < 50; n++) {
        const r = killedAt(args, syscall, n);
        const now = visible(paths);
        if (r.killed) {
          kills++;
          if (JSON.stringify(now) !== JSON.stringify(before)) {
            // Not the old outputs: then all of a new run.
            const id = await expectWholeRun(paths);
            expect(id, `killed at ${syscall} #${n}`).not.toBe(beforeId);
          }
        } else {
          expect(r.code, r.err).toBe(0);
        }
        // The next run cleans up after the dead one.
        const next = cli(args);
        expect(next.code, next.err).toBe(0);
        expect(leftovers(dir), `after ${syscall} #${n}`).toEqual([]);
        expect(runsInStore(paths[0])).toBeLessThanOrEqual(2);
        before = visible(paths);
        beforeId = await expectWholeRun(paths);
        if (!r.killed) break;
      }
    }
    // Every output write (a rename each), the staging rename and the link swaps were hit.
    console.log(`${args.slice(0, 2).join(' ')}: killed at ${kills} points (every rename and symlink), each time old or new outputs, never a mix`);
    expect(kills).toBeGreaterThanOrEqual(3);
  }, 300_000);
});

/** Runs the command and sends `signal` after `delay` ms: its exit code or signal, and stderr. */
async function signalled(args: string[], signal: 'SIGTERM' | 'SIGKILL', delay: number) {
  const child = spawn(process.execPath, [bin, '-q', ...args], { cwd: dir, env });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const timer = setTimeout(() => child.kill(signal), delay);
  const [code, sig] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal: sig, err };
}

describe('SIGTERM: stops before publishing, cleans up, exits 143 with one line', () => {
  it.each(cases)('$name', async ({ args, paths }) => {
    const first = cli(args);
    expect(first.code, first.err).toBe(0);
    for (const delay of [150, 500, 900]) {
      const before = visible(paths);
      const beforeId = await expectWholeRun(paths);
      const { code, signal, err } = await signalled(args, 'SIGTERM', delay);
      if (code === null) {
        // Killed by the signal itself: before the CLI installed its handler (no run had begun), or
        // after it finished, while Node tears down (the run is published). Old or new, never a mix.
        expect(signal).toBe('SIGTERM');
        if (JSON.stringify(visible(paths)) !== JSON.stringify(before)) expect(await expectWholeRun(paths)).not.toBe(beforeId);
      } else if (code !== 0) {
        expect(code, err).toBe(143);
        const lines = err.trim().split('\n').filter((l) => !/^segtensor: (notice|warning):/.test(l));
        expect(lines).toEqual([expect.stringMatching(/^segtensor: error \[INTERRUPTED\]: SIGTERM received/)]);
        // Stopped before its publish: the old outputs; after it (the process was finishing): the
        // new ones, whole, and the line says which.
        if (/after the outputs were published/.test(lines[0])) expect(await expectWholeRun(paths)).not.toBe(beforeId);
        else expect(visible(paths)).toEqual(before);
      } else {
        expect(await expectWholeRun(paths)).not.toBe(beforeId);
      }
      // The handler itself removed the staging directory (no later run needed).
      expect(leftovers(dir)).toEqual([]);
    }
  }, 120_000);
});

describe('SIGKILL at timed moments (reading, computing, writing): old outputs or new ones', () => {
  it.each(cases)('$name', async ({ args, paths }) => {
    const first = cli(args);
    expect(first.code, first.err).toBe(0);
    for (const delay of [300, 800, 1300]) {
      const before = visible(paths);
      const beforeId = await expectWholeRun(paths);
      const { code } = await signalled(args, 'SIGKILL', delay);
      if (code === 0) expect(await expectWholeRun(paths)).not.toBe(beforeId);
      else if (JSON.stringify(visible(paths)) !== JSON.stringify(before)) expect(await expectWholeRun(paths)).not.toBe(beforeId);
      const next = cli(args);
      expect(next.code, next.err).toBe(0);
      expect(leftovers(dir)).toEqual([]);
    }
  }, 120_000);
});
