/**
 * Bisecting K-Means with scikit-learn's `BisectingKMeans` semantics (1.2):
 * - start from one cluster of every row; k − 1 times, pick the leaf with the highest score
 *   (`biggest_inertia`: its weighted SSE about its centre; `largest_cluster`: its row count),
 *   the first such leaf in tree order on ties, and split it with a 2-means (the repo's
 *   {@link KMeans}, k = 2 on that leaf's rows, `nInit` restarts, `random` seeding by default as
 *   scikit-learn's, each split's seed drawn in turn from one generator seeded by `seed`);
 * - the 2-means's cluster 0 becomes the left child, cluster 1 the right, each keeping its
 *   2-means centroid (not recomputed later) and its inertia about it;
 * - final labels number the leaves in tree order, left before right (scikit-learn's
 *   `iter_leaves`), and `centroids` lists the leaves' centres in that order;
 * - predict descends the tree from the root, moving each row to the nearer of the two children
 *   at every level (ties left), as scikit-learn's `_predict_recursive`; this can differ from the
 *   nearest leaf centroid.
 *
 * Differences from scikit-learn: the random draws are segtensor's (runs agree in distribution,
 * not row for row); random seeding draws rows in proportion to their weights; a split's tol is
 * relative to that leaf's mean feature variance (as KMeans's), where scikit-learn 1.2 passes the
 * raw tol; the root's centre is the weighted mean; a leaf of one row is never picked, and a
 * split that leaves a child empty (all rows equal) is undone and the leaf is not picked again.
 *
 * @example
 * const r = await new BisectingKMeans({ k: 6 }).fit(be, x);
 * r.labels; r.centroids; r.tree;
 * const labels = predictBisecting(bisectingModel(r).tree, newRows);
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';
import { KMeans } from './kmeans.js';

export type BisectingStrategy = 'biggest_inertia' | 'largest_cluster';
export const BISECTING_STRATEGIES: readonly BisectingStrategy[] = Object.freeze(['biggest_inertia', 'largest_cluster']);

export interface BisectingOptions {
  /** Number of clusters (leaves), an integer in [1, nRows]. Required. */
  k: number;
  /** Which leaf to split next: highest inertia or most rows. Default `biggest_inertia`. */
  bisectingStrategy: BisectingStrategy;
  /** Restarts of each 2-means; the lowest inertia wins. Default 1 (scikit-learn's). */
  nInit: number;
  /** Lloyd iterations per 2-means at most. Default 300. */
  maxIter: number;
  /** Each 2-means's tolerance on the squared centre shift, relative to the leaf's mean feature variance. Default 1e-4. */
  tol: number;
  /** Seeding of each 2-means: two `random` rows (scikit-learn's default) or `k-means++`. Default `random`. */
  init: 'random' | 'k-means++';
  /** Seed of every split; the same seed reproduces a fit on a given backend. Default 0. */
  seed: number;
}

export const BISECTING_DEFAULTS: Readonly<Omit<BisectingOptions, 'k'>> = Object.freeze({
  bisectingStrategy: 'biggest_inertia' as BisectingStrategy,
  nInit: 1,
  maxIter: 300,
  tol: 1e-4,
  init: 'random' as 'random' | 'k-means++',
  seed: 0,
});

/** One cluster of the hierarchy. */
export interface BisectingNode {
  /** nFeatures values: the 2-means centroid of this cluster (the root: the weighted mean). */
  centroid: Float32Array;
  /** Rows in the cluster. */
  size: number;
  /** Summed weights of those rows (size when unweighted). */
  weight: number;
  /** Weighted sum of squared distances of the rows to `centroid`. */
  inertia: number;
  /** A leaf's final label; -1 for a split cluster. */
  label: number;
  /** The two halves (2-means clusters 0 and 1), or null for a leaf. */
  children: [BisectingNode, BisectingNode] | null;
}

/** A node as model.json stores it; {@link predictBisecting} accepts this or a {@link BisectingNode}. */
export interface BisectingNodeJson {
  centroid: number[];
  size: number;
  weight: number;
  inertia: number;
  label: number;
  children: [BisectingNodeJson, BisectingNodeJson] | null;
}

export interface BisectingResult {
  k: number;
  bisectingStrategy: BisectingStrategy;
  /** Leaf of each row, leaves numbered in tree order. */
  labels: Int32Array;
  /** k × nFeatures: the leaves' centroids, in label order. */
  centroids: Float32Array;
  /** Summed weights of each leaf's rows. */
  sizes: Float64Array;
  /** Weighted sum of squared distances to the leaf centroids (scikit-learn's `inertia_`). */
  inertia: number;
  /** The hierarchy: root covers every row, leaves are the k clusters. */
  tree: BisectingNode;
  ms: number;
}

export const BISECTING_FORMAT_VERSION = 1;

/** model.json's bisecting part: the tree is what predict descends. */
export interface BisectingModelJson {
  method: 'bisecting';
  formatVersion: typeof BISECTING_FORMAT_VERSION;
  bisectingStrategy: BisectingStrategy;
  k: number;
  /** k rows of nFeatures values, in label order. */
  centroids: number[][];
  inertia: number;
  tree: BisectingNodeJson;
}

/** Parameter constraints as data, checked once in `fit`. */
const CONSTRAINTS: { [K in 'nInit' | 'maxIter']: [number, number] } = { nInit: [1, 1000], maxIter: [1, 1_000_000] };

/** A leaf being grown: its node and the rows it holds. */
interface Leaf {
  node: BisectingNode;
  rows: Int32Array;
  /** Not to be picked again (one row, or a split that left a child empty). */
  frozen: boolean;
}

export class BisectingKMeans {
  readonly options: Readonly<BisectingOptions>;

  constructor(options: Partial<BisectingOptions> & { k: number }) {
    this.options = Object.freeze({ ...BISECTING_DEFAULTS, ...options });
  }

  private validate(x: Matrix, weights: Float32Array | null): void {
    const o = this.options;
    if (x.data.length !== x.nRows * x.nFeatures) {
      throw new TypeError(`BisectingKMeans: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * x.nFeatures}`);
    }
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > x.nRows) {
      throw new SegtensorError('BAD_OPTION', `BisectingKMeans: 'k' must be an integer in [1, nRows = ${x.nRows}]; got ${o.k}`);
    }
    if (!BISECTING_STRATEGIES.includes(o.bisectingStrategy)) {
      throw new SegtensorError('BAD_OPTION', `--bisecting-strategy must be biggest_inertia or largest_cluster; got '${String(o.bisectingStrategy)}'`);
    }
    if (o.init !== 'random' && o.init !== 'k-means++') {
      throw new SegtensorError('BAD_OPTION', `BisectingKMeans: 'init' must be random or k-means++; got '${String(o.init)}'`);
    }
    for (const [name, [lo, hi]] of Object.entries(CONSTRAINTS)) {
      const v = o[name as keyof typeof CONSTRAINTS];
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new SegtensorError('BAD_OPTION', `BisectingKMeans: '${name}' must be an integer in [${lo}, ${hi}]; got ${v}`);
      }
    }
    if (!(o.tol >= 0) || !Number.isFinite(o.tol)) {
      throw new SegtensorError('BAD_OPTION', `BisectingKMeans: 'tol' must be a finite number >= 0; got ${o.tol}`);
    }
    if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `BisectingKMeans: 'seed' must be an integer; got ${o.seed}`);
    if (weights) {
      if (weights.length !== x.nRows) throw new SegtensorError('BAD_INPUT', `BisectingKMeans: weights hold ${weights.length} values for ${x.nRows} rows`);
      for (let i = 0; i < weights.length; i++) {
        if (!(weights[i] > 0) || !Number.isFinite(weights[i])) {
          throw new SegtensorError('BAD_INPUT', `BisectingKMeans: weight of row ${i} must be finite and > 0; got ${weights[i]}`);
        }
      }
    }
  }

  /** Fits on a preprocessed matrix; `weights` (optional) are per-row sample weights. */
  async fit(be: Backend, x: Matrix, weights: Float32Array | null = null): Promise<BisectingResult> {
    this.validate(x, weights);
    const t0 = performance.now();
    const o = this.options;
    const d = x.nFeatures;
    const rng = new Random(o.seed);
    const all = new Int32Array(x.nRows).map((_, i) => i);
    const mean = weightedMean(x, weights, all);
    const root = makeNode(x, weights, all, mean);
    const leaves: Leaf[] = [{ node: root, rows: all, frozen: x.nRows < 2 }];
    let nLeaves = 1;
    while (nLeaves < o.k) {
      // The first leaf in tree order with the highest score (scikit-learn's strict '>').
      let pick: Leaf | null = null;
      let best = -Infinity;
      for (const leaf of iterLeaves(leaves)) {
        if (leaf.frozen) continue;
        const score = o.bisectingStrategy === 'biggest_inertia' ? leaf.node.inertia : leaf.rows.length;
        if (pick === null || score > best) {
          best = score;
          pick = leaf;
        }
      }
      if (!pick) {
        throw new SegtensorError('BAD_INPUT', `BisectingKMeans: only ${nLeaves} clusters can be formed (the remaining ones hold one row or equal rows); got k = ${o.k}`);
      }
      const sub = pick.rows === all ? x : subMatrix(x, pick.rows);
      let subW = weights;
      if (weights && pick.rows !== all) {
        subW = new Float32Array(pick.rows.length);
        for (let i = 0; i < pick.rows.length; i++) subW[i] = weights[pick.rows[i]];
      }
      const km = await new KMeans({ k: 2, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init: o.init, seed: rng.fork() }).fit(be, sub, subW);
      const halves: number[][] = [[], []];
      pick.rows.forEach((r, j) => halves[km.labels[j]].push(r));
      if (halves[0].length === 0 || halves[1].length === 0) {
        pick.frozen = true;
        continue;
      }
      const kids = halves.map((h, c) => {
        const rows = Int32Array.from(h);
        const node = makeNode(x, weights, rows, km.centroids.slice(c * d, (c + 1) * d));
        return { node, rows, frozen: rows.length < 2 } as Leaf;
      });
      pick.node.children = [kids[0].node, kids[1].node];
      // The parent's row list is no longer needed: its children hold the rows.
      pick.rows = new Int32Array(0);
      leaves.push(kids[0], kids[1]);
      nLeaves++;
    }
    const labels = new Int32Array(x.nRows);
    const centroids = new Float32Array(o.k * d);
    const sizes = new Float64Array(o.k);
    let inertia = 0;
    let label = 0;
    for (const leaf of iterLeaves(leaves)) {
      leaf.node.label = label;
      for (const r of leaf.rows) labels[r] = label;
      centroids.set(leaf.node.centroid, label * d);
      sizes[label] = leaf.node.weight;
      inertia += leaf.node.inertia;
      label++;
    }
    return { k: o.k, bisectingStrategy: o.bisectingStrategy, labels, centroids, sizes, inertia, tree: root, ms: performance.now() - t0 };
  }
}

/** The growing leaves in tree order (left subtree first), found by walking from the root. */
function* iterLeaves(leaves: Leaf[]): Generator<Leaf> {
  const byNode = new Map<BisectingNode, Leaf>();
  for (const l of leaves) byNode.set(l.node, l);
  const stack = [leaves[0].node];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.children) stack.push(n.children[1], n.children[0]);
    else yield byNode.get(n)!;
  }
}

function subMatrix(x: Matrix, rows: Int32Array): Matrix {
  const d = x.nFeatures;
  const data = new Float32Array(rows.length * d);
  rows.forEach((r, j) => data.set(x.data.subarray(r * d, (r + 1) * d), j * d));
  return { data, nRows: rows.length, nFeatures: d };
}

function weightedMean(x: Matrix, w: Float32Array | null, rows: Int32Array): Float32Array {
  const d = x.nFeatures;
  const s = new Float64Array(d);
  let tw = 0;
  for (const r of rows) {
    const wi = w ? w[r] : 1;
    tw += wi;
    for (let f = 0; f < d; f++) s[f] += wi * x.data[r * d + f];
  }
  return Float32Array.from(s, (v) => v / tw);
}

/** A leaf node: size, weight and inertia of `rows` about `centroid`, in float64. */
function makeNode(x: Matrix, w: Float32Array | null, rows: Int32Array, centroid: Float32Array): BisectingNode {
  const d = x.nFeatures;
  let weight = 0;
  let inertia = 0;
  for (const r of rows) {
    const wi = w ? w[r] : 1;
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = x.data[r * d + f] - centroid[f];
      s += t * t;
    }
    weight += wi;
    inertia += wi * s;
  }
  return { centroid, size: rows.length, weight, inertia, label: -1, children: null };
}

/** The tree as plain JSON. */
export function bisectingTreeJson(n: BisectingNode): BisectingNodeJson {
  return {
    centroid: [...n.centroid],
    size: n.size,
    weight: n.weight,
    inertia: n.inertia,
    label: n.label,
    children: n.children ? [bisectingTreeJson(n.children[0]), bisectingTreeJson(n.children[1])] : null,
  };
}

/**
 * model.json's bisecting part.
 *
 * @example
 * model.segmentation = bisectingModel(r);
 */
export function bisectingModel(r: BisectingResult): BisectingModelJson {
  const d = r.centroids.length / r.k;
  return {
    method: 'bisecting',
    formatVersion: BISECTING_FORMAT_VERSION,
    bisectingStrategy: r.bisectingStrategy,
    k: r.k,
    centroids: Array.from({ length: r.k }, (_, j) => [...r.centroids.subarray(j * d, (j + 1) * d)]),
    inertia: r.inertia,
    tree: bisectingTreeJson(r.tree),
  };
}

/** What predict needs of a node. */
export interface BisectingTreeLike {
  centroid: ArrayLike<number>;
  label: number;
  children: readonly [BisectingTreeLike, BisectingTreeLike] | null;
}

/**
 * Labels of new rows: from the root, each row moves to the nearer child (squared Euclidean
 * distance in float64, ties to the left child) until it reaches a leaf, whose label it takes;
 * scikit-learn's `BisectingKMeans.predict`. A host loop: depth × 2 distances per row.
 *
 * @example
 * predictBisecting(r.tree, x); // Int32Array of x.nRows labels in [0, k)
 */
export function predictBisecting(tree: BisectingTreeLike, x: Matrix): Int32Array {
  const d = x.nFeatures;
  if (tree.centroid.length !== d) {
    throw new SegtensorError('BAD_INPUT', `predictBisecting: the tree's centroids have ${tree.centroid.length} features; the rows have ${d}`);
  }
  const labels = new Int32Array(x.nRows);
  for (let i = 0; i < x.nRows; i++) {
    let node = tree;
    while (node.children) {
      const [l, r] = node.children;
      let dl = 0;
      let dr = 0;
      for (let f = 0; f < d; f++) {
        const v = x.data[i * d + f];
        const a = v - l.centroid[f];
        const b = v - r.centroid[f];
        dl += a * a;
        dr += b * b;
      }
      node = dr < dl ? r : l;
    }
    if (!(node.label >= 0)) throw new SegtensorError('BAD_INPUT', `predictBisecting: a leaf of the tree has no label (${node.label})`);
    labels[i] = node.label;
  }
  return labels;
}
