/**
 * Step by step along a Lloyd run: the native backend's bounded step (Hamerly bounds, rows in
 * doubt only) against the plain step (every row scored), on the same centroids. A plain run
 * from the initial centroids gives each step's centroids; the bounded chain then follows them,
 * and selected steps are timed both ways (fastest of 9, the bounds restored before each run).
 *
 *   node dist/bench/lloyd-chain.js                                  # bench blobs, 1M × 32, k = 16
 *   node dist/bench/lloyd-chain.js --input features.parquet --k 16  # a customer table, standardised
 *   node dist/bench/lloyd-chain.js --rows 100000 --features 8 --k 8 --steps 40 --picks 1,2,3,4
 *
 * Initial centroids: the first k rows for the blobs; k-means++ (seed 0) for a table. Prints one
 * Markdown row per selected step: ms bounded and plain, the share of rows the bounds test
 * decided without reading them, and how many rows changed label.
 */
import { createNativeBackend, centroidMoves, loadNativeAddon } from '../src/engine/backends/native.js';
import { kmeansPlusPlus } from '../src/models/kmeans.js';
import { readTable } from '../src/io/read-table.js';
import { Preprocessor } from '../src/preprocess/preprocessor.js';
import { Random } from '../src/util/random.js';
import { benchData } from './data.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const k = Number(arg('k') ?? 16);
  const nSteps = Number(arg('steps') ?? 36);
  const input = arg('input');
  let x: Float32Array;
  let n: number;
  let d: number;
  let c: Float32Array;
  if (input) {
    const table = await readTable(input);
    const m = Preprocessor.fitTransform(table, { features: null, exclude: (arg('exclude') ?? 'customer_id').split(','), scale: 'standard', impute: 'median', maxCategories: 20 }).matrix;
    [x, n, d] = [m.data, m.nRows, m.nFeatures];
    const be = await createNativeBackend();
    const dx = be.upload(m);
    c = await kmeansPlusPlus(be, dx, m, k, new Random(0));
    be.release(dx);
  } else {
    n = Number(arg('rows') ?? 1_000_000);
    d = Number(arg('features') ?? 32);
    x = benchData(n, d);
    c = x.slice(0, k * d);
  }
  const a = loadNativeAddon();
  const shift = a.columnMeans(x, n, d);
  const cs: Float32Array[] = [];
  for (let s = 0; s < nSteps; s++) {
    cs.push(c);
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    a.assign(x, n, d, c, k, null, null, new Int32Array(n), new Float32Array(n), shift, sums, counts);
    c = c.map((v, i) => (counts[Math.floor(i / d)] > 0 ? sums[i] / counts[Math.floor(i / d)] : v));
  }
  const picks = new Set((arg('picks') ?? '2,3,5,8,12,16,20,25,30,35,45,60').split(',').map(Number).filter((s) => s < nSteps));
  const fastest = (f: () => void, reps = 9) => {
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      f();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const bounds = new Float32Array(2 * n);
  let prev = new Int32Array(n);
  let labels = new Int32Array(n);
  const dist = new Float32Array(n);
  console.log(`${input ?? `bench blobs ${n} × ${d}`}, k = ${k}, ${a.info().isa}, ${a.info().threads} threads\n`);
  console.log('| step | bounded ms | plain ms | rows not read | rows changed |\n|---|---|---|---|---|');
  for (let s = 0; s < nSteps; s++) {
    const drift = s ? centroidMoves(cs[s - 1], cs[s], k, d) : null;
    const bounded = (into: Float32Array) =>
      a.assign(x, n, d, cs[s], k, null, s ? prev : null, labels, dist, shift, new Float64Array(k * d), new Float64Array(3 * k), into, drift);
    if (picks.has(s)) {
      const saved = bounds.slice();
      const restore = fastest(() => bounds.set(saved));
      const tb = fastest(() => {
        bounds.set(saved);
        bounded(bounds);
      }) - restore;
      const tp = fastest(() => a.assign(x, n, d, cs[s], k, null, prev, labels, dist, shift, new Float64Array(k * d), new Float64Array(k)));
      bounds.set(saved);
      const r = bounded(bounds);
      console.log(`| ${s} | ${tb.toFixed(2)} | ${tp.toFixed(2)} | ${((100 * r.nPruned) / n).toFixed(0)} % | ${r.nChanged} |`);
    } else {
      bounded(bounds);
    }
    [prev, labels] = [labels, prev];
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
