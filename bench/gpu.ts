/**
 * Issue 18's GPU figures, for a lent GPU machine (scripts/gpu-run.sh runs it there):
 *
 * 1. Lloyd steps, data resident: 1M × 32, k = 16 (goal ≤ 0.2 ms a step) and 1M × 256,
 *    k = 20,000 (goal ≤ 200 ms), the `cuda` backend against a plain PyTorch Lloyd step in fp32 and
 *    with TF32 matmuls (bench/torch_anchor.py), and FAISS-GPU's k-means where installed
 *    (bench/faiss_gpu_anchor.py): the same data, the same initial centroids (the seeding a fit
 *    would run, timed on the device) and iterations; each tool's final centroids scored by the
 *    same assignment kernel.
 * 2. A whole fit, seeding included: KMeans k = 20,000, 20 iterations, one init, on 1M × 256, from
 *    the host rows (upload, seeding, Lloyd); goal ≤ 30 s. Run twice: the models must be the same
 *    bits. Then the same as a whole `segtensor fit --backend cuda` process from an Arrow file.
 * 3. Labels: the `cuda` labels for step 1's final centroids against `native`'s at k = 16 (every
 *    row; the differences must be near-ties), and the tensor-core path's against the float64
 *    argmin on a sample of rows at k = 20,000.
 * 4. A table twice the GPU's free memory (a PyTorch process holds the rest of the memory), fitted
 *    by streaming from the same initial centroids as the resident fit: the same centroids, bit
 *    for bit.
 *
 *   node dist/bench/gpu.js [--out DIR] [--quick | --rehearse] [--skip-stream]
 *
 * --quick: 100,000 rows and k = 2,000 in place of 20,000 (a first check that everything runs).
 * --rehearse: a few thousand rows, for a dry run without a GPU through a stand-in addon
 * (SEGTENSOR_CUDA_ADDON=test/engine/cuda-standin.cjs): checks this script, measures nothing.
 * Writes DIR/gpu-bench.json and DIR/gpu-bench.md (DIR: bench/results by default). Without a
 * usable GPU it prints the CUDA runtime's reason and exits 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError, type Assignment, type Backend } from '../src/engine/backend.js';
import { createCudaBackend, loadCudaAddon } from '../src/engine/backends/cuda.js';
import { createNativeBackend } from '../src/engine/backends/native.js';
import { autoInit, KMeans, kmeansParallel, kmeansPlusPlus, lloydStep } from '../src/models/kmeans.js';
import { Random } from '../src/util/random.js';
import { benchData } from './data.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

interface StepConfig {
  n: number;
  d: number;
  k: number;
  iters: number;
  /** The issue's goal for ms per step (null: none at this size). */
  goalMs: number | null;
}

interface Anchor {
  msPerIter: number | null;
  note?: string;
  /** Inertia of its final centroids, relative to cuda's (same kernel scores both). */
  inertiaRel?: number;
}

interface StepRow {
  config: StepConfig;
  seeding: string;
  seedMs: number;
  cudaMs: number;
  cudaMsAll: number[];
  inertiaCuda: number;
  torchFp32: Anchor;
  torchTf32: Anchor;
  faissGpu: Anchor;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function sqDist64(x: Float32Array, i: number, c: Float32Array, j: number, d: number): number {
  let q = 0;
  for (let f = 0; f < d; f++) q += (x[i * d + f] - c[j * d + f]) ** 2;
  return q;
}

/** Runs an anchor script; its last stdout line is JSON with msPerIter. */
function anchor(script: string, args: string[], centersOut: string, score: (c: Float32Array) => Promise<number>, inertiaCuda: number): Promise<Anchor> {
  const r = spawnSync('python3', [path.join(root, 'bench', script), ...args, '--centers-out', centersOut], { encoding: 'utf8', env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status === 3) return Promise.resolve({ msPerIter: null, note: `not installed (${(JSON.parse(last) as { error: string }).error})` });
  if (r.status !== 0) return Promise.resolve({ msPerIter: null, note: `failed: ${(r.stderr || last).trim().split('\n').pop()}` });
  const o = JSON.parse(last) as { msPerIter: number };
  const b = fs.readFileSync(centersOut);
  return score(new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice()).then((inertia) => ({ msPerIter: o.msPerIter, inertiaRel: (inertia - inertiaCuda) / inertiaCuda }));
}

/** A process holding GPU memory so that about `leaveBytes` stay free; resolves once it holds it. */
async function holdGpuMemory(freeBytes: number, leaveBytes: number): Promise<{ release: () => void } | string> {
  const hold = Math.max(0, freeBytes - leaveBytes);
  const p = spawn('python3', ['-c', 'import sys, torch\nb = torch.empty(int(sys.argv[1]), dtype=torch.uint8, device="cuda")\nprint("ready", flush=True)\nsys.stdin.read()', String(hold)], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve) => {
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.stdout.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve({ release: () => p.stdin.end() });
    });
    p.on('exit', (code) => resolve(`the memory holder exited (${code}): ${err.trim().split('\n').pop() ?? ''}`));
  });
}

async function main(): Promise<number> {
  const quick = process.argv.includes('--quick');
  const rehearse = process.argv.includes('--rehearse');
  const outDir = path.resolve(arg('out') ?? path.join(root, 'bench', 'results'));
  const n = rehearse ? 4000 : quick ? 100_000 : 1_000_000;
  const bigK = rehearse ? 64 : quick ? 2000 : 20_000;
  const steps: StepConfig[] = [
    { n, d: rehearse ? 8 : 32, k: rehearse ? 4 : 16, iters: rehearse ? 3 : 20, goalMs: rehearse || quick ? null : 0.2 },
    { n, d: rehearse ? 16 : 256, k: bigK, iters: rehearse ? 2 : 3, goalMs: rehearse || quick ? null : 200 },
  ];
  let be: Backend;
  try {
    be = await createCudaBackend();
  } catch (e) {
    if (e instanceof BackendUnavailableError) {
      console.error(`gpu bench: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const native = await createNativeBackend().catch(() => null);
  const torch = spawnSync('python3', ['-c', 'import torch; print(torch.__version__, torch.cuda.is_available())'], { encoding: 'utf8' });
  const torchInfo = torch.status === 0 ? torch.stdout.trim() : null;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-gpu-'));
  const log = (s: string) => console.error(`gpu bench: ${s}`);
  const rows: StepRow[] = [];
  const result: Record<string, unknown> = {};
  try {
    // 1. Lloyd steps, and 3. labels, on the same data.
    for (const c of steps) {
      const data = benchData(c.n, c.d);
      const x = { data, nRows: c.n, nFeatures: c.d };
      const dx = be.upload(x);
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
      const score = async (cs: Float32Array) => (await be.assign(dx, cs, c.k)).inertia;
      const inertiaCuda = await score(centroids);
      const files = { data: path.join(tmp, 'data.f32'), init: path.join(tmp, 'init.f32'), out: path.join(tmp, 'centers.f32') };
      fs.writeFileSync(files.data, data);
      fs.writeFileSync(files.init, init);
      const common = [files.data, String(c.n), String(c.d), files.init, String(c.k), String(c.iters)];
      const none: Anchor = { msPerIter: null, note: 'PyTorch not importable here' };
      const row: StepRow = {
        config: c,
        seeding,
        seedMs,
        cudaMs: median(ms),
        cudaMsAll: ms,
        inertiaCuda,
        torchFp32: torchInfo ? await anchor('torch_anchor.py', common, files.out, score, inertiaCuda) : none,
        torchTf32: torchInfo ? await anchor('torch_anchor.py', [...common, '--tf32'], files.out, score, inertiaCuda) : none,
        faissGpu: await anchor('faiss_gpu_anchor.py', common, files.out, score, inertiaCuda),
      };
      rows.push(row);
      log(`${c.n}x${c.d}, k=${c.k}: seeding ${(seedMs / 1000).toFixed(2)} s, cuda ${row.cudaMs.toFixed(3)} ms/step, torch fp32 ${row.torchFp32.msPerIter?.toFixed(3) ?? row.torchFp32.note}, tf32 ${row.torchTf32.msPerIter?.toFixed(3) ?? row.torchTf32.note}, faiss ${row.faissGpu.msPerIter?.toFixed(3) ?? row.faissGpu.note}`);
      // 3. Labels for the final centroids.
      const labels = (await (await be.assign(dx, centroids, c.k)).read()).labels;
      if (c === steps[0]) {
        if (native) {
          const nx = native.upload(x);
          const nl = (await (await native.assign(nx, centroids, c.k)).read()).labels;
          native.release(nx);
          let differ = 0;
          let notNearTie = 0;
          for (let i = 0; i < c.n; i++) {
            if (nl[i] === labels[i]) continue;
            differ++;
            const a = sqDist64(data, i, centroids, labels[i], c.d);
            const b = sqDist64(data, i, centroids, nl[i], c.d);
            if (Math.abs(a - b) > 1e-5 * Math.max(a, b)) notNearTie++;
          }
          result.labelsVsNative = { rows: c.n, k: c.k, differ, notNearTie, nearTie: 'float64 distances within 1e-5 relative' };
        } else result.labelsVsNative = { note: 'native backend not loadable here' };
      } else {
        const sample = rehearse ? 100 : 300;
        let wrong = 0;
        for (let s = 0; s < sample; s++) {
          const i = Math.floor((s * c.n) / sample);
          let best = Infinity;
          let arg = 0;
          for (let j = 0; j < c.k; j++) {
            const q = sqDist64(data, i, centroids, j, c.d);
            if (q < best) {
              best = q;
              arg = j;
            }
          }
          if (labels[i] !== arg) wrong++;
        }
        result.tensorCoreLabels = { sample, k: c.k, d: c.d, differFromFloat64Argmin: wrong, tensorCores: c.k >= 512 && c.d >= 32 };
      }
      be.release(dx);
    }

    // 2. Whole fits, seeding included, twice.
    {
      const d = rehearse ? 16 : 256;
      const data = benchData(n, d, 2);
      const x = { data, nRows: n, nFeatures: d };
      const fit = async () => {
        const t0 = performance.now();
        const r = await new KMeans({ k: bigK, maxIter: rehearse ? 3 : 20, nInit: 1, tol: 0, seed: 0 }).fit(be, x);
        return { r, s: (performance.now() - t0) / 1000 };
      };
      const a = await fit();
      const b = await fit();
      result.wholeFit = {
        n,
        d,
        k: bigK,
        maxIter: rehearse ? 3 : 20,
        seconds: [a.s, b.s],
        initSeconds: a.r.ms.init / 1000,
        lloydSeconds: a.r.ms.lloyd / 1000,
        init: a.r.init,
        goalSeconds: rehearse || quick ? null : 30,
        sameBits: sameBits(a.r.centroids, b.r.centroids) && a.r.labels.every((l, i) => l === b.r.labels[i]) && a.r.inertia === b.r.inertia,
      };
      log(`whole fit ${n}x${d}, k=${bigK}: ${a.s.toFixed(1)} s and ${b.s.toFixed(1)} s (seeding ${(a.r.ms.init / 1000).toFixed(1)} s), same bits: ${(result.wholeFit as { sameBits: boolean }).sameBits}`);
    }

    // 2b. The same fit as a whole `segtensor fit` process from an Arrow file (reading, scaling,
    // writing the outputs included), once; its failure line is recorded if the pack lacks
    // something it loads.
    {
      const d = rehearse ? 16 : 256;
      const file = path.join(tmp, 'fit.arrow');
      const mk = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'make-table.js'), '--rows', String(n), '--features', String(d), '--out', file], { encoding: 'utf8' });
      if (mk.status !== 0) result.wholeProcess = { note: `table not written: ${(mk.stderr || '').trim().split('\n').pop()}` };
      else {
        const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
        const args = [cli, 'fit', '--input', file, '--id', 'customer_id', '--backend', 'cuda', '--k', String(bigK), '--max-iter', String(rehearse ? 3 : 20), '--n-init', '1', '--tol', '0', '--seed', '0', '--quiet', '--out', path.join(tmp, 'fit-out')];
        const t0 = performance.now();
        const p = spawnSync(process.execPath, args, { encoding: 'utf8', env: process.env });
        const seconds = (performance.now() - t0) / 1000;
        result.wholeProcess =
          p.status === 0
            ? { n, d, k: bigK, seconds, goalSeconds: rehearse || quick ? null : 30, command: `segtensor ${args.slice(1).join(' ').replaceAll(tmp, '$TMP')}` }
            : { note: `exit ${p.status}: ${(p.stderr || '').trim().split('\n')[0]}` };
      }
      log(`whole process: ${JSON.stringify(result.wholeProcess)}`);
    }

    // 4. A table twice the free memory, streamed, against resident.
    if (rehearse || process.argv.includes('--skip-stream')) result.streaming = { note: rehearse ? 'not rehearsed (the stand-in does not stream)' : 'skipped (--skip-stream)' };
    else if (!torchInfo) result.streaming = { note: 'not run: the memory holder needs PyTorch' };
    else {
      const d = 32;
      const k = 16;
      const leave = (quick ? 1 : 7) * 2 ** 30; // free memory to leave; the table is twice that
      const rowsBig = Math.floor((2 * leave) / (4 * d) / 2048) * 2048;
      const base = benchData(1_000_000, d, 3);
      const data = new Float32Array(rowsBig * d);
      for (let at = 0; at < data.length; at += base.length) data.set(base.subarray(0, Math.min(base.length, data.length - at)), at);
      const x = { data, nRows: rowsBig, nFeatures: d };
      const init = base.slice(0, k * d);
      const km = new KMeans({ k, maxIter: 5, nInit: 1, tol: 0, init });
      const t0 = performance.now();
      const resident = await km.fit(be, x);
      const residentS = (performance.now() - t0) / 1000;
      const addon = loadCudaAddon();
      const probe = addon.probe();
      const holder = probe.ok ? await holdGpuMemory(probe.freeBytes, leave) : 'probe failed';
      if (typeof holder === 'string') result.streaming = { note: `not run: ${holder}` };
      else {
        try {
          const free = (addon.probe() as { freeBytes: number }).freeBytes;
          const t1 = performance.now();
          const streamed = await km.fit(be, x);
          const streamedS = (performance.now() - t1) / 1000;
          result.streaming = {
            rows: rowsBig,
            d,
            k,
            tableGiB: (4 * rowsBig * d) / 2 ** 30,
            freeGiBDuring: free / 2 ** 30,
            residentSeconds: residentS,
            streamedSeconds: streamedS,
            sameCentroidBits: sameBits(resident.centroids, streamed.centroids),
            sameInertia: resident.inertia === streamed.inertia,
          };
        } finally {
          holder.release();
        }
      }
      log(`streaming: ${JSON.stringify(result.streaming)}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const date = new Date().toISOString();
  const fmt = (a: Anchor) => (a.msPerIter !== null ? a.msPerIter.toFixed(3) : (a.note ?? ''));
  const ratio = (a: Anchor, ms: number) => (a.msPerIter ? (ms / a.msPerIter).toFixed(2) : '');
  const lines = [
    `${be.description}; node ${process.version}; PyTorch ${torchInfo ?? 'absent'}; ${date}; command: \`node dist/bench/gpu.js ${process.argv.slice(2).join(' ')}\``,
    '',
    '| N × D, k | seeding on cuda | steps | cuda ms / step | goal | PyTorch fp32 | PyTorch TF32 | FAISS-GPU | cuda ÷ fp32, ÷ TF32 |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const c = r.config;
    lines.push(
      `| ${c.n} × ${c.d}, ${c.k} | ${r.seeding.replace('||', '‖')} ${(r.seedMs / 1000).toFixed(2)} s | ${c.iters} | ${r.cudaMs.toFixed(3)} | ${c.goalMs !== null ? `≤ ${c.goalMs}` : ''} | ${fmt(r.torchFp32)} | ${fmt(r.torchTf32)} | ${fmt(r.faissGpu)} | ${ratio(r.torchFp32, r.cudaMs)}, ${ratio(r.torchTf32, r.cudaMs)} |`,
    );
  }
  lines.push('', 'Inertia of each anchor\'s final centroids relative to cuda\'s (same kernel): ' + rows.map((r) => `k=${r.config.k}: fp32 ${r.torchFp32.inertiaRel?.toExponential(1) ?? '-'}, TF32 ${r.torchTf32.inertiaRel?.toExponential(1) ?? '-'}, FAISS ${r.faissGpu.inertiaRel?.toExponential(1) ?? '-'}`).join('; '));
  for (const key of ['wholeFit', 'wholeProcess', 'labelsVsNative', 'tensorCoreLabels', 'streaming']) lines.push('', `${key}: \`${JSON.stringify(result[key])}\``);
  const md = lines.join('\n') + '\n';
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'gpu-bench.json'), JSON.stringify({ bench: 'gpu', date, device: be.description, node: process.version, torch: torchInfo, rows, ...result }, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'gpu-bench.md'), md);
  process.stdout.write(md);
  return 0;
}

process.exitCode = await main();
