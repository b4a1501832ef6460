/**
 * Every method through the pipeline (issue 15): `fit --method m` writes the same files as
 * K-Means plus the method's own columns, and `predict` from the saved model gives back what the
 * method's own predict gives (the fit's labels where the method's labels are a function of the
 * saved state), with ids carried through `--align-to`; `--pca` projects before segmenting and
 * `predict` applies the same projection. The algorithms themselves are checked against
 * scikit-learn and scipy in test/models/*.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { fitSegmentation, type FitJob } from '../../src/pipeline/fit.js';
import { METHODS, type Method } from '../../src/pipeline/method-names.js';
import { predictSegments } from '../../src/pipeline/predict.js';
import { sweepSegmentation } from '../../src/pipeline/sweep.js';
import { updateModel } from '../../src/pipeline/update.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { cliRunner, ROOT } from '../helpers/cli.js';
import { refAssign } from '../helpers/reference.js';

const wineCsv = path.join(ROOT, 'test/fixtures/wine.csv');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-methods-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);
const json = (out: string, name: string) => JSON.parse(fs.readFileSync(path.join(out, name), 'utf8'));
const base = { input: wineCsv, id: 'wine_id', backend: 'native', silhouetteSample: 1000 } as const;
const fit = (job: Partial<FitJob> & { out: string }) => fitSegmentation({ ...base, ...job });

/** wine.csv with two categorical columns: `band` (text) and `region` (numbers standing for categories). */
const mixedCsv = (() => {
  const lines = fs.readFileSync(wineCsv, 'utf8').trim().split('\n');
  const out = [lines[0] + ',band,region'];
  lines.slice(1).forEach((l, i) => {
    const alcohol = Number(l.split(',')[1]);
    out.push(`${l},${alcohol < 12.5 ? 'low' : alcohol < 13.5 ? 'mid' : 'high'},${1 + (i % 3)}`);
  });
  const f = at('mixed.csv');
  fs.writeFileSync(f, out.join('\n') + '\n');
  return f;
})();

async function column(file: string, name: string): Promise<Float64Array> {
  return Float64Array.from((await readTable(file)).numeric(name));
}

const K_OF: Record<Method, number | undefined> = { kmeans: 3, minibatch: 3, gmm: 3, dbscan: undefined, agglomerative: 3, bisecting: 3, kprototypes: 3 };

describe('fit --method and predict, every method', () => {
  it.each(METHODS.map((m) => [m] as const))('%s: the common outputs, its own, and predict from the saved model', async (method) => {
    const out = at(`fit-${method}`);
    const input = method === 'kprototypes' ? mixedCsv : wineCsv;
    const r = await fit({ input, method, k: K_OF[method], out, ...(method === 'dbscan' ? { eps: 2.2, minSamples: 5 } : {}) });
    for (const f of ['model.json', 'metrics.json', 'assignments.arrow', 'segments.csv', 'manifest.json']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    const m = json(out, 'metrics.json');
    const model = json(out, 'model.json');
    expect(m.method).toBe(method);
    expect(model.params.method).toBe(method);
    const noise = m.noise ?? 0;
    expect(m.sizes.reduce((a: number, b: number) => a + b, 0) + noise).toBe(178);
    const fitted = await column(path.join(out, 'assignments.arrow'), 'segment');
    const pred = at(`pred-${method}.arrow`);
    await predictSegments({ model: out, input, out: pred, backend: 'native' });
    const predicted = await column(pred, 'segment');
    if (method === 'agglomerative') {
      // predict is nearest segment centre (the tree has no place for a new row): check against a float64 brute force.
      const table = await readTable(input);
      const x = Preprocessor.fromJSON(model.preprocessing).transform(table);
      const ref = refAssign(x.data, x.nRows, x.nFeatures, model.centroidsScaled.flat(), model.k);
      expect(Array.from(predicted)).toEqual(Array.from(ref.labels, (l) => model.segmentIds?.[l] ?? l));
      expect(fs.existsSync(path.join(out, 'dendrogram.json'))).toBe(true);
    } else if (method === 'dbscan') {
      // A core row is within eps of itself: predict keeps its segment; the fit's noise stays noise
      // or joins a segment only through a core row within eps (never so here: eps is the fit's).
      const core = await column(path.join(out, 'assignments.arrow'), 'core');
      expect(core.some((c) => c === 1)).toBe(true);
      for (let i = 0; i < 178; i++) if (core[i] === 1) expect(predicted[i]).toBe(fitted[i]);
      expect(noise).toBeGreaterThan(0);
      expect(m.eps).toBe(2.2);
    } else if (method === 'bisecting') {
      // predict descends the tree (scikit-learn's predict); the fit's labels come from its splits.
      // They agree but for rows nearer another branch's centre than their own split said.
      const same = predicted.filter((v, i) => v === fitted[i]).length;
      expect(same / 178).toBeGreaterThan(0.9);
      expect(model.methodState.tree).toBeTruthy();
    } else {
      expect(Array.from(predicted)).toEqual(Array.from(fitted));
    }
    if (method === 'gmm') {
      for (const key of ['logLikelihood', 'bic', 'aic']) expect(Number.isFinite(m[key]), key).toBe(true);
      const p = await column(path.join(out, 'assignments.arrow'), 'probability');
      expect(p.every((v) => v > 0 && v <= 1)).toBe(true);
      expect(await column(pred, 'probability')).toEqual(p);
    }
    if (method === 'kprototypes') {
      expect(model.params.categorical).toEqual(['band']);
      expect(model.methodState.modes.length).toBe(3);
      expect(Number.isFinite(m.cost) && m.gamma > 0).toBe(true);
    }
    expect(r.metrics.k).toBe(model.k);
  });
});

describe('method options', () => {
  it('gmm --soft: one probability column per segment id, summing to 1, the largest being `probability`', async () => {
    const out = at('gmm-soft');
    await fit({ method: 'gmm', k: 3, covariance: 'diag', soft: true, out });
    const file = path.join(out, 'assignments.arrow');
    const cols = await Promise.all([0, 1, 2].map((id) => column(file, `probability_${id}`)));
    const p = await column(file, 'probability');
    const seg = await column(file, 'segment');
    for (let i = 0; i < 178; i++) {
      expect(cols[0][i] + cols[1][i] + cols[2][i]).toBeCloseTo(1, 5);
      expect(p[i]).toBeCloseTo(cols[seg[i]][i], 6);
    }
    expect(json(out, 'model.json').params.covariance).toBe('diag');
  });

  it('agglomerative: dendrogram.json holds n − 1 merges with non-decreasing heights and the linkage asked for', async () => {
    const out = at('agg-average');
    await fit({ method: 'agglomerative', k: 4, linkage: 'average', out });
    const d = json(out, 'dendrogram.json');
    expect(d.linkage).toBe('average');
    expect(d.merges.length).toBe(177);
    for (let i = 1; i < d.merges.length; i++) expect(d.merges[i].height).toBeGreaterThanOrEqual(d.merges[i - 1].height);
    expect(d.merges.at(-1).size).toBe(178);
  });

  it('kprototypes --categorical reads numeric codes as categories', async () => {
    const out = at('kproto-region');
    await fit({ input: mixedCsv, method: 'kprototypes', k: 3, categoricalColumns: ['region'], out });
    const model = json(out, 'model.json');
    expect(model.params.categorical).toEqual(['region', 'band']);
    expect(model.featureNames).toContain('region=1');
  });

  it('--pca: the method runs on components; predict projects the same way; centroids stay in the scaled features', async () => {
    const out = at('pca-kmeans');
    const r = await fit({ method: 'kmeans', k: 3, pca: 0.8, out, seed: 3 });
    const model = json(out, 'model.json');
    const n = model.pca.nComponents;
    expect(n).toBeGreaterThan(1);
    expect(n).toBeLessThan(13);
    expect(model.pca.explainedVarianceRatio.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0.8);
    expect(model.centroidsProjected[0].length).toBe(n);
    expect(model.centroidsScaled[0].length).toBe(13);
    expect(r.metrics.pcaComponents).toBe(n);
    const pred = at('pca-pred.arrow');
    await predictSegments({ model: out, input: wineCsv, out: pred, backend: 'native' });
    expect(Array.from(await column(pred, 'segment'))).toEqual(Array.from(await column(path.join(out, 'assignments.arrow'), 'segment')));
    // The distances are measured in component space, as the fit measured them.
    const before = await column(path.join(out, 'assignments.arrow'), 'distance');
    (await column(pred, 'distance')).forEach((v, i) => expect(Math.abs(v - before[i])).toBeLessThan(1e-6 * (1 + before[i])));
  });

  it('--align-to carries ids for a method with its own predict (gmm): predict gives the aligned ids', async () => {
    const prev = at('gmm-prev');
    await fit({ method: 'gmm', k: 3, seed: 1, out: prev });
    const next = at('gmm-next');
    await fit({ method: 'gmm', k: 3, seed: 7, alignTo: prev, out: next });
    const pred = at('gmm-next-pred.arrow');
    await predictSegments({ model: next, input: wineCsv, out: pred, backend: 'native' });
    expect(Array.from(await column(pred, 'segment'))).toEqual(Array.from(await column(path.join(next, 'assignments.arrow'), 'segment')));
    const m = json(next, 'metrics.json');
    expect(m.alignment.matches.length).toBe(3);
  });

  it('sweep --method gmm and bisecting score each k', async () => {
    for (const method of ['gmm', 'bisecting'] as const) {
      const r = await sweepSegmentation({ ...base, method, ks: [2, 3, 4], stability: 0, out: at(`sweep-${method}`) });
      expect(r.rows.map((x) => x.k)).toEqual([2, 3, 4]);
      expect(r.rows.every((x) => Number.isFinite(x.inertia) && x.silhouette !== null)).toBe(true);
    }
  });
});

describe('bad method options fail in one line before any output', () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['--k missing for gmm', () => fit({ method: 'gmm', out: at('e1') }), /--k is required with --method gmm/],
    ['--k with dbscan', () => fit({ method: 'dbscan', k: 3, out: at('e2') }), /--method dbscan finds the number of segments itself/],
    ['kprototypes without categories', () => fit({ method: 'kprototypes', k: 3, out: at('e3') }), /kprototypes needs at least one categorical column/],
    ['--pca with kprototypes', () => fit({ input: mixedCsv, method: 'kprototypes', k: 3, pca: 2, out: at('e4') }), /--pca .*kprototypes/],
    ['--warm-start with gmm', () => fit({ method: 'gmm', k: 3, warmStart: at('fit-kmeans'), out: at('e5') }), /--warm-start applies to --method kmeans and minibatch/],
    ['sweep --method dbscan', () => sweepSegmentation({ ...base, method: 'dbscan', ks: [2, 3], out: at('e6') }), /--method dbscan finds the number of segments itself/],
    ['update of a gmm model', () => updateModel({ model: at('fit-gmm'), input: wineCsv, out: at('e7'), backend: 'native' }), /update moves K-Means centroids .* this model is gmm/],
    ['--init k-means++ with gmm', () => fit({ method: 'gmm', k: 3, init: 'k-means++', out: at('e8') }), /--init k-means\+\+ applies to --method kmeans; gmm starts from a K-Means fit/],
    ['a categorical column for gmm', () => fit({ input: mixedCsv, method: 'gmm', k: 3, categoricalColumns: ['region'], out: at('e10') }), /--method gmm models numeric features with Gaussians; column 'region' is categorical/],
    ['--k above the rows for agglomerative', () => fit({ method: 'agglomerative', k: 500, out: at('e9') }), /'k' must be an integer in \[1, nRows = 178\]; got 500/],
    ['--eps with kmeans (would be ignored)', () => fit({ method: 'kmeans', k: 3, eps: 2, out: at('e11') }), /--eps applies to --method dbscan; got --method kmeans/],
    ['--linkage on a gmm sweep', () => sweepSegmentation({ ...base, method: 'gmm', ks: [2, 3], linkage: 'ward', out: at('e12') }), /--linkage applies to --method agglomerative; got --method gmm/],
  ];
  it.each(cases)('%s', async (_name, run, message) => {
    await expect(run()).rejects.toThrow(message);
    for (const e of ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10', 'e11', 'e12']) for (const f of ['model.json', 'sweep.json']) expect(fs.existsSync(path.join(at(e), f))).toBe(false);
  });
});

describe('CLI', () => {
  const run = cliRunner(dir);
  it('fit --method gmm --covariance diag --soft runs and names the method', () => {
    const r = run('fit', '--input', wineCsv, '--method', 'gmm', '--k', '3', '--covariance', 'diag', '--soft', '--id', 'wine_id', '--out', at('cli-gmm'), '--quiet');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(json(at('cli-gmm'), 'metrics.json').method).toBe('gmm');
  });

  it.each([
    [['--method', 'dbscan', '--eps', '0'], /--eps must be a number > 0 or auto; got '0'/],
    [['--method', 'kmeans'], /error \[BAD_OPTION\]: --k is required with --method kmeans/],
    [['--method', 'gmm', '--k', '3', '--soft', '--linkage', 'ward'], /error \[BAD_OPTION\]: --linkage applies to --method agglomerative; got --method gmm/],
    [['--method', 'dbscan', '--k', '3'], /error \[BAD_OPTION\]: --method dbscan finds the number of segments itself/],
    [['--method', 'gmm', '--k', '3', '--covariance', 'bogus'], /--covariance must be one of full, tied, diag, spherical; got 'bogus'/],
    [['--method', 'kmeans', '--k', '3', '--pca', '1.5'], /--pca must be a number of components \(an integer >= 1\) or a share of variance in \(0, 1\); got '1.5'/],
    [['--method', 'agglomerative', '--k', '3', '--linkage', 'single'], /--linkage must be one of ward, average, complete; got 'single'/],
  ])('%j exits 2 with one line', (args, message) => {
    const r = run('fit', '--input', wineCsv, '--out', at('cli-bad'), ...args);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(message);
  });
});
