/**
 * Micro-benchmark of the native kernels: one Lloyd iteration (assign + segmentSum) on
 * nRows × d float32 with k centroids, next to the memory floor (one streaming read of the data).
 *
 * Times are the fastest of 15 runs after a warm-up (the machine may be shared).
 *
 *   npx tsx bench/native-kernels.ts [nRows=1000000] [d=32] [k=16] [threads]
 */
import { createNativeBackend, loadNativeAddon } from '../src/engine/backends/native.js';

const [nRows = 1_000_000, d = 32, k = 16] = process.argv.slice(2, 5).map(Number);
const threads = process.argv[5] ? Number(process.argv[5]) : undefined;
const reps = 15;

function fastest(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[0];
}

async function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return fastest(ms);
}

const addon = loadNativeAddon();
// Blobs around k centres, so the labels are meaningful; fixed seed.
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
const data = new Float32Array(nRows * d);
const centres = Float32Array.from({ length: k * d }, () => rand() * 20 - 10);
for (let i = 0; i < nRows; i++) {
  const j = i % k;
  for (let f = 0; f < d; f++) data[i * d + f] = centres[j * d + f] + (rand() + rand() + rand() - 1.5);
}
const init = data.slice(0, k * d);

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
  console.log(`${be.description} fuse=${fuse}: Lloyd iteration ${iter.toFixed(2)} ms (assign ${assignOnly.toFixed(2)} ms), inertia ${inertia.toExponential(6)}`);
}
const labels = new Int32Array(nRows).map((_, i) => i % k);
const seg = await time(() => addon.segmentSum(data, nRows, d, labels, k, null));
const floor = await time(() => addon.streamRead(data));
const dist = await time(() => addon.distances(data, nRows, d, init, 4));
console.log(`segmentSum alone ${seg.toFixed(2)} ms; distances (m=4) ${dist.toFixed(2)} ms`);
console.log(`memory floor (one read of ${((nRows * d * 4) / 2 ** 20).toFixed(0)} MiB): ${floor.toFixed(2)} ms`);
