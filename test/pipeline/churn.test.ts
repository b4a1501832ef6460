/**
 * The churn pipeline as library calls (issue 5): reproducibility, per-segment reports, the
 * segment join and its fallback, predictions across backends, and bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SegtensorError } from '../../src/errors.js';
import { readTable } from '../../src/io/read-table.js';
import { writeTable } from '../../src/io/write-table.js';
import { fitSegmentation } from '../../src/pipeline/fit.js';
import { evaluateChurn, predictChurn, trainChurn, type ChurnTrainJob } from '../../src/pipeline/churn.js';
import { churnSample, writeChurnSample } from '../helpers/churn-data.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-churn-pipe-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const input = path.join(dir, 'customers.arrow');
const seg = path.join(dir, 'seg');
const model = path.join(dir, 'model');
const base: ChurnTrainJob = { input, label: 'churned', id: 'customer_id', out: model, seed: 5, backend: 'wasm', net: { maxEpochs: 2 } };

beforeAll(async () => {
  await writeChurnSample(input, churnSample(3000, 21));
  await fitSegmentation({ input, k: 3, id: 'customer_id', features: ['recency_days', 'frequency', 'tenure_months'], out: seg, backend: 'wasm', nInit: 1 });
  await trainChurn(base);
});

describe('trainChurn', () => {
  it('is reproducible for a seed: identical weights and metrics', async () => {
    const again = path.join(dir, 'again');
    const r = await trainChurn({ ...base, out: again });
    expect(fs.readFileSync(path.join(again, 'weights.bin'))).toEqual(fs.readFileSync(path.join(model, 'weights.bin')));
    const m0 = JSON.parse(fs.readFileSync(path.join(model, 'metrics.json'), 'utf8'));
    expect(r.metrics.rocAuc).toBe(m0.rocAuc);
    expect(r.metrics.baselineRocAuc).toBe(m0.baselineRocAuc);
  });

  it('reports size, churn rate and mean probability per segment on the test split (a column, or a fit output)', async () => {
    const byCol = await trainChurn({ ...base, out: path.join(dir, 'bycol'), segmentColumn: 'plan' });
    expect(byCol.metrics.segments!.map((s) => s.segment)).toEqual(['basic', 'family', 'plus', 'pro']);
    expect(byCol.metrics.segments!.reduce((a, s) => a + s.size, 0)).toBe(byCol.metrics.split.test);
    expect(byCol.meta.featureNames.some((f) => f.startsWith('plan='))).toBe(false);
    const byDir = await trainChurn({ ...base, out: path.join(dir, 'bydir'), segments: seg });
    expect(byDir.metrics.segments!.map((s) => s.segment)).toEqual(['0', '1', '2']);
    for (const s of byDir.metrics.segments!) {
      expect(s.churnRate).toBeGreaterThanOrEqual(0);
      expect(s.meanProbability).toBeGreaterThan(0);
    }
  });

  it('a target recall moves the threshold to reach it on validation', async () => {
    const r = await trainChurn({ ...base, out: path.join(dir, 'recall'), targetRecall: 0.9 });
    expect(r.meta.threshold).toMatchObject({ rule: 'target-recall', targetRecall: 0.9 });
    expect(r.meta.threshold.validation.recall).toBeGreaterThanOrEqual(0.9);
  });
});

describe('predictChurn', () => {
  it('joins segments by id, or assigns them with the segmentation model when ids do not join', async () => {
    const a = await readTable(path.join(seg, 'assignments.arrow'));
    const joined = await predictChurn({ model, input, out: path.join(dir, 'p1.arrow'), segments: seg, backend: 'wasm' });
    const viaModel = await predictChurn({ model, input, out: path.join(dir, 'p2.arrow'), segments: seg, id: 'frequency', backend: 'wasm' });
    expect(joined.segments!.map((s) => s.customers)).toEqual(viaModel.segments!.map((s) => s.customers));
    const t = await readTable(path.join(dir, 'p2.arrow'));
    expect([...t.numeric('segment')]).toEqual([...a.numeric('segment')]);
    expect(joined.bands.reduce((x, y) => x + y, 0)).toBe(3000);
  });

  it('gives the same probabilities on every tfjs backend (fp32 tolerance)', async () => {
    await predictChurn({ model, input, out: path.join(dir, 'w.arrow'), backend: 'wasm' });
    await predictChurn({ model, input, out: path.join(dir, 'c.arrow'), backend: 'cpu' });
    const pw = (await readTable(path.join(dir, 'w.arrow'))).numeric('churn_probability');
    const pc = (await readTable(path.join(dir, 'c.arrow'))).numeric('churn_probability');
    for (let i = 0; i < pw.length; i++) expect(Math.abs(pw[i] - pc[i])).toBeLessThan(1e-5);
  });

  it('evaluate on the training table matches the probabilities predict writes', async () => {
    // Issue 13: this test used to check only the row count and a loose ROC-AUC. Now evaluate's
    // log-loss and Brier score must equal those recomputed here, with plain loops, from the
    // probabilities predict writes and the sample's own labels.
    const e = await evaluateChurn({ model, input, label: 'churned', backend: 'wasm' });
    await predictChurn({ model, input, out: path.join(dir, 'for-evaluate.arrow'), backend: 'wasm' });
    const p = (await readTable(path.join(dir, 'for-evaluate.arrow'))).numeric('churn_probability');
    const { y } = churnSample(3000, 21);
    expect(e.metrics.rows).toBe(3000);
    expect(p.length).toBe(3000);
    let logLoss = 0;
    let brier = 0;
    for (let i = 0; i < y.length; i++) {
      const q = Math.min(1 - Number.EPSILON, Math.max(Number.EPSILON, p[i]));
      logLoss -= y[i] ? Math.log(q) : Math.log(1 - q);
      brier += (p[i] - y[i]) ** 2;
    }
    expect(e.metrics.logLoss).toBeCloseTo(logLoss / y.length, 9);
    expect(e.metrics.brier).toBeCloseTo(brier / y.length, 9);
    expect(e.metrics.rocAuc).toBeGreaterThan(0.6);
  });
});

describe('bad input is a SegtensorError naming the file, column or option', () => {
  const tiny = path.join(dir, 'tiny.csv');
  const fails = async (job: Partial<ChurnTrainJob>, re: RegExp) => {
    const e = await trainChurn({ ...base, out: path.join(dir, 'bad'), ...job }).then(() => null, (x) => x);
    expect(e).toBeInstanceOf(SegtensorError);
    expect(e.message).toMatch(re);
  };

  it('label not binary, a single class, no positives in a split', async () => {
    fs.writeFileSync(tiny, 'a,churned\n' + Array.from({ length: 60 }, (_, i) => `${i},${i % 3}`).join('\n') + '\n');
    await fails({ input: tiny, id: null }, /tiny\.csv: label column 'churned' is not binary: it holds '0', '1', '2'/);
    fs.writeFileSync(tiny, 'a,churned\n' + Array.from({ length: 60 }, (_, i) => `${i},0`).join('\n') + '\n');
    await fails({ input: tiny, id: null }, /tiny\.csv: label column 'churned' has a single class \('0' in all 60 rows\)/);
    fs.writeFileSync(tiny, 'a,churned\n' + Array.from({ length: 60 }, (_, i) => `${i},${i < 2 ? 1 : 0}`).join('\n') + '\n');
    await fails({ input: tiny, id: null }, /tiny\.csv: the (validation|test) split has no positives \(0 of \d+ rows; 2 positives and 58 negatives in all\)/);
  });

  it('the label as a feature, an unknown feature, --segments and --segment-column together', async () => {
    await fails({ features: ['frequency', 'churned'] }, /--features: 'churned' is the label column/);
    await fails({ features: ['frequency', 'spend'] }, /customers\.arrow: no column 'spend'/);
    await fails({ segments: seg, segmentColumn: 'plan' }, /--segments and --segment-column exclude each other/);
  });

  it('predict: an input without a feature column; a segmentation output that cannot place the rows', async () => {
    const partial = path.join(dir, 'partial.csv');
    await writeTable(partial, [{ name: 'customer_id', values: BigInt64Array.from([1n, 2n]) }, { name: 'frequency', values: Float64Array.from([1, 2]) }]);
    await expect(predictChurn({ model, input: partial, out: path.join(dir, 'x.csv') })).rejects.toThrow(/partial\.csv: no column 'recency_days'/);
    const s = churnSample(400, 1);
    const noSegFeatures = path.join(dir, 'noseg.arrow');
    await writeTable(noSegFeatures, s.columns.filter((c) => c.name !== 'tenure_months').map((c) => (c.name === 'customer_id' ? { ...c, values: BigInt64Array.from({ length: 400 }, (_, i) => BigInt(9_000_000 + i)) } : c)));
    await expect(trainChurn({ ...base, input: noSegFeatures, out: path.join(dir, 'x'), segments: seg })).rejects.toThrow(
      /--segments '.*seg': .*noseg\.arrow is not the table that was segmented, and it lacks the segmentation features to assign its rows \(tenure_months\)/,
    );
  });
});
