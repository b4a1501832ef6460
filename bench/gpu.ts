/**
 * Issue 6's GPU figures, for a lent GPU machine (scripts/gpu-run.sh runs it there): the seeding
 * a fit would run (k-means‖ or greedy k-means++, timed on the device), then the `cuda` backend's
 * Lloyd step (assign + segment sums + centroid update, data resident on the device) against a
 * plain PyTorch Lloyd step (bench/torch_anchor.py) on the same data file, initial centroids (that
 * seeding's) and iteration count. The inertia of each tool's final centroids is computed by the
 * same assignment kernel and must agree.
 *
 *   node dist/bench/gpu.js [--out DIR] [--quick]
 *
 * --quick: 100,000 rows instead of 1,000,000 (a first check that everything runs). Writes
 * DIR/gpu-bench.json and DIR/gpu-bench.md (DIR: bench/results by default). Without a usable
 * GPU it prints the CUDA runtime's reason and exits 2.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError, type Assignment } from '../src/engine/backend.js';
import { createCudaBackend } from '../src/engine/backends/cuda.js';
import { autoInit, kmeansParallel, kmeansPlusPlus, lloydStep } from '../src/models/kmeans.js';
import { Random } from '../src/util/random.js';
import { benchData } from './data.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

interface Config {
  n: number;
  d: number;
  k: number;
  iters: number;
  /** The goal for ms per iteration. */
  goalMs: number;
}

interface Row {
  config: Config;
  /** The seeding a fit would run, and its time on the device. */
  seeding: string;
  seedMs: number;
  cudaMs: number;
  torchMs: number | null;
  torchNote?: string;
  inertiaCuda: number;
  inertiaTorch: number | null;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<number> {
  const quick = process.argv.includes('--quick');
  const outDir = path.resolve(arg('out') ?? path.join(root, 'bench', 'results'));
  const n = quick ? 100_000 : 1_000_000;
  const configs: Config[] = [
    { n, d: 32, k: 16, iters: 20, goalMs: 0.5 },
    { n, d: 256, k: 20_000, iters: 3, goalMs: 300 },
  ];
  let be;
  try {
    be = await createCudaBackend();
  } catch (e) {
    if (e instanceof BackendUnavailableError) {
      console.error(`gpu bench: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const torch = spawnSync('python3', ['-c', 'import torch; print(torch.__version__, torch.cuda.is_available())'], { encoding: 'utf8' });
  const torchInfo = torch.status === 0 ? torch.stdout.trim() : null;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-gpu-'));
  const rows: Row[] = [];
  try {
    for (const c of configs) {
      const data = benchData(c.n, c.d);
      const x = { data, nRows: c.n, nFeatures: c.d };
      const dx = be.upload(x);
      // The seeding a fit would run (k-means‖ from k = 32 on enough rows, else greedy
      // k-means++), timed on the device: at large k it is most of a fit. Both tools' Lloyd
      // steps then start from its centroids.
      const seeding = autoInit(c.n, c.k);
      const s0 = performance.now();
      const init = seeding === 'k-means||' ? await kmeansParallel(be, dx, x, c.k, new Random(0)) : await kmeansPlusPlus(be, dx, x, c.k, new Random(0));
      const seedMs = performance.now() - s0;
      let centroids: Float32Array = init.slice();
      let prev: Assignment | undefined;
      await lloydStep(be, dx, x, centroids, c.k); // warm-up (module load, first allocations)
      const ms: number[] = [];
      for (let i = 0; i < c.iters; i++) {
        const t0 = performance.now();
        const s = await lloydStep(be, dx, x, centroids, c.k, prev);
        ms.push(performance.now() - t0);
        centroids = s.centroids;
        prev = s.a;
      }
      const inertiaOf = async (cs: Float32Array) => (await be.assign(dx, cs, c.k)).inertia;
      const row: Row = { config: c, seeding, seedMs, cudaMs: median(ms), torchMs: null, inertiaCuda: await inertiaOf(centroids), inertiaTorch: null };
      if (torchInfo) {
        const dataFile = path.join(tmp, 'data.f32');
        const initFile = path.join(tmp, 'init.f32');
        const outFile = path.join(tmp, 'torch-centers.f32');
        fs.writeFileSync(dataFile, data);
        fs.writeFileSync(initFile, init);
        try {
          const o = execFileSync('python3', [path.join(root, 'bench', 'torch_anchor.py'), dataFile, String(c.n), String(c.d), initFile, String(c.k), String(c.iters), '--centers-out', outFile], {
            encoding: 'utf8',
            env: { ...process.env, PYTHONUNBUFFERED: '1' },
          });
          row.torchMs = (JSON.parse(o.trim().split('\n').pop()!) as { msPerIter: number }).msPerIter;
          const b = fs.readFileSync(outFile);
          row.inertiaTorch = await inertiaOf(new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice());
        } catch (e) {
          row.torchNote = `torch anchor failed: ${((e as Error).message ?? String(e)).split('\n')[0]}`;
        }
      } else row.torchNote = 'PyTorch not importable here';
      be.release(dx);
      rows.push(row);
      console.error(`${c.n}x${c.d}, k=${c.k}: cuda ${row.cudaMs.toFixed(3)} ms/iter, torch ${row.torchMs?.toFixed(3) ?? row.torchNote}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const date = new Date().toISOString();
  const lines = [
    `${be.description}; node ${process.version}; PyTorch ${torchInfo ?? 'absent'}; ${date}; command: \`node dist/bench/gpu.js ${process.argv.slice(2).join(' ')}\``,
    '',
    '| N × D, k | seeding on cuda | iters | cuda ms / iteration | goal | PyTorch ms / iteration | cuda ÷ PyTorch | inertia, PyTorch rel. to cuda |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const c = r.config;
    const rel = r.inertiaTorch !== null ? ((r.inertiaTorch - r.inertiaCuda) / r.inertiaCuda).toExponential(1) : '';
    lines.push(
      `| ${c.n} × ${c.d}, ${c.k} | ${r.seeding} ${(r.seedMs / 1000).toFixed(2)} s | ${c.iters} | ${r.cudaMs.toFixed(3)} | < ${c.goalMs} | ${r.torchMs?.toFixed(3) ?? r.torchNote} | ${r.torchMs ? (r.cudaMs / r.torchMs).toFixed(2) : ''} | ${rel} |`,
    );
  }
  const md = lines.join('\n') + '\n';
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'gpu-bench.json'), JSON.stringify({ bench: 'gpu', date, device: be.description, node: process.version, torch: torchInfo, rows }, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'gpu-bench.md'), md);
  process.stdout.write(md);
  return 0;
}

process.exitCode = await main();
