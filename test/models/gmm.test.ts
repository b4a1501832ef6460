/**
 * Gaussian mixtures against scikit-learn's GaussianMixture (test/fixtures/make-gmm-fixtures.py:
 * iris raw and wine standardised, k = 2 and 3, all four covariance types, started from
 * scikit-learn's own initial parameters), against closed forms (k = 1, weights as repeated
 * rows), on every usable backend; plus the options' errors and prediction from saved parameters.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { SegtensorError } from '../../src/errors.js';
import {
  countParameters,
  GaussianMixture,
  GMM_DEFAULTS,
  GMM_PARAMS_VERSION,
  gmmParams,
  predictGmm,
  type CovarianceType,
  type GmmOptions,
  type GmmResult,
} from '../../src/models/gmm.js';
import { ALWAYS, usableBackends } from '../helpers/backends.js';

const backends = await usableBackends();

type Nested = number | Nested[];
interface Fitted {
  weights: number[];
  means: number[][];
  covariances: Nested;
  lowerBound: number;
  score: number;
  nIter: number;
}
interface Case {
  table: 'iris' | 'wine';
  k: number;
  covarianceType: CovarianceType;
  init: { weights: number[]; means: number[][]; precisions: Nested };
  oneStep: Fitted;
  fit: Fitted & { converged: boolean; bic: number; aic: number; nParameters: number; labels: number[] };
  defaultScore: number;
}
const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-gmm.json', import.meta.url), 'utf8')) as {
  tables: Record<string, { nRows: number; nFeatures: number; data: number[] }>;
  cases: Case[];
};
const tables = Object.fromEntries(
  Object.entries(fx.tables).map(([name, t]) => [name, { data: Float32Array.from(t.data), nRows: t.nRows, nFeatures: t.nFeatures }]),
);

const flat = (v: Nested | Nested[]): number[] => (Array.isArray(v) ? v.flatMap((e) => flat(e)) : [v]);
/** Largest absolute difference over the largest reference magnitude. */
function relDiff(ours: ArrayLike<number>, theirs: number[]): number {
  expect(ours.length).toBe(theirs.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < theirs.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
    scale = Math.max(scale, Math.abs(theirs[i]));
  }
  return diff / scale;
}
const rel = (a: number, b: number) => Math.abs(a / b - 1);
const fromInit = (c: Case): Partial<GmmOptions> => ({ weightsInit: c.init.weights, meansInit: c.init.means, precisionsInit: c.init.precisions as number[] });
const fit = (be: Backend, c: Case, o: Partial<GmmOptions> = {}) =>
  new GaussianMixture({ k: c.k, covarianceType: c.covarianceType, ...fromInit(c), ...o }).fit(be, tables[c.table]);
const name = (c: Case) => `${c.table} k=${c.k} ${c.covarianceType}`;

/**
 * One-step tolerance. Our E-step's products come back from `project` in float32, so a
 * log-probability carries ~1e-7 of the terms it is computed from. Standardised wine and the
 * full and tied types (‖(x − μ)·U‖²) stay near 1e-8; diag and spherical on raw iris go through
 * Σμ²·prec − 2x·μ·prec + x²·prec with x up to 7.9 and precisions up to ~100, terms ~1e3 times the
 * result: measured up to 8e-6 there (tfjs wasm, which sums in float32).
 */
const stepTol = (c: Case) => (c.table === 'iris' && (c.covarianceType === 'diag' || c.covarianceType === 'spherical') ? 3e-5 : 1e-6);

describe.each(backends.map((b) => [b.name, b] as const))("GaussianMixture against scikit-learn's GaussianMixture on %s", (_n, be) => {
  it.each(fx.cases.map((c) => [name(c), c] as const))('%s: one EM step from the same start matches', async (_c, c) => {
    const r = await fit(be, c, { maxIter: 1, tol: 0 });
    const tol = stepTol(c);
    expect(r.nIter).toBe(1);
    expect(r.converged).toBe(false);
    expect(rel(r.lowerBound, c.oneStep.lowerBound)).toBeLessThan(tol);
    expect(rel(r.logLikelihood, c.oneStep.score)).toBeLessThan(tol);
    expect(relDiff(r.weights, c.oneStep.weights)).toBeLessThan(tol);
    expect(relDiff(r.means, flat(c.oneStep.means))).toBeLessThan(tol);
    expect(relDiff(r.covariances, flat(c.oneStep.covariances))).toBeLessThan(tol);
  });

  it.each(fx.cases.map((c) => [name(c), c] as const))(
    '%s: the fit from the same start has the mean log-likelihood, BIC and AIC within 1e-3 relative, the same iterations and labels',
    async (_c, c) => {
      const r = await fit(be, c);
      expect(rel(r.logLikelihood, c.fit.score), `ours ${r.logLikelihood}, scikit-learn ${c.fit.score}`).toBeLessThan(1e-3);
      expect(rel(r.lowerBound, c.fit.lowerBound)).toBeLessThan(1e-3);
      expect(rel(r.bic, c.fit.bic)).toBeLessThan(1e-3);
      expect(rel(r.aic, c.fit.aic)).toBeLessThan(1e-3);
      expect(r.nParameters).toBe(c.fit.nParameters);
      expect(r.nIter).toBe(c.fit.nIter);
      expect(r.converged).toBe(c.fit.converged);
      // Parameters: measured within 5e-6 (raw iris, spherical); 1e-4 leaves room for kernels.
      expect(relDiff(r.weights, c.fit.weights)).toBeLessThan(1e-4);
      expect(relDiff(r.means, flat(c.fit.means))).toBeLessThan(1e-4);
      expect(relDiff(r.covariances, flat(c.fit.covariances))).toBeLessThan(1e-4);
      expect([...r.labels]).toEqual(c.fit.labels);
    },
  );

  it('its own K-Means start reaches scikit-learn\'s own fit (iris: the same optimum; wine: within 2 %)', async () => {
    for (const c of fx.cases) {
      const r = await new GaussianMixture({ k: c.k, covarianceType: c.covarianceType, seed: 0 }).fit(be, tables[c.table]);
      expect(r.init).toBe('k-means');
      // Different seeding streams can end in different local optima (wine full: -11.84 against -11.74).
      expect(rel(r.logLikelihood, c.defaultScore), name(c)).toBeLessThan(c.table === 'iris' ? 1e-4 : 0.02);
    }
  });
});

describe('every usable backend gives the same answer', () => {
  it('runs at least the backends every machine has', () => {
    for (const n of ALWAYS) expect(backends.map((b) => b.name)).toContain(n);
  });

  it.each(['full', 'tied', 'diag', 'spherical'] as const)('%s, wine k = 3, own K-Means start and given start', async (type) => {
    const c = fx.cases.find((e) => e.table === 'wine' && e.covarianceType === type)!;
    const results: GmmResult[] = [];
    for (const be of backends) results.push(await fit(be, c));
    const own: GmmResult[] = [];
    for (const be of backends) own.push(await new GaussianMixture({ k: 3, covarianceType: type, seed: 3 }).fit(be, tables.wine));
    for (const rs of [results, own]) {
      for (const r of rs.slice(1)) {
        expect(rel(r.logLikelihood, rs[0].logLikelihood)).toBeLessThan(1e-6);
        expect(relDiff(r.means, [...rs[0].means])).toBeLessThan(1e-5);
        expect([...r.labels]).toEqual([...rs[0].labels]);
        expect(r.nIter).toBe(rs[0].nIter);
      }
    }
  });
});

const be = backends[0];

describe('closed forms', () => {
  it('k = 1, full: the weighted mean, the weighted (biased) covariance + reg, and the Gaussian log-likelihood', async () => {
    const data = Float32Array.from([0, 0, 2, 0, 0, 4, 2, 4, 1, 1]);
    const w = Float32Array.from([1, 1, 1, 1, 4]);
    const x = { data, nRows: 5, nFeatures: 2 };
    const r = await new GaussianMixture({ k: 1, regCovar: 1e-6 }).fit(be, x, w);
    // W = 8; mean = (0+2+0+2+4, 0+0+4+4+4)/8 = (1, 1.5).
    expect([...r.means]).toEqual([1, 1.5].map((v) => expect.closeTo(v, 12)));
    // Σ w (x−μ)(x−μ)ᵀ / W: xx = (1+1+1+1+0)/8 = 0.5; yy = (2.25·2 + 6.25·2 + 0.25·4)/8 = 2.25; xy = (1.5 − 1.5 − 2.5 + 2.5 + 0)/8 = 0.
    expect([...r.covariances].map((v) => +v.toFixed(9))).toEqual([0.500001, 0, 0, 2.250001]);
    expect([...r.weights]).toEqual([1]);
    expect(r.labels.every((l) => l === 0)).toBe(true);
    expect(r.probability.every((p) => p === 1)).toBe(true);
    // Mean log-likelihood of N(μ, Σ) with the same Σ: −ln 2π − ½ ln det Σ − ½ E[(x−μ)ᵀΣ⁻¹(x−μ)], E[...] = tr(Σ⁻¹·S) = 2·S/(S+reg).
    const sxx = 0.5;
    const syy = 2.25;
    const reg = 1e-6;
    const ll = -Math.log(2 * Math.PI) - 0.5 * Math.log((sxx + reg) * (syy + reg)) - 0.5 * (sxx / (sxx + reg) + syy / (syy + reg));
    expect(r.logLikelihood).toBeCloseTo(ll, 6);
    expect(r.nParameters).toBe(5);
    expect(r.bic).toBeCloseTo(-2 * ll * 8 + 5 * Math.log(8), 5);
    expect(r.aic).toBeCloseTo(-2 * ll * 8 + 10, 5);
    // The first step already lands on the fixed point: the second changes the bound by ~0.
    expect(r.nIter).toBe(2);
    expect(r.converged).toBe(true);
  });

  it('counts free parameters as scikit-learn (_n_parameters)', () => {
    expect(countParameters('full', 3, 4)).toBe(3 * 10 + 12 + 2);
    expect(countParameters('tied', 3, 4)).toBe(10 + 12 + 2);
    expect(countParameters('diag', 3, 4)).toBe(12 + 12 + 2);
    expect(countParameters('spherical', 3, 4)).toBe(3 + 12 + 2);
  });

  it.each(['full', 'tied', 'diag', 'spherical'] as const)(
    '%s: integer sample weights give the fit of the table with each row repeated',
    async (type) => {
      const c = fx.cases.find((e) => e.table === 'iris' && e.k === 3 && e.covarianceType === type)!;
      const x = tables.iris;
      const d = x.nFeatures;
      const w = Float32Array.from({ length: x.nRows }, (_, i) => 1 + (i % 3));
      const rep: number[] = [];
      for (let i = 0; i < x.nRows; i++) for (let t = 0; t < w[i]; t++) rep.push(...x.data.subarray(i * d, (i + 1) * d));
      const xr = { data: Float32Array.from(rep), nRows: rep.length / d, nFeatures: d };
      const o = { k: 3, covarianceType: type, ...fromInit(c), maxIter: 5, tol: 0 };
      const a = await new GaussianMixture(o).fit(be, x, w);
      const b = await new GaussianMixture(o).fit(be, xr);
      // The same rows and responsibilities summed in another order: float64 rounding only, which
      // can flip a float32 rounding of the next E-step's products (measured up to 1e-11).
      expect(rel(a.logLikelihood, b.logLikelihood)).toBeLessThan(1e-9);
      expect(relDiff(a.means, [...b.means])).toBeLessThan(1e-9);
      expect(relDiff(a.covariances, [...b.covariances])).toBeLessThan(1e-9);
      expect(relDiff(a.weights, [...b.weights])).toBeLessThan(1e-9);
      // n = Σ w in BIC.
      expect(rel(a.bic, b.bic)).toBeLessThan(1e-9);
      expect(a.nParameters).toBe(b.nParameters);
    },
  );

  it('the result does not depend on the row blocks', async () => {
    for (const type of ['full', 'tied', 'diag'] as const) {
      const c = fx.cases.find((e) => e.table === 'wine' && e.covarianceType === type)!;
      const a = await fit(be, c);
      const b = await fit(be, c, { blockRows: 7 });
      expect(rel(b.logLikelihood, a.logLikelihood)).toBeLessThan(1e-12);
      expect(relDiff(b.covariances, [...a.covariances])).toBeLessThan(1e-12);
      expect([...b.labels]).toEqual([...a.labels]);
    }
  });

  it('works through the backend ops in row blocks, every row once per pass', async () => {
    const ranges: string[] = [];
    const spy = new Proxy(be, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv);
        if (prop !== 'project' && prop !== 'softSums' && prop !== 'scatter') return typeof v === 'function' ? v.bind(target) : v;
        return (...args: unknown[]) => {
          const rows = args[prop === 'scatter' ? 4 : 3] as { start: number; end: number } | undefined;
          ranges.push(`${String(prop)} ${rows ? `${rows.start}-${rows.end}` : 'all'}`);
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const c = fx.cases.find((e) => e.table === 'iris' && e.k === 3 && e.covarianceType === 'full')!;
    await fit(spy, c, { maxIter: 1, tol: 0, blockRows: 64 });
    const blocks = ['0-64', '64-128', '128-150'];
    // One EM pass (project, softSums, scatter per block), then the final E-step (project only).
    expect(ranges).toEqual([...blocks.flatMap((b) => [`project ${b}`, `softSums ${b}`, `scatter ${b}`]), ...blocks.map((b) => `project ${b}`)]);
  });

  it('covariancesInit starts where the matching precisionsInit does', async () => {
    const c = fx.cases.find((e) => e.table === 'iris' && e.k === 3 && e.covarianceType === 'diag')!;
    const cov = (c.init.precisions as number[][]).map((row) => row.map((p) => 1 / p));
    const a = await fit(be, c, { maxIter: 3, tol: 0 });
    const b = await fit(be, c, { maxIter: 3, tol: 0, precisionsInit: null, covariancesInit: cov });
    expect(rel(b.logLikelihood, a.logLikelihood)).toBeLessThan(1e-9);
  });

  it('nInit keeps the run with the highest lower bound, and reports every run', async () => {
    const r = await new GaussianMixture({ k: 3, covarianceType: 'spherical', nInit: 3, seed: 5 }).fit(be, tables.wine);
    expect(r.runs).toHaveLength(3);
    expect(r.lowerBound).toBe(Math.max(...r.runs.map((q) => q.lowerBound)));
    const given = await fit(be, fx.cases[0], { nInit: 4 });
    expect(given.runs).toHaveLength(1); // a given start is deterministic: one run
    expect(given.init).toBe('given');
  });
});

describe('prediction from saved parameters', () => {
  it.each(['full', 'tied', 'diag', 'spherical'] as const)('%s: reproduces the fit on its rows, through JSON', async (type) => {
    const x = tables.wine;
    const r = await new GaussianMixture({ k: 3, covarianceType: type, seed: 1 }).fit(be, x);
    const saved = JSON.parse(JSON.stringify(gmmParams(r)));
    expect(saved.formatVersion).toBe(GMM_PARAMS_VERSION);
    expect(saved.means).toHaveLength(3);
    const p = await predictGmm(be, saved, x, { responsibilities: true, blockRows: 50 });
    expect([...p.labels]).toEqual([...r.labels]);
    expect(rel(p.logLikelihood, r.logLikelihood)).toBeLessThan(1e-12);
    for (let i = 0; i < x.nRows; i++) {
      expect(p.probability[i]).toBeGreaterThan(0);
      expect(p.probability[i]).toBeLessThanOrEqual(1);
      expect(p.probability[i]).toBe(r.probability[i]);
      let s = 0;
      let max = 0;
      for (let j = 0; j < 3; j++) {
        s += p.responsibilities![i * 3 + j];
        max = Math.max(max, p.responsibilities![i * 3 + j]);
      }
      expect(Math.abs(s - 1)).toBeLessThan(1e-6);
      expect(p.responsibilities![i * 3 + p.labels[i]]).toBe(max);
    }
  });

  it('scores new rows as scikit-learn scores its training rows (the fixture fit, iris k = 3 full)', async () => {
    const c = fx.cases.find((e) => e.table === 'iris' && e.k === 3 && e.covarianceType === 'full')!;
    const r = await fit(be, c);
    const p = await predictGmm(be, gmmParams(r), tables.iris);
    expect(rel(p.logLikelihood, c.fit.score)).toBeLessThan(1e-5);
    expect([...p.labels]).toEqual(c.fit.labels);
    expect(p.responsibilities).toBeUndefined();
  });

  it('refuses a matrix of another width and parameters of another version', async () => {
    const r = await new GaussianMixture({ k: 2, covarianceType: 'diag' }).fit(be, tables.iris);
    const saved = gmmParams(r);
    await expect(predictGmm(be, saved, tables.wine)).rejects.toMatchObject({ code: 'BAD_INPUT', message: 'predictGmm: the matrix has 13 features, the model 4' });
    await expect(predictGmm(be, { ...saved, formatVersion: 99 }, tables.iris)).rejects.toMatchObject({ code: 'MODEL_VERSION' });
  });
});

describe('options', () => {
  const x = tables.iris;
  const bad = async (o: Partial<GmmOptions>, message: RegExp, code = 'BAD_OPTION') => {
    const err = await new GaussianMixture({ k: 3, ...o }).fit(be, x).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SegtensorError);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  };

  it("has scikit-learn's defaults", () => {
    expect(GMM_DEFAULTS).toMatchObject({ covarianceType: 'full', tol: 1e-3, regCovar: 1e-6, maxIter: 100, nInit: 1 });
    expect(Object.isFrozen(GMM_DEFAULTS)).toBe(true);
  });

  it('names the option, what is allowed and what arrived', async () => {
    await bad({ covarianceType: 'x' as CovarianceType }, /^--covariance must be full, tied, diag or spherical; got 'x'$/);
    await bad({ k: 0 }, /^--k must be an integer in \[1, nRows = 150\]; got 0$/);
    await bad({ k: 151 }, /^--k must be an integer in \[1, nRows = 150\]; got 151$/);
    await bad({ regCovar: 0 }, /^--reg-covar must be a finite number > 0; got 0$/);
    await bad({ regCovar: -1e-6 }, /--reg-covar .* got -0.000001$/);
    await bad({ tol: -1 }, /^--tol must be a finite number >= 0; got -1$/);
    await bad({ maxIter: 0 }, /^--max-iter must be an integer in \[1, 1000000\]; got 0$/);
    await bad({ nInit: 1.5 }, /^--n-init must be an integer in \[1, 1000\]; got 1.5$/);
    await bad({ blockRows: 0 }, /'blockRows' must be an integer >= 1 or null; got 0/);
    await bad({ weightsInit: [0.5, 0.5, 0.5] }, /'weightsInit' must sum to 1; got 1.5/);
    await bad({ meansInit: [1, 2, 3] }, /'meansInit' must hold k × nFeatures = 12 values; got 3/);
    await bad({ covarianceType: 'full', precisionsInit: Array.from({ length: 3 }, () => [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) }, /'precisionsInit' matrix 0 is not positive-definite/);
    await bad({ covarianceType: 'diag', precisionsInit: [1, 1, 1], covariancesInit: [1, 1, 1] }, /'precisionsInit' or 'covariancesInit', not both/);
    await bad({ covarianceType: 'spherical', covariancesInit: [1, 0, 1] }, /'covariancesInit' must be positive; value 1 is 0/);
  });

  it('refuses non-finite data and bad weights', async () => {
    const data = Float32Array.from(x.data);
    data[7] = NaN;
    const e = await new GaussianMixture({ k: 2 }).fit(be, { ...x, data }).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'NON_FINITE', message: 'GaussianMixture: row 1, feature 3 is NaN' });
    const w = new Float32Array(150);
    await expect(new GaussianMixture({ k: 2 }).fit(be, x, w)).rejects.toMatchObject({ code: 'BAD_INPUT', message: 'GaussianMixture: the weights sum to 0' });
  });
});
