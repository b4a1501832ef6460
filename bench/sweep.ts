/**
 * The k sweep against fitting each k on its own (issue 14), whole processes from the same Arrow
 * file: `segtensor sweep --k 2..12` (one read and preprocessing, then per k one fit, the metrics
 * and `--stability` bootstrap refits) and the same sweep with `--stability 0` (the like-for-like
 * comparison with separate fits: the same fits and metrics), against `segtensor fit --k K` run
 * once per k. Defaults (n_init 3, tol 1e-4) on both sides; runs alternate (sweep, sweep without
 * stability, the fits), repeated, reported as median [min, max].
 *
 *   npm run build && npm run bench:sweep -- [--rows 1000000] [--features 32] [--k 2..12] [--stability 5] [--reps 3]
 *
 * Writes bench/results/<date>-<host>-sweep.{json,md}.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, arrowFile, checkArgs, fmtSpread, machineDescription, resultStem, ROOT, spread, type Spread } from './bench-util.js';
import { parseKRange } from '../src/pipeline/k-range.js';

const USAGE = `
npm run bench:sweep -- [options]   (after npm run build)
  --rows N          rows of the generated table (default 1000000)
  --features D      features (default 32)
  --k RANGE         the k values (default 2..12)
  --stability R     bootstrap refits per k in the sweep (default 5)
  --reps N          repetitions (default 3)
`;

interface Timed {
  wall: number;
  perK: Record<string, number>;
}

function main(): void {
  checkArgs({ values: ['rows', 'features', 'k', 'stability', 'reps'], flags: [] }, USAGE);
  const n = Number(arg('rows') ?? 1_000_000);
  const d = Number(arg('features') ?? 32);
  const kText = arg('k') ?? '2..12';
  const ks = parseKRange(kText);
  const stability = Number(arg('stability') ?? 5);
  const reps = Number(arg('reps') ?? 3);
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error('build first: npm run build');
  const file = arrowFile(n, d);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bench-sweep-'));
  const common = ['--input', file, '--id', 'customer_id', '--backend', 'native', '--seed', '0', '--quiet'];
  const run = (args: string[]) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const wall = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`segtensor ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
    return wall;
  };
  const sweepRuns: Timed[] = [];
  const plainRuns: Timed[] = [];
  const fitRuns: Timed[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const [stab, into] of [[stability, sweepRuns], [0, plainRuns]] as const) {
      const out = path.join(tmp, `sweep-${rep}-${stab}`);
      const wall = run(['sweep', ...common, '--k', kText, '--stability', String(stab), '--out', out]);
      const j = JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8')) as { sweep: { k: number; seconds: number }[] };
      into.push({ wall, perK: Object.fromEntries(j.sweep.map((r) => [r.k, r.seconds])) });
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(path.join(tmp, `.sweep-${rep}-${stab}.runs`), { recursive: true, force: true });
    }
    const perK: Record<string, number> = {};
    let wall = 0;
    for (const k of ks) {
      const out = path.join(tmp, `fit-${rep}-${k}`);
      perK[k] = run(['fit', ...common, '--k', String(k), '--out', out]);
      wall += perK[k];
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(path.join(tmp, `.fit-${rep}-${k}.runs`), { recursive: true, force: true });
    }
    fitRuns.push({ wall, perK });
    console.log(`rep ${rep + 1}/${reps}: sweep ${sweepRuns[rep].wall.toFixed(1)} s, sweep without stability ${plainRuns[rep].wall.toFixed(1)} s, ${ks.length} fits ${wall.toFixed(1)} s`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const col = (runs: Timed[], k: number): Spread => spread(runs.map((r) => r.perK[k]));
  const L: string[] = [];
  L.push(`Machine: ${machineDescription()}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  L.push(`Command: \`npm run bench:sweep -- --rows ${n} --features ${d} --k ${kText} --stability ${stability} --reps ${reps}\`; median [min, max] of ${reps} runs.`);
  L.push('');
  L.push(`| k | sweep, --stability ${stability} (s in the sweep) | sweep, --stability 0 (s) | \`segtensor fit --k k\`, whole process (s) |`);
  L.push('|---|---|---|---|');
  for (const k of ks) L.push(`| ${k} | ${fmtSpread(col(sweepRuns, k))} | ${fmtSpread(col(plainRuns, k))} | ${fmtSpread(col(fitRuns, k))} |`);
  L.push(
    `| all, whole processes | ${fmtSpread(spread(sweepRuns.map((r) => r.wall)))} | ${fmtSpread(spread(plainRuns.map((r) => r.wall)))} | ${fmtSpread(spread(fitRuns.map((r) => r.wall)))} (${ks.length} processes) |`,
  );
  const md = L.join('\n') + '\n';
  console.log('\n' + md);
  const stem = resultStem(new Date().toISOString().slice(0, 10), 'sweep', '.json');
  fs.writeFileSync(`${stem}.md`, md);
  fs.writeFileSync(`${stem}.json`, JSON.stringify({ n, d, ks, stability, reps, sweep: sweepRuns, sweepNoStability: plainRuns, fits: fitRuns }, null, 2) + '\n');
  console.log(`written: ${path.relative(ROOT, stem)}.{json,md}`);
}

main();
