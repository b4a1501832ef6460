/**
 * PCA against scikit-learn 1.2's PCA(svd_solver='full') on two real standardised tables (wine,
 * breast cancer; test/fixtures/make-pca-fixtures.py), on every usable backend; the randomised
 * solver against the exact one on a clear spectrum; the eigensolver against its defining
 * identities; and the one-line option errors.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import type { Matrix } from '../../src/core/matrix.js';
import { applyPca, eigSymmetric, fitPca, PCA_EXACT_LIMIT, type PcaModel } from '../../src/models/pca.js';
import { SegtensorError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';
import { ALWAYS, usableBackends } from '../helpers/backends.js';

const backends = await usableBackends();
const fixture = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-pca.json', import.meta.url), 'utf8'));

/** wine.csv standardised with the fixture's scaler, rounded to float32 as the fixture's fit input. */
function wine(): Matrix {
  const f = fixture.wine;
  const lines = fs.readFileSync(new URL('../fixtures/wine.csv', import.meta.url), 'utf8').trim().split('\n').slice(1);
  const d = f.nFeatures;
  const data = new Float32Array(lines.length * d);
  lines.forEach((l, i) => {
    const v = l.split(',').slice(1).map(Number);
    for (let j = 0; j < d; j++) data[i * d + j] = (v[j] - f.scalerMean[j]) / f.scalerScale[j];
  });
  return { data, nRows: lines.length, nFeatures: d };
}

function breastCancer(): Matrix {
  const f = fixture.breastCancer;
  return { data: Float32Array.from(f.x), nRows: f.nRows, nFeatures: f.nFeatures };
}

const TABLES = [
  ['wine', wine, fixture.wine],
  ['breast cancer', breastCancer, fixture.breastCancer],
] as const;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Largest difference between two vectors once b's sign is matched to a's. */
function upToSign(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  const s = dot < 0 ? -1 : 1;
  return maxAbsDiff(a, Array.from(b, (v) => s * v));
}

/** Column j of a row-major nRows × m matrix. */
function column(x: ArrayLike<number>, m: number, j: number): number[] {
  const out: number[] = [];
  for (let i = j; i < x.length; i += m) out.push(x[i]);
  return out;
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof SegtensorError ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

async function asyncCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof SegtensorError ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

it('runs on the backends every machine has', () => {
  for (const name of ALWAYS) expect(backends.map((b) => b.name)).toContain(name);
});

describe.each(backends.map((b) => [b.name, b] as const))('PCA on %s', (_n, be) => {
  describe.each(TABLES)('%s against scikit-learn', (_t, load, ref) => {
    const x = load();
    const d = ref.nFeatures;

    it('explained variance, ratios, singular values, mean and components', async () => {
      const m = await fitPca(be, x, null, { components: d });
      expect(m.solver).toBe('exact');
      expect(m.nComponents).toBe(d);
      expect(m.totalWeight).toBe(ref.nRows);
      expect(maxAbsDiff(m.explainedVarianceRatio, ref.explainedVarianceRatio)).toBeLessThan(1e-6);
      for (let j = 0; j < d; j++) {
        expect(Math.abs(m.explainedVariance[j] / ref.explainedVariance[j] - 1)).toBeLessThan(1e-6);
        expect(Math.abs(m.singularValues[j] / ref.singularValues[j] - 1)).toBeLessThan(1e-6);
      }
      expect(maxAbsDiff(m.mean, ref.mean)).toBeLessThan(1e-12);
      for (let j = 0; j < d; j++) {
        expect(upToSign(ref.components[j], m.components[j])).toBeLessThan(1e-6);
        // The sign rule (largest-magnitude entry positive) gives the exact signs.
        expect(maxAbsDiff(m.components[j], ref.componentsFlipped[j])).toBeLessThan(1e-6);
      }
    });

    it('transforms rows as scikit-learn does, on the host and through the backend', async () => {
      const m = await fitPca(be, x, null, { components: d });
      const rows = ref.rows as number[];
      const sub: Matrix = { data: new Float32Array(rows.length * d), nRows: rows.length, nFeatures: d };
      rows.forEach((r, i) => sub.data.set(x.data.subarray(r * d, r * d + d), i * d));
      // A JSON round trip (model.json) changes nothing.
      const saved: PcaModel = JSON.parse(JSON.stringify(m));
      const host = applyPca(saved, sub);
      const dev = await applyPca(saved, sub, be);
      expect(host.nFeatures).toBe(d);
      const want = (ref.transform as number[][]).flat();
      for (let j = 0; j < d; j++) {
        const w = column(want, d, j);
        // float32 scores of magnitude up to ~10: a few float32 ulps.
        expect(upToSign(w, column(host.data, d, j))).toBeLessThan(2e-5);
        expect(upToSign(w, column(dev.data, d, j))).toBeLessThan(2e-5);
      }
      expect(maxAbsDiff(host.data, dev.data)).toBeLessThan(2e-5);
    });

    it.each(['0.5', '0.8', '0.9', '0.95', '0.99'])('a share of %s keeps as many components as scikit-learn', async (share) => {
      const m = await fitPca(be, x, null, { components: Number(share) });
      expect(m.nComponents).toBe(ref.shares[share]);
      expect(m.components).toHaveLength(m.nComponents);
      expect(m.explainedVarianceRatio).toHaveLength(m.nComponents);
    });
  });

  it('integer weights equal duplicated rows (frequency weights, divisor Σw − 1)', async () => {
    const rng = new Random(5);
    const n = 300;
    const d = 6;
    const data = new Float32Array(n * d).map((_, i) => rng.gauss() * (1 + (i % d)) + (i % d));
    const w = new Float32Array(n).map((_, i) => 1 + (i % 3));
    const dup: number[] = [];
    for (let i = 0; i < n; i++) for (let c = 0; c < w[i]; c++) dup.push(...data.subarray(i * d, i * d + d));
    const a = await fitPca(be, { data, nRows: n, nFeatures: d }, w, { components: 3 });
    const b = await fitPca(be, { data: Float32Array.from(dup), nRows: dup.length / d, nFeatures: d }, null, { components: 3 });
    expect(a.totalWeight).toBe(b.totalWeight);
    expect(maxAbsDiff(a.mean, b.mean)).toBeLessThan(1e-9);
    for (let j = 0; j < 3; j++) {
      expect(Math.abs(a.explainedVariance[j] / b.explainedVariance[j] - 1)).toBeLessThan(1e-9);
      expect(maxAbsDiff(a.components[j], b.components[j])).toBeLessThan(1e-9);
    }
  });
});

describe('backends agree', () => {
  it('on both tables, to float64 rounding of the moments', async () => {
    for (const [, load] of TABLES) {
      const x = load();
      const models = await Promise.all(backends.map((be) => fitPca(be, x, null, { components: 0.95 })));
      for (const m of models.slice(1)) {
        expect(m.nComponents).toBe(models[0].nComponents);
        expect(maxAbsDiff(m.explainedVarianceRatio, models[0].explainedVarianceRatio)).toBeLessThan(1e-10);
        for (let j = 0; j < m.nComponents; j++) expect(maxAbsDiff(m.components[j], models[0].components[j])).toBeLessThan(1e-8);
      }
    }
  });
});

/**
 * nRows × d float32 rows with five strong directions (standard deviations 10, 6, 4, 3, 2 along
 * random orthonormal axes) over isotropic noise of 0.05: a spectrum with a gap of ~1,600 after
 * the fifth eigenvalue.
 */
function clearSpectrum(n: number, d: number, seed: number): Matrix {
  const rng = new Random(seed);
  const sd = [10, 6, 4, 3, 2];
  const axes: Float64Array[] = [];
  for (let k = 0; k < sd.length; k++) {
    const u = Float64Array.from({ length: d }, () => rng.gauss());
    for (const v of axes) {
      let t = 0;
      for (let f = 0; f < d; f++) t += u[f] * v[f];
      for (let f = 0; f < d; f++) u[f] -= t * v[f];
    }
    const norm = Math.hypot(...u);
    axes.push(u.map((v) => v / norm));
  }
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const z = sd.map((s) => s * rng.gauss());
    for (let f = 0; f < d; f++) {
      let v = 3 + 0.05 * rng.gauss();
      for (let k = 0; k < sd.length; k++) v += z[k] * axes[k][f];
      data[i * d + f] = v;
    }
  }
  return { data, nRows: n, nFeatures: d };
}

describe('randomised solver', () => {
  const be: Backend = backends[0];
  const x = clearSpectrum(2000, 60, 9);

  it('agrees with the exact solver on a clear spectrum', async () => {
    const exact = await fitPca(be, x, null, { components: 5, solver: 'exact' });
    for (const seed of [0, 1]) {
      // auto above its exact limit picks the randomised solver.
      const rnd = await fitPca(be, x, null, { components: 5, exactLimit: 32, seed });
      expect(rnd.solver).toBe('randomized');
      for (let j = 0; j < 5; j++) {
        expect(Math.abs(rnd.explainedVariance[j] / exact.explainedVariance[j] - 1)).toBeLessThan(1e-10);
        expect(Math.abs(rnd.explainedVarianceRatio[j] - exact.explainedVarianceRatio[j])).toBeLessThan(1e-10);
        expect(maxAbsDiff(rnd.components[j], exact.components[j])).toBeLessThan(1e-8);
      }
    }
    // The planted standard deviations come back (sampling error ~ 1/√2000 relative).
    exact.explainedVariance.forEach((v, j) => expect(Math.sqrt(v) / [10, 6, 4, 3, 2][j]).toBeCloseTo(1, 1));
  });

  it('selects the same count for a share, doubling its rank until the share is reached', async () => {
    // 0.9995 needs 24 of the 60 directions: past half the width, the solver goes exact.
    for (const [share, solver] of [[0.6, 'randomized'], [0.95, 'randomized'], [0.999, 'randomized'], [0.9995, 'exact']] as const) {
      const exact = await fitPca(be, x, null, { components: share, solver: 'exact' });
      const rnd = await fitPca(be, x, null, { components: share, solver: 'randomized' });
      expect(rnd.solver).toBe(solver);
      expect(rnd.nComponents).toBe(exact.nComponents);
      expect(maxAbsDiff(rnd.explainedVarianceRatio, exact.explainedVarianceRatio)).toBeLessThan(1e-9);
    }
    // A geometric spectrum (standard deviations 0.93^f over 100 columns): 0.95 needs 21
    // components, more than the first rank of 16, so the rank doubles to 32.
    const rng = new Random(11);
    const geo: Matrix = { data: new Float32Array(1500 * 100).map((_, i) => 0.93 ** (i % 100) * rng.gauss()), nRows: 1500, nFeatures: 100 };
    const exact = await fitPca(be, geo, null, { components: 0.95, solver: 'exact' });
    const rnd = await fitPca(be, geo, null, { components: 0.95, solver: 'randomized' });
    expect(exact.nComponents).toBe(21);
    expect(rnd.solver).toBe('randomized');
    expect(rnd.nComponents).toBe(21);
    expect(maxAbsDiff(rnd.explainedVarianceRatio, exact.explainedVarianceRatio)).toBeLessThan(1e-9);
  });

  it(`is what auto uses only above ${PCA_EXACT_LIMIT} features by default`, async () => {
    const m = await fitPca(be, x, null, { components: 2 });
    expect(m.solver).toBe('exact');
  });
});

describe('exact eigensolver', () => {
  it('satisfies A·v = λ·v with orthonormal vectors, eigenvalues descending', () => {
    const rng = new Random(3);
    const n = 40;
    const b = Float64Array.from({ length: n * n }, () => rng.gauss());
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = b[i * n + j] + b[j * n + i];
    const { values, vectors } = eigSymmetric(a, n);
    let trace = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i];
    expect(values.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 10);
    for (let k = 0; k < n; k++) {
      if (k > 0) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += a[i * n + j] * vectors[k][j];
        expect(Math.abs(s - values[k] * vectors[k][i])).toBeLessThan(1e-12);
      }
      for (let m = 0; m <= k; m++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += vectors[k][i] * vectors[m][i];
        expect(Math.abs(s - (m === k ? 1 : 0))).toBeLessThan(1e-13);
      }
    }
  });

  it('handles a diagonal matrix, repeated eigenvalues and a 1 × 1 matrix', () => {
    const diag = eigSymmetric(Float64Array.from([1, 0, 0, 0, 3, 0, 0, 0, 3]), 3);
    expect([...diag.values]).toEqual([3, 3, 1]);
    expect(diag.vectors[2].map(Math.abs)).toEqual(Float64Array.from([1, 0, 0]));
    expect([...eigSymmetric(Float64Array.from([7]), 1).values]).toEqual([7]);
  });
});

describe('errors', () => {
  const be = backends[0];
  const x = clearSpectrum(50, 4, 1);

  it.each([0, -1, 5, 2.5, 1.5, Number.NaN, -0.5, Infinity])('--pca %s is a one-line BAD_OPTION', async (c) => {
    expect(await asyncCode(fitPca(be, x, null, { components: c }))).toBe(
      `BAD_OPTION: --pca must be an integer in [1, 4] or a share in (0, 1); got ${c}`,
    );
  });

  it('accepts both ends of the count range and a share', async () => {
    expect((await fitPca(be, x, null, { components: 1 })).nComponents).toBe(1);
    expect((await fitPca(be, x, null, { components: 4 })).nComponents).toBe(4);
    expect((await fitPca(be, x, null, { components: 0.999999 })).nComponents).toBeLessThanOrEqual(4);
  });

  it('names the option, the rows and the weights', async () => {
    expect(await asyncCode(fitPca(be, x, null, { components: 2, solver: 'svd' as never }))).toBe(
      "BAD_OPTION: PCA: 'solver' must be one of auto, exact, randomized; got svd",
    );
    expect(await asyncCode(fitPca(be, { data: x.data.subarray(0, 4), nRows: 1, nFeatures: 4 }, null, { components: 1 }))).toBe(
      'BAD_INPUT: PCA: needs at least 2 rows for a covariance; got 1',
    );
    expect(await asyncCode(fitPca(be, x, new Float32Array(50).fill(0.01), { components: 1 }))).toMatch(/^BAD_INPUT: PCA: the weights must sum to more than 1/);
    const nan = Float32Array.from(x.data);
    nan[6] = Number.NaN;
    expect(await asyncCode(fitPca(be, { ...x, data: nan }, null, { components: 1 }))).toMatch(/^NON_FINITE: PCA: feature 2 holds NaN or Inf/);
  });

  it('applyPca refuses a model of another width or version', async () => {
    const m = await fitPca(be, x, null, { components: 2 });
    expect(code(() => applyPca(m, { data: new Float32Array(3), nRows: 1, nFeatures: 3 }))).toBe(
      'BAD_INPUT: PCA: the model was fitted on 4 features; the input has 3',
    );
    expect(code(() => applyPca({ ...m, formatVersion: 2 as 1 }, x))).toMatch(/^MODEL_VERSION: /);
  });
});
