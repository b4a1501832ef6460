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
 * Against scikit-learn (like for like): the same data file (bench/data/churn-<n>x<d>.{f32,y.u8},
 * read by both sides), the same network shape ([64, 32] ReLU, sigmoid output), batch size (the
 * `auto` one), optimizer (Adam, learning rate 1e-3) and number of epochs, with what only one side
 * has switched off on the other: segtensor without dropout, linear skip, L2 and class weights;
 * scikit-learn's `MLPClassifier(alpha=0, tol=0, n_iter_no_change > epochs, early_stopping=False)`.
 * Each process trains `--epochs` epochs, each timed (scikit-learn: a stamp at each epoch's end);
 * a run's figure is its median epoch; `--reps` runs (default 5) alternate the two tools, reported
 * as median [min, max]. Mean training losses (plain log-loss on both sides) are printed beside.
 *
 *   npm run bench:churn -- [--rows 1000000] [--features 32] [--backends tensorflow,wasm,cpu] [--fraction 100000] [--reps 5] [--epochs 3]
 *   npm run bench:churn -- --quick      # 100,000 rows, 2 runs of 2 epochs
 *
 * Writes bench/results/<date>-<host>-churn.json and prints Markdown tables.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { autoBatchSize, CHURN_NET_DEFAULTS, prepareTraining, trainEpoch, type ChurnNetOptions, type LabelledMatrix } from '../src/models/churn/mlp.js';
import { churnTfjs, TFJS_ORDER } from '../src/models/churn/tfjs.js';
import { Random } from '../src/util/random.js';
import { DATA_DIR, resultStem, fmtRatio, fmtSpread, hasPython, median, py, ratio, readF32, spread, type Spread } from './bench-util.js';

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

/** The bench data as files both sides read: float32 rows and 0/1 labels, made once. */
function churnFiles(nRows: number, d: number): { x: string; y: string } {
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const x = path.join(DATA_DIR, `churn-${nRows}x${d}.f32`);
  const y = path.join(DATA_DIR, `churn-${nRows}x${d}.y.u8`);
  if (!fs.existsSync(x) || !fs.existsSync(y)) {
    const m = churnBenchData(nRows, d);
    fs.writeFileSync(x, m.x.data);
    fs.writeFileSync(y, m.y);
  }
  return { x, y };
}

function loadChurn(nRows: number, d: number): LabelledMatrix {
  const f = churnFiles(nRows, d);
  return { x: { data: readF32(f.x), nRows, nFeatures: d }, y: new Uint8Array(fs.readFileSync(f.y)) };
}

/** The network both sides can build: what only segtensor has is switched off. */
const PLAIN = { hiddenSizes: [64, 32], dropout: 0, linearSkip: false, l2: 0, classWeight: 'none' as const, learningRate: 1e-3 };

/** segtensor's side of the like-for-like pair: `epochs` epochs of the plain network, each timed. */
async function childPlain(name: string, nRows: number, d: number, epochs: number): Promise<{ msAll: number[]; losses: number[]; batchSize: number }> {
  const { tf } = await churnTfjs(name);
  const data = loadChurn(nRows, d);
  const batchSize = autoBatchSize(nRows);
  const s = prepareTraining(tf, data, { ...CHURN_NET_DEFAULTS, ...PLAIN, batchSize, seed: 1 });
  const msAll: number[] = [];
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const t0 = performance.now();
    losses.push(await trainEpoch(s));
    msAll.push(performance.now() - t0);
  }
  s.model.dispose();
  s.optimizer.dispose();
  return { msAll, losses, batchSize };
}

async function child(name: string, nRows: number, d: number, fraction: number): Promise<Row[]> {
  let tf: Awaited<ReturnType<typeof churnTfjs>>['tf'];
  try {
    tf = (await churnTfjs(name)).tf;
  } catch (e) {
    return [{ backend: name, model: 'mlp [64, 32]', batchSize: 0, rowsTimed: 0, msTimed: 0, msPerEpoch: NaN, extrapolated: false, rowsPerSecond: 0, trainLoss: NaN, peakRssMiB: 0, note: (e as Error).message }];
  }
  const data = loadChurn(nRows, d);
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
  const quick = process.argv.includes('--quick');
  const nRows = Number(arg('rows', quick ? '100000' : '1000000'));
  const d = Number(arg('features', '32'));
  const reps = Number(arg('reps', quick ? '2' : '5'));
  const epochs = Number(arg('epochs', quick ? '2' : '3'));
  const only = process.env.SEGTENSOR_BENCH_CHILD;
  if (only) {
    const plain = process.env.SEGTENSOR_BENCH_PLAIN;
    const r = plain ? await childPlain(only, nRows, d, Number(plain)) : await child(only, nRows, d, Number(process.env.SEGTENSOR_BENCH_FRACTION ?? 0));
    process.stdout.write(JSON.stringify(r));
    return;
  }
  churnFiles(nRows, d);
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
  // Like for like against scikit-learn: the fastest tfjs backend that ran, alternating runs.
  const tfBackend = wanted.find((b) => b !== 'cpu' && rows.some((r) => r.backend === b && Number.isFinite(r.msPerEpoch))) ?? wanted.find((b) => rows.some((r) => r.backend === b && Number.isFinite(r.msPerEpoch)));
  const sklearn = hasPython('sklearn');
  const batch = autoBatchSize(nRows);
  const files = churnFiles(nRows, d);
  const runs: Record<string, number[]> = { segtensor: [], sklearn: [] };
  const losses: Record<string, number[]> = { segtensor: [], sklearn: [] };
  const firstEpoch: Record<string, number[]> = { segtensor: [], sklearn: [] };
  let sklearnVersion = '';
  if (tfBackend && sklearn) {
    for (let rep = 0; rep < reps; rep++) {
      const seg = JSON.parse(
        execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--rows', String(nRows), '--features', String(d)], {
          env: { ...process.env, SEGTENSOR_BENCH_CHILD: tfBackend, SEGTENSOR_BENCH_PLAIN: String(epochs) },
          encoding: 'utf8',
          maxBuffer: 1 << 20,
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ) as { msAll: number[]; losses: number[] };
      runs.segtensor.push(median(seg.msAll));
      firstEpoch.segtensor.push(seg.msAll[0]);
      losses.segtensor.push(seg.losses[seg.losses.length - 1]);
      const sk = py<{ msPerEpochAll: number[]; lossCurve: number[]; sklearn: string }>('mlp', [files.x, files.y, nRows, d, PLAIN.hiddenSizes.join(','), batch, PLAIN.learningRate, 0, epochs, 1]);
      runs.sklearn.push(median(sk.msPerEpochAll));
      firstEpoch.sklearn.push(sk.msPerEpochAll[0]);
      losses.sklearn.push(sk.lossCurve[sk.lossCurve.length - 1]);
      sklearnVersion = sk.sklearn;
      process.stderr.write(`like for like run ${rep + 1}/${reps}: segtensor ${tfBackend} ${(runs.segtensor[rep] / 1000).toFixed(2)} s/epoch, scikit-learn ${(runs.sklearn[rep] / 1000).toFixed(2)} s/epoch\n`);
    }
  } else {
    process.stderr.write(`like for like skipped: ${!sklearn ? '/usr/bin/python3 cannot import sklearn' : 'no tfjs backend ran'}\n`);
  }
  const s = (v: number[]): Spread | null => (v.length ? spread(v.map((x) => x / 1000)) : null);
  const likeForLike = tfBackend && sklearn && runs.segtensor.length
    ? {
        id: `churn:${nRows}x${d}:mlp64-32:b${batch}`,
        network: 'MLP [64, 32] ReLU, sigmoid output; no dropout, skip, L2 or class weights on either side',
        batchSize: batch,
        optimizer: `Adam, learning rate ${PLAIN.learningRate}`,
        epochsPerRun: epochs,
        reps,
        segtensor: { backend: tfBackend, sPerEpoch: s(runs.segtensor), firstEpochS: s(firstEpoch.segtensor), lastLoss: losses.segtensor },
        sklearn: { version: sklearnVersion, what: `MLPClassifier(hidden_layer_sizes=(64, 32), solver='adam', batch_size=${batch}, learning_rate_init=${PLAIN.learningRate}, alpha=0, max_iter=${epochs}, tol=0, n_iter_no_change=${epochs + 1}, early_stopping=False)`, sPerEpoch: s(runs.sklearn), firstEpochS: s(firstEpoch.sklearn), lastLoss: losses.sklearn },
        ratio: ratio(spread(runs.segtensor), spread(runs.sklearn)),
      }
    : null;
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
  const result = { bench: 'churn-epoch', date: new Date().toISOString(), machine, node: process.version, nRows, nFeatures: d, rows, likeForLike };
  const file = `${resultStem(result.date, quick ? 'churn-quick' : 'churn')}.json`;
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log('| backend | model | batch | s / epoch | rows timed | rows/s | mean train loss | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const t = !Number.isFinite(r.msPerEpoch) ? 'n/a' : `${(r.msPerEpoch / 1000).toFixed(1)}${r.extrapolated ? ' (extrapolated)' : ''}`;
    console.log(`| ${r.backend} | ${r.model} | ${r.batchSize || ''} | ${t} | ${r.rowsTimed || ''} | ${r.rowsPerSecond ? Math.round(r.rowsPerSecond) : ''} | ${Number.isFinite(r.trainLoss) ? r.trainLoss.toFixed(4) : ''} | ${r.peakRssMiB || ''} | ${r.note ?? ''}`);
  }
  if (likeForLike) {
    const l = likeForLike;
    console.log(`\nLike for like (\`${l.id}\`): ${l.network}; batch ${l.batchSize}; ${l.optimizer}; ${l.epochsPerRun} epochs per process, ${l.reps} alternating runs, each run's median epoch; same data file.\n`);
    console.log('| tool | s / epoch, median [min, max] | first epoch, s | mean training log-loss after the last epoch (per run) |\n|---|---|---|---|');
    console.log(`| segtensor tfjs ${l.segtensor.backend} | ${fmtSpread(l.segtensor.sPerEpoch)} | ${fmtSpread(l.segtensor.firstEpochS)} | ${l.segtensor.lastLoss.map((v) => v.toFixed(4)).join(', ')} |`);
    console.log(`| scikit-learn ${l.sklearn.version} MLPClassifier | ${fmtSpread(l.sklearn.sPerEpoch)} | ${fmtSpread(l.sklearn.firstEpochS)} | ${l.sklearn.lastLoss.map((v) => v.toFixed(4)).join(', ')} |`);
    console.log(`\nsegtensor / scikit-learn per epoch: ${fmtRatio(l.ratio)}`);
  }
  console.log(`\n${machine}; node ${process.version}; ${nRows} × ${d} (auto batch ${autoBatchSize(nRows)}); written to ${path.relative(process.cwd(), file)}`);
}

await main();
