/**
 * Issue 17, job files: `segtensor run job.yaml` through the built CLI. A nightly job over two
 * generated days runs end to end from one command; a rerun skips every step and a changed input
 * reruns the steps that read it; schema errors are one line naming the key, exit 2 and write
 * nothing; `--plan` names what would run or be skipped and changes nothing on disk.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-run-job-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The job lives in `jobs/` and the CLI runs from elsewhere: relative paths resolve against the job file. */
const jobDir = path.join(dir, 'jobs');
const elsewhere = path.join(dir, 'cwd');
const D1 = '2024-01-01';
const D2 = '2024-01-02';

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: elsewhere, env: { ...process.env, SEGTENSOR_DEBUG: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Both days as steps of one job, run for D2: yesterday's features and fit, then today's, fitted
// with yesterday's segment ids (--align-to), then the report. Every variable kind is used.
const NIGHTLY = `
version: 1
vars:
  root: out              # relative: resolves against this file's directory
  logs: \${env:RUN_JOB_LOGS}
  seg: "\${root}/seg"
steps:
  - name: features-yesterday
    features: { transactions: "\${logs}/log-\${YESTERDAY}.parquet", as-of: "\${YESTERDAY}", out: "\${root}/features-\${YESTERDAY}.parquet" }
  - name: segments-yesterday
    fit: { input: "\${root}/features-\${YESTERDAY}.parquet", k: 4, id: customer_id, features: [recency_days, frequency, monetary_total, tenure_days], seed: 1, out: "\${seg}-\${YESTERDAY}" }
  - features: { transactions: "\${logs}/log-\${DATE}.parquet", as-of: "\${DATE}", out: "\${root}/features-\${DATE}.parquet" }
  - name: segments
    fit:
      input: "\${root}/features-\${DATE}.parquet"
      k: 4
      id: customer_id
      features: recency_days,frequency,monetary_total,tenure_days
      seed: 1
      align-to: "\${seg}-\${YESTERDAY}"
      out: "\${seg}-\${DATE}"
  - report: { run: "\${seg}-\${DATE}", out: "\${root}/report-\${DATE_COMPACT}.html" }
`;
const logs = path.join(dir, 'logs');
const env = { RUN_JOB_LOGS: logs };
const out = path.join(jobDir, 'out');

/** Every path under `root` (links not followed) with its kind, size, mtime and link target. */
function tree(root: string): Record<string, string> {
  const snap: Record<string, string> = {};
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    const kind = st.isSymbolicLink() ? `link:${fs.readlinkSync(p)}` : st.isDirectory() ? 'dir' : 'file';
    snap[path.relative(root, p) || '.'] = `${kind}:${st.size}:${st.mtimeMs}`;
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(root);
  return snap;
}

/** The published run id behind a path (`seg-…` or a features file). */
function runId(published: string): string {
  const real = fs.realpathSync(published);
  const runDir = fs.statSync(real).isDirectory() ? real : path.dirname(real);
  return JSON.parse(fs.readFileSync(path.join(runDir, 'manifest.json'), 'utf8')).runId;
}

function manifest(published: string) {
  const real = fs.realpathSync(published);
  const runDir = fs.statSync(real).isDirectory() ? real : path.dirname(real);
  return JSON.parse(fs.readFileSync(path.join(runDir, 'manifest.json'), 'utf8'));
}

const PUBLISHED = [`features-${D1}.parquet`, `seg-${D1}`, `features-${D2}.parquet`, `seg-${D2}`, 'report-20240102.html'];

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run 'npm run build'`);
  for (const d of [jobDir, elsewhere, logs]) fs.mkdirSync(d, { recursive: true });
  for (const seed of [1, 2]) {
    const r = cli(['datasets', 'generate', '--customers', '2000', '--seed', String(seed), '--out', path.join(dir, `pop${seed}`)]);
    if (r.code !== 0) throw new Error(r.err);
  }
  // Both nights read the same generated log (as of the next day it has one more day of
  // recency); day 2's is swapped for another population's below, to change an input.
  fs.copyFileSync(path.join(dir, 'pop1/transactions.parquet'), path.join(logs, `log-${D1}.parquet`));
  fs.copyFileSync(path.join(dir, 'pop1/transactions.parquet'), path.join(logs, `log-${D2}.parquet`));
  fs.writeFileSync(path.join(jobDir, 'nightly.yaml'), NIGHTLY);
}, 120_000);

describe('segtensor run: a nightly job', () => {
  let first: ReturnType<typeof cli>;
  beforeAll(() => {
    first = cli(['run', path.join(jobDir, 'nightly.yaml'), '--date', D2], env);
  }, 120_000);

  it('runs both days end to end from one command, one line per step', () => {
    expect(first.code, first.err).toBe(0);
    const lines = first.out.split('\n').filter((l) => l.startsWith('step '));
    expect(lines).toEqual([
      expect.stringMatching(/^step 1\/5 features \(features-yesterday\): ran in \d+\.\d s \(no previous run\)$/),
      expect.stringMatching(/^step 2\/5 fit \(segments-yesterday\): ran in \d+\.\d s \(no previous run\)$/),
      expect.stringMatching(/^step 3\/5 features: ran in /),
      expect.stringMatching(/^step 4\/5 fit \(segments\): ran in /),
      expect.stringMatching(/^step 5\/5 report: ran in /),
    ]);
    expect(first.out).toMatch(/nightly\.yaml for 2024-01-02: 5 ran, 0 skipped/);
    // Relative paths went next to the job file, not into the working directory.
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    for (const p of PUBLISHED) expect(manifest(path.join(out, p)).format, p).toBe('segtensor-run');
    for (const d of [D1, D2]) {
      for (const f of ['model.json', 'metrics.json', 'assignments.arrow', 'segments.csv', 'manifest.json']) expect(fs.existsSync(path.join(out, `seg-${d}`, f)), `seg-${d}/${f}`).toBe(true);
    }
    expect(fs.readFileSync(path.join(out, 'report-20240102.html'), 'utf8')).toMatch(/^<!doctype html>/i);
  });

  it("aligns day 2's segments to day 1's, and the features are each day's own", () => {
    const m1 = JSON.parse(fs.readFileSync(path.join(out, `seg-${D1}`, 'metrics.json'), 'utf8'));
    const m2 = JSON.parse(fs.readFileSync(path.join(out, `seg-${D2}`, 'metrics.json'), 'utf8'));
    expect(m1.alignment ?? null).toBeNull();
    expect(m2.alignment).toBeDefined();
    expect(m2.alignment.transitions).toBeDefined();
    expect(fs.existsSync(path.join(out, `seg-${D2}`, 'transitions.csv'))).toBe(true);
    expect(manifest(path.join(out, `features-${D1}.parquet`)).options.asOf).toBe(D1);
    expect(manifest(path.join(out, `features-${D2}.parquet`)).options.asOf).toBe(D2);
  });

  it("records each step's command line in its manifest, variables expanded and paths absolute", () => {
    expect(manifest(path.join(out, `seg-${D2}`)).argv).toEqual([
      'fit',
      '--input', path.join(out, `features-${D2}.parquet`),
      '--k', '4',
      '--align-to', path.join(out, `seg-${D1}`),
      '--out', path.join(out, `seg-${D2}`),
      '--features', 'recency_days,frequency,monetary_total,tenure_days',
      '--id', 'customer_id',
      '--seed', '1',
    ]);
    expect(manifest(path.join(out, `features-${D1}.parquet`)).argv).toEqual([
      'features', '--transactions', path.join(logs, `log-${D1}.parquet`), '--as-of', D1, '--out', path.join(out, `features-${D1}.parquet`),
    ]);
  });

  it('skips every step on a rerun, leaving the runs as they were', () => {
    const before = Object.fromEntries(PUBLISHED.map((p) => [p, runId(path.join(out, p))]));
    const r = cli(['run', path.join(jobDir, 'nightly.yaml'), '--date', D2], env);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n').filter((l) => l.startsWith('step '));
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l).toMatch(/: skipped: up to date$/);
    expect(r.out).toMatch(/0 ran, 5 skipped/);
    expect(Object.fromEntries(PUBLISHED.map((p) => [p, runId(path.join(out, p))]))).toEqual(before);
  });

  it("reruns the steps that read a changed input, and only those (day 1's stay)", () => {
    const before = Object.fromEntries(PUBLISHED.map((p) => [p, runId(path.join(out, p))]));
    fs.copyFileSync(path.join(dir, 'pop2/transactions.parquet'), path.join(logs, `log-${D2}.parquet`));
    const r = cli(['run', path.join(jobDir, 'nightly.yaml'), '--date', D2], env);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n').filter((l) => l.startsWith('step '));
    expect(lines[0]).toMatch(/skipped: up to date$/);
    expect(lines[1]).toMatch(/skipped: up to date$/);
    expect(lines[2]).toContain(`ran in`);
    expect(lines[2]).toContain(`(input ${path.join(logs, `log-${D2}.parquet`)} changed)`);
    expect(lines[3]).toContain(`(input ${path.join(out, `features-${D2}.parquet`)} changed)`);
    expect(lines[4]).toMatch(/^step 5\/5 report: ran in /);
    const after = Object.fromEntries(PUBLISHED.map((p) => [p, runId(path.join(out, p))]));
    for (const p of PUBLISHED) {
      if (p.includes(D1)) expect(after[p], p).toBe(before[p]);
      else expect(after[p], p).not.toBe(before[p]);
    }
    // Still aligned to the unchanged day 1.
    expect(JSON.parse(fs.readFileSync(path.join(out, `seg-${D2}`, 'metrics.json'), 'utf8')).alignment).toBeDefined();
  });

  describe('--plan', () => {
    it('prints each command line and would run / would skip with the reason, and changes nothing', () => {
      // Day 2's log changes again: the plan must see it, and what it would rewrite downstream.
      fs.copyFileSync(path.join(dir, 'pop1/transactions.parquet'), path.join(logs, `log-${D2}.parquet`));
      const before = tree(dir);
      const r = cli(['run', path.join(jobDir, 'nightly.yaml'), '--date', D2, '--plan'], env);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toBe('');
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0]).toMatch(/nightly\.yaml: 5 steps for 2024-01-02 \(plan only/);
      expect(lines[1]).toBe('step 1/5 features (features-yesterday): would skip: up to date');
      expect(lines[2]).toBe(`  segtensor features --transactions ${path.join(logs, `log-${D1}.parquet`)} --as-of ${D1} --out ${path.join(out, `features-${D1}.parquet`)}`);
      expect(lines[3]).toBe('step 2/5 fit (segments-yesterday): would skip: up to date');
      expect(lines[5]).toBe(`step 3/5 features: would run (input ${path.join(logs, `log-${D2}.parquet`)} changed)`);
      expect(lines[7]).toBe(`step 4/5 fit (segments): would run (input ${path.join(out, `features-${D2}.parquet`)} is written by step 3 (features))`);
      expect(lines[8]).toContain(`segtensor fit --input ${path.join(out, `features-${D2}.parquet`)} --k 4 --align-to ${path.join(out, `seg-${D1}`)}`);
      expect(lines[9]).toMatch(/^step 5\/5 report: would run \(input .* is written by step 4 \(fit 'segments'\)\)$/);
      expect(tree(dir)).toEqual(before);
    });

    it('creates nothing for a job never run, and says so; --var moves it; shell-quotes odd paths', () => {
      const before = tree(dir);
      const r = cli(['run', path.join(jobDir, 'nightly.yaml'), '--date', D2, '--plan', '--var', 'root=fresh night'], env);
      expect(r.code, r.err).toBe(0);
      const steps = r.out.split('\n').filter((l) => l.startsWith('step '));
      expect(steps).toHaveLength(5);
      for (const l of steps) expect(l).toMatch(/would run \(no previous run\)$/);
      expect(r.out).toContain(`--out '${path.join(jobDir, 'fresh night', `features-${D1}.parquet`)}'`);
      expect(tree(dir)).toEqual(before);
      expect(fs.existsSync(path.join(jobDir, 'fresh night'))).toBe(false);
    });

    it('reads the same job from JSON', () => {
      const json = path.join(jobDir, 'nightly.json');
      const job = {
        version: 1,
        vars: { root: 'out', logs: '${env:RUN_JOB_LOGS}', seg: '${root}/seg' },
        steps: [
          { name: 'features-yesterday', features: { transactions: '${logs}/log-${YESTERDAY}.parquet', 'as-of': '${YESTERDAY}', out: '${root}/features-${YESTERDAY}.parquet' } },
        ],
      };
      fs.writeFileSync(json, JSON.stringify(job, null, 2));
      const r = cli(['run', json, '--date', D2, '--plan'], env);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('step 1/1 features (features-yesterday): would skip: up to date');
    });
  });
  it('--force reruns a step that is up to date', () => {
    const job = path.join(jobDir, 'one-step.yaml');
    fs.writeFileSync(job, `version: 1\nsteps:\n  - features: { transactions: "${logs}/log-\${DATE}.parquet", as-of: "\${DATE}", out: "out/features-\${DATE}.parquet" }\n`);
    const before = runId(path.join(out, `features-${D1}.parquet`));
    const skipped = cli(['run', job, '--date', D1]);
    expect(skipped.out).toMatch(/^step 1\/1 features: skipped: up to date$/m);
    const forced = cli(['run', job, '--date', D1, '--force']);
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toMatch(/^step 1\/1 features: ran in \d+\.\d s \(--force\)$/m);
    expect(runId(path.join(out, `features-${D1}.parquet`))).not.toBe(before);
  });
});

describe('segtensor run: pseudonymised steps and their key', () => {
  it('skips a pseudonymised step while the key is the same, reruns it when the key changes, and never records the key', () => {
    const job = path.join(jobDir, 'pseudo.yaml');
    fs.writeFileSync(job, `version: 1\nsteps:\n  - features: { transactions: "${logs}/log-\${DATE}.parquet", as-of: "\${DATE}", out: "out/pseudo-\${DATE}.parquet", pseudonymize-ids: true }\n`);
    const keyA = { SEGTENSOR_PSEUDONYM_KEY: 'night-key-aaaaaaaaaaaaaaaa' };
    const keyB = { SEGTENSOR_PSEUDONYM_KEY: 'night-key-bbbbbbbbbbbbbbbb' };
    const first = cli(['run', job, '--date', D1], keyA);
    expect(first.code, first.err).toBe(0);
    const published = path.join(out, `pseudo-${D1}.parquet`);
    const m = manifest(published);
    expect(m.pseudonymKey).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(m)).not.toContain(keyA.SEGTENSOR_PSEUDONYM_KEY);
    const id = runId(published);
    expect(cli(['run', job, '--date', D1], keyA).out).toMatch(/^step 1\/1 features: skipped: up to date$/m);
    expect(runId(published)).toBe(id);
    const plan = cli(['run', job, '--date', D1, '--plan'], keyB);
    expect(plan.out).toMatch(/would run \(the pseudonym key changed\)/);
    const rotated = cli(['run', job, '--date', D1], keyB);
    expect(rotated.code, rotated.err).toBe(0);
    expect(rotated.out).toMatch(/^step 1\/1 features: ran in \d+\.\d s/m);
    expect(runId(published)).not.toBe(id);
    expect(manifest(published).pseudonymKey).not.toBe(m.pseudonymKey);
    // Without the key, the plan says so instead of calling the old run current.
    const { SEGTENSOR_PSEUDONYM_KEY: _k, ...noKey } = process.env;
    const r = spawnSync(process.execPath, [BIN, 'run', job, '--date', D1, '--plan'], { encoding: 'utf8', cwd: elsewhere, env: { ...noKey, SEGTENSOR_DEBUG: '' } });
    expect(r.stdout).toMatch(/would run \(the pseudonym key is not available\)/);
  });
});

describe('segtensor run: a failing step', () => {
  it('stops the job naming the step, keeps its exit code, and leaves the earlier steps published', () => {
    const work = path.join(dir, 'failing');
    fs.mkdirSync(work);
    const job = path.join(work, 'job.yaml');
    fs.writeFileSync(
      job,
      [
        'version: 1',
        'steps:',
        `  - features: { transactions: "${logs}/log-\${DATE}.parquet", as-of: "\${DATE}", out: features.parquet }`,
        '  - name: segments',
        '    fit: { input: missing.parquet, k: 3, out: seg }',
        '  - report: { run: seg, out: report.html }',
      ].join('\n'),
    );
    const r = cli(['run', job, '--date', D1]);
    expect(r.code).toBe(1);
    // The features step's own notice (invalid log rows) comes first; the error is the last line.
    expect(r.err.trimEnd().split('\n').at(-1)).toMatch(/^segtensor: error \[FILE_NOT_FOUND\]: step 2 \(fit 'segments'\): --input '.*missing\.parquet': no such file/);
    expect(r.out).toMatch(/^step 1\/3 features: ran in /m);
    expect(r.out).not.toMatch(/^step [23]\//m);
    expect(manifest(path.join(work, 'features.parquet')).command).toBe('features');
    expect(fs.existsSync(path.join(work, 'seg'))).toBe(false);
    expect(fs.existsSync(path.join(work, 'report.html'))).toBe(false);
  });
});

describe('segtensor run: job file errors', () => {
  const valid = `  - features: { transactions: log.parquet, as-of: "\${DATE}", out: features.parquet }`;
  const fit = (opts: string) => `  - fit: { input: features.parquet, ${opts} }`;
  const cases: [string, string, RegExp][] = [
    ['unknown option', fit('k: 6, out: seg, kk: 3'), /^steps\[1\]\.fit: unknown option 'kk' \(options: input, k, .*\)$/],
    ['wrong type', fit('k: six, out: seg'), /^steps\[1\]\.fit\.k: expected an integer in \[1, ∞\] or 'auto', got "six"$/],
    ['wrong type of flag', fit('k: 6, out: seg, report: "yes"'), /^steps\[1\]\.fit\.report: expected true or false, got "yes"$/],
    ['wrong structure', fit('k: 6, out: seg, features: { a: 1 }'), /^steps\[1\]\.fit\.features: expected a string, a number or a list of them \(<a,b,...>\), got \{"a":1\}$/],
    ['bad choice', fit('k: 6, out: seg, scale: huge'), /^steps\[1\]\.fit\.scale: expected one of standard, minmax, log1p, none, got "huge"$/],
    ['out of range', fit('k: 6, out: seg, n-init: 0'), /^steps\[1\]\.fit\.n-init: expected an integer in \[1, 1000\], got "0"$/],
    ['missing required option', fit('k: 6'), /^steps\[1\]\.fit\.out: required option missing \(--out <dir>\)$/],
    ['unknown variable', fit('k: 6, out: "seg-${DAY}"'), /^steps\[1\]\.fit\.out: unknown variable 'DAY' \(known: DATE, YESTERDAY, DATE_COMPACT, env:NAME\)$/],
    ['unknown command', '  - fitt: { input: features.parquet, k: 6, out: seg }', /^steps\[1\]\.fitt: unknown command 'fitt' \(did you mean 'fit'\?\) \(commands: fit, sweep, update, predict, report, features, churn-train, churn-evaluate, churn-predict\)$/],
    ['a command that is not a step', '  - doctor: {}', /^steps\[1\]\.doctor: 'doctor' is a command but not a job step \(steps: fit, sweep, /],
    ['two commands in one step', `${fit('k: 6, out: seg')}\n    sweep: { input: x.parquet, k: "2..4", out: sw }`, /^steps\[1\]: one command per step; got fit and sweep$/],
  ];

  it.each(cases)('%s: one line naming the key, exit 2, nothing written', (_what, step, message) => {
    const work = fs.mkdtempSync(path.join(dir, 'bad-'));
    fs.writeFileSync(path.join(work, 'log.parquet'), fs.readFileSync(path.join(logs, `log-${D1}.parquet`)));
    const job = path.join(work, 'bad.yaml');
    fs.writeFileSync(job, ['version: 1', 'steps:', valid, step, ''].join('\n'));
    const before = tree(work);
    const r = cli(['run', job, '--date', D1]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    const lines = r.err.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const prefix = `segtensor: error [BAD_JOB]: ${job}: `;
    expect(lines[0].startsWith(prefix), lines[0]).toBe(true);
    expect(lines[0].slice(prefix.length)).toMatch(message);
    // Step 1 is valid, but no step runs before every step is checked.
    expect(tree(work)).toEqual(before);
  });

  it('names the key for the outer shape, a cycle of vars and an unknown --var', () => {
    const work = fs.mkdtempSync(path.join(dir, 'bad-'));
    const job = path.join(work, 'bad.yaml');
    const run = (text: string, ...args: string[]) => {
      fs.writeFileSync(job, text);
      const r = cli(['run', job, ...args]);
      expect(r.code).toBe(2);
      expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
      return r.err.trim();
    };
    expect(run('version: 2\nsteps: []\n')).toBe(`segtensor: error [BAD_JOB]: ${job}: version: expected 1, got 2`);
    expect(run('version: 1\nstepz: []\n')).toBe(`segtensor: error [BAD_JOB]: ${job}: unknown key 'stepz' (did you mean 'steps'?) (keys: version, vars, steps)`);
    expect(run('version: 1\nvars: { a: "${b}", b: "${a}" }\nsteps:\n  - fit: { input: "${a}", k: 3, out: o }\n')).toBe(
      `segtensor: error [BAD_JOB]: ${job}: vars.a: variables refer to each other in a cycle: a → b → a`,
    );
    expect(run('version: 1\nvars: { root: x }\nsteps:\n  - fit: { input: "${root}", k: 3, out: o }\n', '--var', 'rot=y')).toBe(
      `segtensor: error [BAD_OPTION]: --var rot: ${job} declares no such variable (vars: root)`,
    );
    expect(run('version: 1\nsteps:\n  - fit: { input: x, k: 3, out: o\n')).toMatch(/^segtensor: error \[BAD_JOB\]: .*bad\.yaml: line \d+, column \d+: not valid YAML/);
    expect(run('version: 1\nsteps:\n  - fit: { input: "${env:RUN_JOB_SURELY_UNSET}", k: 3, out: o }\n')).toBe(
      `segtensor: error [BAD_JOB]: ${job}: steps[0].fit.input: environment variable RUN_JOB_SURELY_UNSET is not set (\${env:RUN_JOB_SURELY_UNSET})`,
    );
    expect(fs.readdirSync(work)).toEqual(['bad.yaml']);
  });
});
