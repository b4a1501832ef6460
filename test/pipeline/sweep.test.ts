/**
 * Choosing k (issue 14): the sweep's metrics against scikit-learn's on the same labels
 * (test/fixtures/make-sweep-fixtures.py), its inertias against scikit-learn's fits, the
 * recommendation rule on hand-made curves and on populations with 3, 5 and 8 true segments,
 * the stability matching, and the `sweep` and `fit --k auto` commands end to end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterQuality } from '../../src/eval/metrics.js';
import { readTable } from '../../src/io/read-table.js';
import { parseKRange } from '../../src/pipeline/k-range.js';
import { matchedJaccard, recommendK, sweepMatrix, SWEEP_DEFAULTS, type SweepRow } from '../../src/pipeline/sweep.js';
import { SWEEP_SAMPLE, SWEEP_STABILITY } from '../../src/cli/commands.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { usableBackends } from '../helpers/backends.js';
import { cliRunner, ROOT } from '../helpers/cli.js';
import { blobs, rng } from '../helpers/reference.js';

const root = ROOT;
const wineCsv = path.join(root, 'test/fixtures/wine.csv');
const fx = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/sklearn-sweep.json'), 'utf8')) as {
  ks: { k: number; labels: number[]; inertia: number; silhouette: number; calinski_harabasz: number; davies_bouldin: number }[];
};
const backends = await usableBackends();
const be = backends[0];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-sweep-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function wineMatrix() {
  const t = await readTable(wineCsv);
  return Preprocessor.fitTransform(t, { exclude: ['wine_id'] }).matrix;
}

const opts = { method: 'kmeans' as const, batchSize: 1024, seed: 0, nInit: 10, maxIter: 300, tol: 1e-4, init: 'k-means++' as const, sample: 20000, stability: 0 };

describe("the sweep's metrics against scikit-learn's", () => {
  it('silhouette, Calinski-Harabasz and Davies-Bouldin equal scikit-learn on its labels of each k (wine)', async () => {
    const x = await wineMatrix();
    const all = Int32Array.from({ length: x.nRows }, (_, i) => i);
    for (const c of fx.ks) {
      const q = await clusterQuality(be, x, Int32Array.from(c.labels), c.k, all);
      expect(q.silhouette! / c.silhouette, `k = ${c.k}`).toBeCloseTo(1, 5);
      expect(q.calinskiHarabasz! / c.calinski_harabasz, `k = ${c.k}`).toBeCloseTo(1, 5);
      expect(q.daviesBouldin! / c.davies_bouldin, `k = ${c.k}`).toBeCloseTo(1, 5);
    }
  });

  it("reaches scikit-learn's best-of-10 inertia within 1 % for every k, and recommends wine's 3 classes", async () => {
    const x = await wineMatrix();
    const { rows } = await sweepMatrix(be, x, null, { ...opts, ks: fx.ks.map((c) => c.k), stability: 3 });
    for (const c of fx.ks) {
      const r = rows.find((row) => row.k === c.k)!;
      expect(r.inertia / c.inertia, `k = ${c.k}`).toBeLessThan(1.01);
    }
    const rec = recommendK(rows);
    expect(rec.k).toBe(3);
    expect(rec.votes).toEqual({ silhouette: 3, calinski_harabasz: 3, davies_bouldin: 3 });
    expect(rec.clear).toBe(true);
  });
});

describe('recommendations on populations with known segments', () => {
  /**
   * k Gaussian segments (unit noise) in d dimensions whose centres lie at least `gap` apart
   * (drawn by rejection), with unequal sizes (segment j gets a share ∝ 1 + j / k).
   */
  function population(n: number, d: number, k: number, gap: number, seed: number) {
    const r = rng(seed);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const centres: number[][] = [];
    while (centres.length < k) {
      const c = Array.from({ length: d }, () => (r() * 2 - 1) * gap * 1.5);
      if (centres.every((o) => Math.hypot(...o.map((v, f) => v - c[f])) >= gap)) centres.push(c);
    }
    const weights = centres.map((_, j) => 1 + j / k);
    const total = weights.reduce((a, b) => a + b);
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let u = r() * total;
      let j = 0;
      while (u >= weights[j] && j < k - 1) u -= weights[j++];
      for (let f = 0; f < d; f++) data[i * d + f] = centres[j][f] + gauss();
    }
    return { data, nRows: n, nFeatures: d };
  }

  it.each([3, 5, 8])('recommends k = %i on a population of that many segments (centres ≥ 10 noise sds apart), clearly and stably', async (truth) => {
    const x = population(4000, 5, truth, 10, 100 + truth);
    const { rows } = await sweepMatrix(be, x, null, { ...opts, nInit: 3, ks: parseKRange('2..10'), stability: 3 });
    const rec = recommendK(rows);
    expect(rec.k, rec.reason).toBe(truth);
    expect(rec.clear, rec.reason).toBe(true);
    const at = rows.find((r) => r.k === truth)!;
    expect(at.stability_ari!).toBeGreaterThan(0.99);
    expect(at.min_jaccard!).toBeGreaterThan(0.99);
  });

  it('flags a population without structure as not clear', async () => {
    // One Gaussian: any k is a partition, not found segments.
    const { data } = blobs(3000, 4, 1, 0, 9);
    const x = { data, nRows: 3000, nFeatures: 4 };
    const { rows } = await sweepMatrix(be, x, null, { ...opts, nInit: 2, ks: [2, 3, 4, 5, 6], stability: 2 });
    const rec = recommendK(rows);
    expect(rec.clear).toBe(false);
    expect(rec.reason).toMatch(/little cluster structure|no clear answer|end of the range/);
  });
});

describe('recommendK on hand-made curves', () => {
  const row = (k: number, silhouette: number, ch: number, db: number, ari: number | null = null): SweepRow => ({
    k,
    inertia: 100 / k,
    silhouette,
    calinski_harabasz: ch,
    davies_bouldin: db,
    stability_ari: ari,
    min_jaccard: ari,
    n_iter: 5,
    converged: true,
    seconds: 0,
  });

  it('takes the k all three indices prefer', () => {
    const r = recommendK([row(2, 0.4, 100, 1.0), row(3, 0.6, 300, 0.5), row(4, 0.5, 200, 0.8)]);
    expect(r).toMatchObject({ k: 3, clear: true });
    expect(r.reason).toBe('silhouette, Calinski-Harabasz and Davies-Bouldin all prefer k = 3');
  });

  it('takes the k two of three prefer, naming the dissenter', () => {
    const r = recommendK([row(2, 0.4, 100, 1.0), row(3, 0.6, 150, 0.5), row(4, 0.5, 200, 0.8), row(5, 0.3, 90, 0.9)]);
    expect(r).toMatchObject({ k: 3, clear: true });
    expect(r.reason).toBe('silhouette and Davies-Bouldin prefer k = 3 (Calinski-Harabasz 4)');
  });

  it('breaks a three-way disagreement by stability, and says there is no clear answer', () => {
    const rows = [row(2, 0.3, 100, 1.0, 0.9), row(3, 0.5, 150, 0.9, 0.6), row(4, 0.4, 300, 0.95, 0.7), row(5, 0.35, 200, 0.5, 0.95), row(6, 0.3, 100, 1.1, 0.9)];
    const r = recommendK(rows);
    expect(r.k).toBe(5);
    expect(r.clear).toBe(false);
    expect(r.reason).toMatch(/^no clear answer: silhouette prefers k = 3, Calinski-Harabasz k = 4, Davies-Bouldin k = 5; k = 5 is the most stable of them/);
    // Without stability refits, silhouette's choice.
    expect(recommendK(rows.map((x) => ({ ...x, stability_ari: null }))).k).toBe(3);
  });

  it('flags a choice at an end of the range, and weak structure', () => {
    const edge = recommendK([row(2, 0.6, 300, 0.5), row(3, 0.5, 200, 0.6), row(4, 0.4, 100, 0.7)]);
    expect(edge).toMatchObject({ k: 2, clear: false });
    expect(edge.reason).toMatch(/k = 2 is at an end of the range 2\.\.4/);
    const weak = recommendK([row(2, 0.1, 100, 1.5), row(3, 0.2, 300, 1.2), row(4, 0.15, 200, 1.4)]);
    expect(weak).toMatchObject({ k: 3, clear: false });
    expect(weak.reason).toMatch(/best silhouette is 0\.200 \(< 0\.25\)/);
  });
});

describe('stability matching and k ranges', () => {
  it('matches renamed segments with Jaccard 1, and a split segment below it', () => {
    const full = Int32Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2, 2]);
    expect([...matchedJaccard(full, Int32Array.from([2, 2, 2, 0, 0, 0, 1, 1, 1, 1]), 3)]).toEqual([1, 1, 1]);
    // Segment 2 split in two halves, segments 0 and 1 merged: Jaccard 3/6 for 0 and 1 against the merge.
    const j = matchedJaccard(full, Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 2, 2]), 3);
    expect([...j].sort()).toEqual([0, 0.5, 0.5]);
  });

  it('parses ranges and lists, and refuses k < 2, empty ranges and junk in one line', () => {
    expect(parseKRange('2..12')).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(parseKRange(' 8, 2,4,2')).toEqual([2, 4, 8]);
    expect(() => parseKRange('1..4')).toThrow("--k must be a range like 2..12 or a list like 2,4,8 of integers >= 2; got '1..4' (k = 1 has no clusters to compare)");
    expect(() => parseKRange('6..3')).toThrow('the range is empty');
    expect(() => parseKRange('2..500')).toThrow('more than 200 values');
    expect(() => parseKRange('two')).toThrow('not an integer');
  });

  it('refuses stability beyond the matchable k at once, before any fit', async () => {
    const x = { data: new Float32Array(5000 * 2), nRows: 5000, nFeatures: 2 };
    await expect(sweepMatrix(be, x, null, { ...opts, ks: [2, 4097], stability: 1 })).rejects.toThrow('--stability matches segments up to k = 4096 (the matching is cubic in k); got --k 4097: use --stability 0');
  });

  it("keeps the CLI's defaults equal to the sweep's", () => {
    expect(SWEEP_SAMPLE).toBe(SWEEP_DEFAULTS.sample);
    expect(SWEEP_STABILITY).toBe(SWEEP_DEFAULTS.stability);
  });
});

describe('segtensor sweep and fit --k auto', () => {
  const run = cliRunner(dir);

  it('writes sweep.csv with the contract columns, sweep.json with the recommended k, and a manifest', () => {
    const out = path.join(dir, 'sweep');
    const r = run('sweep', '--input', wineCsv, '--id', 'wine_id', '--k', '2..6', '--stability', '2', '--out', out, '--backend', 'native');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/recommended k = 3: silhouette, Calinski-Harabasz and Davies-Bouldin all prefer k = 3/);
    const csv = fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('k,inertia,silhouette,calinski_harabasz,davies_bouldin,stability_ari,min_jaccard');
    expect(csv.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([2, 3, 4, 5, 6]);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8'));
    expect(json.recommendedK).toBe(3);
    expect(json.recommendation.rule).toMatch(/most of silhouette/);
    expect(json.sweep).toHaveLength(5);
    // The CSV holds the JSON's values.
    expect(Number(csv[2].split(',')[2])).toBe(json.sweep[1].silhouette);
    expect(fs.existsSync(path.join(out, 'manifest.json'))).toBe(true);
  });

  it('fit --k auto keeps the recommended fit and records the sweep in metrics.json', () => {
    const out = path.join(dir, 'auto');
    const r = run('fit', '--input', wineCsv, '--id', 'wine_id', '--k', 'auto', '--k-range', '2..5', '--stability', '2', '--out', out, '--backend', 'native');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    expect(m.k).toBe(3);
    expect(m.sweep.rows.map((x: SweepRow) => x.k)).toEqual([2, 3, 4, 5]);
    expect(m.sweep.recommendation.k).toBe(3);
    // The kept fit is the sweep's k = 3 fit.
    expect(m.inertia).toBe(m.sweep.rows[1].inertia);
    const model = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(model.k).toBe(3);
    expect(model.params.k).toBe('auto');
  });

  it('refuses bad ranges and --k-range without --k auto in one line, exit 2', () => {
    for (const args of [
      ['sweep', '--input', wineCsv, '--k', '1..4', '--out', path.join(dir, 'bad1')],
      ['fit', '--input', wineCsv, '--k', '3', '--k-range', '2..5', '--out', path.join(dir, 'bad2')],
      ['fit', '--input', wineCsv, '--k', 'several', '--out', path.join(dir, 'bad3')],
    ]) {
      const r = run(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^segtensor: error \[BAD_OPTION\]: .*(--k|--k-range)/);
    }
  });
});
