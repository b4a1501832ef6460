/**
 * Issue 17, out-of-core: `fit --memory-limit` on a table it reads in blocks gives the resident
 * fit's model and outputs: the same preprocessing (exact medians from streaming passes), the same
 * labels and distances, centroids to float32 rounding, the same profile; for Arrow, Parquet and
 * CSV inputs, with missing values, weights and ids. And what it does not do yet is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ColumnTable } from '../../src/io/table.js';
import { readTable } from '../../src/io/read-table.js';
import { ArrowBatchWriter, writeTable } from '../../src/io/write-table.js';
import { fitSegmentation, type FitJob } from '../../src/pipeline/fit.js';
import { predictSegments } from '../../src/pipeline/predict.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { fitStreaming } from '../../src/preprocess/streaming.js';
import { Random } from '../../src/util/random.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-fit-stream-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 150_000;

beforeAll(async () => {
  const r = new Random(11);
  const cols = {
    customer_id: new BigInt64Array(N),
    spend: new Float64Array(N),
    visits: new Float64Array(N),
    tenure: new Float64Array(N),
    value: new Float64Array(N),
  };
  for (let i = 0; i < N; i++) {
    const g = i % 4;
    cols.customer_id[i] = BigInt(1_000_000 + 3 * i);
    cols.spend[i] = i % 17 === 0 ? NaN : 40 + 60 * g + 12 * r.gauss();
    cols.visits[i] = i % 23 === 0 ? NaN : Math.round(3 + 2 * g + r.gauss()); // integers: many ties at the median
    cols.tenure[i] = -5 + 3 * ((i >> 2) % 5) + r.gauss();
    cols.value[i] = 0.5 + 2 * r.next();
  }
  const out = Object.entries(cols).map(([name, values]) => ({ name, values }));
  // Arrow in several record batches of uneven size (the streaming writer of the outputs).
  const w = new ArrowBatchWriter(path.join(dir, 't.arrow'));
  for (const [s0, e0] of [[0, 70_000], [70_000, 71_000], [71_000, N]]) w.write(out.map((c) => ({ name: c.name, values: c.values.slice(s0, e0) })));
  await w.close();
  await writeTable(path.join(dir, 't.parquet'), out);
  await writeTable(path.join(dir, 't.csv'), out);
});

const base = (input: string, out: string): FitJob => ({ input: path.join(dir, input), out: path.join(dir, out), id: 'customer_id', weight: 'value', k: 4, nInit: 2, seed: 7 });

describe('fit --memory-limit: a table read in blocks (issue 17)', () => {
  for (const format of ['arrow', 'parquet', 'csv']) {
    it(`${format}: the resident fit's preprocessing, labels, distances, profile; centroids to float32 rounding`, async () => {
      const notices: string[] = [];
      const resident = await fitSegmentation(base(`t.${format}`, `res-${format}`));
      const blocks = await fitSegmentation({ ...base(`t.${format}`, `blk-${format}`), memoryLimit: 2 ** 20, log: (l) => notices.push(l) });
      expect(notices.some((l) => /reading it in blocks/.test(l))).toBe(true);
      expect(blocks.metrics.outOfCore).toBeTruthy();
      expect(blocks.model.preprocessing).toEqual(resident.model.preprocessing);
      const worst = Math.max(...blocks.model.centroidsScaled.flatMap((row, j) => row.map((v, f) => Math.abs(v - resident.model.centroidsScaled[j][f]))));
      expect(worst).toBeLessThan(1e-5);
      expect(blocks.metrics.inertia).toBeCloseTo(resident.metrics.inertia, 3);
      expect(blocks.metrics.sizes).toEqual(resident.metrics.sizes);
      expect(blocks.model.centreCounts.map((c) => Number(c.toFixed(6)))).toEqual(resident.model.centreCounts.map((c) => Number(c.toFixed(6))));
      for (const m of ['silhouette', 'calinskiHarabasz', 'daviesBouldin'] as const) expect(blocks.metrics[m]!).toBeCloseTo(resident.metrics[m]!, 6);
      const a = await readTable(path.join(dir, `blk-${format}`, 'assignments.arrow'));
      const b = await readTable(path.join(dir, `res-${format}`, 'assignments.arrow'));
      expect(a.names).toEqual(b.names);
      for (const c of ['customer_id', 'segment']) expect(Array.from(a.numeric(c))).toEqual(Array.from(b.numeric(c)));
      const da = a.numeric('distance');
      const db = b.numeric('distance');
      for (let i = 0; i < N; i++) expect(Math.abs(da[i] - db[i])).toBeLessThan(1e-4 * (1 + db[i]));
      expect(a.column('segment_name')).toEqual(b.column('segment_name'));
      expect(fs.readFileSync(path.join(dir, `blk-${format}`, 'segments.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir, `res-${format}`, 'segments.csv'), 'utf8'));
      // Nothing but the outputs published: the block cache stayed in staging.
      expect(fs.readdirSync(path.join(dir, `blk-${format}`)).sort()).toEqual(['assignments.arrow', 'manifest.json', 'metrics.json', 'model.json', 'segments.csv']);
    }, 120_000);
  }

  it('--method minibatch: the resident fit\'s steps exactly (rows gathered from the cache), its model and outputs', async () => {
    const job = (out: string): FitJob => ({ ...base('t.arrow', out), method: 'minibatch', batchSize: 512, nInit: 2 });
    const resident = await fitSegmentation(job('mb-res'));
    const blocks = await fitSegmentation({ ...job('mb-blk'), memoryLimit: 2 ** 20 });
    expect(blocks.metrics.outOfCore).toBeTruthy();
    expect(blocks.metrics.method).toBe('minibatch');
    // The same random batches in the same order: the same floats, not merely close ones.
    expect(blocks.model.centroidsScaled).toEqual(resident.model.centroidsScaled);
    expect(blocks.model.centreCounts).toEqual(resident.model.centreCounts);
    expect(blocks.model.params).toEqual(resident.model.params);
    expect((blocks.model.params as { nSteps: number }).nSteps).toBeGreaterThan(10);
    expect(blocks.metrics.sizes).toEqual(resident.metrics.sizes);
    expect(blocks.metrics.inertia).toBeCloseTo(resident.metrics.inertia, 3);
    for (const m of ['silhouette', 'calinskiHarabasz', 'daviesBouldin'] as const) expect(blocks.metrics[m]!).toBeCloseTo(resident.metrics[m]!, 6);
    const a = await readTable(path.join(dir, 'mb-blk', 'assignments.arrow'));
    const b = await readTable(path.join(dir, 'mb-res', 'assignments.arrow'));
    for (const c of ['customer_id', 'segment', 'distance']) expect(Array.from(a.numeric(c)), c).toEqual(Array.from(b.numeric(c)));
    expect(fs.readFileSync(path.join(dir, 'mb-blk', 'segments.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir, 'mb-res', 'segments.csv'), 'utf8'));
  }, 120_000);

  it('update --memory-limit: the in-memory update\'s steps exactly (steps spanning batches), model, metrics and outputs', async () => {
    const { updateModel } = await import('../../src/pipeline/update.js');
    // A model with a categorical feature too, so the one-hot columns go through the blocks.
    const t = await readTable(path.join(dir, 't.arrow'));
    const regions = ['north', 'south', 'east'];
    const cols = [...t.columns.map((c) => ({ name: c.name, values: c.type === 'bigint' ? c.values : t.numeric(c.name) })), { name: 'region', values: Array.from({ length: N }, (_, i) => regions[(i * 7) % 3]) }];
    await writeTable(path.join(dir, 'cat.parquet'), cols as never);
    // The new rows: shifted, with a region the model never saw.
    const shifted = cols.map((c) => (c.name === 'spend' ? { name: c.name, values: Float64Array.from(c.values as Float64Array, (v) => v + 25) } : c.name === 'region' ? { name: c.name, values: Array.from({ length: N }, (_, i) => (i % 11 === 0 ? 'west' : regions[i % 3])) } : c));
    await writeTable(path.join(dir, 'cat-new.parquet'), shifted as never);
    await fitSegmentation({ ...base('cat.parquet', 'cat-fit'), method: 'minibatch', categoricalColumns: ['region'] });
    for (const [model, input, extra] of [
      ['res-arrow', 't.arrow', { batchSize: 777, halfLife: { rows: 40_000 } }],
      ['cat-fit', 'cat-new.parquet', { batchSize: 1000, reassignmentRatio: 0.2 }],
    ] as const) {
      const job = (out: string) => ({ model: path.join(dir, model), input: path.join(dir, input), out: path.join(dir, out), weight: 'value', seed: 3, ...extra });
      const notices: string[] = [];
      const mem = await updateModel({ ...job(`u-mem-${model}`), log: (l) => notices.push(`mem ${l}`) });
      const blk = await updateModel({ ...job(`u-blk-${model}`), memoryLimit: 2 ** 20, log: (l) => notices.push(`blk ${l}`) });
      expect(notices.some((l) => /^blk .*reading it in blocks/.test(l))).toBe(true);
      expect(blk.model.centroidsScaled).toEqual(mem.model.centroidsScaled);
      expect(blk.model.centreCounts).toEqual(mem.model.centreCounts);
      expect(blk.shift).toEqual(mem.shift);
      expect(Math.max(...mem.shift)).toBeGreaterThan(model === 'cat-fit' ? 0.05 : 1e-3); // the rows moved something
      expect(blk.sizes).toEqual(mem.sizes);
      expect(blk.inertia).toBeCloseTo(mem.inertia, 2);
      const mm = JSON.parse(fs.readFileSync(path.join(dir, `u-mem-${model}`, 'metrics.json'), 'utf8'));
      const mb = JSON.parse(fs.readFileSync(path.join(dir, `u-blk-${model}`, 'metrics.json'), 'utf8'));
      expect(mb.steps).toBe(mm.steps);
      expect(mb.outOfCore).toBeTruthy();
      for (const m of ['silhouette', 'calinskiHarabasz', 'daviesBouldin']) expect(mb[m]).toBeCloseTo(mm[m], 6);
      const a = await readTable(path.join(dir, `u-blk-${model}`, 'assignments.arrow'));
      const b = await readTable(path.join(dir, `u-mem-${model}`, 'assignments.arrow'));
      expect(a.names).toEqual(b.names);
      for (const c of a.names) expect(Array.from(a.numeric(c)), c).toEqual(Array.from(b.numeric(c)));
      expect(fs.readFileSync(path.join(dir, `u-blk-${model}`, 'segments.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir, `u-mem-${model}`, 'segments.csv'), 'utf8'));
      if (model === 'cat-fit') {
        expect(fs.readFileSync(path.join(dir, `u-blk-${model}`, 'segments.csv'), 'utf8')).toMatch(/region=south/);
        expect(notices.filter((l) => /unseen/.test(l)).map((l) => l.replace(/^(mem|blk) /, ''))).toEqual([notices.find((l) => /^mem .*unseen/.test(l))!.slice(4), notices.find((l) => /^mem .*unseen/.test(l))!.slice(4)]);
      }
    }
    await expect(updateModel({ model: path.join(dir, 'res-arrow'), input: path.join(dir, 't.arrow'), out: path.join(dir, 'u-refused'), memoryLimit: 2 ** 20, format: 'parquet' })).rejects.toThrow(/^--memory-limit: --format parquet is not supported on a table read in blocks yet/);
    expect(fs.existsSync(path.join(dir, 'u-refused'))).toBe(false);
  }, 180_000);

  it('sweep --memory-limit: the in-memory sweep\'s rows and recommendation, for kmeans and minibatch', async () => {
    const { sweepSegmentation } = await import('../../src/pipeline/sweep.js');
    for (const method of ['kmeans', 'minibatch'] as const) {
      const job = (out: string) => ({ input: path.join(dir, 't.parquet'), out: path.join(dir, out), id: 'customer_id', weight: 'value', ks: [2, 3, 4, 5, 6], method, nInit: 1, seed: 5, stability: 2, sample: 3000 });
      const notices: string[] = [];
      const mem = await sweepSegmentation(job(`sw-mem-${method}`));
      const blk = await sweepSegmentation({ ...job(`sw-blk-${method}`), memoryLimit: 2 ** 20, log: (l) => notices.push(l) });
      expect(notices.some((l) => /reading it in blocks/.test(l))).toBe(true);
      expect(blk.recommendation).toEqual(mem.recommendation);
      expect(blk.rows.map((r) => r.k)).toEqual(mem.rows.map((r) => r.k));
      expect(mem.rows.every((r) => r.stability_ari !== null && r.silhouette !== null)).toBe(true);
      blk.rows.forEach((r, i) => {
        const m = mem.rows[i];
        expect(Math.abs(r.inertia - m.inertia) / m.inertia, `k = ${r.k} inertia`).toBeLessThan(1e-6);
        for (const c of ['silhouette', 'calinski_harabasz', 'davies_bouldin', 'stability_ari', 'min_jaccard'] as const) expect(r[c], `k = ${r.k} ${c}`).toBeCloseTo(m[c]!, 6);
      });
      const json = JSON.parse(fs.readFileSync(path.join(dir, `sw-blk-${method}`, 'sweep.json'), 'utf8'));
      expect(json.outOfCore).toBeTruthy();
      expect(fs.readdirSync(path.join(dir, `sw-blk-${method}`)).sort()).toEqual(['manifest.json', 'sweep.csv', 'sweep.json']);
    }
    await expect(sweepSegmentation({ input: path.join(dir, 't.arrow'), out: path.join(dir, 'sw-refused'), ks: [2, 3], method: 'gmm', memoryLimit: 2 ** 20 })).rejects.toThrow(/^--memory-limit: --method gmm is not supported on a table read in blocks yet/);
    await expect(sweepSegmentation({ input: path.join(dir, 't.arrow'), out: path.join(dir, 'sw-refused'), ks: [2, 3], pca: 2, memoryLimit: 2 ** 20 })).rejects.toThrow(/^--memory-limit: --pca is not supported on a table read in blocks yet/);
    expect(fs.existsSync(path.join(dir, 'sw-refused'))).toBe(false);
  }, 240_000);

  it('--k auto and --warm-start in blocks: the resident fit\'s choice, sweep and model', async () => {
    for (const method of ['kmeans', 'minibatch'] as const) {
      const auto = (out: string): FitJob => ({ ...base('t.parquet', out), method, k: 'auto', kRange: [2, 3, 4, 5], stability: 1, nInit: 1 });
      const mem = await fitSegmentation(auto(`auto-mem-${method}`));
      const blk = await fitSegmentation({ ...auto(`auto-blk-${method}`), memoryLimit: 2 ** 20 });
      expect(blk.metrics.outOfCore).toBeTruthy();
      expect(blk.metrics.k).toBe(mem.metrics.k);
      expect(blk.metrics.sweep!.recommendation).toEqual(mem.metrics.sweep!.recommendation);
      blk.metrics.sweep!.rows.forEach((row, i) => {
        const m = mem.metrics.sweep!.rows[i];
        expect(row.k).toBe(m.k);
        for (const c of ['silhouette', 'calinski_harabasz', 'davies_bouldin', 'stability_ari', 'min_jaccard'] as const) expect(row[c], `k = ${row.k} ${c}`).toBeCloseTo(m[c]!, 6);
      });
      expect(blk.model.params).toMatchObject({ k: 'auto', kRange: [2, 3, 4, 5] });
      // The refit of the chosen k is the sweep's fit: the same figures as its row.
      const row = blk.metrics.sweep!.rows.find((r) => r.k === blk.metrics.k)!;
      expect(blk.metrics.inertia).toBe(row.inertia);
      const worst = Math.max(...blk.model.centroidsScaled.flatMap((c, j) => c.map((v, f) => Math.abs(v - mem.model.centroidsScaled[j][f]))));
      expect(worst).toBeLessThan(1e-5);
    }
    // --warm-start from the resident fit's model: the same start, the same model.
    const warm = (out: string): FitJob => ({ ...base('t.arrow', out), warmStart: path.join(dir, 'res-arrow'), nInit: 1 });
    const wm = await fitSegmentation(warm('warm-mem'));
    const wb = await fitSegmentation({ ...warm('warm-blk'), memoryLimit: 2 ** 20 });
    expect(wb.model.params.init).toBe('array');
    const worst = Math.max(...wb.model.centroidsScaled.flatMap((c, j) => c.map((v, f) => Math.abs(v - wm.model.centroidsScaled[j][f]))));
    expect(worst).toBeLessThan(1e-5);
    expect(wb.metrics.sizes).toEqual(wm.metrics.sizes);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'warm-blk', 'manifest.json'), 'utf8'));
    expect(manifest.inputs.map((i: { path: string }) => path.basename(i.path))).toContain('model.json');
  }, 240_000);

  it('--align-to in blocks: the resident fit\'s ids, new and retired segments, and transitions counted in hash buckets', async () => {
    // Today: rows 30,000.. of yesterday's table, and 20,000 new customers; one more segment.
    const t = await readTable(path.join(dir, 't.arrow'));
    const keep = (c: { type: string; values: unknown }, name: string) => (c.type === 'bigint' ? (c.values as BigInt64Array) : t.numeric(name));
    const cols = t.columns.map((c) => {
      const v = keep(c, c.name) as Float64Array | BigInt64Array;
      const today = v.slice(30_000);
      const fresh = v.slice(0, 20_000);
      if (v instanceof BigInt64Array) return { name: c.name, values: BigInt64Array.from([...today, ...fresh.map((id) => id + 10n ** 9n)]) };
      return { name: c.name, values: Float64Array.from([...today, ...fresh]) };
    });
    const w = new ArrowBatchWriter(path.join(dir, 'today.arrow'));
    for (let s0 = 0; s0 < cols[0].values.length; s0 += 50_000) w.write(cols.map((c) => ({ name: c.name, values: c.values.slice(s0, s0 + 50_000) })) as never);
    await w.close();
    const job = (out: string): FitJob => ({ ...base('today.arrow', out), k: 5, alignTo: path.join(dir, 'res-arrow') });
    const mem = await fitSegmentation(job('al-mem'));
    const notices: string[] = [];
    const blk = await fitSegmentation({ ...job('al-blk'), memoryLimit: 2 ** 20, log: (l) => notices.push(l) });
    expect(notices.some((l) => /reading it in blocks/.test(l))).toBe(true);
    expect(blk.metrics.segmentIds).toEqual(mem.metrics.segmentIds);
    expect(mem.metrics.alignment!.newSegments.length).toBe(1); // k 4 → 5
    expect(blk.metrics.alignment).toEqual(mem.metrics.alignment);
    expect(mem.metrics.alignment!.transitions).toMatchObject({ customersInBoth: 120_000, onlyPrevious: 30_000, onlyCurrent: 20_000 });
    expect(blk.model.segmentIds).toEqual(mem.model.segmentIds);
    expect(blk.model.nextSegmentId).toBe(mem.model.nextSegmentId);
    expect(blk.metrics.sizes).toEqual(mem.metrics.sizes);
    const worst = Math.max(...blk.model.centroidsScaled.flatMap((c, j) => c.map((v, f) => Math.abs(v - mem.model.centroidsScaled[j][f]))));
    expect(worst).toBeLessThan(1e-5);
    for (const f of ['transitions.csv', 'segments.csv']) expect(fs.readFileSync(path.join(dir, 'al-blk', f), 'utf8'), f).toBe(fs.readFileSync(path.join(dir, 'al-mem', f), 'utf8'));
    const a = await readTable(path.join(dir, 'al-blk', 'assignments.arrow'));
    const b = await readTable(path.join(dir, 'al-mem', 'assignments.arrow'));
    for (const c of ['customer_id', 'segment']) expect(Array.from(a.numeric(c)), c).toEqual(Array.from(b.numeric(c)));
    expect(a.column('segment_name')).toEqual(b.column('segment_name'));
    // The bucket files stayed in staging and went with it.
    expect(fs.readdirSync(path.join(dir, 'al-blk')).sort()).toEqual(['assignments.arrow', 'manifest.json', 'metrics.json', 'model.json', 'segments.csv', 'transitions.csv']);
  }, 180_000);

  it('predict --memory-limit scores a table in batches exactly as in memory', async () => {
    const model = path.join(dir, 'res-arrow');
    for (const format of ['arrow', 'parquet']) {
      const notices: string[] = [];
      const inMemory = await predictSegments({ model, input: path.join(dir, `t.${format}`), out: path.join(dir, `p-mem-${format}.arrow`) });
      const blocks = await predictSegments({ model, input: path.join(dir, `t.${format}`), out: path.join(dir, `p-blk-${format}.arrow`), memoryLimit: 2 ** 20, log: (l) => notices.push(l) });
      expect(notices.some((l) => /reading it in blocks/.test(l))).toBe(true);
      expect(blocks.sizes).toEqual(inMemory.sizes);
      const a = await readTable(path.join(dir, `p-blk-${format}.arrow`));
      const b = await readTable(path.join(dir, `p-mem-${format}.arrow`));
      expect(a.names).toEqual(b.names);
      for (const c of a.names) expect(Array.from(a.numeric(c)), c).toEqual(Array.from(b.numeric(c)));
    }
    await expect(predictSegments({ model, input: path.join(dir, 't.arrow'), out: path.join(dir, 'p.csv'), memoryLimit: 2 ** 20 })).rejects.toThrow(/predict writes a table read in blocks as Arrow IPC/);
  }, 60_000);

  it('churn predict --memory-limit scores a table in batches exactly as in memory', async () => {
    const { trainChurn, predictChurn } = await import('../../src/pipeline/churn.js');
    // A label to train on: the blobs' segment 0 against the rest, from the resident fit.
    const seg = (await readTable(path.join(dir, 'res-arrow', 'assignments.arrow'))).numeric('segment');
    const t = await readTable(path.join(dir, 't.arrow'));
    const cols = t.columns.map((c) => ({ name: c.name, values: c.type === 'bigint' ? c.values : t.numeric(c.name) }));
    await writeTable(path.join(dir, 'labelled.parquet'), [...cols, { name: 'churned', values: Int32Array.from(seg, (v) => (v === 0 ? 1 : 0)) }] as never);
    await trainChurn({ input: path.join(dir, 'labelled.parquet'), label: 'churned', id: 'customer_id', out: path.join(dir, 'churn'), net: { maxEpochs: 1 } });
    const model = path.join(dir, 'churn');
    const mem = await predictChurn({ model, input: path.join(dir, 't.parquet'), out: path.join(dir, 'c-mem.arrow') });
    const blk = await predictChurn({ model, input: path.join(dir, 't.parquet'), out: path.join(dir, 'c-blk.arrow'), memoryLimit: 2 ** 20 });
    expect(blk.bands).toEqual(mem.bands);
    const a = await readTable(path.join(dir, 'c-blk.arrow'));
    const b = await readTable(path.join(dir, 'c-mem.arrow'));
    expect(a.names).toEqual(b.names);
    expect(Array.from(a.numeric('customer_id'))).toEqual(Array.from(b.numeric('customer_id')));
    expect(Array.from(a.numeric('churn_probability'))).toEqual(Array.from(b.numeric('churn_probability')));
    expect(a.column('risk_band')).toEqual(b.column('risk_band'));
    await expect(predictChurn({ model, input: path.join(dir, 't.parquet'), out: path.join(dir, 'c.arrow'), segments: path.join(dir, 'res-arrow'), memoryLimit: 2 ** 20 })).rejects.toThrow(/--segments is not supported on a table read in blocks/);
  }, 120_000);

  it('streaming medians are exact, whatever the data (ties, ±0, negatives, wide ranges), also refined to the last key bit', async () => {
    const r = new Random(4);
    const columns: Record<string, number[]> = {
      ties: Array.from({ length: 1001 }, (_, i) => (i % 3 === 0 ? 5 : i % 3 === 1 ? 5 : 6)),
      zeros: Array.from({ length: 1000 }, (_, i) => (i % 2 ? -0 : 0)),
      wide: Array.from({ length: 999 }, () => r.gauss() * 10 ** Math.floor(r.next() * 30 - 15)),
      negative: Array.from({ length: 1000 }, () => -Math.exp(r.gauss() * 5)),
      even: Array.from({ length: 1000 }, (_, i) => (i < 500 ? -1.5 : 2.25)),
    };
    const cols = Object.entries(columns).map(([name, v]) => ({ name, type: 'number' as const, values: Float64Array.from({ length: 1001 }, (_, i) => (i < v.length ? v[i] : NaN)) }));
    const table = new ColumnTable('m.arrow', 1001, cols);
    const names = Object.keys(columns);
    const resident = Preprocessor.fit(table, { features: names, impute: 'median' }).state.numeric;
    // Two blocks, and a collect cap of 0 so every median is refined through all four key digits.
    const batches = async function* () {
      for (const [s, e] of [[0, 400], [400, 1001]]) yield new ColumnTable('m.arrow', e - s, cols.map((c) => ({ ...c, values: c.values.slice(s, e) })));
    };
    for (const collectAtMost of [0, 1 << 20]) {
      const { pre } = await fitStreaming(batches, { features: names, scale: 'standard', impute: 'median', path: 'm.arrow', collectAtMost });
      expect(pre.state.numeric.map((s) => s.fill)).toEqual(resident.map((s) => s.fill));
      expect(pre.state.numeric).toEqual(resident);
    }
  });

  it('bad ids fail before the fit, and a pseudonymised duplicate is named by its row, not its value', async () => {
    const n = 5000;
    const id = BigInt64Array.from({ length: n }, (_, i) => BigInt(9_000_000 + i));
    id[4000] = id[17]; // a duplicate, far into the table
    const x = Float64Array.from({ length: n }, (_, i) => (i % 3) + 0.01 * (i % 7));
    await writeTable(path.join(dir, 'dup.parquet'), [{ name: 'customer_id', values: id }, { name: 'x', values: x }]);
    const lines: string[] = [];
    const phases = new Set<string>();
    // A limit of one byte: read in blocks, however small the table.
    const job = { input: path.join(dir, 'dup.parquet'), out: path.join(dir, 'dup-out'), id: 'customer_id', k: 2, memoryLimit: 1, log: (l: string) => lines.push(l), onBar: (phase: string) => phases.add(phase) };
    await expect(fitSegmentation(job)).rejects.toThrow(/dup\.parquet: id column 'customer_id' repeats '9000017' at data row 4001/);
    // Found in the first pass over the table, before the other preprocessing passes, the cache and the fit.
    expect(lines.some((l) => /reading it in blocks/.test(l))).toBe(true);
    expect(lines.some((l) => /rows × \d+ features, k = 2/.test(l))).toBe(false);
    expect([...phases]).toEqual([]);
    process.env.SEGTENSOR_PSEUDONYM_KEY = 'a-key-for-this-test-only-0123456789';
    try {
      const e = await fitSegmentation({ ...job, pseudonymizeIds: true }).catch((err: Error) => err);
      expect(String((e as Error).message)).toMatch(/repeats a value at data row 4001/);
      expect(String((e as Error).message)).not.toMatch(/9000017/);
    } finally {
      delete process.env.SEGTENSOR_PSEUDONYM_KEY;
    }
    // Null text ids are refused too (the in-memory check does the same).
    fs.writeFileSync(path.join(dir, 'nullid.csv'), 'customer_id,x\n' + Array.from({ length: 300 }, (_, i) => `${i === 250 ? '' : `c${i}`},${i % 5}`).join('\n') + '\n');
    await expect(fitSegmentation({ ...job, input: path.join(dir, 'nullid.csv') })).rejects.toThrow(/nullid\.csv: id column 'customer_id' is null at data row 251/);
    expect(fs.existsSync(path.join(dir, 'dup-out'))).toBe(false);
  }, 60_000);

  it('a text column holding numbers (read as numbers in memory) is refused in blocks, not clustered differently', async () => {
    const n = 40_000;
    const r = new Random(5);
    const cols = [
      { name: 'customer_id', values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)) },
      { name: 'spend', values: Float64Array.from({ length: n }, () => 50 + 10 * r.gauss()) },
      // Numbers stored as text: in memory a feature, in blocks it would silently not be.
      { name: 'visits', values: Array.from({ length: n }, (_, i) => String(i % 9)) },
      // Text with leading zeros stays text either way, and is not a feature.
      { name: 'zip', values: Array.from({ length: n }, (_, i) => String(i % 90).padStart(5, '0')) },
    ];
    await writeTable(path.join(dir, 'text-numbers.parquet'), cols as never);
    const job = (out: string): FitJob => ({ input: path.join(dir, 'text-numbers.parquet'), out: path.join(dir, out), id: 'customer_id', k: 3, nInit: 1 });
    const mem = await fitSegmentation(job('tn-mem'));
    expect(mem.model.preprocessing.featureNames).toEqual(['spend', 'visits']);
    await expect(fitSegmentation({ ...job('tn-blk'), memoryLimit: 2 ** 20 })).rejects.toThrow(/^--memory-limit: column 'visits' of .*text-numbers\.parquet holds numbers stored as text/);
    expect(fs.existsSync(path.join(dir, 'tn-blk'))).toBe(false);
    // Left out, the rest fits in blocks; the zip codes stay text (not a feature) both ways.
    const blk = await fitSegmentation({ ...job('tn-blk2'), exclude: ['visits'], memoryLimit: 2 ** 20 });
    expect(blk.model.preprocessing.featureNames).toEqual(['spend']);
    // predict in blocks checks its id column the same way.
    const ids = [{ name: 'customer_id', values: Array.from({ length: n }, (_, i) => String(i + 1)) }, cols[1], { name: 'visits', values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 9)) }];
    await writeTable(path.join(dir, 'text-ids.parquet'), ids as never);
    await expect(predictSegments({ model: path.join(dir, 'tn-mem'), input: path.join(dir, 'text-ids.parquet'), out: path.join(dir, 'tn-p.arrow'), memoryLimit: 2 ** 20 })).rejects.toThrow(/column 'customer_id' of .* holds numbers stored as text/);
  }, 60_000);

  it('categories in blocks: one-hot columns, rare values, profile shares and assignments as in memory', async () => {
    const n = 90_000;
    const r = new Random(21);
    const regions = ['north', 'south', 'east', 'west'];
    const cols = [
      { name: 'customer_id', values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)) },
      { name: 'spend', values: Float64Array.from({ length: n }, (_, i) => 40 + 60 * (i % 3) + 8 * r.gauss()) },
      { name: 'tenure', values: Float64Array.from({ length: n }, (_, i) => (i % 29 === 0 ? NaN : 3 * (i % 5) + r.gauss())) },
      // Text with nulls, and a long tail beyond --max-categories 3 (rare values).
      { name: 'region', values: Array.from({ length: n }, (_, i) => (i % 31 === 0 ? null : i % 97 === 0 ? `outpost-${i % 13}` : regions[(i * 7 + (i % 3)) % 4])) },
      // Plan codes stored as integers, named by --categorical (read as text, as in memory).
      { name: 'plan', values: Int32Array.from({ length: n }, (_, i) => 100 + (i % 3) * 10 + (i % 7 === 0 ? 1 : 0)) },
    ];
    const w = new ArrowBatchWriter(path.join(dir, 'cats.arrow'));
    for (let s0 = 0; s0 < n; s0 += 30_000) w.write(cols.map((c) => ({ name: c.name, values: c.values.slice(s0, s0 + 30_000) })) as never);
    await w.close();
    await writeTable(path.join(dir, 'cats.parquet'), cols as never);
    for (const file of ['cats.arrow', 'cats.parquet']) {
      for (const extra of [{ categoricalColumns: ['region', 'plan'] }, { features: ['plan', 'spend', 'region', 'tenure'], categoricalColumns: ['plan'] }] as const) {
        const job = (out: string): FitJob => ({ input: path.join(dir, file), out: path.join(dir, out), id: 'customer_id', k: 4, nInit: 2, seed: 3, maxCategories: 3, ...extra });
        const notes: [string[], string[]] = [[], []];
        const mem = await fitSegmentation({ ...job('cat-mem'), log: (l) => notes[0].push(l) });
        const blk = await fitSegmentation({ ...job('cat-blk'), memoryLimit: 2 ** 20, log: (l) => notes[1].push(l) });
        expect(blk.metrics.outOfCore).toBeTruthy();
        expect(blk.model.preprocessing).toEqual(mem.model.preprocessing);
        expect(mem.model.preprocessing.categorical.map((c) => c.name).sort()).toEqual(['plan', 'region']);
        expect(mem.model.preprocessing.categorical.find((c) => c.name === 'region')!.rare?.length).toBeGreaterThan(0);
        const other = (ls: string[]) => ls.filter((l) => /most frequent are one-hot columns/.test(l));
        expect(other(notes[1])).toEqual(other(notes[0]));
        expect(other(notes[0]).length).toBeGreaterThan(0);
        const worst = Math.max(...blk.model.centroidsScaled.flatMap((c, j) => c.map((v, f) => Math.abs(v - mem.model.centroidsScaled[j][f]))));
        expect(worst).toBeLessThan(1e-5);
        expect(blk.metrics.sizes).toEqual(mem.metrics.sizes);
        expect(fs.readFileSync(path.join(dir, 'cat-blk', 'segments.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir, 'cat-mem', 'segments.csv'), 'utf8'));
        const a = await readTable(path.join(dir, 'cat-blk', 'assignments.arrow'));
        const b = await readTable(path.join(dir, 'cat-mem', 'assignments.arrow'));
        for (const c of ['customer_id', 'segment']) expect(Array.from(a.numeric(c)), `${file} ${c}`).toEqual(Array.from(b.numeric(c)));
        const mm = JSON.parse(fs.readFileSync(path.join(dir, 'cat-mem', 'manifest.json'), 'utf8'));
        const mb = JSON.parse(fs.readFileSync(path.join(dir, 'cat-blk', 'manifest.json'), 'utf8'));
        expect(mb.counts.otherCategories).toEqual(mm.counts.otherCategories);
      }
    }
  }, 240_000);

  it('what needs the whole table is refused in one line, before any work', async () => {
    for (const [extra, what] of [
      [{ method: 'gmm' as const, k: 3 }, '--method gmm'],
      [{ dtypes: { spend: 'number' as const } }, '--dtypes'],
      [{ pca: 2 }, '--pca'],
      [{ report: true }, '--report'],
      [{ format: 'parquet' as const }, '--format parquet'],
    ] as const) {
      await expect(fitSegmentation({ ...base('t.arrow', 'refused'), ...extra, memoryLimit: 2 ** 20 })).rejects.toThrow(new RegExp(`^--memory-limit: ${what.replace(/[-]/g, '\\-')} is not supported on a table read in blocks yet`));
    }
    expect(fs.existsSync(path.join(dir, 'refused'))).toBe(false);
  });
});
