/**
 * Issue 17, acceptance: a long `fit` SIGKILLed at 20 random moments, each time restarted with
 * `--resume`, ends with the same model and outputs as an uninterrupted run, and leaves nothing
 * behind (no checkpoint, staging directory or temporary file).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeOf } from '../../src/io/run-dir.js';
import { writeTable } from '../../src/io/write-table.js';
import { CHECKPOINT_FILE } from '../../src/pipeline/checkpoint.js';
import { Random } from '../../src/util/random.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-resume-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, SEGTENSOR_DEBUG: '' };

const KILLS = 20;
// ~8 s of Lloyd on the 2-core development VM (3 restarts × 600 iterations at k = 120): long
// enough that 20 kills land inside the fit, its checkpoints and its publishing.
const FIT = ['fit', '--input', 't.arrow', '--id', 'customer_id', '--k', '120', '--n-init', '3', '--max-iter', '600', '--tol', '0', '--seed', '5', '--checkpoint-interval', '0'];

beforeAll(async () => {
  const n = 200_000;
  const d = 8;
  const r = new Random(7);
  const cols = Array.from({ length: d }, (_, f) => ({ name: `f${f}`, values: new Float64Array(n) }));
  for (let i = 0; i < n; i++) {
    const c = i % 9;
    for (let f = 0; f < d; f++) cols[f].values[i] = ((c * (f + 3)) % 7) + 2.5 * r.gauss();
  }
  await writeTable(path.join(dir, 't.arrow'), [{ name: 'customer_id', values: Int32Array.from({ length: n }, (_, i) => i) }, ...cols]);
});

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, '-q', ...args], { encoding: 'utf8', cwd: dir, env, timeout: 120_000, killSignal: 'SIGKILL' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts the command and SIGKILLs it after `ms`; resolves whether it was killed (false: it had finished). */
function killedAfter(args: string[], ms: number): Promise<boolean> {
  return killedWhen(args, (_elapsed) => _elapsed >= ms);
}

/**
 * Starts the command and SIGKILLs it once `when(msSinceStart)` holds, polled every 2 ms;
 * resolves whether it was killed (false: it had finished first).
 */
function killedWhen(args: string[], when: (elapsed: number) => boolean): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [bin, '-q', ...args], { cwd: dir, env, stdio: 'ignore' });
    const poll = setInterval(() => {
      if (when(performance.now() - t0)) p.kill('SIGKILL');
    }, 2);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearInterval(poll);
      if (signal === 'SIGKILL') resolve(true);
      else if (code === 0) resolve(false);
      else reject(new Error(`fit exited with ${code}`));
    });
  });
}

const read = (run: string, name: string) => fs.readFileSync(path.join(dir, run, name));
const json = (run: string, name: string) => JSON.parse(read(run, name).toString('utf8'));

describe('fit --resume after SIGKILL (issue 17)', () => {
  it(`${KILLS} kills at random moments, then --resume: the uninterrupted run's model and outputs, no leftovers`, async () => {
    const ref = cli([...FIT, '--out', 'ref']);
    expect(ref.code, ref.err).toBe(0);

    // Each attempt is killed a random while after it has saved 1 to 3 new checkpoints (16 Lloyd
    // iterations apart): inside seeding, Lloyd, a checkpoint's write or the outputs, wherever that
    // falls, with progress between kills whatever the machine's speed.
    const rng = new Random(2026);
    const cp = path.join(storeOf(path.join(dir, 'res')), CHECKPOINT_FILE);
    const stamp = () => (fs.existsSync(cp) ? fs.statSync(cp).mtimeMs : 0);
    let kills = 0;
    for (let attempt = 0; attempt < KILLS; attempt++) {
      const saves = 1 + Math.floor(rng.next() * 3);
      const extra = rng.next();
      let seen = stamp();
      let count = 0;
      let at = 0;
      let gap = 0;
      const killed = await killedWhen([...FIT, '--resume', '--out', 'res'], (elapsed) => {
        const s = stamp();
        if (s !== seen) {
          seen = s;
          count++;
          gap = elapsed - at;
          at = elapsed;
        }
        return count >= saves && elapsed - at >= extra * gap;
      });
      expect(killed, `the fit finished after ${kills} kills: make it longer so that ${KILLS} kills land inside it`).toBe(true);
      kills++;
    }
    expect(kills).toBe(KILLS);

    const last = cli([...FIT, '--resume', '--out', 'res']);
    expect(last.code, last.err).toBe(0);
    expect(last.err).toMatch(/notice: --resume: resuming from (restart \d, iteration \d+|the start of restart \d)/);
    const manifest = json('res', 'manifest.json');
    expect(manifest.counts.checkpoint.resumedFrom).toMatch(/restart \d/);

    // The same outputs: byte for byte, but for the times a run records.
    expect(read('res', 'assignments.arrow').equals(read('ref', 'assignments.arrow'))).toBe(true);
    expect(read('res', 'segments.csv').toString()).toBe(read('ref', 'segments.csv').toString());
    const { createdAt: _a, ...model } = json('res', 'model.json');
    const { createdAt: _b, ...refModel } = json('ref', 'model.json');
    expect(model).toEqual(refModel);
    const { timingsMs: _c, ...metrics } = json('res', 'metrics.json');
    const { timingsMs: _d, ...refMetrics } = json('ref', 'metrics.json');
    expect(metrics).toEqual(refMetrics);

    // Nothing left: no checkpoint, staging directory, temporary or link file; one run published.
    const store = storeOf(path.join(dir, 'res'));
    const left = fs.readdirSync(store).filter((n) => n !== 'current' && !fs.statSync(path.join(store, n)).isDirectory());
    expect(left).toEqual([]);
    const staging = fs.readdirSync(store).filter((n) => /staging|\.tmp-|\.link-/.test(n));
    expect(staging).toEqual([]);
    expect(fs.readdirSync(dir).filter((n) => /\.tmp-|\.link-/.test(n))).toEqual([]);
  }, 300_000);

  it('--resume without a checkpoint fits from the start and says so; a checkpoint of another --k is not resumed', async () => {
    const short = ['fit', '--input', 't.arrow', '--id', 'customer_id', '--n-init', '1', '--max-iter', '20', '--seed', '5'];
    const first = cli([...short, '--k', '8', '--out', 'fresh', '--resume']);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/notice: --resume: no checkpoint in .*fitting from the start/);
    // A killed k = 120 fit leaves its checkpoint; a k = 119 fit must not continue from it.
    expect(await killedAfter([...FIT, '--out', 'other'], 2500)).toBe(true);
    expect(fs.existsSync(path.join(storeOf(path.join(dir, 'other')), CHECKPOINT_FILE))).toBe(true);
    const changed = cli([...short, '--k', '119', '--out', 'other', '--resume']);
    expect(changed.code, changed.err).toBe(0);
    expect(changed.err).toMatch(/warning: --resume: the checkpoint in .* is of another input, options, backend or version; fitting from the start/);
    expect(json('other', 'model.json').k).toBe(119);
  }, 60_000);

  it('--resume and --checkpoint-interval are refused with methods they do not apply to, before any work', () => {
    const r = cli(['fit', '--input', 't.arrow', '--method', 'gmm', '--k', '3', '--resume', '--out', 'g']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(/^segtensor: error \[BAD_OPTION\]: --resume applies to --method kmeans/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    const a = cli(['fit', '--input', 't.arrow', '--k', 'auto', '--checkpoint-interval', '5', '--out', 'g']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--checkpoint-interval applies to --method kmeans with a fixed --k/);
    expect(fs.existsSync(path.join(dir, 'g'))).toBe(false);
  });
});
