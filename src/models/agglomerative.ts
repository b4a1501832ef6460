/**
 * Agglomerative (hierarchical) clustering with Ward, average or complete linkage, exact through
 * the nearest-neighbour chain algorithm (all three linkages are reducible, so merging mutual
 * nearest neighbours in any order builds the same tree as the greedy algorithm), with scipy's
 * and scikit-learn's conventions:
 * - the merge tree is scipy's linkage matrix: rows [a, b, height, size], leaves 0..n−1, merge i
 *   creates node n + i, a < b, rows sorted by height (stable), `size` counting rows;
 * - Ward heights are scipy's: √(2·wₐw_b/(wₐ + w_b))·‖cₐ − c_b‖, the Lance–Williams recurrence on
 *   Euclidean distances, computed here on the fly from cluster centroids and masses (O(n·d)
 *   memory; sample weights are the leaves' masses);
 * - average and complete linkage run on a float64 condensed distance matrix (8·n(n−1)/2 bytes)
 *   with scipy's Lance–Williams updates (average weights by mass, complete ignores weights);
 * - labels cut the tree at k clusters as scikit-learn's `AgglomerativeClustering(n_clusters=k)`
 *   does (`_hc_cut`, its heap order included), so a tree equal to scipy's gives scikit-learn's
 *   label numbers.
 *
 * Exact mode holds at most {@link EXACT_LIMITS} rows: Ward's O(n²·d) time reaches ~12 s at
 * 20,000 rows × 8 features on one core; average/complete's matrix reaches 400 MB (and ~18 s) at
 * 10,000 rows.
 * Above that, `mode: 'two-stage'` first summarises the rows with K-Means (`microClusters`
 * micro-clusters, nInit 1, on the backend), links the micro-centroids exactly with the
 * micro-clusters' weights as masses, and gives each row its micro-cluster's segment. Ward is then
 * still exact for the merges above the micro-clusters (Ward's cost depends only on centroids and
 * masses); average and complete measure micro-centroid distances, an approximation.
 *
 * `predict` for agglomerative models is nearest segment centroid (see {@link predictAgglomerative}).
 *
 * @example
 * const r = await new Agglomerative({ k: 4, linkage: 'ward' }).fit(be, x);
 * r.labels; r.centroids; r.merges; // scipy's Z, flattened
 * fs.writeFileSync('dendrogram.json', JSON.stringify(dendrogramJson(r)));
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { assign } from '../engine/ops/assign.js';
import { SegtensorError } from '../errors.js';
import { KMeans } from './kmeans.js';

export type Linkage = 'ward' | 'average' | 'complete';
export const LINKAGES: readonly Linkage[] = Object.freeze(['ward', 'average', 'complete']);

export type AgglomerativeMode = 'exact' | 'two-stage' | 'auto';
export const AGGLOMERATIVE_MODES: readonly AgglomerativeMode[] = Object.freeze(['exact', 'two-stage', 'auto']);

/**
 * Most leaves exact linkage accepts. Ward: time, O(n²·d) (20,000 rows × 8 features ≈ 12 s on one
 * core, and linear in d). Average and complete: memory, a float64 condensed matrix of
 * 8·n(n−1)/2 bytes (400 MB, ~18 s at 10,000 rows). The two-stage mode's micro-clusters are
 * leaves too, so they obey the same limits.
 */
export const EXACT_LIMITS: Readonly<Record<Linkage, number>> = Object.freeze({ ward: 20_000, average: 10_000, complete: 10_000 });

export interface AgglomerativeOptions {
  /** Number of segments to cut the tree into, an integer in [1, leaves]. Required. */
  k: number;
  /** `ward` (minimum increase of within-cluster variance), `average` or `complete`. Default `ward`. */
  linkage: Linkage;
  /**
   * `exact` links every row (refused above {@link EXACT_LIMITS}); `two-stage` links
   * `microClusters` K-Means micro-clusters; `auto` is exact up to the limit, two-stage above.
   * Default `exact`.
   */
  mode: AgglomerativeMode;
  /** Two-stage mode: K-Means micro-clusters (at most nRows are used). Default 2,000. */
  microClusters: number;
  /** Two-stage mode: Lloyd iterations of the micro-cluster K-Means at most. Default 100. */
  microMaxIter: number;
  /** Two-stage mode: seed of the micro-cluster K-Means. Default 0. */
  seed: number;
}

export const AGGLOMERATIVE_DEFAULTS: Readonly<Omit<AgglomerativeOptions, 'k'>> = Object.freeze({
  linkage: 'ward' as Linkage,
  mode: 'exact' as AgglomerativeMode,
  microClusters: 2000,
  microMaxIter: 100,
  seed: 0,
});

export interface AgglomerativeResult {
  linkage: Linkage;
  /** The mode that ran (`auto` resolved). */
  mode: 'exact' | 'two-stage';
  /** Leaves of the tree: nRows in exact mode, the non-empty micro-clusters in two-stage mode. */
  nLeaves: number;
  /** Two-stage mode: the micro-clusters that K-Means produced (non-empty ones are the leaves); null in exact mode. */
  microClusters: number | null;
  /** Two-stage mode: each row's leaf (micro-cluster); null in exact mode (row i is leaf i). */
  leafOf: Int32Array | null;
  /** Two-stage mode: rows in each leaf; null in exact mode. */
  leafSizes: Int32Array | null;
  /** scipy's linkage matrix, (nLeaves − 1) × 4 row-major: [a, b, height, size] per merge. */
  merges: Float64Array;
  k: number;
  /** Segment of each row, numbered as scikit-learn's `AgglomerativeClustering` numbers them. */
  labels: Int32Array;
  /** k × nFeatures: the weighted mean of each segment's rows. */
  centroids: Float32Array;
  /** Rows (summed weights) in each segment. */
  sizes: Float64Array;
  /** Weighted sum of squared distances of the rows to their segment's centroid. */
  inertia: number;
  ms: { micro: number; linkage: number };
}

/**
 * The JSON of a fitted model's agglomerative part, for model.json: what predict needs (the
 * centroids; predict is nearest centroid) and how the tree was built.
 */
export interface AgglomerativeModelJson {
  method: 'agglomerative';
  formatVersion: typeof AGGLOMERATIVE_FORMAT_VERSION;
  linkage: Linkage;
  mode: 'exact' | 'two-stage';
  microClusters: number | null;
  k: number;
  /** k rows of nFeatures values. */
  centroids: number[][];
  sizes: number[];
  inertia: number;
}

export const AGGLOMERATIVE_FORMAT_VERSION = 1;

export class Agglomerative {
  readonly options: Readonly<AgglomerativeOptions>;

  constructor(options: Partial<AgglomerativeOptions> & { k: number }) {
    this.options = Object.freeze({ ...AGGLOMERATIVE_DEFAULTS, ...options });
  }

  private validate(x: Matrix, weights: Float32Array | null): void {
    const o = this.options;
    if (!LINKAGES.includes(o.linkage)) {
      throw new SegtensorError('BAD_OPTION', `--linkage must be ward, average or complete; got '${String(o.linkage)}'`);
    }
    if (!AGGLOMERATIVE_MODES.includes(o.mode)) {
      throw new SegtensorError('BAD_OPTION', `Agglomerative: 'mode' must be exact, two-stage or auto; got '${String(o.mode)}'`);
    }
    if (x.data.length !== x.nRows * x.nFeatures) {
      throw new TypeError(`Agglomerative: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * x.nFeatures}`);
    }
    if (x.nRows < 1) throw new SegtensorError('EMPTY_TABLE', 'Agglomerative: the table has no rows');
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > x.nRows) {
      throw new SegtensorError('BAD_OPTION', `Agglomerative: 'k' must be an integer in [1, nRows = ${x.nRows}]; got ${o.k}`);
    }
    const limit = EXACT_LIMITS[o.linkage];
    if (!Number.isInteger(o.microClusters) || o.microClusters < 1 || o.microClusters > limit) {
      throw new SegtensorError('BAD_OPTION', `Agglomerative: 'microClusters' must be an integer in [1, ${limit}] for ${o.linkage} linkage; got ${o.microClusters}`);
    }
    if (!Number.isInteger(o.microMaxIter) || o.microMaxIter < 1) {
      throw new SegtensorError('BAD_OPTION', `Agglomerative: 'microMaxIter' must be an integer >= 1; got ${o.microMaxIter}`);
    }
    if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `Agglomerative: 'seed' must be an integer; got ${o.seed}`);
    if (o.mode === 'exact' && x.nRows > limit) {
      throw new SegtensorError(
        'BAD_OPTION',
        `Agglomerative: exact ${o.linkage} linkage handles at most ${limit} rows; got ${x.nRows}. Use the two-stage mode (--mode two-stage: ` +
          `K-Means micro-clusters, then exact linkage on them)`,
      );
    }
    for (let i = 0; i < x.data.length; i++) {
      if (!Number.isFinite(x.data[i])) {
        const r = Math.floor(i / x.nFeatures);
        throw new SegtensorError('NON_FINITE', `Agglomerative: row ${r}, feature ${i - r * x.nFeatures} is ${x.data[i]}; every value must be finite`);
      }
    }
    if (weights) {
      if (weights.length !== x.nRows) throw new SegtensorError('BAD_INPUT', `Agglomerative: weights hold ${weights.length} values for ${x.nRows} rows`);
      for (let i = 0; i < weights.length; i++) {
        if (!(weights[i] > 0) || !Number.isFinite(weights[i])) {
          throw new SegtensorError('BAD_INPUT', `Agglomerative: weight of row ${i} must be finite and > 0; got ${weights[i]}`);
        }
      }
    }
  }

  /**
   * Builds the tree on a preprocessed matrix and cuts it at k. `weights` (optional) are per-row
   * sample weights, the leaves' masses. The backend runs the two-stage mode's K-Means only.
   */
  async fit(be: Backend, x: Matrix, weights: Float32Array | null = null): Promise<AgglomerativeResult> {
    this.validate(x, weights);
    const o = this.options;
    const d = x.nFeatures;
    const mode = o.mode === 'auto' ? (x.nRows <= EXACT_LIMITS[o.linkage] ? 'exact' : 'two-stage') : o.mode;
    const t0 = performance.now();
    let leaves: Float64Array;
    let masses: Float64Array;
    let counts: Float64Array;
    let leafOf: Int32Array | null = null;
    let microClusters: number | null = null;
    if (mode === 'exact') {
      leaves = Float64Array.from(x.data);
      masses = weights ? Float64Array.from(weights) : new Float64Array(x.nRows).fill(1);
      counts = new Float64Array(x.nRows).fill(1);
    } else {
      microClusters = Math.min(x.nRows, o.microClusters);
      const km = await new KMeans({ k: microClusters, nInit: 1, maxIter: o.microMaxIter, seed: o.seed }).fit(be, x, weights);
      // Leaves are the non-empty micro-clusters, renumbered in order, with the exact weighted
      // means of their rows (the K-Means centroids lag the final labels by one M-step).
      const m = groupMeans(x, weights, km.labels, microClusters);
      const keep = new Int32Array(microClusters).fill(-1);
      let nLeaves = 0;
      for (let j = 0; j < microClusters; j++) if (m.counts[j] > 0) keep[j] = nLeaves++;
      leaves = new Float64Array(nLeaves * d);
      masses = new Float64Array(nLeaves);
      counts = new Float64Array(nLeaves);
      for (let j = 0; j < microClusters; j++) {
        const l = keep[j];
        if (l < 0) continue;
        leaves.set(m.means.subarray(j * d, (j + 1) * d), l * d);
        masses[l] = m.masses[j];
        counts[l] = m.counts[j];
      }
      leafOf = new Int32Array(x.nRows);
      for (let i = 0; i < x.nRows; i++) leafOf[i] = keep[km.labels[i]];
      if (o.k > nLeaves) {
        throw new SegtensorError('BAD_OPTION', `Agglomerative: 'k' = ${o.k} exceeds the ${nLeaves} non-empty micro-clusters; raise microClusters or lower k`);
      }
    }
    const t1 = performance.now();
    const nLeaves = masses.length;
    const merges = linkageTree(leaves, nLeaves, d, masses, counts, o.linkage);
    const t2 = performance.now();
    const leafLabels = cutTree(merges, nLeaves, o.k);
    let labels = leafLabels;
    if (leafOf) {
      labels = new Int32Array(x.nRows);
      for (let i = 0; i < x.nRows; i++) labels[i] = leafLabels[leafOf[i]];
    }
    const seg = groupMeans(x, weights, labels, o.k);
    let inertia = 0;
    for (let i = 0; i < x.nRows; i++) {
      const l = labels[i];
      let s = 0;
      for (let f = 0; f < d; f++) {
        const t = x.data[i * d + f] - seg.means[l * d + f];
        s += t * t;
      }
      inertia += (weights ? weights[i] : 1) * s;
    }
    let leafSizes: Int32Array | null = null;
    if (leafOf) leafSizes = Int32Array.from(counts);
    return {
      linkage: o.linkage,
      mode,
      nLeaves,
      microClusters,
      leafOf,
      leafSizes,
      merges,
      k: o.k,
      labels,
      centroids: Float32Array.from(seg.means),
      sizes: seg.masses,
      inertia,
      ms: { micro: t1 - t0, linkage: t2 - t1 },
    };
  }
}

/** Weighted means, weights and row counts of the groups of `labels` (k groups), float64. @internal */
function groupMeans(x: Matrix, w: Float32Array | null, labels: Int32Array, k: number): { means: Float64Array; masses: Float64Array; counts: Float64Array } {
  const d = x.nFeatures;
  const means = new Float64Array(k * d);
  const masses = new Float64Array(k);
  const counts = new Float64Array(k);
  for (let i = 0; i < x.nRows; i++) {
    const l = labels[i];
    const wi = w ? w[i] : 1;
    masses[l] += wi;
    counts[l]++;
    for (let f = 0; f < d; f++) means[l * d + f] += wi * x.data[i * d + f];
  }
  for (let j = 0; j < k; j++) if (masses[j] > 0) for (let f = 0; f < d; f++) means[j * d + f] /= masses[j];
  return { means, masses, counts };
}

/**
 * The full merge tree of `n` points (n × d row-major, float64) with masses `w` and row counts
 * `counts`: scipy's linkage matrix, (n − 1) × 4 row-major. Exact; refuses n above
 * {@link EXACT_LIMITS}.
 *
 * @example
 * linkageTree(Float64Array.from([0, 1, 5]), 3, 1, null, null, 'ward'); // [0, 1, 1, 2, 2, 3, 5.196…, 3]
 */
export function linkageTree(
  points: Float64Array,
  n: number,
  d: number,
  w: Float64Array | null,
  counts: Float64Array | null,
  linkage: Linkage,
): Float64Array {
  if (!LINKAGES.includes(linkage)) throw new SegtensorError('BAD_OPTION', `--linkage must be ward, average or complete; got '${String(linkage)}'`);
  if (n > EXACT_LIMITS[linkage]) {
    throw new SegtensorError('BAD_OPTION', `linkageTree: exact ${linkage} linkage handles at most ${EXACT_LIMITS[linkage]} points; got ${n}. Use the two-stage mode`);
  }
  if (points.length !== n * d) throw new TypeError(`linkageTree: points hold ${points.length} values, not n × d = ${n * d}`);
  const masses = w ?? new Float64Array(n).fill(1);
  const sizes = counts ?? new Float64Array(n).fill(1);
  if (n < 2) return new Float64Array(0);
  const raw = linkage === 'ward' ? wardChain(points, n, d, masses) : matrixChain(pdist(points, n, d), n, masses, linkage);
  return relabel(raw, n, sizes);
}

/**
 * Nearest-neighbour chain with Ward's criterion from centroids and masses: the merge cost of
 * clusters a and b is Δ = wₐw_b/(wₐ + w_b)·‖cₐ − c_b‖², compared instead of the height √(2Δ)
 * (the same order). Scans, ties and slot reuse follow scipy's `nn_chain` (the lower slot is
 * emptied, the merged cluster takes the higher one), so trees agree with scipy's up to rounding
 * of exact ties. Returns raw merges [slot x, slot y, height, 0] in the order found.
 * - in: `points` (n × d, copied), `masses`.
 * @internal
 */
function wardChain(points: Float64Array, n: number, d: number, masses: Float64Array): Float64Array {
  const c = Float64Array.from(points);
  const w = Float64Array.from(masses);
  // Active slots in increasing order, so scans visit clusters in scipy's order.
  const active = new Int32Array(n).map((_, i) => i);
  let nActive = n;
  return nnChain(
    n,
    () => active[0],
    (x, prev) => {
      const bx = x * d;
      const wx = w[x];
      let y = prev;
      let best = prev >= 0 ? wardCost(c, bx, prev * d, d, wx, w[prev]) : Infinity;
      for (let t = 0; t < nActive; t++) {
        const i = active[t];
        if (i === x) continue;
        const bi = i * d;
        let s = 0;
        for (let f = 0; f < d; f++) {
          const u = c[bx + f] - c[bi + f];
          s += u * u;
        }
        const cost = (s * (wx * w[i])) / (wx + w[i]);
        if (cost < best) {
          best = cost;
          y = i;
        }
      }
      return [y, best];
    },
    (x, y, best) => {
      // The merged cluster lives in slot y: its centroid is the mass-weighted mean.
      const wx = w[x];
      const wy = w[y];
      const wt = wx + wy;
      for (let f = 0; f < d; f++) c[y * d + f] = (wx * c[x * d + f] + wy * c[y * d + f]) / wt;
      w[y] = wt;
      w[x] = 0;
      let p = 0;
      for (let t = 0; t < nActive; t++) if (active[t] !== x) active[p++] = active[t];
      nActive = p;
      return Math.sqrt(2 * best);
    },
  );
}

/**
 * scipy's nearest-neighbour chain over n slots, the linkage left to three callbacks: `first()`
 * the lowest live slot; `nearest(x, prev)` the live slot nearest to x and its cost, `prev` (the
 * chain's previous link, −1 for none) winning ties so the chain cannot cycle; `merge(x, y, cost)`
 * (x < y; slot x is emptied, the merged cluster takes slot y) updates the linkage and returns the
 * merge's height. Returns raw merges [slot x, slot y, height, 0] in the order found.
 */
function nnChain(
  n: number,
  first: () => number,
  nearest: (x: number, prev: number) => [number, number],
  merge: (x: number, y: number, cost: number) => number,
): Float64Array {
  const out = new Float64Array((n - 1) * 4);
  const chain = new Int32Array(n);
  let len = 0;
  for (let m = 0; m < n - 1; m++) {
    if (len === 0) chain[len++] = first();
    let x = 0;
    let y = 0;
    let best = 0;
    for (;;) {
      x = chain[len - 1];
      [y, best] = nearest(x, len > 1 ? chain[len - 2] : -1);
      if (len > 1 && y === chain[len - 2]) break;
      chain[len++] = y;
    }
    len -= 2;
    if (x > y) [x, y] = [y, x];
    out[m * 4] = x;
    out[m * 4 + 1] = y;
    out[m * 4 + 2] = merge(x, y, best);
  }
  return out;
}

function wardCost(c: Float64Array, ba: number, bb: number, d: number, wa: number, wb: number): number {
  let s = 0;
  for (let f = 0; f < d; f++) {
    const u = c[ba + f] - c[bb + f];
    s += u * u;
  }
  return (s * (wa * wb)) / (wa + wb);
}

/** Index of the pair (i, j), i < j, in a condensed n × n distance matrix (scipy's order). */
function condensed(n: number, i: number, j: number): number {
  return n * i - (i * (i + 1)) / 2 + j - i - 1;
}

/** Euclidean distances of every pair, condensed (scipy's `pdist`), float64. @internal */
function pdist(p: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const u = p[i * d + f] - p[j * d + f];
        s += u * u;
      }
      out[k++] = Math.sqrt(s);
    }
  }
  return out;
}

/**
 * scipy's `nn_chain` on a condensed distance matrix (updated in place) with the Lance–Williams
 * update of average (mass-weighted: (wₓ·d(i, x) + w_y·d(i, y)) / (wₓ + w_y)) or complete
 * (max(d(i, x), d(i, y))) linkage. Returns raw merges [slot x, slot y, height, 0].
 * @internal
 */
function matrixChain(D: Float64Array, n: number, masses: Float64Array, linkage: 'average' | 'complete'): Float64Array {
  const w = Float64Array.from(masses);
  const alive = new Uint8Array(n).fill(1);
  const avg = linkage === 'average';
  return nnChain(
    n,
    () => alive.indexOf(1),
    (x, prev) => {
      let y = prev;
      let best = prev >= 0 ? D[x < prev ? condensed(n, x, prev) : condensed(n, prev, x)] : Infinity;
      // Row x of the condensed matrix: columns i < x sit at stride n − i − 2, the rest contiguous.
      for (let i = 0; i < x; i++) {
        if (!alive[i]) continue;
        const v = D[condensed(n, i, x)];
        if (v < best) {
          best = v;
          y = i;
        }
      }
      const base = condensed(n, x, x + 1) - (x + 1);
      for (let i = x + 1; i < n; i++) {
        if (!alive[i]) continue;
        const v = D[base + i];
        if (v < best) {
          best = v;
          y = i;
        }
      }
      return [y, best];
    },
    (x, y, best) => {
      const wx = w[x];
      const wy = w[y];
      alive[x] = 0;
      w[y] = wx + wy;
      for (let i = 0; i < n; i++) {
        if (!alive[i] || i === y) continue;
        const ix = i < x ? condensed(n, i, x) : condensed(n, x, i);
        const iy = i < y ? condensed(n, i, y) : condensed(n, y, i);
        D[iy] = avg ? (wx * D[ix] + wy * D[iy]) / (wx + wy) : Math.max(D[ix], D[iy]);
      }
      return best;
    },
  );
}

/**
 * scipy's `label`: sorts the raw merges by height (stable), then names each merged cluster
 * n + i through a union-find over slots, with a < b and `size` the summed row counts.
 * @internal
 */
function relabel(raw: Float64Array, n: number, counts: Float64Array): Float64Array {
  const m = n - 1;
  const order = Array.from({ length: m }, (_, i) => i).sort((p, q) => raw[p * 4 + 2] - raw[q * 4 + 2] || p - q);
  const parent = new Int32Array(2 * n - 1).map((_, i) => i);
  const size = new Float64Array(2 * n - 1);
  size.set(counts);
  const find = (v: number): number => {
    let r = v;
    while (parent[r] !== r) r = parent[r];
    while (parent[v] !== r) {
      const nx = parent[v];
      parent[v] = r;
      v = nx;
    }
    return r;
  };
  const out = new Float64Array(m * 4);
  order.forEach((src, i) => {
    const rx = find(raw[src * 4]);
    const ry = find(raw[src * 4 + 1]);
    const node = n + i;
    parent[rx] = node;
    parent[ry] = node;
    size[node] = size[rx] + size[ry];
    out[i * 4] = Math.min(rx, ry);
    out[i * 4 + 1] = Math.max(rx, ry);
    out[i * 4 + 2] = raw[src * 4 + 2];
    out[i * 4 + 3] = size[node];
  });
  return out;
}

/**
 * Cuts a full merge tree (scipy's linkage matrix, flattened) into k clusters, labelled as
 * scikit-learn's `_hc_cut` labels them: the k − 1 latest merges are undone one by one, the
 * open nodes are kept in a binary heap of negated node ids (Python's `heapq`, replicated
 * push for push), and cluster i is the i-th node of the heap's array.
 *
 * @example
 * cutTree(result.merges, result.nLeaves, 3); // Int32Array of nLeaves labels in [0, 3)
 */
export function cutTree(merges: Float64Array, nLeaves: number, k: number): Int32Array {
  const n = nLeaves;
  if (!Number.isInteger(n) || n < 1) throw new SegtensorError('BAD_OPTION', `cutTree: 'nLeaves' must be an integer >= 1; got ${n}`);
  if (merges.length !== (n - 1) * 4) {
    throw new SegtensorError('BAD_INPUT', `cutTree: a full tree of ${n} leaves holds ${n - 1} merges; got ${merges.length / 4}`);
  }
  if (!Number.isInteger(k) || k < 1 || k > n) throw new SegtensorError('BAD_OPTION', `cutTree: 'k' must be an integer in [1, leaves = ${n}]; got ${k}`);
  const labels = new Int32Array(n);
  if (n === 1) return labels;
  const heap: number[] = [-(2 * n - 2)];
  for (let s = 0; s < k - 1; s++) {
    const node = -heap[0];
    const row = node - n;
    heapPush(heap, -merges[row * 4]);
    heapPushPop(heap, -merges[row * 4 + 1]);
  }
  heap.forEach((neg, i) => {
    // Descendant leaves of the node, by an explicit stack.
    const stack = [-neg];
    while (stack.length) {
      const v = stack.pop()!;
      if (v < n) labels[v] = i;
      else stack.push(merges[(v - n) * 4], merges[(v - n) * 4 + 1]);
    }
  });
  return labels;
}

/** Python's `heapq.heappush`. @internal */
function heapPush(h: number[], item: number): void {
  h.push(item);
  siftDown(h, 0, h.length - 1);
}

/** Python's `heapq.heappushpop`. @internal */
function heapPushPop(h: number[], item: number): number {
  if (h.length && h[0] < item) {
    const top = h[0];
    h[0] = item;
    siftUp(h, 0);
    return top;
  }
  return item;
}

function siftDown(h: number[], start: number, pos: number): void {
  const item = h[pos];
  while (pos > start) {
    const parent = (pos - 1) >> 1;
    if (item < h[parent]) {
      h[pos] = h[parent];
      pos = parent;
      continue;
    }
    break;
  }
  h[pos] = item;
}

function siftUp(h: number[], pos: number): void {
  const end = h.length;
  const start = pos;
  const item = h[pos];
  let child = 2 * pos + 1;
  while (child < end) {
    const right = child + 1;
    if (right < end && !(h[child] < h[right])) child = right;
    h[pos] = h[child];
    pos = child;
    child = 2 * pos + 1;
  }
  h[pos] = item;
  siftDown(h, start, pos);
}

/**
 * Leaves in the dendrogram's left-to-right order (scipy's `leaves_list`): a pre-order walk,
 * first child (a) before second (b).
 */
export function leafOrder(merges: Float64Array, nLeaves: number): Int32Array {
  const out = new Int32Array(nLeaves);
  if (nLeaves === 1) return out;
  let p = 0;
  const stack = [2 * nLeaves - 2];
  while (stack.length) {
    const v = stack.pop()!;
    if (v < nLeaves) out[p++] = v;
    else stack.push(merges[(v - nLeaves) * 4 + 1], merges[(v - nLeaves) * 4]);
  }
  return out;
}

/** dendrogram.json: the merge tree for drawing. */
export interface DendrogramJson {
  linkage: Linkage;
  mode: 'exact' | 'two-stage';
  /** Leaves 0..nLeaves−1 are rows (exact) or micro-clusters (two-stage); merge i creates node nLeaves + i. */
  nLeaves: number;
  /** scipy's linkage matrix as objects, sorted by height. */
  merges: { a: number; b: number; height: number; size: number }[];
  /** Leaf ids in the dendrogram's left-to-right order (scipy's `leaves_list`). */
  leaves: number[];
  /** Two-stage mode: rows in each micro-cluster leaf. */
  leafSizes?: number[];
}

/**
 * The tree of a fit for dendrogram.json.
 *
 * @example
 * fs.writeFileSync(path.join(dir, 'dendrogram.json'), JSON.stringify(dendrogramJson(r)));
 */
export function dendrogramJson(r: AgglomerativeResult): DendrogramJson {
  const merges: DendrogramJson['merges'] = [];
  for (let i = 0; i < r.nLeaves - 1; i++) {
    merges.push({ a: r.merges[i * 4], b: r.merges[i * 4 + 1], height: r.merges[i * 4 + 2], size: r.merges[i * 4 + 3] });
  }
  const out: DendrogramJson = { linkage: r.linkage, mode: r.mode, nLeaves: r.nLeaves, merges, leaves: [...leafOrder(r.merges, r.nLeaves)] };
  if (r.leafSizes) out.leafSizes = [...r.leafSizes];
  return out;
}

/**
 * model.json's agglomerative part: predict needs the centroids only.
 *
 * @example
 * model.segmentation = agglomerativeModel(r);
 */
export function agglomerativeModel(r: AgglomerativeResult): AgglomerativeModelJson {
  const d = r.centroids.length / r.k;
  return {
    method: 'agglomerative',
    formatVersion: AGGLOMERATIVE_FORMAT_VERSION,
    linkage: r.linkage,
    mode: r.mode,
    microClusters: r.microClusters,
    k: r.k,
    centroids: Array.from({ length: r.k }, (_, j) => [...r.centroids.subarray(j * d, (j + 1) * d)]),
    sizes: [...r.sizes],
    inertia: r.inertia,
  };
}

/**
 * Segments of new rows for an agglomerative model: the nearest segment centroid (a hierarchy
 * has no rule for unseen rows; nearest centroid is what a cut at k amounts to for compact
 * segments). Runs the backend's assign.
 *
 * @example
 * const labels = await predictAgglomerative(be, agglomerativeModel(r), x);
 */
export async function predictAgglomerative(be: Backend, model: Pick<AgglomerativeModelJson, 'formatVersion' | 'k' | 'centroids'>, x: Matrix): Promise<Int32Array> {
  if (model.formatVersion !== AGGLOMERATIVE_FORMAT_VERSION) {
    throw new SegtensorError('MODEL_VERSION', `predictAgglomerative: model format version ${model.formatVersion} is not supported (this segtensor reads ${AGGLOMERATIVE_FORMAT_VERSION})`);
  }
  const d = x.nFeatures;
  if (model.centroids.length !== model.k || model.centroids.some((c) => c.length !== d)) {
    throw new SegtensorError('BAD_INPUT', `predictAgglomerative: the model holds ${model.centroids.length} centroids of ${model.centroids[0]?.length} features; expected k = ${model.k} of nFeatures = ${d}`);
  }
  const c = Float32Array.from(model.centroids.flat());
  const dx = be.upload(x, null);
  try {
    const a = await assign(be, dx, c, model.k);
    return (await a.read()).labels;
  } finally {
    be.release(dx);
  }
}
