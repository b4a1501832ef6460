/**
 * Models do not depend on the input format (issue 12): a segmentation and a churn model trained
 * on CSV score the same data as Arrow and Parquet bit for bit, and the reverse; the positive
 * label is stored as given; unseen categories, type mismatches and mixed columns are reported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { writeTable, type OutColumn } from '../../src/io/write-table.js';
import { predictChurn, trainChurn } from '../../src/pipeline/churn.js';
import { fitSegmentation } from '../../src/pipeline/fit.js';
import { predictSegments } from '../../src/pipeline/predict.js';
import { churnSample } from '../helpers/churn-data.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-formats-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = (f: string) => path.join(dir, f);
const FORMATS = ['csv', 'arrow', 'parquet'] as const;

/** CSV text written here, cell by cell (String(x) round-trips a double exactly). */
function writeCsv(file: string, cols: OutColumn[], edit: (name: string, i: number, cell: string) => string = (_n, _i, c) => c) {
  const n = cols[0].values.length;
  const cell = (v: unknown) => (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v));
  const lines = [cols.map((c) => c.name).join(',')];
  for (let i = 0; i < n; i++) lines.push(cols.map((c) => edit(c.name, i, cell((c.values as ArrayLike<unknown>)[i]))).join(','));
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

const sample = churnSample(1200, 17);
// The label as Yes/No text (the README's churn tables), which CSV used to read as 1/0.
const cols = sample.columns.map((c) => (c.name === 'churned' ? { name: 'churned', values: Array.from(sample.y, (y) => (y ? 'Yes' : 'No')) } : c));
const file = (fmt: string, stem = 'customers') => at(`${stem}.${fmt}`);

beforeAll(async () => {
  writeCsv(file('csv'), cols);
  await writeTable(file('arrow'), cols);
  await writeTable(file('parquet'), cols);
});

async function column(f: string, name: string): Promise<unknown[]> {
  const c = (await readTable(f)).column(name);
  return c.type === 'other' ? [] : Array.from(c.values as ArrayLike<unknown>);
}

describe('segmentation across formats', () => {
  const features = ['recency_days', 'frequency', 'monetary', 'tenure_months', 'plan'];
  it.each(FORMATS)('a model fitted on %s assigns every format identically', async (trainFmt) => {
    const out = at(`seg-${trainFmt}`);
    await fitSegmentation({ input: file(trainFmt), k: 4, id: 'customer_id', features, out, backend: 'wasm', nInit: 1, seed: 3 });
    const results = [];
    for (const fmt of FORMATS) {
      const o = at(`assign-${trainFmt}-from-${fmt}.arrow`);
      const r = await predictSegments({ model: out, input: file(fmt), out: o, backend: 'wasm' });
      expect(r.unseenCategories).toEqual({});
      results.push({ segment: await column(o, 'segment'), distance: await column(o, 'distance'), id: await column(o, 'customer_id') });
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});

describe('churn across formats', () => {
  const net = { maxEpochs: 2 };
  it.each(['csv', 'parquet'] as const)('a model trained on %s scores every format identically, and records the positive label as given', async (trainFmt) => {
    const out = at(`churn-${trainFmt}`);
    const r = await trainChurn({ input: file(trainFmt), label: 'churned', positive: 'Yes', id: 'customer_id', out, seed: 5, backend: 'wasm', net });
    expect(r.meta.label).toEqual({ column: 'churned', positive: 'Yes', negative: 'No' });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'churn.json'), 'utf8')).label.positive).toBe('Yes');
    expect(r.meta.featureNames.some((f) => f.startsWith('churned'))).toBe(false);
    const probs = [];
    for (const fmt of FORMATS) {
      const o = at(`scores-${trainFmt}-from-${fmt}.arrow`);
      await predictChurn({ model: out, input: file(fmt), out: o, backend: 'wasm' });
      probs.push(await column(o, 'churn_probability'));
    }
    expect(probs[0].length).toBe(1200);
    expect(probs[1]).toEqual(probs[0]);
    expect(probs[2]).toEqual(probs[0]);
  });

  it('reports unseen categories with their count, and refuses a column of another type', async () => {
    const model = at('churn-csv');
    const unseen = file('csv', 'unseen');
    writeCsv(unseen, cols, (name, i, c) => (name === 'plan' && i % 100 === 7 ? (i % 200 === 7 ? 'gold' : 'iron') : c));
    const log: string[] = [];
    const r = await predictChurn({ model, input: unseen, out: at('unseen-scores.arrow'), backend: 'wasm', log: (l) => log.push(l) });
    expect(r.unseenCategories).toEqual({ plan: 12 });
    expect(log).toContain("notice: column 'plan': 12 values unseen when fitting (2 distinct, e.g. 'gold', 'iron'); scored as __other__");

    const texty = file('csv', 'texty');
    writeCsv(texty, cols, (name, i, c) => (name === 'tenure_months' ? ['long', 'short'][i % 2] : c));
    const err = await predictChurn({ model, input: texty, out: at('texty-scores.arrow'), backend: 'wasm' }).catch((e) => e);
    expect(err.code).toBe('TYPE_MISMATCH');
    expect(err.message).toContain(`${texty}: column 'tenure_months' is text here but the model was fitted on numbers`);
  });
});

describe('mixed columns in a pipeline', () => {
  it('a stray text cell fails fit even when the column is not listed in --features; --coerce-invalid counts it', async () => {
    const bad = file('csv', 'stray');
    // data row 6 → file line 7
    writeCsv(bad, cols, (name, i, c) => (name === 'noise_b' && i === 5 ? 'n/a' : c));
    const err = await fitSegmentation({ input: bad, k: 3, id: 'customer_id', out: at('stray-seg'), backend: 'wasm', nInit: 1 }).catch((e) => e);
    expect(err.code).toBe('MIXED_COLUMN');
    expect(err.message).toContain(`${bad}: column 'noise_b' is mostly numbers (1199 of 1200 cells) but line 7 holds 'n/a'`);
    const log: string[] = [];
    const r = await fitSegmentation({ input: bad, k: 3, id: 'customer_id', out: at('stray-seg'), backend: 'wasm', nInit: 1, coerceInvalid: true, log: (l) => log.push(l) });
    expect(r.coercions).toEqual({ noise_b: 1 });
    expect(r.model.featureNames).toContain('noise_b');
    expect(log.some((l) => l.startsWith(`notice: ${bad}: column 'noise_b': 1 cell`))).toBe(true);
  });

  it('--dtypes declares a type for the pipeline: numbers read as text become a categorical feature', async () => {
    const r = await fitSegmentation({ input: file('csv'), k: 3, id: 'customer_id', features: ['recency_days', 'frequency'], dtypes: { frequency: 'string' }, out: at('dt-seg'), backend: 'wasm', nInit: 1 });
    expect(r.model.preprocessing.inputs).toEqual([
      { name: 'recency_days', kind: 'numeric', type: 'number' },
      { name: 'frequency', kind: 'categorical', type: 'string' },
    ]);
  });
});
