/**
 * Seeding at large k: init time and the inertia after a fixed number of Lloyd iterations, for
 * greedy k-means++ against k-means‖ (and random rows), on bench/data.ts's blobs. Runs alternate
 * between the methods; each is repeated `--reps` times and reported as median [min, max].
 *
 *   node dist/bench/init-compare.js --rows 200000 --features 128 --k 1024 --iters 10 --reps 3
 *   node dist/bench/init-compare.js --k 64 --methods k-means++,k-means|| --rounds 5
 *
 * One JSON line per method on stdout.
 */
import '../src/engine/backends/index.js';
import type { BackendName } from '../src/engine/backend.js';
import { resolveBackend } from '../src/engine/registry.js';
import { KMeans } from '../src/models/kmeans.js';
import { kmeansParallel, kmeansPlusPlus, randomInit } from '../src/models/kmeans-init.js';
import { Random } from '../src/util/random.js';
import { benchData } from './data.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const nRows = Number(arg('rows', '200000'));
const d = Number(arg('features', '128'));
const k = Number(arg('k', '1024'));
const iters = Number(arg('iters', '10'));
const reps = Number(arg('reps', '3'));
const methods = arg('methods', 'k-means++,k-means||').split(',');
const rounds = Number(arg('rounds', '2'));
const oversampling = Number(arg('oversampling', '2'));
const dataSeed = Number(arg('data-seed', '1'));

const be = await resolveBackend(arg('backend', 'auto') as BackendName | 'auto');
const x = { data: benchData(nRows, d, dataSeed), nRows, nFeatures: d };
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

const out: Record<string, { initMs: number[]; initCpuMs: number[]; inertia: number[]; lloydMs: number[] }> = {};
for (const m of methods) out[m] = { initMs: [], initCpuMs: [], inertia: [], lloydMs: [] };
const dx = be.upload(x);
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const m of methods) {
      const rng = new Random(1000 + rep);
      // CPU time beside wall time: on a shared machine it shows the work when the wall clock waits.
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const init =
        m === 'k-means||'
          ? await kmeansParallel(be, dx, x, k, rng, { rounds, oversampling })
          : m === 'random'
            ? randomInit(x, k, null, rng)
            : await kmeansPlusPlus(be, dx, x, k, rng);
      const initMs = performance.now() - t0;
      const c1 = process.cpuUsage(c0);
      const r = await new KMeans({ k, init, maxIter: iters, tol: 0, nInit: 1 }).fit(be, x);
      out[m].initMs.push(initMs);
      out[m].initCpuMs.push((c1.user + c1.system) / 1000);
      out[m].inertia.push(r.inertia);
      out[m].lloydMs.push(r.ms.lloyd);
    }
  }
} finally {
  be.release(dx);
}
const ref = median(out[methods[0]].inertia);
for (const m of methods) {
  const o = out[m];
  const meanInertia = o.inertia.reduce((a, b) => a + b, 0) / o.inertia.length;
  console.log(
    JSON.stringify({
      method: m,
      backend: be.name,
      nRows,
      d,
      k,
      iters,
      reps,
      ...(m === 'k-means||' ? { rounds, oversampling } : {}),
      initS: { median: +(median(o.initMs) / 1000).toFixed(3), min: +(Math.min(...o.initMs) / 1000).toFixed(3), max: +(Math.max(...o.initMs) / 1000).toFixed(3) },
      initCpuS: +(median(o.initCpuMs) / 1000).toFixed(3),
      lloydS: +(median(o.lloydMs) / 1000).toFixed(3),
      inertia: { median: median(o.inertia), mean: meanInertia, vsFirst: +(median(o.inertia) / ref - 1).toFixed(5) },
    }),
  );
}
