/**
 * Writes a benchmark feature table: nRows × nFeatures float32 blobs (bench/lloyd-iteration's
 * data) plus an int64 `customer_id`, as Arrow IPC in record batches of 65,536 rows, or Parquet.
 *
 *   node dist/bench/make-table.js --rows 1000000 --features 32 --out bench/data/1m-32.arrow
 */
import fs from 'node:fs';
import path from 'node:path';
import { Float32, Int64, Table, makeData, makeVector, tableToIPC } from 'apache-arrow';
import { writeTable } from '../src/io/write-table.js';
import { benchData } from './data.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const nRows = Number(arg('rows', '1000000'));
const d = Number(arg('features', '32'));
const out = arg('out', `bench/data/${nRows}-${d}.arrow`);
// --categorical C: C more int32 columns c0.. holding 5 codes each, drawn from the blob's first
// features (so they agree with the clusters), for k-prototypes.
const nCat = Number(arg('categorical', '0'));
fs.mkdirSync(path.dirname(out), { recursive: true });
const data = benchData(nRows, d);
const names = Array.from({ length: d }, (_, f) => `f${String(f).padStart(3, '0')}`);

if (out.endsWith('.parquet') || out.endsWith('.csv') || nCat > 0) {
  const cols = names.map((name, f) => ({ name, values: Float32Array.from({ length: nRows }, (_, i) => data[i * d + f]) }));
  const cats = Array.from({ length: nCat }, (_, c) => ({
    name: `c${c}`,
    values: Int32Array.from({ length: nRows }, (_, i) => Math.max(0, Math.min(4, Math.floor(data[i * d + (c % d)] / 2 + 2.5)))),
  }));
  await writeTable(out, [{ name: 'customer_id', values: BigInt64Array.from({ length: nRows }, (_, i) => BigInt(i + 1)) }, ...cols, ...cats]);
} else {
  const step = 65536;
  const batches = [];
  for (let start = 0; start < nRows; start += step) {
    const n = Math.min(step, nRows - start);
    const vectors: Record<string, ReturnType<typeof makeVector>> = {
      customer_id: makeVector(makeData({ type: new Int64(), data: BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i + 1)) })),
    };
    names.forEach((name, f) => {
      const col = new Float32Array(n);
      for (let i = 0; i < n; i++) col[i] = data[(start + i) * d + f];
      vectors[name] = makeVector(makeData({ type: new Float32(), data: col }));
    });
    batches.push(...new Table(vectors).batches);
  }
  fs.writeFileSync(out, tableToIPC(new Table(batches), 'file'));
}
console.log(`wrote ${out}: ${nRows} rows × ${d} features`);
