/**
 * One training epoch of the churn networks per available tfjs backend, on nRows × nFeatures
 * float32 (standard-normal features, logistic labels, seed 1): the default MLP ([64, 32], dropout
 * 0.2, linear skip, L2 1e-3, Adam, balanced class weights) at the `auto` batch size (1024 at 1M rows)
 * and at 256, and the logistic baseline, with the same
 * loop `churn train` runs (seeded shuffle, batches gathered from the matrix, one Adam step each).
 * The mean training loss is reported next to the time so a fast wrong answer shows. Each backend
 * runs in its own child process.
 *
 * tfjs `cpu` is timed on a fraction of the epoch (--fraction rows, rounded up to whole batches)
 * and the epoch time extrapolated linearly — a step's cost does not depend on its position in the
 * epoch — and the table says so; the other backends run the whole epoch.
 *
 *   npm run bench:churn -- [--rows 1000000] [--features 32] [--backends tensorflow,wasm,cpu] [--fraction 100000]
 *
 * Writes bench/results/<date>-<host>-churn.json and prints a Markdown table.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { autoBatchSize, CHURN_NET_DEFAULTS, prepareTraining, trainEpoch, type ChurnNetOptions, type LabelledMatrix } from '../src/models/churn/mlp.js';
import { churnTfjs, TFJS_ORDER } from '../src/models/churn/tfjs.js';
import { Random } from '../src/util/random.js';

interface Row {
  backend: string;
  model: string;
  batchSize: number;
  rowsTimed: number;
  msTimed: number;
  msPerEpoch: number;
  extrapolated: boolean;
  rowsPerSecond: number;
  trainLoss: number;
  peakRssMiB: number;
  note?: string;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** Standard-normal features, P(churn) = σ(−1.5 + x·β) with β fixed by the seed. */
export function churnBenchData(nRows: number, d: number, seed = 1): LabelledMatrix {
  const r = new Random(seed);
  const beta = Float64Array.from({ length: d }, () => r.gauss() * 0.3);
  const data = new Float32Array(nRows * d);
  const y = new Uint8Array(nRows);
  for (let i = 0; i < nRows; i++) {
    let z = -1.5;
    for (let f = 0; f < d; f++) {
      const v = r.gauss();
      data[i * d + f] = v;
      z += v * beta[f];
    }
    y[i] = r.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x: { data, nRows, nFeatures: d }, y };
}

async function child(name: string, nRows: number, d: number, fraction: number): Promise<Row[]> {
  let tf: Awaited<ReturnType<typeof churnTfjs>>['tf'];
  try {
    tf = (await churnTfjs(name)).tf;
  } catch (e) {
    return [{ backend: name, model: 'mlp [64, 32]', batchSize: 0, rowsTimed: 0, msTimed: 0, msPerEpoch: NaN, extrapolated: false, rowsPerSecond: 0, trainLoss: NaN, peakRssMiB: 0, note: (e as Error).message }];
  }
  const data = churnBenchData(nRows, d);
  const out: Row[] = [];
  const auto = autoBatchSize(nRows);
  const grid = [
    ['mlp [64, 32]', [64, 32], 0.2, auto],
    ['mlp [64, 32]', [64, 32], 0.2, 256],
    ['logistic', [], 0, auto],
  ] as const;
  for (const [model, hiddenSizes, dropout, batchSize] of grid) {
    const o: ChurnNetOptions = { ...CHURN_NET_DEFAULTS, hiddenSizes: [...hiddenSizes], dropout, batchSize, seed: 1 };
    // Warm-up on a small slice (kernel compilation, first allocations), not timed.
    const warm = { x: { ...data.x, nRows: 4 * batchSize }, y: data.y };
    const ws = prepareTraining(tf, warm, o);
    await trainEpoch(ws);
    ws.model.dispose();
    ws.optimizer.dispose();
    const timed = fraction > 0 && fraction < nRows ? Math.ceil(fraction / batchSize) * batchSize : nRows;
    const part = { x: { ...data.x, nRows: timed }, y: data.y };
    const s = prepareTraining(tf, part, o);
    const t0 = performance.now();
    const loss = await trainEpoch(s);
    const ms = performance.now() - t0;
    s.model.dispose();
    s.optimizer.dispose();
    out.push({
      backend: name,
      model,
      batchSize,
      rowsTimed: timed,
      msTimed: ms,
      msPerEpoch: (ms * nRows) / timed,
      extrapolated: timed < nRows,
      rowsPerSecond: (timed / ms) * 1000,
      trainLoss: loss,
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    });
  }
  return out;
}

async function main() {
  const nRows = Number(arg('rows', '1000000'));
  const d = Number(arg('features', '32'));
  const only = process.env.SEGTENSOR_BENCH_CHILD;
  if (only) {
    process.stdout.write(JSON.stringify(await child(only, nRows, d, Number(process.env.SEGTENSOR_BENCH_FRACTION ?? 0))));
    return;
  }
  const wanted = arg('backends', TFJS_ORDER.join(',')).split(',');
  // tfjs cpu runs ~10× slower than wasm: time a fraction of its epoch unless told otherwise.
  const fractionCpu = Number(arg('fraction', '100000'));
  const rows: Row[] = [];
  for (const name of wanted) {
    let r: Row[];
    try {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--rows', String(nRows), '--features', String(d)], {
        env: { ...process.env, SEGTENSOR_BENCH_CHILD: name, SEGTENSOR_BENCH_FRACTION: name === 'cpu' ? String(fractionCpu) : '0' },
        encoding: 'utf8',
        maxBuffer: 1 << 20,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      r = JSON.parse(out) as Row[];
    } catch (e) {
      const msg = String((e as { stderr?: string }).stderr ?? e).trim().split('\n').pop() ?? 'failed';
      r = [{ backend: name, model: 'mlp [64, 32]', batchSize: 0, rowsTimed: 0, msTimed: 0, msPerEpoch: NaN, extrapolated: false, rowsPerSecond: 0, trainLoss: NaN, peakRssMiB: 0, note: msg.slice(0, 160) }];
    }
    rows.push(...r);
    for (const x of r) process.stderr.write(`${name} ${x.model}: ${!Number.isFinite(x.msPerEpoch) ? x.note : `${(x.msPerEpoch / 1000).toFixed(1)} s/epoch${x.extrapolated ? ' (extrapolated)' : ''}`}\n`);
  }
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
  const result = { bench: 'churn-epoch', date: new Date().toISOString(), machine, node: process.version, nRows, nFeatures: d, rows };
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.date.slice(0, 10)}-${os.hostname()}-churn.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log('| backend | model | batch | s / epoch | rows timed | rows/s | mean train loss | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const t = !Number.isFinite(r.msPerEpoch) ? 'n/a' : `${(r.msPerEpoch / 1000).toFixed(1)}${r.extrapolated ? ' (extrapolated)' : ''}`;
    console.log(`| ${r.backend} | ${r.model} | ${r.batchSize || ''} | ${t} | ${r.rowsTimed || ''} | ${r.rowsPerSecond ? Math.round(r.rowsPerSecond) : ''} | ${Number.isFinite(r.trainLoss) ? r.trainLoss.toFixed(4) : ''} | ${r.peakRssMiB || ''} | ${r.note ?? ''}`);
  }
  console.log(`\n${machine}; node ${process.version}; ${nRows} × ${d} (auto batch ${autoBatchSize(nRows)}); written to ${path.relative(process.cwd(), file)}`);
}

await main();
