/**
 * Issue 17, logs: off a terminal every line on stderr is one JSON event (start, phase,
 * iteration, done, error) naming the run and the command, with the process's memory, and no
 * customer's values; `--log-format text` keeps a clean run silent off a terminal; on a terminal
 * (a pseudo-terminal from script(1)) a progress bar shows counts, rate and ETA.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/util/random.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-logs-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// The suite sets SEGTENSOR_LOG_FORMAT=text for every other test (vitest.config.ts); not here.
const { SEGTENSOR_LOG_FORMAT: _unset, ...base } = process.env;
const env = { ...base, SEGTENSOR_DEBUG: '' };
const hasScript = spawnSync('script', ['--version']).status === 0;

function cli(args: string[], e: NodeJS.ProcessEnv = env) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: e, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  const r = new Random(9);
  const lines = ['customer_id,spend,visits'];
  for (let i = 0; i < 3000; i++) lines.push(`cust-q${String(i).padStart(5, '0')},${(40 + 90 * (i % 3) + 9 * r.gauss()).toFixed(3)},${(2 + 3 * (i % 3) + r.gauss()).toFixed(3)}`);
  fs.writeFileSync(path.join(dir, 'c.csv'), lines.join('\n') + '\n');
});

describe('logs (issue 17)', () => {
  it('off a terminal: one JSON event per line, with the run id, phases, iterations and memory, no customer values', () => {
    const r = cli(['fit', '--input', 'c.csv', '--id', 'customer_id', '--k', '3', '--n-init', '2', '--out', 'run']);
    expect(r.code, r.err).toBe(0);
    const lines = r.err.trim().split('\n');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const runId = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'manifest.json'), 'utf8')).runId;
    for (const e of events) {
      expect(e.command).toBe('fit');
      expect(e.runId).toBe(runId);
      expect(typeof e.rssMB).toBe('number');
      expect(Number.isNaN(Date.parse(String(e.time)))).toBe(false);
    }
    const kinds = events.map((e) => e.event);
    expect(kinds).toContain('start');
    expect(kinds.at(-1)).toBe('done');
    expect(events.filter((e) => e.event === 'phase').map((e) => e.phase)).toEqual(expect.arrayContaining(['read', 'preprocess', 'fit', 'metrics', 'write']));
    const its = events.filter((e) => e.event === 'iteration');
    const metrics = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'metrics.json'), 'utf8'));
    // Every Lloyd iteration of both restarts, numbered within its restart.
    expect(its.length).toBe(metrics.runs.reduce((s: number, x: { nIter: number }) => s + x.nIter, 0));
    expect(its.filter((e) => e.restart === 2).map((e) => e.iteration)).toEqual(Array.from({ length: metrics.runs[1].nIter }, (_, i) => i + 1));
    for (const e of its) {
      expect(e.inertia).toBeGreaterThan(0);
      expect(e.rowsPerSecond).toBeGreaterThan(0);
    }
    // Each restart's seeding as progress, ending at k of k centres.
    const seeding = events.filter((e) => e.event === 'progress' && /^seeding/.test(String(e.phase)));
    expect(seeding.filter((e) => e.done === e.total).map((e) => [e.phase, e.total, e.unit])).toEqual([
      ['seeding (restart 1)', 3, 'centres'],
      ['seeding (restart 2)', 3, 'centres'],
    ]);
    expect(r.err).not.toMatch(/cust-q\d{5}/);
  });

  it('a table read in blocks reports its passes, mini-batch steps and writing as progress events', () => {
    const rng = new Random(4);
    const lines = ['customer_id,spend,visits'];
    for (let i = 0; i < 40_000; i++) lines.push(`cust-q${String(i).padStart(5, '0')},${(40 + 90 * (i % 3) + 9 * rng.gauss()).toFixed(3)},${(2 + 3 * (i % 3) + rng.gauss()).toFixed(3)}`);
    fs.writeFileSync(path.join(dir, 'big.csv'), lines.join('\n') + '\n');
    const r = cli(['fit', '--input', 'big.csv', '--id', 'customer_id', '--k', '3', '--method', 'minibatch', '--memory-limit', '1MB', '--out', 'blocks']);
    expect(r.code, r.err).toBe(0);
    const events = r.err.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const progress = events.filter((e) => e.event === 'progress');
    const last = (phase: string) => progress.filter((e) => e.phase === phase).at(-1);
    for (const phase of ['preprocess pass 2', 'cache', 'profile', 'write']) expect(last(phase), phase).toMatchObject({ done: 40_000, total: 40_000, unit: 'rows' });
    const steps = last('steps')!;
    expect(steps.unit).toBe('steps');
    expect(steps.done).toBe(steps.total);
    for (const e of progress) expect(e.done as number).toBeLessThanOrEqual(e.total as number);
    expect(r.err).not.toMatch(/cust-q\d{5}/);
  });

  it('an error is one JSON line with its code and exit code', () => {
    const r = cli(['fit', '--input', 'missing.csv', '--k', '3', '--out', 'bad']);
    expect(r.code).toBe(1);
    const last = JSON.parse(r.err.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ event: 'error', command: 'fit', code: 'FILE_NOT_FOUND', exitCode: 1 });
    expect(last.message).toMatch(/missing\.csv/);
    const usage = cli(['fit', '--input', 'c.csv', '--k', '3', '--out', 'bad', '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.err.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(usage.err)).toMatchObject({ event: 'error', code: 'BAD_OPTION', exitCode: 2 });
  });

  it('--log-format text keeps a clean run silent off a terminal; errors stay one text line', () => {
    const r = cli(['--log-format', 'text', 'fit', '--input', 'c.csv', '--id', 'customer_id', '--k', '3', '--out', 'quiet']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe('');
    const bad = cli(['fit', '--log-format', 'text', '--input', 'missing.csv', '--k', '3', '--out', 'bad']);
    expect(bad.err).toBe("segtensor: error [FILE_NOT_FOUND]: --input 'missing.csv': no such file\n");
    const wrong = cli(['--log-format', 'xml', 'doctor']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/--log-format.*xml/);
    const badEnv = cli(['doctor'], { ...base, SEGTENSOR_LOG_FORMAT: 'jsonl' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.err).toBe("segtensor: error [BAD_OPTION]: SEGTENSOR_LOG_FORMAT must be one of auto, text, json; got 'jsonl'\n");
  });

  it.skipIf(!hasScript)('on a terminal: a progress bar with counts, rate and ETA (skipped without script(1))', () => {
    const cmd = [process.execPath, bin, 'fit', '--input', 'c.csv', '--k', '3', '--n-init', '2', '--max-iter', '50', '--out', 'tty'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', cwd: dir, env, timeout: 60_000 });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/iteration \[[█░]{24}\] \d+\/100 it, [\d.e+]+ it\/s, ETA ≤ \d+:\d\d, restart [12]/);
    expect(r.stdout).not.toMatch(/"event"/);
  });
});
