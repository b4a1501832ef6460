/**
 * Out-of-core fit (issue 17): the same K-Means fit of a generated table in memory and read in
 * blocks under a cgroup memory limit the table exceeds at least twice, side by side: wall time,
 * peak resident memory (`/usr/bin/time -v`), the cgroup's peak usage and failures, and how far
 * the two fits' centroids are apart. `--method minibatch` does the same for mini-batch K-Means
 * (issue 14), then `update`s the fitted model with the same table both ways; `--method sweep`
 * runs `sweep --k 2..4 --stability 1` (K-Means, 20 iterations) both ways and compares its rows.
 *
 *   npm run build && node dist/bench/out-of-core.js --rows 25000000 --limit 1.5GB
 *   node dist/bench/out-of-core.js --rows 100000000 --limit 4GB --no-cgroup --no-resident   (timing only)
 *   node dist/bench/out-of-core.js --rows 10000000 --limit 512MB --method minibatch
 *   node dist/bench/out-of-core.js --rows 10000000 --limit 512MB --method sweep
 *
 * The limit is enforced with a cgroup v1 memory controller (/sys/fs/cgroup/memory/<name>,
 * memory.limit_in_bytes; it counts the page cache the process fills too) that the script creates:
 * it needs root. Without it the script says so and stops. The table is float32 blobs (16 centres,
 * 32 features) and an int64 id, written as Arrow IPC in batches of 65,536 rows without ever being
 * whole in memory; it is kept in bench/data/ (git-ignored) for reruns.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArrowBatchWriter } from '../src/io/write-table.js';
import { Random } from '../src/util/random.js';
import { parseMemoryLimitOption } from '../src/cli/options.js';
import { arg, checkArgs } from './bench-util.js';

checkArgs({ values: ['rows', 'limit', 'table', 'json', 'method'], flags: ['no-cgroup', 'no-resident'] }, 'node dist/bench/out-of-core.js [--rows 25000000] [--limit 1.5GB] [--method kmeans|minibatch] [--table file.arrow] [--json out.json] [--no-cgroup] [--no-resident]');
const method = arg('method') ?? 'kmeans';
if (!['kmeans', 'minibatch', 'sweep'].includes(method)) throw new Error(`--method must be kmeans, minibatch or sweep; got ${method}`);
const rows = Number(arg('rows') ?? '25000000');
const d = 32;
const limitText = arg('limit') ?? '1.5GB';
// The CLI's own parser, so the bench's limit is the one the fit is given.
const limit = parseMemoryLimitOption(limitText);
const file = path.resolve(arg('table') ?? `bench/data/ooc-${rows}-${d}.arrow`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-ooc-'));
const bin = path.resolve('dist/src/cli/main.js');
const cgroup = '/sys/fs/cgroup/memory/segtensor-bench';

async function generate(): Promise<void> {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = new Random(17);
  const centres = Array.from({ length: 16 * d }, () => 6 * r.gauss());
  const w = new ArrowBatchWriter(file);
  const step = 65536;
  for (let start = 0; start < rows; start += step) {
    const n = Math.min(step, rows - start);
    const cols = Array.from({ length: d }, () => new Float32Array(n));
    const id = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      id[i] = BigInt(start + i + 1);
      const c = r.int(16);
      for (let f = 0; f < d; f++) cols[f][i] = centres[c * d + f] + r.gauss();
    }
    w.write([{ name: 'customer_id', values: id }, ...cols.map((values, f) => ({ name: `f${String(f).padStart(2, '0')}`, values }))]);
    await new Promise((res) => setImmediate(res)); // let the writer drain
  }
  await w.close();
}

/** The fit's options: Lloyd's fixed work, or mini-batch K-Means with scikit-learn's defaults. */
const fitArgs =
  method === 'kmeans'
    ? ['fit', '--k', '16', '--n-init', '1', '--max-iter', '20', '--tol', '0']
    : method === 'minibatch'
      ? ['fit', '--method', 'minibatch', '--k', '16']
      : ['sweep', '--k', '2..4', '--stability', '1', '--n-init', '1', '--max-iter', '20', '--tol', '0'];

function cgroupOf(limited: boolean) {
  return limited ? { cgroupPeakBytes: Number(fs.readFileSync(path.join(cgroup, 'memory.max_usage_in_bytes'), 'utf8')), cgroupFailures: Number(fs.readFileSync(path.join(cgroup, 'memory.failcnt'), 'utf8')) } : {};
}

function run(label: string, extra: string[], limited: boolean, command = fitArgs) {
  const out = path.join(work, label);
  const args = [bin, '--log-format', 'text', '-q', ...command, '--input', file, '--id', 'customer_id', '--seed', '1', '--out', out, ...extra];
  const timed = ['/usr/bin/time', '-v', process.execPath, ...args];
  if (limited) {
    fs.writeFileSync(path.join(cgroup, 'memory.max_usage_in_bytes'), '0');
    fs.writeFileSync(path.join(cgroup, 'memory.failcnt'), '0');
  }
  const t0 = performance.now();
  const p = limited
    ? spawnSync('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh', ...timed], { encoding: 'utf8' })
    : spawnSync(timed[0], timed.slice(1), { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(p.stderr)?.[1] ?? NaN) * 1024;
  if (p.status !== 0) throw new Error(`${label} failed (${p.status}): ${p.stderr.split('\n').filter((l) => /segtensor|Killed|Command terminated/.test(l)).join(' | ')}`);
  if (command[0] === 'sweep') {
    const sweep = JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8'));
    return { label, wallSeconds: Number(wall.toFixed(1)), peakRssBytes: rss, ...cgroupOf(limited), sweep: sweep.sweep as Record<string, number>[], recommendedK: sweep.recommendedK as number, fitSeconds: null, timingsMs: null, inertia: NaN, nIter: null, steps: null, centroids: [] as number[][] };
  }
  const model = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
  const metrics = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
  const cg = cgroupOf(limited);
  return { label, wallSeconds: Number(wall.toFixed(1)), peakRssBytes: rss, ...cg, fitSeconds: metrics.timingsMs ? metrics.timingsMs.fit / 1000 : null, timingsMs: metrics.timingsMs ?? null, inertia: metrics.inertia, nIter: metrics.nIter ?? null, steps: metrics.steps ?? model.params?.nSteps ?? null, centroids: model.centroidsScaled as number[][] };
}

await generate();
const tableBytes = fs.statSync(file).size;
console.log(`table ${file}: ${rows} rows × ${d} float32 features, ${(tableBytes / 2 ** 30).toFixed(2)} GiB; limit ${(limit / 2 ** 30).toFixed(2)} GiB (${(tableBytes / limit).toFixed(2)} × smaller than the table)`);
if (!fs.existsSync('/sys/fs/cgroup/memory')) {
  console.log('no cgroup v1 memory controller here: cannot enforce the limit; stopping');
  process.exit(1);
}
fs.mkdirSync(cgroup, { recursive: true });
fs.writeFileSync(path.join(cgroup, 'memory.limit_in_bytes'), String(Math.floor(limit)));
try {
  const skipResident = process.argv.includes('--no-resident');
  // --no-cgroup: the budget only as --memory-limit (the page cache may then keep the block cache).
  const blocks = run('blocks', ['--memory-limit', limitText], !process.argv.includes('--no-cgroup'));
  const resident = skipResident ? null : run('resident', [], false);
  const apart = (a: ReturnType<typeof run>, b: ReturnType<typeof run> | null) => {
    if (!b || method === 'sweep') return null;
    let worst = 0;
    for (let j = 0; j < 16; j++) for (let f = 0; f < d; f++) worst = Math.max(worst, Math.abs(a.centroids[j][f] - b.centroids[j][f]));
    return worst;
  };
  const worst = apart(blocks, resident);
  // Mini-batch: the fitted model follows the same table through `update`, both ways.
  const updateArgs = ['update', '--model', path.join(work, 'blocks')];
  const updateBlocks = method === 'minibatch' ? run('update-blocks', ['--memory-limit', limitText], !process.argv.includes('--no-cgroup'), updateArgs) : null;
  const updateResident = method === 'minibatch' && !skipResident ? run('update-resident', [], false, updateArgs) : null;
  const strip = ({ centroids: _c, ...rest }: ReturnType<typeof run>) => rest;
  // The sweep: the largest relative difference between the two runs' figures, over every k and column.
  type Swept = { sweep?: Record<string, number>[] };
  const bs = (blocks as Swept).sweep;
  const rs = (resident as Swept | null)?.sweep;
  const sweepApart = bs && rs ? Math.max(...bs.flatMap((row, i) => ['inertia', 'silhouette', 'calinski_harabasz', 'davies_bouldin', 'stability_ari', 'min_jaccard'].map((c) => Math.abs(row[c] - rs[i][c]) / Math.max(Math.abs(rs[i][c]), 1e-12)))) : null;
  const result = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    rows,
    features: d,
    method,
    tableBytes,
    limitBytes: limit,
    blocks: strip(blocks),
    resident: resident ? strip(resident) : null,
    maxCentroidDifference: worst,
    ...(method === 'sweep' ? { sweepMaxRelativeDifference: sweepApart } : {}),
    ...(updateBlocks ? { updateBlocks: strip(updateBlocks), updateResident: updateResident ? strip(updateResident) : null, updateMaxCentroidDifference: updateResident ? apart(updateBlocks, updateResident) : null } : {}),
  };
  console.log(JSON.stringify(result, null, 2));
  const outFile = arg('json') ?? '';
  if (outFile) fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
