/**
 * Principal component analysis with scikit-learn's `PCA` semantics, from one batched float64
 * pass for the covariance:
 * - the weighted column means through the backend's `softSums` (r = ones, in row blocks), then
 *   the centred scatter matrix through its `scatter` (r = null, m = 1), divided by (Σw − 1):
 *   scikit-learn's `n_samples − 1` when every weight is 1, and frequency weights otherwise (an
 *   integer weight counts as that many copies of the row; numpy's `cov(fweights=)`);
 * - an exact symmetric eigendecomposition (Householder tridiagonalisation and the implicit QL
 *   method, float64) up to {@link PCA_EXACT_LIMIT} features, randomised subspace iteration
 *   above (Halko, Martinsson & Tropp 2011, Algorithm 4.4 on the covariance, seeded);
 * - `components` either a count or a variance share: scikit-learn's `n_components=0.95` keeps
 *   the smallest n whose cumulative explained variance ratio is strictly above the share
 *   (`searchsorted(cumsum, share, side='right') + 1`);
 * - each component's sign makes its largest-magnitude entry positive (the first such entry on a
 *   tie): scikit-learn ≥ 1.5's `svd_flip(u_based_decision=False)`. scikit-learn 1.2, the
 *   version the fixtures were made with, flips on the scores instead (the largest-magnitude
 *   score of each component positive); the two differ by a sign per component only.
 *
 * The covariance route squares the condition number compared with scikit-learn's SVD of the
 * centred data; in float64 that costs nothing visible for the explained variance ratios and
 * leading components (within 1e-9 of scikit-learn on the fixtures).
 *
 * @example
 * const pca = await fitPca(be, x, null, { components: 0.95 });
 * const scores = await applyPca(pca, x, be); // nRows × pca.nComponents
 * fs.writeFileSync('pca.json', JSON.stringify(pca));
 */
import type { Backend } from '../engine/backend.js';
import type { Matrix } from '../core/matrix.js';
import { project, scatter, softSums } from '../engine/ops/project.js';
import { SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';

/** Version of the {@link PcaModel} layout, checked by {@link applyPca}. */
export const PCA_FORMAT_VERSION = 1;

/**
 * Largest nFeatures the `auto` solver decomposes exactly. The exact solver is O(d³): measured
 * on the shared 2-core build machine (Node 20, one thread, other jobs running), 0.2 s at
 * d = 256, 0.65 to 1.1 s at d = 512 (1.1 s for a whole 5,000 × 512 fit, covariance pass
 * included) and 8.6 s at d = 1024. Above the limit the randomised solver costs
 * O(d²·(n + oversamples)·(powerIterations + 2)): a whole 5,000 × 1,024 fit keeping 10
 * components took 1.0 s.
 */
export const PCA_EXACT_LIMIT = 512;

export type PcaSolver = 'auto' | 'exact' | 'randomized';
const SOLVERS: readonly PcaSolver[] = Object.freeze(['auto', 'exact', 'randomized']);

export interface PcaOptions {
  /**
   * An integer n in [1, nFeatures]: keep n components. A share in (0, 1): keep the fewest
   * components whose cumulative explained variance ratio exceeds it (scikit-learn's
   * `n_components=0.95`). Required.
   */
  components: number;
  /** `auto` (exact up to `exactLimit` features, randomised above), `exact` or `randomized`. Default `auto`. */
  solver: PcaSolver;
  /** Largest nFeatures `auto` decomposes exactly. Default {@link PCA_EXACT_LIMIT}. */
  exactLimit: number;
  /** Subspace iterations of the randomised solver (multiplications by the covariance after the first). Default 7, scikit-learn's `n_iter='auto'` for few components. */
  powerIterations: number;
  /** Extra dimensions of the randomised solver's subspace, beyond the components kept. Default 10, scikit-learn's. */
  oversamples: number;
  /** Seed of the randomised solver's Gaussian test matrix. Default 0. */
  seed: number;
}

export const PCA_DEFAULTS: Readonly<Omit<PcaOptions, 'components'>> = Object.freeze({
  solver: 'auto' as PcaSolver,
  exactLimit: PCA_EXACT_LIMIT,
  powerIterations: 7,
  oversamples: 10,
  seed: 0,
});

/**
 * A fitted PCA: plain numbers and arrays, so `JSON.stringify` writes it into model.json as is,
 * and {@link applyPca} reads it back. Field names follow scikit-learn's attributes.
 */
export interface PcaModel {
  formatVersion: typeof PCA_FORMAT_VERSION;
  /** Width of the input it was fitted on. */
  nFeatures: number;
  /** Components kept (`n_components_`). */
  nComponents: number;
  /** Weighted column means (`mean_`), nFeatures values. */
  mean: number[];
  /** nComponents × nFeatures, unit rows, by decreasing variance (`components_`). */
  components: number[][];
  /** Variance along each component, the covariance's eigenvalues (`explained_variance_`). */
  explainedVariance: number[];
  /** explainedVariance over the total variance (trace of the covariance); 0 when that is 0 (`explained_variance_ratio_`). */
  explainedVarianceRatio: number[];
  /** √(explainedVariance · (Σw − 1)): the singular values of the (weighted) centred data (`singular_values_`). */
  singularValues: number[];
  /** Sum of the weights (nRows when unweighted). */
  totalWeight: number;
  /** The solver that ran (`auto` resolved). */
  solver: 'exact' | 'randomized';
}

/** The option as written on the command line, for the one-line error. @internal */
function componentsError(d: number, got: unknown): SegtensorError {
  return new SegtensorError('BAD_OPTION', `--pca must be an integer in [1, ${d}] or a share in (0, 1); got ${String(got)}`);
}

/** Parameter constraints as data, checked once in {@link fitPca}. */
const CONSTRAINTS: { [K in 'exactLimit' | 'powerIterations' | 'oversamples']: [number, number] } = {
  exactLimit: [1, 1_000_000],
  powerIterations: [0, 100],
  oversamples: [0, 1000],
};

function validate(x: Matrix, weights: Float32Array | null, o: PcaOptions): void {
  const d = x.nFeatures;
  if (!Number.isInteger(d) || d < 1 || !Number.isInteger(x.nRows) || x.data.length !== x.nRows * d) {
    throw new TypeError(`PCA: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows} × ${d}`);
  }
  const c = o.components;
  const isCount = Number.isInteger(c) && c >= 1 && c <= d;
  const isShare = typeof c === 'number' && c > 0 && c < 1;
  if (!isCount && !isShare) throw componentsError(d, c);
  if (!SOLVERS.includes(o.solver)) {
    throw new SegtensorError('BAD_OPTION', `PCA: 'solver' must be one of ${SOLVERS.join(', ')}; got ${String(o.solver)}`);
  }
  for (const [name, [lo, hi]] of Object.entries(CONSTRAINTS)) {
    const v = o[name as keyof typeof CONSTRAINTS];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new SegtensorError('BAD_OPTION', `PCA: '${name}' must be an integer in [${lo}, ${hi}]; got ${v}`);
    }
  }
  if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `PCA: 'seed' must be an integer; got ${o.seed}`);
  if (x.nRows < 2) throw new SegtensorError('BAD_INPUT', `PCA: needs at least 2 rows for a covariance; got ${x.nRows}`);
  if (weights) {
    if (weights.length !== x.nRows) {
      throw new SegtensorError('BAD_INPUT', `PCA: weights hold ${weights.length} values for ${x.nRows} rows`);
    }
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new SegtensorError('BAD_INPUT', `PCA: weight of row ${i} must be finite and >= 0; got ${w}`);
      }
      total += w;
    }
    // Frequency weights: the unbiased divisor is Σw − 1, which needs more than one row's worth.
    if (!(total > 1)) throw new SegtensorError('BAD_INPUT', `PCA: the weights must sum to more than 1 (they count rows); got ${total}`);
  }
}

/**
 * Fits PCA on a prepared matrix (`weights`: optional frequency weights, see the module note).
 * The data is uploaded to the backend once and released at the end; two passes run there (the
 * means, then the scatter matrix), the eigendecomposition on the host in float64.
 *
 * @example
 * const m = await fitPca(be, { data, nRows, nFeatures: 13 }, null, { components: 2 });
 * m.explainedVarianceRatio; // [0.36, 0.19]
 */
export async function fitPca(
  be: Backend,
  x: Matrix,
  weights: Float32Array | null,
  options: Partial<PcaOptions> & { components: number },
): Promise<PcaModel> {
  const o: PcaOptions = { ...PCA_DEFAULTS, ...options };
  validate(x, weights, o);
  const d = x.nFeatures;
  const dx = be.upload(x, weights);
  const totalWeight = dx.totalWeight;
  let mean: Float64Array;
  let cov: Float64Array;
  try {
    // Means first (softSums with a block of ones, so no nRows-long buffer), then one scatter pass.
    const block = Math.min(x.nRows, 65_536);
    const ones = new Float32Array(block).fill(1);
    const sums = new Float64Array(d);
    for (let start = 0; start < x.nRows; start += block) {
      const end = Math.min(x.nRows, start + block);
      const s = await softSums(be, dx, ones.subarray(0, end - start), 1, { start, end });
      for (let f = 0; f < d; f++) sums[f] += s.sums[f];
    }
    mean = sums.map((v) => v / totalWeight);
    const bad = mean.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new SegtensorError('NON_FINITE', `PCA: feature ${bad} holds NaN or Inf (its mean is ${mean[bad]})`);
    cov = await scatter(be, dx, null, 1, mean);
  } finally {
    be.release(dx);
  }
  const denom = totalWeight - 1;
  for (let i = 0; i < cov.length; i++) cov[i] /= denom;
  // The scatter kernel sums both triangles separately; make the matrix exactly symmetric.
  for (let a = 0; a < d; a++) {
    for (let b = a + 1; b < d; b++) {
      const v = 0.5 * (cov[a * d + b] + cov[b * d + a]);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  let totalVar = 0;
  for (let f = 0; f < d; f++) totalVar += cov[f * d + f];

  const share = Number.isInteger(o.components) ? null : o.components;
  const exact = o.solver === 'exact' || (o.solver === 'auto' && d <= o.exactLimit);
  let eig: { values: Float64Array; vectors: Float64Array[] };
  let solver: PcaModel['solver'] = exact ? 'exact' : 'randomized';
  let n: number;
  if (exact) {
    eig = eigSymmetric(cov, d);
    n = share === null ? o.components : countForShare(eig.values, totalVar, share, d);
  } else if (share === null) {
    n = o.components;
    eig = randomizedEig(cov, d, n, o, new Random(o.seed));
  } else {
    // The count a share needs is unknown ahead: double the rank until the leading components
    // found pass the share, and decompose exactly once that rank is half the width.
    let r = Math.min(d, 16);
    for (;;) {
      if (2 * r >= d) {
        eig = eigSymmetric(cov, d);
        solver = 'exact';
        n = countForShare(eig.values, totalVar, share, d);
        break;
      }
      eig = randomizedEig(cov, d, r, o, new Random(o.seed));
      n = countForShare(eig.values, totalVar, share, r + 1);
      if (n <= r) break;
      r *= 2;
    }
  }

  const components: number[][] = [];
  const explainedVariance: number[] = [];
  for (let j = 0; j < n; j++) {
    const v = eig.vectors[j];
    // Sign: the largest-magnitude entry positive (the first on a tie).
    let arg = 0;
    for (let f = 1; f < d; f++) if (Math.abs(v[f]) > Math.abs(v[arg])) arg = f;
    const sign = v[arg] < 0 ? -1 : 1;
    components.push(Array.from(v, (t) => (t === 0 ? 0 : sign * t)));
    // Round-off can leave a zero eigenvalue slightly negative; a variance is not.
    explainedVariance.push(Math.max(0, eig.values[j]));
  }
  return {
    formatVersion: PCA_FORMAT_VERSION,
    nFeatures: d,
    nComponents: n,
    mean: Array.from(mean),
    components,
    explainedVariance,
    explainedVarianceRatio: explainedVariance.map((v) => (totalVar > 0 ? v / totalVar : 0)),
    singularValues: explainedVariance.map((v) => Math.sqrt(v * denom)),
    totalWeight,
    solver,
  };
}

/**
 * scikit-learn's count for a variance share: the fewest leading components whose cumulative
 * ratio (float64, in order) is strictly above `share`, at most `cap`. @internal
 */
export function countForShare(values: ArrayLike<number>, totalVar: number, share: number, cap: number): number {
  let cum = 0;
  let below = 0;
  for (let j = 0; j < values.length; j++) {
    cum += totalVar > 0 ? Math.max(0, values[j]) / totalVar : 0;
    if (cum <= share) below++;
    else break;
  }
  return Math.min(below + 1, cap);
}

/**
 * Projects rows onto a fitted PCA: (x − mean)·componentsᵀ, nRows × nComponents float32.
 * Without a backend a host loop in float64; with one, row blocks are centred on the host
 * (so data far from the origin loses nothing to the float32 product) and multiplied by the
 * backend's `project` op.
 *
 * @example
 * const y = applyPca(model, x); // host
 * const z = await applyPca(model, x, be); // backend
 */
export function applyPca(saved: PcaModel, x: Matrix): Matrix;
export function applyPca(saved: PcaModel, x: Matrix, be: Backend): Promise<Matrix>;
export function applyPca(saved: PcaModel, x: Matrix, be?: Backend): Matrix | Promise<Matrix> {
  checkModel(saved, x);
  return be ? applyOn(be, saved, x) : applyHost(saved, x);
}

function checkModel(m: PcaModel, x: Matrix): void {
  if (!m || m.formatVersion !== PCA_FORMAT_VERSION) {
    throw new SegtensorError('MODEL_VERSION', `PCA: model format version ${m?.formatVersion}, this segtensor reads version ${PCA_FORMAT_VERSION}; refit the model`);
  }
  const d = m.nFeatures;
  const ok =
    Number.isInteger(m.nComponents) &&
    m.nComponents >= 1 &&
    m.mean?.length === d &&
    m.components?.length === m.nComponents &&
    m.components.every((c) => c.length === d);
  if (!ok) throw new SegtensorError('CORRUPT_FILE', `PCA: the model's mean and components do not match nFeatures = ${d} and nComponents = ${m.nComponents}`);
  if (x.nFeatures !== d) {
    throw new SegtensorError('BAD_INPUT', `PCA: the model was fitted on ${d} features; the input has ${x.nFeatures}`);
  }
  if (x.data.length !== x.nRows * x.nFeatures) {
    throw new TypeError(`PCA: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows} × ${x.nFeatures}`);
  }
}

function applyHost(m: PcaModel, x: Matrix): Matrix {
  const d = m.nFeatures;
  const k = m.nComponents;
  const w = Float64Array.from(m.components.flat());
  const out = new Float32Array(x.nRows * k);
  const c = new Float64Array(d);
  for (let i = 0; i < x.nRows; i++) {
    for (let f = 0; f < d; f++) c[f] = x.data[i * d + f] - m.mean[f];
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let f = 0; f < d; f++) s += c[f] * w[j * d + f];
      out[i * k + j] = s;
    }
  }
  return { data: out, nRows: x.nRows, nFeatures: k };
}

async function applyOn(be: Backend, m: PcaModel, x: Matrix): Promise<Matrix> {
  const d = m.nFeatures;
  const k = m.nComponents;
  // project wants W as nFeatures × m, i.e. componentsᵀ.
  const w = new Float32Array(d * k);
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) w[f * k + j] = m.components[j][f];
  const out = new Float32Array(x.nRows * k);
  // Blocks of ~16 MB of centred float32 rows.
  const block = Math.max(1, Math.min(x.nRows, Math.floor((1 << 22) / d)));
  const buf = new Float32Array(block * d);
  for (let start = 0; start < x.nRows; start += block) {
    const rows = Math.min(block, x.nRows - start);
    for (let i = 0; i < rows; i++) {
      const src = (start + i) * d;
      for (let f = 0; f < d; f++) buf[i * d + f] = x.data[src + f] - m.mean[f];
    }
    const dx = be.upload({ data: buf.subarray(0, rows * d), nRows: rows, nFeatures: d });
    try {
      await project(be, dx, w, k, undefined, out.subarray(start * k, (start + rows) * k));
    } finally {
      be.release(dx);
    }
  }
  return { data: out, nRows: x.nRows, nFeatures: k };
}

/**
 * Every eigenpair of a symmetric n × n matrix (row-major, float64), by decreasing eigenvalue:
 * Householder reduction to tridiagonal form, then the implicit QL method with Wilkinson-style
 * shifts (EISPACK's tred2/tql2, as JAMA writes them). V is kept column-major so that the inner
 * loops of both steps run along contiguous memory. `a` is not modified. @internal
 */
export function eigSymmetric(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array[] } {
  // v[j * n + i] = V[i][j]; a is symmetric, so its row-major copy is also its column-major one.
  const v = Float64Array.from(a.subarray(0, n * n));
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(v, d, e, n);
  tql2(v, d, e, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => d[q] - d[p] || p - q);
  return { values: Float64Array.from(order, (i) => d[i]), vectors: order.map((i) => v.slice(i * n, i * n + n)) };
}

/** Householder tridiagonalisation; V column-major (V[i][j] at j·n + i). @internal */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  const at = (i: number, j: number): number => j * n + i;
  for (let j = 0; j < n; j++) d[j] = V[at(n - 1, j)];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[at(i - 1, j)];
        V[at(i, j)] = 0;
        V[at(j, i)] = 0;
      }
    } else {
      // The Householder vector, scaled against under- and overflow.
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // Similarity transformation of the remaining columns.
      for (let j = 0; j < i; j++) {
        f = d[j];
        const cj = j * n;
        V[at(j, i)] = f;
        g = e[j] + V[cj + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[cj + k] * d[k];
          e[k] += V[cj + k] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const cj = j * n;
        for (let k = j; k <= i - 1; k++) V[cj + k] -= f * e[k] + g * d[k];
        d[j] = V[cj + i - 1];
        V[cj + i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    V[at(n - 1, i)] = V[at(i, i)];
    V[at(i, i)] = 1;
    const h = d[i + 1];
    const ci1 = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[ci1 + k] / h;
      for (let j = 0; j <= i; j++) {
        const cj = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[ci1 + k] * V[cj + k];
        for (let k = 0; k <= i; k++) V[cj + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[ci1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[at(n - 1, j)];
    V[at(n - 1, j)] = 0;
  }
  V[at(n - 1, n - 1)] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e), accumulating into V (column-major). @internal */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    // The first negligible subdiagonal element at or after l splits the matrix.
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new Error(`PCA: the QL iteration did not converge for eigenvalue ${l}`);
        // Implicit shift from the trailing 2 × 2 block.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        // The QL sweep, as plane rotations applied to V's columns i and i + 1.
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          const ci = i * n;
          const ci1 = ci + n;
          for (let k = 0; k < n; k++) {
            h = V[ci1 + k];
            V[ci1 + k] = s * V[ci + k] + c * h;
            V[ci + k] = c * V[ci + k] - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/**
 * The `r` leading eigenpairs of the symmetric d × d matrix `c` by randomised subspace iteration
 * (Halko et al. 2011, Algorithms 4.4 and 5.3 for a symmetric matrix): Q spans C·Ω for a Gaussian
 * Ω of r + oversamples columns, refined by `powerIterations` multiplications by C with
 * re-orthonormalisation between them, then the Rayleigh–Ritz step on QᵀCQ, decomposed exactly.
 * Error shrinks like (λ_{l+1} / λ_r)^(2q+1), l = r + oversamples. @internal
 */
export function randomizedEig(
  c: Float64Array,
  d: number,
  r: number,
  o: Pick<PcaOptions, 'oversamples' | 'powerIterations'>,
  rng: Random,
): { values: Float64Array; vectors: Float64Array[] } {
  const l = Math.min(d, r + o.oversamples);
  let q: Float64Array[] = Array.from({ length: l }, () => Float64Array.from({ length: d }, () => rng.gauss()));
  q = orthonormalise(multiply(c, d, q), rng);
  for (let it = 0; it < o.powerIterations; it++) q = orthonormalise(multiply(c, d, q), rng);
  const z = multiply(c, d, q);
  const b = new Float64Array(l * l);
  for (let i = 0; i < l; i++) {
    for (let j = i; j < l; j++) {
      // QᵀCQ is symmetric; average the two products so it is exactly.
      const v = 0.5 * (dot(q[i], z[j]) + dot(q[j], z[i]));
      b[i * l + j] = v;
      b[j * l + i] = v;
    }
  }
  const small = eigSymmetric(b, l);
  const vectors = small.vectors.slice(0, r).map((u) => {
    const v = new Float64Array(d);
    for (let j = 0; j < l; j++) {
      const uj = u[j];
      const qj = q[j];
      for (let f = 0; f < d; f++) v[f] += uj * qj[f];
    }
    return v;
  });
  return { values: small.values.slice(0, r), vectors };
}

/** C·q for each column q (C row-major and symmetric). @internal */
function multiply(c: Float64Array, d: number, q: Float64Array[]): Float64Array[] {
  const out = q.map(() => new Float64Array(d));
  for (let a = 0; a < d; a++) {
    const row = c.subarray(a * d, a * d + d);
    for (let j = 0; j < q.length; j++) out[j][a] = dot(row, q[j]);
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Modified Gram–Schmidt, twice per column (one pass loses orthogonality on an ill-conditioned
 * block). A column that vanishes (C of low rank) is replaced by a fresh Gaussian one, which
 * spans a direction of eigenvalue 0. @internal
 */
function orthonormalise(q: Float64Array[], rng: Random): Float64Array[] {
  for (let j = 0; j < q.length; j++) {
    let v = q[j];
    const norm0 = Math.sqrt(dot(v, v));
    for (let attempt = 0; ; attempt++) {
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < j; i++) {
          const t = dot(q[i], v);
          const qi = q[i];
          for (let f = 0; f < v.length; f++) v[f] -= t * qi[f];
        }
      }
      const norm = Math.sqrt(dot(v, v));
      if (norm > 1e-10 * norm0 && norm > 0) {
        for (let f = 0; f < v.length; f++) v[f] /= norm;
        break;
      }
      if (attempt > 10) throw new Error('PCA: could not complete an orthonormal basis');
      v = Float64Array.from({ length: v.length }, () => rng.gauss());
      q[j] = v;
    }
  }
  return q;
}
