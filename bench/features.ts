/**
 * `segtensor features` at nightly scale (issue 17): whole process against whole process, on a
 * generated population, with rows/s, wall, CPU and peak RSS per run, and the output checked
 * against a reference table.
 *
 *   npm run build && npm run bench:features -- --population bench/data/pop1m [--runs 3] \
 *     [--baseline /path/to/older/dist/src/cli/main.js] [--reference ref.parquet --reference-meta ref.parquet.meta.json]
 *
 * Runs `node dist/src/cli/main.js features --transactions <population>/transactions.parquet
 * --customers <population>/customers.parquet --order-col order_id --as-of 2024-01-01
 * --churn-window 90` (the options of bench/RESULTS.md) under `/usr/bin/time -v`, `--runs` times;
 * with `--baseline`, the baseline build runs as well, the two alternating. The feature table of
 * the last run of each tool is compared with `--reference` (else with the baseline's) by
 * bench/features-compare.ts: every integer, text, date and boolean column equal and the metadata's
 * counts equal; doubles within `--max-rel` (default 4e-15, ~18 ulps) or `--max-abs` (default
 * 1e-11), the run-to-run spread of DuckDB's parallel sums (two runs of one build differ by up to
 * 1e-15 relative, 9e-12 absolute on the 1 M population). Holds `/tmp/bench.lock` (waits while
 * another bench holds it). Writes bench/results/<date>-<host>-features.json; exits 1 when an
 * output differs.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, arg, checkArgs, fmt, fmtSpread, machineDescription, resultStem, spread, type Spread } from './bench-util.js';
import { compareFeatures, type FeatureComparison } from './features-compare.js';

const USAGE = `
usage: node dist/bench/features.js --population <dir with transactions.parquet and customers.parquet>
  [--runs 1] [--baseline <older main.js>] [--reference <features.parquet>] [--reference-meta <meta.json>]
  [--as-of 2024-01-01] [--churn-window 90] [--work <dir>] [--max-rel 4e-15] [--max-abs 1e-11] [--no-save]
`;

interface Run {
  tool: string;
  run: number;
  wallS: number;
  userS: number;
  sysS: number;
  maxRssMiB: number;
  rowsRead: number;
  rowsPerS: number;
  /** Load average (1 min) just before the run: the machine is shared. */
  load1: number;
}

const LOCK = '/tmp/bench.lock';

function takeLock(): void {
  for (let waited = 0; fs.existsSync(LOCK); waited += 10) {
    if (waited % 60 === 0) process.stderr.write(`waiting for ${LOCK} (${fs.readFileSync(LOCK, 'utf8').trim()})\n`);
    spawnSync('sleep', ['10']);
  }
  fs.writeFileSync(LOCK, `features bench, pid ${process.pid}\n`);
  const release = () => {
    if (fs.existsSync(LOCK) && fs.readFileSync(LOCK, 'utf8').includes(`pid ${process.pid}`)) fs.rmSync(LOCK);
  };
  process.on('exit', release);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
}

/** `/usr/bin/time -v` fields: wall, user, system seconds and peak RSS. */
function parseTime(stderr: string): { wallS: number; userS: number; sysS: number; maxRssMiB: number } {
  const field = (re: RegExp) => stderr.match(re)?.[1];
  const wall = field(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/) ?? 'NaN';
  const wallS = wall.split(':').reduce((acc, p) => acc * 60 + Number(p), 0);
  return {
    wallS,
    userS: Number(field(/User time \(seconds\): ([\d.]+)/)),
    sysS: Number(field(/System time \(seconds\): ([\d.]+)/)),
    maxRssMiB: Number(field(/Maximum resident set size \(kbytes\): (\d+)/)) / 1024,
  };
}

async function main(): Promise<void> {
  checkArgs(
    { values: ['population', 'runs', 'baseline', 'reference', 'reference-meta', 'as-of', 'churn-window', 'work', 'max-rel', 'max-abs'], flags: ['no-save'] },
    USAGE,
  );
  const population = arg('population');
  if (!population) throw new Error(USAGE.trim());
  const runs = Number(arg('runs') ?? 1);
  const asOf = arg('as-of') ?? '2024-01-01';
  const churnWindow = arg('churn-window') ?? '90';
  const maxRel = Number(arg('max-rel') ?? 4e-15);
  const maxAbs = Number(arg('max-abs') ?? 1e-11);
  const work = arg('work') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bench-features-'));
  const tools: [string, string][] = [['current', path.join(ROOT, 'dist', 'src', 'cli', 'main.js')]];
  const baseline = arg('baseline');
  if (baseline) tools.push(['baseline', path.resolve(baseline)]);
  if (!fs.existsSync('/usr/bin/time')) throw new Error('needs /usr/bin/time (GNU time) for peak RSS');

  takeLock();
  const results: Run[] = [];
  const outOf = (tool: string) => path.join(work, tool, 'features.parquet');
  const date = new Date().toISOString();
  for (let r = 0; r < runs; r++) {
    // Alternate which tool goes first, so that a change in the machine's load hits both.
    for (const [tool, main] of r % 2 === 0 ? tools : [...tools].reverse()) {
      const args = [
        main, 'features',
        '--transactions', path.join(population, 'transactions.parquet'),
        '--customers', path.join(population, 'customers.parquet'),
        '--order-col', 'order_id', '--as-of', asOf, '--churn-window', churnWindow,
        '--out', outOf(tool),
      ];
      const load1 = os.loadavg()[0];
      const p = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (p.status !== 0) throw new Error(`${tool}: features exited ${p.status ?? p.signal}: ${String(p.stderr).trim().split('\n').slice(-6).join(' | ')}`);
      const t = parseTime(p.stderr);
      const meta = JSON.parse(fs.readFileSync(`${outOf(tool)}.meta.json`, 'utf8'));
      const rowsRead = Number(meta.rows.read);
      const run: Run = { tool, run: r + 1, ...t, rowsRead, rowsPerS: rowsRead / t.wallS, load1 };
      results.push(run);
      console.log(
        `${tool} run ${r + 1}: ${fmt(t.wallS)} s wall (user ${fmt(t.userS)} s, sys ${fmt(t.sysS)} s), peak RSS ${fmt(t.maxRssMiB)} MiB, ` +
          `${Math.round(run.rowsPerS).toLocaleString('en-US')} rows/s (load ${load1.toFixed(2)} before)`,
      );
    }
  }

  // Copies, not the run-store links: a later run of the same tool would move them.
  const reference = arg('reference') ?? (baseline ? outOf('baseline') : undefined);
  const referenceMeta = arg('reference-meta') ?? (reference ? `${reference}.meta.json` : undefined);
  const comparisons: Record<string, FeatureComparison> = {};
  if (reference) {
    for (const [tool] of tools) {
      if (path.resolve(outOf(tool)) === path.resolve(reference)) continue;
      const c = await compareFeatures(reference, outOf(tool), {
        maxRel, maxAbs, metaA: referenceMeta, metaB: `${outOf(tool)}.meta.json`, log: (l) => console.log(`  ${tool}: ${l}`),
      });
      comparisons[tool] = c;
      console.log(`${tool} vs ${reference}: ${c.identical ? 'same output' : `DIFFERENT: ${c.problems.join('; ')}`}`);
    }
  }
  const summary: Record<string, { wallS: Spread; rowsPerS: Spread; cpuS: Spread; maxRssMiB: number }> = {};
  for (const [tool] of tools) {
    const mine = results.filter((x) => x.tool === tool);
    summary[tool] = {
      wallS: spread(mine.map((x) => x.wallS)),
      rowsPerS: spread(mine.map((x) => x.rowsPerS)),
      cpuS: spread(mine.map((x) => x.userS + x.sysS)),
      maxRssMiB: Math.max(...mine.map((x) => x.maxRssMiB)),
    };
    console.log(`${tool}: wall ${fmtSpread(summary[tool].wallS, ' s')}, rows/s ${fmtSpread(summary[tool].rowsPerS)}, CPU ${fmtSpread(summary[tool].cpuS, ' s')}, peak RSS ${fmt(summary[tool].maxRssMiB)} MiB`);
  }
  const record = {
    bench: 'features',
    date,
    machine: machineDescription(),
    node: process.version,
    population: path.resolve(population),
    command: `node dist/src/cli/main.js features --transactions ${population}/transactions.parquet --customers ${population}/customers.parquet --order-col order_id --as-of ${asOf} --churn-window ${churnWindow} --out <work>/features.parquet`,
    tools: Object.fromEntries(tools),
    runs: results,
    summary,
    reference: reference ?? null,
    comparisons,
  };
  if (!process.argv.includes('--no-save')) {
    const file = `${resultStem(date, 'features')}.json`;
    fs.writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
    console.log(`wrote ${path.relative(ROOT, file)}`);
  }
  if (Object.values(comparisons).some((c) => !c.identical)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
