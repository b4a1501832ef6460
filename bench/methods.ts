/**
 * Every method (issue 15) as a whole `segtensor fit` process per backend, at 100,000 and
 * 1,000,000 rows, with its wall time, its own fit time (metrics.json's timings) and peak RSS
 * (`/usr/bin/time -v`). The same generated blobs (bench/data.ts: 32 Gaussian clusters) for every
 * method; k-prototypes reads two more integer columns as categories (`--categorical c0,c1`);
 * DBSCAN runs at 4 features too, where its grid index applies. Runs alternate between methods
 * and backends, repeated `--reps` times at the small size (`--reps-large` at the large one),
 * reported as median [min, max]. A run past `--timeout` seconds is killed and reported as such.
 *
 *   npm run build && npm run bench:methods -- [--rows 100000,1000000] [--features 16] [--k 8]
 *     [--backends native,wasm] [--reps 3] [--reps-large 1] [--timeout 600] [--only gmm,dbscan]
 *
 * Writes bench/results/<date>-<host>-methods.{json,md}.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, checkArgs, DATA_DIR, fmtSpread, machineDescription, resultStem, ROOT, spread, type Spread } from './bench-util.js';

const USAGE = `
npm run bench:methods -- [options]   (after npm run build)
  --rows LIST        table sizes (default 100000,1000000)
  --features D       features (default 16)
  --k K              segments for the methods that take k (default 8)
  --backends LIST    backends (default native,wasm)
  --reps N           repetitions at sizes below 1,000,000 rows (default 3)
  --reps-large N     repetitions from 1,000,000 rows (default 1)
  --timeout S        seconds before a run is killed (default 600)
  --only LIST        run only these cases (names as in the table)
`;

interface Case {
  name: string;
  args: (k: number) => string[];
  /** Features of its table (default --features). */
  features?: number;
  categorical?: number;
  /** Largest table it runs on (larger ones are reported as not run, with why). */
  maxRows?: number;
  why?: string;
}

const CASES: Case[] = [
  { name: 'kmeans', args: (k) => ['--method', 'kmeans', '--k', String(k)] },
  { name: 'minibatch', args: (k) => ['--method', 'minibatch', '--k', String(k)] },
  { name: 'gmm full', args: (k) => ['--method', 'gmm', '--k', String(k), '--covariance', 'full', '--max-iter', '20'] },
  { name: 'gmm diag', args: (k) => ['--method', 'gmm', '--k', String(k), '--covariance', 'diag', '--max-iter', '20'] },
  {
    name: 'dbscan',
    args: () => ['--method', 'dbscan', '--eps', 'auto', '--min-samples', '10'],
  },
  { name: 'dbscan 4 features', features: 4, args: () => ['--method', 'dbscan', '--eps', 'auto', '--min-samples', '10'] },
  { name: 'agglomerative ward', args: (k) => ['--method', 'agglomerative', '--k', String(k), '--linkage', 'ward'] },
  { name: 'bisecting', args: (k) => ['--method', 'bisecting', '--k', String(k)] },
  { name: 'kprototypes', categorical: 2, args: (k) => ['--method', 'kprototypes', '--k', String(k), '--categorical', 'c0,c1'] },
  { name: 'kmeans --pca 4', args: (k) => ['--method', 'kmeans', '--k', String(k), '--pca', '4'] },
];

interface Run {
  wall: number;
  fit: number;
  rssMiB: number;
  nIter: number | null;
  extra: Record<string, unknown>;
}

function tableFile(n: number, d: number, categorical: number): string {
  const f = path.join(DATA_DIR, `methods-${n}x${d}${categorical ? `-c${categorical}` : ''}.arrow`);
  if (!fs.existsSync(f)) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'make-table.js'), '--rows', String(n), '--features', String(d), '--categorical', String(categorical), '--out', f], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make-table ${n} × ${d}: ${String(r.stderr).trim()}`);
  }
  return f;
}

function main(): void {
  checkArgs({ values: ['rows', 'features', 'k', 'backends', 'reps', 'reps-large', 'timeout', 'only'], flags: [] }, USAGE);
  const sizes = (arg('rows') ?? '100000,1000000').split(',').map(Number);
  const d = Number(arg('features') ?? 16);
  const k = Number(arg('k') ?? 8);
  const backends = (arg('backends') ?? 'native,wasm').split(',');
  const reps = Number(arg('reps') ?? 3);
  const repsLarge = Number(arg('reps-large') ?? 1);
  const timeout = Number(arg('timeout') ?? 600);
  const only = arg('only')?.split(',');
  const cases = only ? CASES.filter((c) => only.includes(c.name)) : CASES;
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error('build first: npm run build');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bench-methods-'));
  const results: Record<string, Run[] | { skipped: string }> = {};
  const key = (c: Case, n: number, b: string) => `${c.name} | ${n} | ${b}`;
  for (const n of sizes) {
    const r = n >= 1_000_000 ? repsLarge : reps;
    for (let rep = 0; rep < r; rep++) {
      for (const c of cases) {
        for (const b of backends) {
          const id = key(c, n, b);
          if (c.maxRows && n > c.maxRows) {
            results[id] = { skipped: c.why ?? 'not run' };
            continue;
          }
          const prev = results[id];
          if (prev && 'skipped' in prev) continue; // timed out or failed once: not again
          const file = tableFile(n, c.features ?? d, c.categorical ?? 0);
          const out = path.join(tmp, 'out');
          const t0 = performance.now();
          // timeout(1) kills the whole process group (a spawnSync timeout would kill /usr/bin/time
          // and leave the fit running beside the next runs).
          const p = spawnSync('timeout', ['-s', 'KILL', String(timeout), '/usr/bin/time', '-v', process.execPath, cli, 'fit', '--input', file, '--id', 'customer_id', '--backend', b, '--seed', '0', '--quiet', '--out', out, ...c.args(k)], {
            encoding: 'utf8',
            maxBuffer: 64 << 20,
          });
          const wall = (performance.now() - t0) / 1000;
          fs.rmSync(out, { recursive: true, force: true });
          fs.rmSync(path.join(tmp, '.out.runs'), { recursive: true, force: true });
          if (p.status !== 0) {
            const why = p.status === 137 || p.status === 124 ? `killed after ${timeout} s` : `exit ${p.status}: ${String(p.stderr).trim().split('\n').find((l) => l.startsWith('segtensor')) ?? ''}`;
            results[id] = { skipped: why };
            console.log(`${id}: ${why}`);
            continue;
          }
          const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(p.stderr)?.[1] ?? NaN) / 1024;
          const fitS = Number(/fit ([\d.]+) s/.exec(p.stdout)?.[1] ?? NaN);
          const iters = /(\d+) iterations/.exec(p.stdout);
          const runs = (results[id] as Run[] | undefined) ?? [];
          runs.push({ wall, fit: fitS, rssMiB: rss, nIter: iters ? Number(iters[1]) : null, extra: {} });
          results[id] = runs;
          console.log(`${id}: ${wall.toFixed(2)} s (fit ${fitS.toFixed(2)} s), ${rss.toFixed(0)} MiB`);
        }
      }
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const L: string[] = [];
  L.push(`Machine: ${machineDescription()}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  L.push(
    `Command: \`npm run bench:methods -- --rows ${sizes.join(',')} --features ${d} --k ${k} --backends ${backends.join(',')} --reps ${reps} --reps-large ${repsLarge} --timeout ${timeout}${only ? ` --only ${only.join(',')}` : ''}\`; ` +
      `whole \`segtensor fit\` processes, median [min, max] of the runs (one run: its value).`,
  );
  L.push('');
  L.push('| method | rows × features | backend | whole process (s) | fit (s) | peak RSS (MiB) |');
  L.push('|---|---|---|---|---|---|');
  for (const c of cases) {
    for (const n of sizes) {
      for (const b of backends) {
        const res = results[key(c, n, b)];
        const shape = `${n.toLocaleString('en-US')} × ${c.features ?? d}`;
        if (!res) continue;
        if ('skipped' in res) {
          L.push(`| ${c.name} | ${shape} | ${b} | not run: ${res.skipped} | | |`);
          continue;
        }
        const s = (f: (r: Run) => number): Spread => spread(res.map(f));
        L.push(`| ${c.name} | ${shape} | ${b} | ${fmtSpread(s((r) => r.wall))} | ${fmtSpread(s((r) => r.fit))} | ${Math.max(...res.map((r) => r.rssMiB)).toFixed(0)} |`);
      }
    }
  }
  const md = L.join('\n') + '\n';
  console.log('\n' + md);
  const stem = resultStem(new Date().toISOString().slice(0, 10), 'methods', '.json');
  fs.writeFileSync(`${stem}.md`, md);
  fs.writeFileSync(`${stem}.json`, JSON.stringify({ sizes, d, k, backends, reps, repsLarge, timeout, results }, null, 2) + '\n');
  console.log(`written: ${path.relative(ROOT, stem)}.{json,md}`);
}

main();
