/**
 * Churn model pieces (issue 5): labels, the stratified split, training reproducibility, the
 * prior correction, the model directory round trip and its version check, on every tfjs backend.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ColumnTable } from '../../../src/io/table.js';
import { parseLabel, stratifiedSplit } from '../../../src/models/churn/data.js';
import { trainChurnNet, type ChurnNetFit, type LabelledMatrix } from '../../../src/models/churn/mlp.js';
import { loadChurnModel, saveChurnModel, type ChurnModelMeta } from '../../../src/models/churn/model-dir.js';
import { churnTfjs, type Tf } from '../../../src/models/churn/tfjs.js';
import { Random } from '../../../src/util/random.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-churn-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function table(values: (string | null)[] | Float64Array, name = 'churned'): ColumnTable {
  const col = Array.isArray(values) ? { name, type: 'string' as const, values } : { name, type: 'number' as const, values };
  return new ColumnTable('t.csv', values.length, [col]);
}

describe('parseLabel', () => {
  it('takes 1/true/yes as churned by default, case-insensitively', () => {
    expect([...parseLabel(table(Float64Array.from([0, 1, 1, 0])), 'churned', null).y]).toEqual([0, 1, 1, 0]);
    const l = parseLabel(table(['No', 'Yes', 'no', 'Yes'].map((s) => (s === 'no' ? 'No' : s))), 'churned', null);
    expect([...l.y]).toEqual([0, 1, 0, 1]);
    expect(l).toMatchObject({ positive: 'Yes', negative: 'No' });
    expect([...parseLabel(table(['TRUE', 'FALSE']), 'churned', null).y]).toEqual([1, 0]);
  });

  it('--positive picks the value, numbers compared as numbers', () => {
    expect([...parseLabel(table(['left', 'stayed', 'left']), 'churned', 'LEFT').y]).toEqual([1, 0, 1]);
    expect([...parseLabel(table(Float64Array.from([2, 5, 5])), 'churned', '5.0').y]).toEqual([0, 1, 1]);
    // A CSV's yes/no read as a boolean column (1/0) still answers to --positive yes or no.
    expect([...parseLabel(table(Float64Array.from([1, 0, 1])), 'churned', 'Yes').y]).toEqual([1, 0, 1]);
    expect([...parseLabel(table(Float64Array.from([1, 0, 1])), 'churned', 'no').y]).toEqual([0, 1, 0]);
  });

  it('one-line errors: not binary, a single class, a null, an unknown or ambiguous positive', () => {
    expect(() => parseLabel(table(Float64Array.from([0, 1, 2])), 'churned', null)).toThrow(/t\.csv: label column 'churned' is not binary: it holds '0', '1', '2'/);
    expect(() => parseLabel(table(Float64Array.from([1, 1])), 'churned', null)).toThrow(/label column 'churned' has a single class \('1' in all 2 rows\)/);
    expect(() => parseLabel(table(['yes', null]), 'churned', null)).toThrow(/null at data row 2;/);
    expect(() => parseLabel(table(['a', 'b']), 'churned', null)).toThrow(/cannot tell which value .* pass --positive/);
    expect(() => parseLabel(table(['a', 'b']), 'churned', 'c')).toThrow(/--positive 'c' is not a value of label column 'churned' in t\.csv \(values: 'a', 'b'\)/);
    expect(() => parseLabel(table(['a', 'b']), 'label', null)).toThrow(/no column 'label'/);
  });
});

describe('stratifiedSplit', () => {
  const r = new Random(3);
  const y = Uint8Array.from({ length: 10000 }, () => (r.next() < 0.2 ? 1 : 0));
  const pos = y.reduce((a, b) => a + b, 0);

  it('partitions the rows 70/15/15 with the churn rate kept in every split, reproducibly', () => {
    const s = stratifiedSplit(y, [0.7, 0.15, 0.15], 1);
    const all = [...s.train, ...s.validation, ...s.test].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: y.length }, (_, i) => i));
    for (const [part, frac] of [[s.train, 0.7], [s.validation, 0.15], [s.test, 0.15]] as const) {
      expect(Math.abs(part.length - frac * y.length)).toBeLessThanOrEqual(1);
      const p = part.reduce((a, i) => a + y[i], 0);
      expect(Math.abs(p - frac * pos)).toBeLessThanOrEqual(1);
    }
    expect(stratifiedSplit(y, [0.7, 0.15, 0.15], 1)).toEqual(s);
    expect(stratifiedSplit(y, [0.7, 0.15, 0.15], 2).test).not.toEqual(s.test);
  });

  it('no positives in a split is an error naming the split and the counts', () => {
    const few = new Uint8Array(100);
    few[3] = 1;
    few[50] = 1;
    expect(() => stratifiedSplit(few, [0.7, 0.15, 0.15], 0, 'f.csv')).toThrow(/f\.csv: the (validation|test) split has no positives \(0 of \d+ rows; 2 positives and 98 negatives in all\)/);
  });
});

/** Logistic ground truth with an interaction, 8 standard-normal features. */
function synth(n: number, seed: number): LabelledMatrix & { p: Float64Array } {
  const r = new Random(seed);
  const d = 8;
  const data = new Float32Array(n * d);
  const y = new Uint8Array(n);
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) data[i * d + f] = r.gauss();
    const x = data.subarray(i * d, i * d + d);
    p[i] = 1 / (1 + Math.exp(-(-1.8 + 1.2 * x[0] - x[1] + 0.8 * x[2] * x[3])));
    y[i] = r.next() < p[i] ? 1 : 0;
  }
  return { x: { data, nRows: n, nFeatures: d }, y, p };
}

const small = { maxEpochs: 4, batchSize: 128 };

describe.each(['wasm', 'cpu'])('churn network on tfjs %s', (backend) => {
  let tf: Tf;
  const train = synth(3000, 1);
  const val = synth(1000, 2);
  let fit: ChurnNetFit;
  beforeAll(async () => {
    tf = (await churnTfjs(backend)).tf;
    fit = await trainChurnNet(tf, train, val, { ...small, seed: 7 });
  });

  it('is reproducible for a seed, and another seed differs', async () => {
    const again = await trainChurnNet(tf, train, val, { ...small, seed: 7 });
    const other = await trainChurnNet(tf, train, val, { ...small, seed: 8 });
    const p = await fit.net.predictProba(val.x);
    expect(await again.net.predictProba(val.x)).toEqual(p);
    expect(await other.net.predictProba(val.x)).not.toEqual(p);
    expect(again.history).toEqual(fit.history.map((h) => ({ ...h, ms: expect.any(Number) })));
    again.net.dispose();
    other.net.dispose();
  });

  it('restores the best validation epoch and prior-corrects the class weights back to the base rate', async () => {
    const best = fit.history.reduce((a, h) => (h.valLoss < a.valLoss ? h : a));
    expect(fit.bestEpoch).toBe(best.epoch);
    const [w0, w1] = fit.classWeights;
    expect(fit.net.logitOffset).toBeCloseTo(Math.log(w0 / w1), 12);
    // Balanced weights push raw probabilities towards ½; corrected, their mean is near the churn rate.
    const p = await fit.net.predictProba(train.x);
    const mean = p.reduce((a, b) => a + b, 0) / p.length;
    const rate = train.y.reduce((a, b) => a + b, 0) / train.y.length;
    expect(Math.abs(mean - rate)).toBeLessThan(0.04);
  });

  it('saves without tfjs-node and loads back to identical predictions; a wrong format version is refused', async () => {
    const out = path.join(dir, `model-${backend}`);
    fs.mkdirSync(out);
    const meta = { format: 'segtensor-churn', formatVersion: 1, featureNames: Array.from({ length: 8 }, (_, i) => `f${i}`), logitOffset: fit.net.logitOffset } as ChurnModelMeta;
    const files = await saveChurnModel(out, fit.net, meta);
    expect(files.map((f) => path.basename(f))).toEqual(['model.json', 'weights.bin', 'churn.json']);
    const loaded = await loadChurnModel(out, tf, backend);
    expect(await loaded.net.predictProba(val.x)).toEqual(await fit.net.predictProba(val.x));
    loaded.net.dispose();
    fs.writeFileSync(path.join(out, 'churn.json'), JSON.stringify({ ...meta, formatVersion: 99 }));
    await expect(loadChurnModel(out, tf, backend)).rejects.toThrow(/churn model format version 99, this segtensor reads version 1; retrain the model/);
    fs.writeFileSync(path.join(out, 'churn.json'), JSON.stringify(meta));
    fs.writeFileSync(path.join(out, 'weights.bin'), new Uint8Array(12));
    await expect(loadChurnModel(out, tf, backend)).rejects.toThrow(/weights\.bin: 12 bytes, the manifest .* describes \d+/);
  });

  it('refuses bad options with the option named', async () => {
    await expect(trainChurnNet(tf, train, val, { dropout: 1 })).rejects.toThrow(/churn model: 'dropout' must be in \[0, 1\); got 1/);
    await expect(trainChurnNet(tf, train, val, { hiddenSizes: [0] })).rejects.toThrow(/'hiddenSizes'/);
  });
});

describe('backends agree', () => {
  it('a model saved on wasm predicts the same on cpu (fp32 tolerance)', async () => {
    const { tf } = await churnTfjs('wasm');
    const train = synth(2000, 4);
    const val = synth(500, 5);
    const fit = await trainChurnNet(tf, train, val, { maxEpochs: 2, seed: 1 });
    const out = path.join(dir, 'cross');
    fs.mkdirSync(out);
    const meta = { format: 'segtensor-churn', formatVersion: 1, featureNames: Array.from({ length: 8 }, (_, i) => `f${i}`), logitOffset: fit.net.logitOffset } as ChurnModelMeta;
    await saveChurnModel(out, fit.net, meta);
    const pw = await fit.net.predictProba(val.x);
    const cpu = await churnTfjs('cpu');
    const onCpu = await loadChurnModel(out, cpu.tf, 'cpu');
    const pc = await onCpu.net.predictProba(val.x);
    for (let i = 0; i < pw.length; i++) expect(Math.abs(pc[i] - pw[i])).toBeLessThan(1e-5);
    fit.net.dispose();
    onCpu.net.dispose();
  });
});
