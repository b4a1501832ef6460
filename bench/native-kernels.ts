/**
 * Micro-benchmark of the native kernels on nRows × d float32 with k centroids: one Lloyd
 * iteration (assign + segmentSum), a Lloyd chain with buffer recycling against fresh buffers,
 * the k-means++ pieces (potentials, distances into a buffer, a whole k-means++ run), the
 * silhouette sums on a 20,000-row sample, and the memory floor (one streaming read of the data,
 * cross-checked against its exact sum and a copy of the same bytes).
 *
 * Times are the fastest of 15 runs after a warm-up (the machine may be shared); `cpu` is the
 * process CPU time of that fastest run (all threads), which load from other processes inflates
 * less than wall time.
 *
 *   npx tsx bench/native-kernels.ts [nRows=1000000] [d=32] [k=16] [threads]
 */
import { createNativeBackend, loadNativeAddon } from '../src/engine/backends/native.js';
import type { Assignment } from '../src/engine/backend.js';
import { kmeansPlusPlus } from '../src/models/kmeans.js';
import { Random } from '../src/util/random.js';

const [nRows = 1_000_000, d = 32, k = 16] = process.argv.slice(2, 5).map(Number);
const threads = process.argv[5] ? Number(process.argv[5]) : undefined;

/** Fastest wall time of `reps` runs after a warm-up, with the CPU time of that run. */
async function time(fn: () => unknown | Promise<unknown>, reps = 15): Promise<string> {
  await fn(); // warm-up
  let best = Infinity;
  let cpu = 0;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    if (ms < best) {
      best = ms;
      cpu = (c.user + c.system) / 1000;
    }
  }
  return `${best.toFixed(2)} ms (cpu ${cpu.toFixed(1)})`;
}

const addon = loadNativeAddon();
if (threads) addon.setThreads(threads);
// Blobs around k centres, so the labels are meaningful; fixed seed.
let seed = 12345;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
const data = new Float32Array(nRows * d);
const centres = Float32Array.from({ length: k * d }, () => rand() * 20 - 10);
for (let i = 0; i < nRows; i++) {
  const j = i % k;
  for (let f = 0; f < d; f++) data[i * d + f] = centres[j * d + f] + (rand() + rand() + rand() - 1.5);
}
const init = data.slice(0, k * d);
const mib = ((nRows * d * 4) / 2 ** 20).toFixed(0);

for (const fuse of [true, false]) {
  const be = await createNativeBackend({ threads, fuseSegmentSum: fuse });
  const x = be.upload({ data, nRows, nFeatures: d });
  let inertia = 0;
  const iter = await time(async () => {
    const a = await be.assign(x, init, k);
    await be.segmentSum(x, a, k);
    inertia = a.inertia;
  });
  const assignOnly = await time(() => be.assign(x, init, k));
  console.log(`${be.description} fuse=${fuse}: Lloyd iteration ${iter}, assign ${assignOnly}, inertia ${inertia.toExponential(6)}`);
}

{
  // Eight assignments chained through `previous` (the Lloyd loop: buffers recycled from the
  // third on) against eight without (fresh labels and distances each time).
  const be = await createNativeBackend({ threads });
  const x = be.upload({ data, nRows, nFeatures: d });
  const chain = async (linked: boolean) => {
    let prev: Assignment | undefined;
    for (let t = 0; t < 8; t++) prev = await be.assign(x, init, k, linked ? prev : undefined);
  };
  console.log(`8 chained assigns (recycled buffers) ${await time(() => chain(true), 5)}; 8 unchained (fresh) ${await time(() => chain(false), 5)}`);

  const m = 2 + Math.floor(Math.log(k));
  const closest = addon.distances(data, nRows, d, init, 1);
  const cands = data.slice(k * d, (k + m) * d);
  const out = new Float32Array(nRows);
  const pots = await time(() => be.potentials(x, closest, cands, m));
  const distInto = await time(() => be.distances(x, init.subarray(0, d), 1, out));
  const distFresh = await time(() => be.distances(x, init.subarray(0, d), 1));
  console.log(`potentials (m=${m}) ${pots}; distances (m=1) into a buffer ${distInto}, fresh ${distFresh}`);
  const pp = await time(() => kmeansPlusPlus(be, x, { data, nRows, nFeatures: d }, k, new Random(7)), 5);
  console.log(`k-means++ (k=${k}, ${k - 1} steps × ${m} candidates): ${pp}`);
  be.release(x);

  const s = Math.min(nRows, 20_000);
  const labels = Int32Array.from({ length: s }, (_, i) => i % k);
  const sample = be.upload({ data: data.subarray(0, s * d), nRows: s, nFeatures: d });
  console.log(`clusterDistanceSums (${s} × ${d}, k=${k}): ${await time(() => be.clusterDistanceSums(sample, labels, k), 3)}`);
  be.release(sample);
}

const cycLabels = Int32Array.from({ length: nRows }, (_, i) => i % k);
const seg = await time(() => addon.segmentSum(data, nRows, d, cycLabels, k, null));
console.log(`segmentSum alone ${seg}`);
// The floor: its value must be the data's sum (it reads every element), and a copy of the same
// bytes (one read and one write stream) must not be more than ~2× faster per byte read.
let exact = 0;
for (let i = 0; i < data.length; i++) exact += data[i];
const got = addon.streamRead(data);
const copy = new Float32Array(data.length).fill(0);
console.log(
  `memory floor (one read of ${mib} MiB): ${await time(() => addon.streamRead(data))}, sum ${got.toExponential(6)} vs exact ${exact.toExponential(6)}; ` +
    `copy of the same bytes ${await time(() => copy.set(data), 5)}`,
);
