/**
 * DBSCAN with scikit-learn's semantics (`sklearn.cluster.DBSCAN`, Euclidean metric), without
 * building all pairs of rows on large tables.
 *
 * Semantics, as scikit-learn 1.2 runs them:
 * - row j is in row i's neighbourhood when ‖xᵢ − xⱼ‖ ≤ eps (`<=`, the row itself included),
 *   the distance compared as Σ_f (xᵢf − xⱼf)² ≤ eps·eps in float64, in feature order: the
 *   arithmetic of scikit-learn's KD tree (its `auto` choice up to 15 features), so ties at eps
 *   agree bit for bit on float32 input. (Past 15 features scikit-learn's `auto` is brute force
 *   through ‖x‖² − 2x·y + ‖y‖² in float64, which may flip a distance within ~1e-16 of eps.)
 * - row i is core when the summed sample weight of its neighbourhood is ≥ minSamples (weight 1
 *   each without weights; weights may be zero or negative, as scikit-learn allows, and are
 *   summed in float64);
 * - clusters are the connected components of core rows (an edge where two core rows are
 *   neighbours), numbered as scikit-learn's expansion meets them: by the lowest row index of
 *   each component;
 * - a non-core row with a core neighbour is a border row and takes the label of the first
 *   cluster that reaches it in that expansion, which is the lowest-numbered cluster among its
 *   core neighbours (scikit-learn expands one cluster completely before starting the next);
 *   other rows are noise, label −1.
 *
 * Labels, core flags and border labels are therefore identical to scikit-learn's, not just up
 * to renumbering.
 *
 * Neighbour search (`index`):
 * - `grid` (auto up to {@link DBSCAN_DEFAULTS}.gridMaxFeatures = 6 features): a uniform grid
 *   of cells of side eps keyed by a hash of their integer coordinates; a row's neighbours lie in
 *   the 3^d cells around its own (when 3^d exceeds nCells·d, the non-empty cells are scanned
 *   instead), and a cell whose box lies farther than eps from the row is skipped. Time per
 *   pass: min(3^d, nCells·d) look-ups per non-empty cell plus one float64 distance (d flops)
 *   per candidate pair, about nRows × (rows per cell seen from a row) × 3^d; host only.
 *   Memory: a float32 copy of the matrix in cell order (4·n·d bytes), int32 cell coordinates
 *   (4·n·d while building, 4·nCells·d kept) and about 20·n bytes of tables.
 * - `blocked` (beyond): ranges of B consecutive rows through the backend's `radiusNeighbours`
 *   op, B = ⌊blockBytes / (4·nRows)⌋ (at most 4096), so that a range's neighbour lists (4 bytes
 *   a pair) stay within `blockBytes` (64 MiB by default) even when every pair is a neighbour.
 *   The op decides every pair as above, in float64 (native: a float32 SIMD screen of direct
 *   differences and a float64 recompute within its rounding bound of eps²; tfjs and CUDA: blocks
 *   of their `distances` scanned on the host, engine/backends/host.ts), so ties at eps agree
 *   with scikit-learn. Time per sweep: nRows² · d float32 multiply-adds (native: about 2·d/lanes
 *   vector operations per pair, all cores). Memory: the backend's resident copy (none on native),
 *   one range's lists, and the op's own transient (native: 8 bytes a pair of the range).
 *   With `projectionWindow` (default) the rows are first sorted into slabs of width eps along
 *   their first principal direction, by the second within a slab, and each range of queries is
 *   given only the rows of its own and the adjacent slabs whose second projection lies within
 *   eps of its own (exact: a projection never lengthens a difference), so a sweep decides far
 *   fewer than nRows² pairs on clustered data (9 % on the 1,000,000 × 16 benchmark blobs); it
 *   costs a sorted float32 copy of the matrix (4·n·d bytes) and up to three op calls a range.
 *
 * Both indexes run the same three passes: (1) every row's weighted neighbour count, (2) core
 * rows: union–find over core neighbours, (3) non-core rows: the lowest cluster among core
 * neighbours. The grid's pass 1 keeps every list while they fit in `neighbourBytes` (4 bytes a
 * pair, 256 MiB by default); then passes 2 and 3 read them instead of searching again. The
 * blocked index does passes 1 and 2 in one sweep (a range's rows are classified as soon as its
 * counts come back, and a core pair is joined from its later row) and keeps only the non-core
 * rows' lists for pass 3: fewer than minSamples entries a row unweighted, so one sweep even
 * where all lists would take gigabytes. Where they outgrow `neighbourBytes`, pass 3 searches
 * the ranges holding non-core rows again; with no budget at all (0) it runs the three passes
 * apart, pass 1 asking only for counts. Beyond the indexes, O(nRows) memory: about 40 bytes a
 * row.
 *
 * Measured (native backend, AVX-512, 2 cores shared with other jobs; Gaussian blobs from
 * bench/make-table, eps from {@link epsAuto}): 100,000 × 4, grid, minSamples 5: about 2 s
 * (4.6 M neighbour pairs). 100,000 × 16, blocked, minSamples 10: 2.4–2.5 s for the one sweep of
 * 10^10 pairs (19.6 s with `distances` blocks and a host scan), plus 5.3–5.7 s for epsAuto's
 * 20,000-row sample against 100,000 rows. 1,000,000 × 16: 219 s for the sweep of 10^12 pairs
 * (the non-core lists kept), 64 s for epsAuto. With the projection window (2026-12-07, the same
 * machine and data): 43 s at 1,000,000 × 16 for the sweep (67 s with one direction); epsAuto
 * unchanged (54–60 s at 1,000,000).
 *
 * `eps: 'auto'` picks eps with {@link epsAuto} (the knee of the sorted k-distance curve).
 * Prediction ({@link predictDbscan}) keeps the core rows: nCore × nFeatures float32 plus nCore
 * int32 labels (4·nCore·(nFeatures + 1) bytes; as JSON numbers in model.json, see
 * {@link dbscanModel}, about 10–20 bytes each).
 *
 * @example
 * const r = await new DBSCAN({ eps: 0.5, minSamples: 5 }).fit(be, { data, nRows, nFeatures });
 * r.labels; // −1 for noise
 * const labels = predictDbscan(r, newRows);
 */
import type { Matrix } from '../core/matrix.js';
import type { Backend, DeviceMatrix, RadiusNeighbours } from '../engine/backend.js';
import { distances } from '../engine/ops/distances.js';
import { radiusNeighbours } from '../engine/ops/radius.js';
import { SegtensorError } from '../errors.js';
import { Random } from '../util/random.js';

/** Neighbour search: see the module comment. */
export type DbscanIndex = 'grid' | 'blocked';

export interface DBSCANOptions {
  /**
   * Neighbourhood radius, in the units of the prepared matrix (Euclidean): rows at distance
   * ≤ eps are neighbours. A number > 0, or `auto` for {@link epsAuto}. Default 0.5 (scikit-learn's).
   */
  eps: number | 'auto';
  /**
   * Summed sample weight of a row's neighbourhood, the row itself included, that makes it a
   * core row (rows when unweighted). An integer ≥ 1. Default 5 (scikit-learn's `min_samples`).
   */
  minSamples: number;
  /** Neighbour search: `grid`, `blocked`, or `auto` (grid up to `gridMaxFeatures` features). Default `auto`. */
  index: 'auto' | DbscanIndex;
  /** Most features for which `auto` picks the grid (3^d cells searched per cell). Default 6. */
  gridMaxFeatures: number;
  /**
   * Bytes per block of B rows (nRows × B × 4, at least one row): the blocked index's neighbour
   * lists of one range of rows at most (4 bytes a pair), and eps auto's float32 distance scratch.
   * Default 64 MiB.
   */
  blockBytes: number;
  /** Bytes for keeping neighbour lists between passes (4 per pair); beyond it they are searched again. Default 256 MiB. */
  neighbourBytes: number;
  /** `eps: 'auto'`: rows sampled for the k-distance curve (all rows when fewer). Default 20,000. */
  autoSample: number;
  /**
   * Blocked index: sort the rows along their first two principal directions and give each range
   * of queries only the rows whose projections lie within eps of the range's (no row outside can
   * be within eps: a projection onto a unit vector never lengthens a difference). The same
   * neighbours, far fewer pairs on clustered data. Default true.
   */
  projectionWindow: boolean;
  /** `eps: 'auto'`: seed of that sample. Default 0. */
  seed: number;
}

export const DBSCAN_DEFAULTS: Readonly<DBSCANOptions> = Object.freeze({
  eps: 0.5 as number | 'auto',
  minSamples: 5,
  index: 'auto' as 'auto' | DbscanIndex,
  gridMaxFeatures: 6,
  blockBytes: 64 * 2 ** 20,
  neighbourBytes: 256 * 2 ** 20,
  autoSample: 20_000,
  projectionWindow: true,
  seed: 0,
});

/** Most features the grid accepts when asked for by name (3^12 = 531,441 cells around each). */
export const GRID_MAX_FEATURES = 12;

export interface DBSCANResult {
  /** Per row: cluster in [0, nClusters), or −1 for noise. */
  labels: Int32Array;
  /** Per row: 1 for a core row. */
  core: Uint8Array;
  nClusters: number;
  /** Rows labelled −1. */
  nNoise: number;
  /** The eps used (`auto` resolved). */
  eps: number;
  minSamples: number;
  nFeatures: number;
  /** The core rows, nCore × nFeatures row-major, in row order: what {@link predictDbscan} needs. */
  corePoints: Float32Array;
  /** The cluster of each core row. */
  coreLabels: Int32Array;
  /** The neighbour search that ran. */
  index: DbscanIndex;
  /** How eps was chosen when `eps: 'auto'`, else null. */
  epsAuto: EpsAuto | null;
  /** Wall time: choosing eps (0 unless auto), and the neighbour passes with the labelling. */
  ms: { eps: number; cluster: number };
  stats: DbscanStats;
}

/** What the neighbour search did. */
export interface DbscanStats {
  /**
   * Searches over all (or a subset of) the rows: 1 when the lists needed after the first were
   * kept (see `keptNeighbours`); else 3: counts, then the core rows, then the others (the grid
   * searches exactly those rows, the blocked index the ranges of rows holding them). The blocked
   * index joins the core rows in its first sweep when it has a budget, so it needs 2 when the
   * non-core lists outgrow `neighbourBytes` during it.
   */
  passes: number;
  /** Ordered pairs (i, j) with j in i's neighbourhood, self included. */
  neighbourPairs: number;
  /** Whether the lists needed after pass 1 fitted in `neighbourBytes`: every row's for the grid, the non-core rows' for the blocked index. */
  keptNeighbours: boolean;
  /** Blocked index: pairs whose float32 distance fell within the rounding bound of eps² and were recomputed in float64. */
  rechecked: number;
  /** Blocked index: rows per range asked of the backend (list mode). */
  blockRows: number;
  /**
   * Blocked index: pairs the backend was given to decide (each query range × its window of
   * candidate rows), over all sweeps; nRows² a sweep without the projection window.
   */
  candidatePairs: number;
  /** Grid: non-empty cells. */
  nonEmptyCells: number;
}

/** The k-distance curve behind an `eps: 'auto'` choice, to record with the run. */
export interface EpsAuto {
  eps: number;
  /** k = minSamples: the distance to the k-th nearest row, the row itself first. */
  k: number;
  /** Rows whose k-distance was taken (a seeded sample when the table is larger than `autoSample`). */
  nSample: number;
  seed: number;
  /** Position of the knee in the ascending curve, and as a fraction of it. */
  kneeIndex: number;
  kneeQuantile: number;
  /** The ascending k-distance curve at quantiles 0, 0.01, …, 1 (101 values, or every value when fewer). */
  curve: number[];
}

/**
 * What {@link predictDbscan} needs, as model.json stores it (`methodState`). Its size is
 * nCore × (nFeatures + 1) numbers.
 */
export interface DbscanModelJson {
  method: 'dbscan';
  formatVersion: number;
  eps: number;
  minSamples: number;
  nFeatures: number;
  nClusters: number;
  /** nCore × nFeatures row-major (float32 values). */
  corePoints: number[];
  coreLabels: number[];
}

export const DBSCAN_FORMAT_VERSION = 1;

/** Constraints as data, checked once in `fit`. */
const INDEX_NAMES: readonly string[] = ['auto', 'grid', 'blocked'];

export class DBSCAN {
  readonly options: Readonly<DBSCANOptions>;

  constructor(options: Partial<DBSCANOptions> = {}) {
    this.options = Object.freeze({ ...DBSCAN_DEFAULTS, ...options });
  }

  private validate(x: Matrix, weights: Float32Array | null): void {
    const o = this.options;
    checkEps(o.eps);
    checkMinSamples(o.minSamples);
    if (!INDEX_NAMES.includes(o.index)) {
      throw new SegtensorError('BAD_OPTION', `DBSCAN: 'index' must be one of ${INDEX_NAMES.join(', ')}; got ${String(o.index)}`);
    }
    if (!Number.isInteger(o.gridMaxFeatures) || o.gridMaxFeatures < 0 || o.gridMaxFeatures > GRID_MAX_FEATURES) {
      throw new SegtensorError('BAD_OPTION', `DBSCAN: 'gridMaxFeatures' must be an integer in [0, ${GRID_MAX_FEATURES}]; got ${o.gridMaxFeatures}`);
    }
    if (o.index === 'grid' && x.nFeatures > GRID_MAX_FEATURES) {
      throw new SegtensorError(
        'BAD_OPTION',
        `DBSCAN: the grid index searches 3^d cells around each and takes at most ${GRID_MAX_FEATURES} features; got ${x.nFeatures} (use index 'blocked' or 'auto')`,
      );
    }
    for (const name of ['blockBytes', 'neighbourBytes'] as const) {
      const v = o[name];
      if (!Number.isFinite(v) || v < 0) throw new SegtensorError('BAD_OPTION', `DBSCAN: '${name}' must be a finite number of bytes >= 0; got ${v}`);
    }
    if (typeof o.projectionWindow !== 'boolean') {
      throw new SegtensorError('BAD_OPTION', `DBSCAN: 'projectionWindow' must be true or false; got ${String(o.projectionWindow)}`);
    }
    if (!Number.isInteger(o.autoSample) || o.autoSample < 1) {
      throw new SegtensorError('BAD_OPTION', `DBSCAN: 'autoSample' must be an integer >= 1; got ${o.autoSample}`);
    }
    if (!Number.isInteger(o.seed)) throw new SegtensorError('BAD_OPTION', `DBSCAN: 'seed' must be an integer; got ${o.seed}`);
    checkMatrix('DBSCAN', x);
    if (weights) {
      if (weights.length !== x.nRows) throw new SegtensorError('BAD_INPUT', `DBSCAN: weights hold ${weights.length} values for ${x.nRows} rows`);
      for (let i = 0; i < weights.length; i++) {
        if (!Number.isFinite(weights[i])) throw new SegtensorError('NON_FINITE', `DBSCAN: the weight of row ${i} is ${weights[i]}`);
      }
    }
  }

  /**
   * Clusters a preprocessed matrix. `weights` (optional) are per-row sample weights. The
   * backend runs the blocked index's neighbour search (`radiusNeighbours`) and eps auto's
   * distances; the grid runs on the host.
   */
  async fit(be: Backend, x: Matrix, weights: Float32Array | null = null): Promise<DBSCANResult> {
    this.validate(x, weights);
    const o = this.options;
    const n = x.nRows;
    const d = x.nFeatures;
    const kind: DbscanIndex = o.index === 'auto' ? (d <= o.gridMaxFeatures ? 'grid' : 'blocked') : o.index;
    const t0 = performance.now();
    let auto: EpsAuto | null = null;
    let radius: RadiusIndex | null = null;
    try {
      if (o.eps === 'auto') {
        const kd = new BlockedIndex(be, x, o.blockBytes);
        try {
          auto = await epsAutoOn(kd, x, o.minSamples, o.autoSample, o.seed);
        } finally {
          kd.release();
        }
      }
      const eps = auto ? auto.eps : (o.eps as number);
      const t1 = performance.now();
      const index: NeighbourIndex = kind === 'grid' ? new GridIndex(x, eps) : (radius = new RadiusIndex(be, x, weights, eps, o.blockBytes, o.projectionWindow));
      const minSamples = o.minSamples;

      // Components of the core graph. Union by lower index, so each root is its component's
      // lowest row whatever the order of the unions.
      const parent = new Int32Array(n).map((_, i) => i);
      const find = (a: number): number => {
        while (parent[a] !== a) {
          parent[a] = parent[parent[a]];
          a = parent[a];
        }
        return a;
      };
      const join = (i: number, j: number): void => {
        const a = find(i);
        const b = find(j);
        if (a < b) parent[b] = a;
        else if (b < a) parent[a] = b;
      };
      const kept = new NeighbourLists(n, Math.floor(o.neighbourBytes / 4));
      let core: Uint8Array;
      let pairs: number;
      let passes: number;
      let search: NeighbourIndex;
      if (radius && kept.accepting) {
        // Blocked, with room for lists: one sweep counts, joins the core rows and keeps the
        // non-core rows' lists, all that pass 3 needs (RadiusIndex.sweep).
        const swept = await radius.sweep(minSamples, kept, join);
        ({ core, pairs } = swept);
        passes = swept.keptAll ? 1 : 2;
        search = swept.keptAll ? kept : radius;
      } else {
        // Pass 1: weighted neighbour counts (float64, as scikit-learn sums sample_weight), keeping the lists while they fit.
        const counted = radius ? await radius.countAll() : await countByLists(index, n, weights, kept);
        pairs = counted.pairs;
        core = new Uint8Array(n);
        for (let i = 0; i < n; i++) if (counted.wsum[i] >= minSamples) core[i] = 1;
        search = kept.complete ? kept : index;
        passes = kept.complete ? 1 : 3;
        // Pass 2: the core rows' components.
        await search.each(core, (i, nb, len) => {
          for (let p = 0; p < len; p++) {
            const j = nb[p];
            if (core[j] && j !== i) join(i, j);
          }
        });
      }
      let nCore = 0;
      for (let i = 0; i < n; i++) nCore += core[i];
      // scikit-learn's outer loop starts a cluster at the lowest unlabelled core row: components by their lowest row.
      const labels = new Int32Array(n).fill(-1);
      let nClusters = 0;
      for (let i = 0; i < n; i++) {
        if (!core[i]) continue;
        const r = find(i);
        labels[i] = r === i ? nClusters++ : labels[r];
      }

      // Pass 3: border rows take the first cluster that reaches them, the lowest-numbered among their core neighbours.
      const nonCore = new Uint8Array(n);
      for (let i = 0; i < n; i++) nonCore[i] = core[i] ? 0 : 1;
      if (nCore > 0 && nCore < n) {
        await search.each(nonCore, (i, nb, len) => {
          let best = -1;
          for (let p = 0; p < len; p++) {
            const j = nb[p];
            if (core[j] && (best < 0 || labels[j] < best)) best = labels[j];
          }
          labels[i] = best;
        });
      }
      let nNoise = 0;
      for (let i = 0; i < n; i++) if (labels[i] < 0) nNoise++;

      const corePoints = new Float32Array(nCore * d);
      const coreLabels = new Int32Array(nCore);
      for (let i = 0, c = 0; i < n; i++) {
        if (!core[i]) continue;
        corePoints.set(x.data.subarray(i * d, (i + 1) * d), c * d);
        coreLabels[c++] = labels[i];
      }
      const t3 = performance.now();
      return {
        labels,
        core,
        nClusters,
        nNoise,
        eps,
        minSamples,
        nFeatures: d,
        corePoints,
        coreLabels,
        index: kind,
        epsAuto: auto,
        ms: { eps: t1 - t0, cluster: t3 - t1 },
        stats: {
          passes,
          neighbourPairs: pairs,
          keptNeighbours: passes === 1,
          rechecked: radius?.rechecked ?? 0,
          blockRows: radius?.blockRows ?? 0,
          candidatePairs: radius?.candidatePairs ?? 0,
          nonEmptyCells: index instanceof GridIndex ? index.nCells : 0,
        },
      };
    } finally {
      radius?.release();
    }
  }
}

function checkEps(eps: unknown): void {
  if (eps === 'auto') return;
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
    throw new SegtensorError('BAD_OPTION', `--eps must be a number > 0 or auto; got ${String(eps)}`);
  }
}

function checkMinSamples(m: unknown): void {
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 1) {
    throw new SegtensorError('BAD_OPTION', `--min-samples must be an integer >= 1; got ${String(m)}`);
  }
}

function checkMatrix(owner: string, x: Matrix): void {
  if (!(x.data instanceof Float32Array)) {
    throw new TypeError(`${owner}: the matrix data must be a Float32Array; got ${Object.prototype.toString.call(x.data)}`);
  }
  if (x.data.length !== x.nRows * x.nFeatures) {
    throw new TypeError(`${owner}: data holds ${x.data.length} values, not nRows × nFeatures = ${x.nRows * x.nFeatures}`);
  }
  if (x.nRows < 1) throw new SegtensorError('EMPTY_TABLE', `${owner}: the matrix has no rows`);
  if (x.nFeatures < 1) throw new SegtensorError('BAD_INPUT', `${owner}: the matrix has no features`);
  const data = x.data;
  for (let p = 0; p < data.length; p++) {
    if (!Number.isFinite(data[p])) {
      throw new SegtensorError('NON_FINITE', `${owner}: row ${Math.floor(p / x.nFeatures)}, feature ${p % x.nFeatures} is ${data[p]}`);
    }
  }
}

/**
 * Σ_f (a_f − b_f)² in float64, feature order: scikit-learn's KD-tree `rdist`, so the comparison
 * with eps·eps agrees bit for bit. @internal
 */
function sqDist(a: Float32Array, ia: number, b: Float32Array, ib: number, d: number): number {
  let s = 0;
  for (let f = 0; f < d; f++) {
    const t = a[ia + f] - b[ib + f];
    s += t * t;
  }
  return s;
}

/**
 * A neighbour search. `each` calls `visit(i, nb, len)` once for every row i with mask[i] ≠ 0
 * (every row when mask is null), nb[0..len) holding the rows j with ‖xᵢ − xⱼ‖ ≤ eps, i itself
 * included, in no set order (nothing downstream depends on it). `nb` is reused between calls.
 * @internal
 */
interface NeighbourIndex {
  each(mask: Uint8Array | null, visit: (i: number, nb: Int32Array, len: number) => void): Promise<void>;
}

/**
 * Neighbour lists kept between passes (the grid's pass 1: every row's; the blocked sweep: the
 * non-core rows'), while they fit in `cap` entries, in chunks of 2^20 entries
 * (a list never straddles two; a longer one gets a chunk of its own) so that growing never
 * copies. @internal
 */
class NeighbourLists implements NeighbourIndex {
  private static readonly CHUNK = 1 << 20;
  private chunks: Int32Array[] = [];
  private chunkOf: Int32Array;
  private start: Int32Array;
  private len: Int32Array;
  /** Entries used in the last chunk, and in all chunks (the budget counts allocated chunks). */
  private fill = 0;
  private allocated = 0;
  private ok: boolean;
  private seen = 0;

  constructor(
    private readonly n: number,
    private readonly cap: number,
  ) {
    this.ok = cap > 0;
    this.chunkOf = new Int32Array(this.ok ? n : 0);
    this.start = new Int32Array(this.ok ? n : 0);
    this.len = new Int32Array(this.ok ? n : 0);
  }

  get complete(): boolean {
    return this.ok && this.seen === this.n;
  }

  /** Whether lists are still taken (false once over budget, or with no budget). */
  get accepting(): boolean {
    return this.ok;
  }

  /** Rows whose lists were added (all are dropped once over budget). */
  get rows(): number {
    return this.ok ? this.seen : 0;
  }

  add(i: number, nb: Int32Array, len: number): void {
    if (!this.ok) return;
    this.seen++;
    let last = this.chunks[this.chunks.length - 1];
    if (!last || this.fill + len > last.length) {
      const size = Math.max(len, Math.min(NeighbourLists.CHUNK, this.cap));
      if (this.allocated + size > this.cap) {
        // Over budget: drop everything, the later passes search again.
        this.ok = false;
        this.chunks = [];
        this.chunkOf = this.start = this.len = new Int32Array(0);
        return;
      }
      last = new Int32Array(size);
      this.chunks.push(last);
      this.allocated += size;
      this.fill = 0;
    }
    last.set(len === nb.length ? nb : nb.subarray(0, len), this.fill);
    this.chunkOf[i] = this.chunks.length - 1;
    this.start[i] = this.fill;
    this.len[i] = len;
    this.fill += len;
  }

  async each(mask: Uint8Array | null, visit: (i: number, nb: Int32Array, len: number) => void): Promise<void> {
    for (let i = 0; i < this.n; i++) {
      if (mask && !mask[i]) continue;
      const s = this.start[i];
      visit(i, this.chunks[this.chunkOf[i]].subarray(s, s + this.len[i]), this.len[i]);
    }
  }
}

/**
 * Uniform grid, cells of side ≥ eps keyed by their integer coordinates through an
 * open-addressing hash table. @internal
 */
class GridIndex implements NeighbourIndex {
  readonly nCells: number;
  private readonly d: number;
  private readonly eps2: number;
  /** The rows in cell order, float32, and the row each position holds. */
  private readonly pts: Float32Array;
  private readonly order: Int32Array;
  /** Positions [cellStart[c], cellStart[c + 1]) hold cell c's rows, ascending. */
  private readonly cellStart: Int32Array;
  private readonly cellCoords: Int32Array;
  private readonly table: Int32Array;
  private readonly lo: Float64Array;
  private readonly side: number;
  private readonly maxCoord: Int32Array;
  private readonly nb: Int32Array;
  private readonly off: Int32Array;
  private readonly key: Int32Array;
  /** Per feature: how far a computed cell face may lie from the one floor() used. */
  private readonly margin: Float64Array;

  constructor(x: Matrix, eps: number) {
    const n = x.nRows;
    const d = (this.d = x.nFeatures);
    const data = x.data;
    this.eps2 = eps * eps;
    const lo = (this.lo = new Float64Array(d).fill(Infinity));
    const hi = new Float64Array(d).fill(-Infinity);
    for (let i = 0; i < n; i++) {
      for (let f = 0; f < d; f++) {
        const v = data[i * d + f];
        if (v < lo[f]) lo[f] = v;
        if (v > hi[f]) hi[f] = v;
      }
    }
    // Rows within eps must land in adjacent cells despite the rounding of (v − lo)/side: a side
    // 1e-6 above eps absorbs it while coordinates stay below 2^30 (relative error 2^-52 per
    // operation), and a wider side where the extent needs more keeps them there.
    let extent = 0;
    for (let f = 0; f < d; f++) extent = Math.max(extent, hi[f] - lo[f]);
    const side = (this.side = Math.max(eps * (1 + 1e-6), extent / 2 ** 30));
    this.margin = Float64Array.from(lo, (l, f) => 1e-6 * side + 2 ** -50 * (Math.abs(l) + Math.abs(hi[f])));
    const coords = new Int32Array(n * d);
    this.maxCoord = new Int32Array(d);
    for (let i = 0; i < n; i++) {
      for (let f = 0; f < d; f++) {
        const c = Math.floor((data[i * d + f] - lo[f]) / side);
        coords[i * d + f] = c;
        if (c > this.maxCoord[f]) this.maxCoord[f] = c;
      }
    }
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    let table = new Int32Array(cap).fill(-1);
    const cellOf = new Int32Array(n);
    const reps: number[] = [];
    for (let i = 0; i < n; i++) {
      let h = hashCoords(coords, i * d, d) & (cap - 1);
      for (;;) {
        const c = table[h];
        if (c < 0) {
          table[h] = reps.length;
          cellOf[i] = reps.length;
          reps.push(i);
          break;
        }
        if (sameCoords(coords, reps[c] * d, coords, i * d, d)) {
          cellOf[i] = c;
          break;
        }
        h = (h + 1) & (cap - 1);
      }
    }
    const nCells = (this.nCells = reps.length);
    this.cellCoords = new Int32Array(nCells * d);
    reps.forEach((i, c) => this.cellCoords.set(coords.subarray(i * d, (i + 1) * d), c * d));
    // The searches probe the table 3^d times per cell, mostly for empty cells: a table sized to
    // the cells (load ≤ 1/4) stays in cache where one sized to the rows may not.
    let small = 16;
    while (small < 4 * nCells) small *= 2;
    if (small < cap) {
      table = new Int32Array(small).fill(-1);
      for (let c = 0; c < nCells; c++) {
        let h = hashCoords(this.cellCoords, c * d, d) & (small - 1);
        while (table[h] >= 0) h = (h + 1) & (small - 1);
        table[h] = c;
      }
    }
    this.table = table;
    // Counting sort of the rows by cell, stable, so each cell lists its rows ascending.
    const cellStart = (this.cellStart = new Int32Array(nCells + 1));
    for (let i = 0; i < n; i++) cellStart[cellOf[i] + 1]++;
    for (let c = 0; c < nCells; c++) cellStart[c + 1] += cellStart[c];
    const fill = cellStart.slice(0, nCells);
    const order = (this.order = new Int32Array(n));
    const pts = (this.pts = new Float32Array(n * d));
    for (let i = 0; i < n; i++) {
      const p = fill[cellOf[i]]++;
      order[p] = i;
      pts.set(data.subarray(i * d, (i + 1) * d), p * d);
    }
    this.nb = new Int32Array(n);
    this.off = new Int32Array(d);
    this.key = new Int32Array(d);
  }

  /** The cell with coordinates `key`, or −1. */
  lookup(key: Int32Array): number {
    const d = this.d;
    const cap = this.table.length;
    for (let f = 0; f < d; f++) if (key[f] < 0 || key[f] > this.maxCoord[f]) return -1;
    let h = hashCoords(key, 0, d) & (cap - 1);
    for (;;) {
      const c = this.table[h];
      if (c < 0) return -1;
      if (sameCoords(this.cellCoords, c * d, key, 0, d)) return c;
      h = (h + 1) & (cap - 1);
    }
  }

  /** The non-empty cells among the 3^d around the cell with coordinates `base` (itself included). */
  around(base: ArrayLike<number>, out: Int32Array): number {
    const d = this.d;
    let m = 0;
    // In many dimensions the 3^d candidate cells outnumber the non-empty ones: test those instead.
    if (3 ** d > this.nCells * d) {
      const cc = this.cellCoords;
      for (let c = 0; c < this.nCells; c++) {
        let f = 0;
        while (f < d && Math.abs(cc[c * d + f] - base[f]) <= 1) f++;
        if (f === d) out[m++] = c;
      }
      return m;
    }
    const off = this.off.fill(-1);
    const key = this.key;
    for (;;) {
      for (let f = 0; f < d; f++) key[f] = base[f] + off[f];
      const c = this.lookup(key);
      if (c >= 0) out[m++] = c;
      let f = 0;
      while (f < d && off[f] === 1) off[f++] = -1;
      if (f === d) return m;
      off[f]++;
    }
  }

  async each(mask: Uint8Array | null, visit: (i: number, nb: Int32Array, len: number) => void): Promise<void> {
    const d = this.d;
    const { pts, order, cellStart, cellCoords, eps2, nb, lo, side, margin } = this;
    const cells = new Int32Array(Math.min(3 ** d, this.nCells));
    // Per row: its distance to the lower and upper faces of its cell, less the rounding margin.
    const gapLo = new Float64Array(d);
    const gapHi = new Float64Array(d);
    for (let c = 0; c < this.nCells; c++) {
      const c0 = cellStart[c];
      const c1 = cellStart[c + 1];
      if (mask) {
        let any = false;
        for (let p = c0; p < c1 && !any; p++) any = mask[order[p]] !== 0;
        if (!any) continue;
      }
      const m = this.around(cellCoords.subarray(c * d, (c + 1) * d), cells);
      for (let p = c0; p < c1; p++) {
        const i = order[p];
        if (mask && !mask[i]) continue;
        for (let f = 0; f < d; f++) {
          const face = lo[f] + cellCoords[c * d + f] * side;
          gapLo[f] = Math.max(0, pts[p * d + f] - face - margin[f]);
          gapHi[f] = Math.max(0, face + side - pts[p * d + f] - margin[f]);
        }
        let len = 0;
        for (let t = 0; t < m; t++) {
          const e = cells[t];
          // Skip a neighbouring cell whose box lies farther than eps from the row (a corner cell usually does).
          let bound = 0;
          for (let f = 0; f < d; f++) {
            const o = cellCoords[e * d + f] - cellCoords[c * d + f];
            if (o !== 0) {
              const g = o > 0 ? gapHi[f] : gapLo[f];
              bound += g * g;
            }
          }
          if (bound > eps2) continue;
          for (let q = cellStart[e]; q < cellStart[e + 1]; q++) {
            if (sqDist(pts, p * d, pts, q * d, d) <= eps2) nb[len++] = order[q];
          }
        }
        visit(i, nb, len);
      }
    }
  }

  /** Cell coordinates of a point (any row of any matrix with this grid's features). */
  cellOfPoint(data: Float32Array, at: number, key: Float64Array): void {
    for (let f = 0; f < this.d; f++) key[f] = Math.floor((data[at + f] - this.lo[f]) / this.side);
  }

  /** The point at position p of the cell order is row order[p]; its coordinates. @internal */
  points(): { pts: Float32Array; order: Int32Array; cellStart: Int32Array } {
    return { pts: this.pts, order: this.order, cellStart: this.cellStart };
  }
}

function hashCoords(a: Int32Array, at: number, d: number): number {
  let h = 0x811c9dc5;
  for (let f = 0; f < d; f++) {
    h = Math.imul(h ^ a[at + f], 0x01000193);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
  return (h ^ (h >>> 16)) >>> 0;
}

function sameCoords(a: Int32Array, ia: number, b: Int32Array, ib: number, d: number): boolean {
  for (let f = 0; f < d; f++) if (a[ia + f] !== b[ib + f]) return false;
  return true;
}

/**
 * Pass 1 of an index that only lists: every row's weighted neighbour count (float64, in list
 * order) and the pair count, each list offered to `kept`. @internal
 */
async function countByLists(index: NeighbourIndex, n: number, weights: Float32Array | null, kept: NeighbourLists): Promise<{ wsum: Float64Array; pairs: number }> {
  const wsum = new Float64Array(n);
  let pairs = 0;
  await index.each(null, (i, nb, len) => {
    pairs += len;
    if (weights) {
      let s = 0;
      for (let p = 0; p < len; p++) s += weights[nb[p]];
      wsum[i] = s;
    } else wsum[i] = len;
    kept.add(i, nb, len);
  });
  return { wsum, pairs };
}

/**
 * The blocked index: ranges of up to `blockRows` rows at a time through the backend's
 * `radiusNeighbours` op (float64 decisions at eps, see the module comment), with their weights.
 *
 * With `window`, the rows are uploaded sorted for a two-dimensional window: by slab of width
 * w = eps + 2·margin along the data's first principal direction u₁, then along the second, u₂
 * (both by power iteration on the covariance of a sample; any orthonormal pair would be correct,
 * these prune most). A neighbour is at most eps away along each (|u·(x − y)| ≤ ‖x − y‖), so it
 * lies in the same slab or an adjacent one, within eps along u₂: a range of queries (never
 * crossing a slab) is given, in each of the up to three slabs, only the contiguous run of rows
 * whose u₂ projections lie within eps (plus the rounding margin) of its own. The same
 * neighbourhoods; on the 1,000,000 × 16 blobs of the benchmark, 9 % of the pairs instead of all
 * (29 % with one direction). Lists come back as sorted positions and are translated to row
 * numbers; ranges, masks and `visit` keep speaking row numbers. Memory: a float32 copy of the
 * matrix in sorted order (4·n·d bytes) and about 24 bytes a row. @internal
 */
class RadiusIndex implements NeighbourIndex {
  readonly blockRows: number;
  rechecked = 0;
  /** Query × candidate pairs given to the backend. */
  candidatePairs = 0;
  private readonly dx: DeviceMatrix;
  /** The window's tables, or null (every row is a candidate; positions are rows). */
  private readonly win: {
    /** Row at each sorted position, and each row's position. */
    rowAt: Int32Array;
    posOf: Int32Array;
    /** u₂ projection at each sorted position (ascending within a slab). */
    p2: Float64Array;
    /** Slab ordinal at each position; each ordinal's slab number and first position (plus the end). */
    slabOf: Int32Array;
    slabKey: Float64Array;
    slabStart: Int32Array;
    margin: number;
  } | null;

  constructor(
    private readonly be: Backend,
    private readonly x: Matrix,
    weights: Float32Array | null,
    private readonly eps: number,
    blockBytes: number,
    window: boolean,
  ) {
    const n = x.nRows;
    const d = x.nFeatures;
    // A range's lists hold at most blockRows × nRows pairs of 4 bytes: within blockBytes.
    this.blockRows = Math.max(1, Math.min(n, 4096, Math.floor(blockBytes / (4 * n))));
    if (!window || n <= this.blockRows || d < 2) {
      this.win = null;
      this.dx = be.upload(x, weights);
      return;
    }
    const [p1, p2] = principalProjections(x, 2);
    let maxAbs = 0;
    for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(p1[i]), Math.abs(p2[i]));
    // The float64 projections are off by far less than this; eps itself by its float64 square's
    // rounding (a pair at S64 ≤ eps² is within eps·(1 + d·2⁻⁵³) exactly).
    const margin = 1e-9 * (eps + maxAbs) + 1e-300;
    const width = eps + 2 * margin;
    const slab = new Float64Array(n);
    for (let i = 0; i < n; i++) slab[i] = eps > 0 ? Math.floor(p1[i] / width) : p1[i];
    const rowAt = new Int32Array(n);
    for (let i = 0; i < n; i++) rowAt[i] = i;
    rowAt.sort((a, b) => slab[a] - slab[b] || p2[a] - p2[b] || a - b);
    const posOf = new Int32Array(n);
    const sp2 = new Float64Array(n);
    const slabOf = new Int32Array(n);
    const keys: number[] = [];
    const starts: number[] = [];
    const data = new Float32Array(n * d);
    const w = weights ? new Float32Array(n) : null;
    for (let p = 0; p < n; p++) {
      const i = rowAt[p];
      posOf[i] = p;
      sp2[p] = p2[i];
      if (p === 0 || slab[i] !== keys[keys.length - 1]) {
        keys.push(slab[i]);
        starts.push(p);
      }
      slabOf[p] = keys.length - 1;
      data.set(x.data.subarray(i * d, (i + 1) * d), p * d);
      if (w) w[p] = weights![i];
    }
    starts.push(n);
    this.win = { rowAt, posOf, p2: sp2, slabOf, slabKey: Float64Array.from(keys), slabStart: Int32Array.from(starts), margin };
    this.dx = be.upload({ data, nRows: n, nFeatures: d }, w);
  }

  release(): void {
    this.be.release(this.dx);
  }

  /** The end of the range of queries starting at sorted position a: blockRows, not crossing a slab. */
  private rangeEnd(a: number): number {
    const e = Math.min(this.x.nRows, a + this.blockRows);
    return this.win ? Math.min(e, this.win.slabStart[this.win.slabOf[a] + 1]) : e;
  }

  /** Sorted positions [a, e)'s neighbours (within one slab); lists translated to row numbers. */
  private async query(a: number, e: number, mode: 'count' | 'list'): Promise<RadiusNeighbours> {
    const win = this.win;
    if (!win) {
      this.candidatePairs += (e - a) * this.x.nRows;
      const r = await radiusNeighbours(this.be, this.dx, { start: a, end: e }, this.eps, mode);
      this.rechecked += r.rechecked;
      return r;
    }
    const o = win.slabOf[a];
    const lo2 = win.p2[a] - this.eps - win.margin;
    const hi2 = win.p2[e - 1] + this.eps + win.margin;
    const parts: RadiusNeighbours[] = [];
    for (let t = Math.max(0, o - 1); t <= Math.min(win.slabKey.length - 1, o + 1); t++) {
      if (Math.abs(win.slabKey[t] - win.slabKey[o]) > 1) continue;
      const c0 = lowerBound(win.p2, lo2, win.slabStart[t], win.slabStart[t + 1]);
      const c1 = upperBound(win.p2, hi2, c0, win.slabStart[t + 1]);
      if (c0 === c1) continue;
      this.candidatePairs += (e - a) * (c1 - c0);
      const r = await radiusNeighbours(this.be, this.dx, { start: a, end: e }, this.eps, mode, { start: c0, end: c1 });
      this.rechecked += r.rechecked;
      parts.push(r);
    }
    const merged = mergeNeighbours(parts, e - a, mode);
    if (merged.indices) {
      const idx = merged.indices;
      for (let p = 0; p < idx.length; p++) idx[p] = win.rowAt[idx[p]];
    }
    return merged;
  }

  /** The row at sorted position p. */
  private row(p: number): number {
    return this.win ? this.win.rowAt[p] : p;
  }

  /**
   * Passes 1 and 2 in one sweep, in ranges of sorted positions: the backend's weighted counts
   * make each row of a range core or not as soon as the range comes back; a core row is joined
   * to its core neighbours among the rows classified so far (this range and the earlier ones),
   * since the neighbour relation is symmetric (the same float64 sum either way) and a pair with
   * a later row is joined from that row. The non-core rows' lists go to `kept`: pass 3 needs
   * nothing else, and unweighted they are short (fewer than minSamples entries each).
   */
  async sweep(minSamples: number, kept: NeighbourLists, join: (i: number, j: number) => void): Promise<{ core: Uint8Array; pairs: number; keptAll: boolean }> {
    const n = this.x.nRows;
    const core = new Uint8Array(n);
    const posOf = this.win?.posOf ?? null;
    let pairs = 0;
    let nonCore = 0;
    for (let a = 0; a < n; ) {
      const e = this.rangeEnd(a);
      const r = await this.query(a, e, 'list');
      const off = r.offsets!;
      const idx = r.indices!;
      pairs += off[e - a];
      for (let p = a; p < e; p++) if (r.counts[p - a] >= minSamples) core[this.row(p)] = 1;
      for (let p = a; p < e; p++) {
        const i = this.row(p);
        const o0 = off[p - a];
        const o1 = off[p - a + 1];
        if (core[i]) {
          for (let q = o0; q < o1; q++) {
            const j = idx[q];
            if ((posOf ? posOf[j] : j) < e && j !== i && core[j]) join(i, j);
          }
        } else {
          nonCore++;
          kept.add(i, idx.subarray(o0, o1), o1 - o0);
        }
      }
      a = e;
    }
    return { core, pairs, keptAll: kept.accepting && kept.rows === nonCore };
  }

  /**
   * Pass 1 without room for lists: the weighted counts of every row; unweighted they are the
   * pair counts and only counts are asked for; weighted rows still need their lists for the
   * pair count.
   */
  async countAll(): Promise<{ wsum: Float64Array; pairs: number }> {
    const n = this.x.nRows;
    const wsum = new Float64Array(n);
    const lists = this.dx.weights !== null;
    let pairs = 0;
    for (let a = 0; a < n; ) {
      const e = this.rangeEnd(a);
      const r = await this.query(a, e, lists ? 'list' : 'count');
      for (let p = a; p < e; p++) wsum[this.row(p)] = r.counts[p - a];
      if (lists) pairs += r.offsets![e - a];
      else for (let q = 0; q < e - a; q++) pairs += r.counts[q];
      a = e;
    }
    return { wsum, pairs };
  }

  async each(mask: Uint8Array | null, visit: (i: number, nb: Int32Array, len: number) => void): Promise<void> {
    const n = this.x.nRows;
    for (let s = 0; s < n; ) {
      // The range's masked rows, trimmed to the first and last of them (none: skipped).
      let a = s;
      let e = this.rangeEnd(s);
      s = e;
      if (mask) {
        while (a < e && !mask[this.row(a)]) a++;
        while (e > a && !mask[this.row(e - 1)]) e--;
        if (a === e) continue;
      }
      const r = await this.query(a, e, 'list');
      const off = r.offsets!;
      const idx = r.indices!;
      for (let p = a; p < e; p++) {
        const i = this.row(p);
        if (mask && !mask[i]) continue;
        const o = off[p - a];
        visit(i, idx.subarray(o, off[p - a + 1]), off[p - a + 1] - o);
      }
    }
  }
}

/**
 * One query range's results over several candidate ranges: counts added, each query's lists
 * concatenated in the parts' order, rechecks added.
 */
function mergeNeighbours(parts: RadiusNeighbours[], nq: number, mode: 'count' | 'list'): RadiusNeighbours {
  if (parts.length === 1) return parts[0];
  const counts = new Float64Array(nq);
  let rechecked = 0;
  for (const r of parts) {
    for (let q = 0; q < nq; q++) counts[q] += r.counts[q];
    rechecked += r.rechecked;
  }
  if (mode === 'count') return { counts, offsets: null, indices: null, rechecked };
  const offsets = new Int32Array(nq + 1);
  for (let q = 0; q < nq; q++) {
    let len = 0;
    for (const r of parts) len += r.offsets![q + 1] - r.offsets![q];
    offsets[q + 1] = offsets[q] + len;
  }
  const indices = new Int32Array(offsets[nq]);
  for (let q = 0; q < nq; q++) {
    let at = offsets[q];
    for (const r of parts) {
      const o = r.offsets!;
      indices.set(r.indices!.subarray(o[q], o[q + 1]), at);
      at += o[q + 1] - o[q];
    }
  }
  return { counts, offsets, indices, rechecked };
}

/**
 * Each row's projections on the first `m` principal directions of x (centred), float64: the
 * directions by power iteration with deflation on the covariance of a sample of at most 20,000
 * rows (every ⌈n / 20,000⌉-th), 50 steps each from fixed starts, so the result is deterministic.
 * Any orthonormal directions would do for the window; these prune most.
 */
function principalProjections(x: Matrix, m: number): Float64Array[] {
  const n = x.nRows;
  const d = x.nFeatures;
  const data = x.data;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) mean[f] += data[i * d + f];
  for (let f = 0; f < d; f++) mean[f] /= n;
  const stride = Math.max(1, Math.ceil(n / 20_000));
  const cov = new Float64Array(d * d);
  const t = new Float64Array(d);
  for (let i = 0; i < n; i += stride) {
    for (let f = 0; f < d; f++) t[f] = data[i * d + f] - mean[f];
    for (let f = 0; f < d; f++) {
      const tf = t[f];
      for (let g = f; g < d; g++) cov[f * d + g] += tf * t[g];
    }
  }
  for (let f = 0; f < d; f++) for (let g = 0; g < f; g++) cov[f * d + g] = cov[g * d + f];
  const dirs: Float64Array[] = [];
  const orthonormal = (v: Float64Array): boolean => {
    for (const p of dirs) {
      let dot = 0;
      for (let f = 0; f < d; f++) dot += v[f] * p[f];
      for (let f = 0; f < d; f++) v[f] -= dot * p[f];
    }
    let norm = 0;
    for (let f = 0; f < d; f++) norm += v[f] * v[f];
    norm = Math.sqrt(norm);
    if (!(norm > 0)) return false;
    for (let f = 0; f < d; f++) v[f] /= norm;
    return true;
  };
  for (let k = 0; k < m; k++) {
    // A start with a component along every axis, different for each direction.
    let u = new Float64Array(d).map((_, f) => 1 + ((f + k) % d) / d);
    if (!orthonormal(u)) u = Float64Array.from({ length: d }, (_, f) => (f === k % d ? 1 : 0));
    orthonormal(u);
    for (let it = 0; it < 50; it++) {
      const v = new Float64Array(d);
      for (let f = 0; f < d; f++) {
        let acc = 0;
        for (let g = 0; g < d; g++) acc += cov[f * d + g] * u[g];
        v[f] = acc;
      }
      if (!orthonormal(v)) break; // no variance left here: keep u (still orthonormal)
      u = v;
    }
    dirs.push(u);
  }
  return dirs.map((u) => {
    const proj = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let f = 0; f < d; f++) s += u[f] * (data[i * d + f] - mean[f]);
      proj[i] = s;
    }
    return proj;
  });
}

/** First index in [from, to) with a[i] > v (a ascending there), else to. */
function upperBound(a: Float64Array, v: number, from = 0, to = a.length): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Rows against blocks of center rows through the backend's `distances`, on the centred data:
 * eps auto's k-distances. @internal
 */
class BlockedIndex {
  readonly blockRows: number;
  private dx: DeviceMatrix | null = null;
  private readonly xc: Float32Array;
  private readonly scratch: Float32Array;

  constructor(
    private readonly be: Backend,
    private readonly x: Matrix,
    blockBytes: number,
  ) {
    const n = x.nRows;
    const d = x.nFeatures;
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) mean[f] += x.data[i * d + f];
    for (let f = 0; f < d; f++) mean[f] /= n;
    // Centred, so an expansion ‖r‖² − 2r·c + ‖c‖² (tfjs) loses less to cancellation when it ranks rows.
    const xc = (this.xc = new Float32Array(n * d));
    for (let p = 0; p < n * d; p++) xc[p] = x.data[p] - mean[p % d];
    this.blockRows = Math.max(1, Math.min(n, 4096, Math.floor(blockBytes / (4 * n))));
    this.scratch = new Float32Array(n * this.blockRows);
  }

  release(): void {
    if (this.dx) this.be.release(this.dx);
    this.dx = null;
  }

  /**
   * The k-th smallest distance from each of `rows` to all rows (the row itself among them),
   * float64: the k nearest by the float32 distances (ties to the lower row), then their exact
   * distances. k ≤ nRows.
   *
   * On tables of more than 8 blocks the search is windowed along the first principal direction
   * u: queries are taken in order of their projection, in blocks; a pilot pass over the rows
   * nearest in that order gives each block an upper bound R on its queries' k-th float32
   * distance, and only rows whose projections lie within √(R + slack) of the block's can be
   * among a query's k nearest (|u·(x − y)| ≤ ‖x − y‖; the slack covers the float32 rounding of
   * either distance form): the block is compared with those rows alone. The same result as
   * comparing every row.
   */
  async kDistances(rows: Int32Array, k: number): Promise<Float64Array> {
    const n = this.x.nRows;
    const d = this.x.nFeatures;
    const out = new Float64Array(rows.length);
    if (n <= 8 * this.blockRows) {
      const dx = (this.dx ??= this.be.upload({ data: this.xc, nRows: n, nFeatures: d }));
      for (let b0 = 0; b0 < rows.length; b0 += this.blockRows) {
        const block = rows.subarray(b0, Math.min(rows.length, b0 + this.blockRows));
        const top = await this.nearest(dx, this.xc, block, null, 0, k);
        this.finish(block, top, k, out, b0);
      }
      return out;
    }
    // Rows sorted by projection (ties by row), centred, in that order; queries likewise.
    const [proj] = principalProjections(this.x, 1);
    const rowAt = new Int32Array(n).map((_, i) => i).sort((a, b) => proj[a] - proj[b] || a - b);
    const posOf = new Int32Array(n);
    const sorted = new Float64Array(n);
    const xs = new Float32Array(n * d);
    let maxNorm2 = 0;
    let maxAbs = 0;
    for (let p = 0; p < n; p++) {
      const i = rowAt[p];
      posOf[i] = p;
      sorted[p] = proj[i];
      xs.set(this.xc.subarray(i * d, (i + 1) * d), p * d);
      let s2 = 0;
      for (let f = 0; f < d; f++) s2 += this.xc[i * d + f] ** 2;
      maxNorm2 = Math.max(maxNorm2, s2);
      maxAbs = Math.max(maxAbs, Math.abs(proj[i]));
    }
    // float32 squared distances, direct or expanded, are within this of the exact ones; the
    // projections within the margin.
    const slack = 8 * (d + 4) * 2 ** -24 * 2 * maxNorm2;
    const margin = 1e-9 * maxAbs + 1e-300;
    const order = Array.from(rows.keys()).sort((a, b) => posOf[rows[a]] - posOf[rows[b]]);
    const pilotHalf = Math.max(2 * k, 64);
    for (let b0 = 0; b0 < order.length; b0 += this.blockRows) {
      const idx = order.slice(b0, b0 + this.blockRows);
      const block = Int32Array.from(idx, (q) => rows[q]);
      const first = posOf[block[0]];
      const last = posOf[block[block.length - 1]];
      // Pilot: the rows nearest in projection order bound each query's k-th float32 distance.
      const pa = Math.max(0, Math.min(first - pilotHalf, n - 2 * pilotHalf));
      const pb = Math.min(n, Math.max(last + pilotHalf + 1, pa + 2 * pilotHalf));
      const pilot = await this.nearestIn(xs, rowAt, pa, pb, block, k);
      let bound = 0;
      for (let c = 0; c < block.length; c++) bound = Math.max(bound, pilot.topV[c * k + k - 1]);
      const r = Math.sqrt(bound + slack) + margin;
      const wa = lowerBound(sorted, sorted[first] - r);
      const wb = upperBound(sorted, sorted[last] + r);
      // The pilot already saw every row the window holds: its answer stands.
      const top = wa >= pa && wb <= pb ? pilot : await this.nearestIn(xs, rowAt, wa, wb, block, k);
      const part = new Float64Array(block.length);
      this.finish(block, top, k, part, 0);
      for (let c = 0; c < idx.length; c++) out[idx[c]] = part[c];
    }
    return out;
  }

  /** nearest() over sorted positions [a, b) of xs, uploaded for the call (rowAt: their rows). */
  private async nearestIn(xs: Float32Array, rowAt: Int32Array, a: number, b: number, block: Int32Array, k: number): Promise<{ topV: Float32Array; topI: Int32Array }> {
    const d = this.x.nFeatures;
    const dx = this.be.upload({ data: xs.subarray(a * d, b * d), nRows: b - a, nFeatures: d });
    try {
      return await this.nearest(dx, this.xc, block, rowAt, a, k);
    } finally {
      this.be.release(dx);
    }
  }

  /**
   * Per query of `block` (rows, centred copies from xc), its k smallest float32 squared distances
   * to the rows of dx, ascending by (value, row): dx's row r is row rowAt[a + r] (or a + r).
   */
  private async nearest(dx: DeviceMatrix, xc: Float32Array, block: Int32Array, rowAt: Int32Array | null, a: number, k: number): Promise<{ topV: Float32Array; topI: Int32Array }> {
    const d = this.x.nFeatures;
    const m = block.length;
    const rowsN = dx.nRows;
    const centers = new Float32Array(m * d);
    for (let c = 0; c < m; c++) centers.set(xc.subarray(block[c] * d, (block[c] + 1) * d), c * d);
    const d2 = await distances(this.be, dx, centers, m, this.scratch.subarray(0, rowsN * m));
    const topV = new Float32Array(m * k).fill(Infinity);
    const topI = new Int32Array(m * k).fill(2 ** 31 - 1);
    for (let r = 0, at = 0; r < rowsN; r++, at += m) {
      const row = rowAt ? rowAt[a + r] : a + r;
      for (let c = 0; c < m; c++) {
        const v = d2[at + c];
        const base = c * k;
        const wv = topV[base + k - 1];
        if (!(v < wv || (v === wv && row < topI[base + k - 1]))) continue;
        let p = k - 1;
        while (p > 0 && (topV[base + p - 1] > v || (topV[base + p - 1] === v && topI[base + p - 1] > row))) {
          topV[base + p] = topV[base + p - 1];
          topI[base + p] = topI[base + p - 1];
          p--;
        }
        topV[base + p] = v;
        topI[base + p] = row;
      }
    }
    return { topV, topI };
  }

  /** out[at + c] = the largest exact distance among query c's k nearest. */
  private finish(block: Int32Array, top: { topI: Int32Array }, k: number, out: Float64Array, at: number): void {
    const d = this.x.nFeatures;
    const data = this.x.data;
    for (let c = 0; c < block.length; c++) {
      let worst = 0;
      for (let p = 0; p < k; p++) worst = Math.max(worst, sqDist(data, block[c] * d, data, top.topI[c * k + p] * d, d));
      out[at + c] = Math.sqrt(worst);
    }
  }
}

/**
 * The knee of an ascending curve, Kneedle-like: with both axes scaled to [0, 1], the point
 * farthest below the chord from the first point to the last (the largest x − y; the first
 * such point on ties). A flat curve's knee is its last point.
 *
 * @example
 * kneeOfCurve([0, 0.1, 0.2, 0.3, 5]); // { index: 3, value: 0.3 }
 */
export function kneeOfCurve(ascending: ArrayLike<number>): { index: number; value: number } {
  const m = ascending.length;
  if (m === 0) throw new RangeError('kneeOfCurve: the curve is empty');
  const y0 = ascending[0];
  const span = ascending[m - 1] - y0;
  if (!(span > 0) || m < 3) return { index: m - 1, value: ascending[m - 1] };
  let best = 0;
  let bestGap = -Infinity;
  for (let i = 0; i < m; i++) {
    const gap = i / (m - 1) - (ascending[i] - y0) / span;
    if (gap > bestGap) (bestGap = gap), (best = i);
  }
  return { index: best, value: ascending[best] };
}

/**
 * Picks eps for DBSCAN from the knee ({@link kneeOfCurve}) of the ascending k-distance curve:
 * k = minSamples, each row's distance to its k-th nearest row counting itself (the smallest eps
 * at which it would be core, unweighted). The curve is taken for a seeded sample of at most
 * `sample` rows (default 20,000) against all rows, through the backend's `distances` in blocks
 * of at most `blockBytes` (default 64 MiB): sample × nRows × d flops plus a host scan of
 * sample × nRows values. A knee at 0 (duplicated rows) moves to the smallest positive k-distance.
 *
 * @example
 * const a = await epsAuto(be, x, 5);
 * a.eps; a.curve; // record both with the run
 */
export async function epsAuto(
  be: Backend,
  x: Matrix,
  minSamples: number,
  options: { sample?: number; seed?: number; blockBytes?: number } = {},
): Promise<EpsAuto> {
  checkMinSamples(minSamples);
  checkMatrix('epsAuto', x);
  const sample = options.sample ?? DBSCAN_DEFAULTS.autoSample;
  const seed = options.seed ?? DBSCAN_DEFAULTS.seed;
  if (!Number.isInteger(sample) || sample < 1) throw new SegtensorError('BAD_OPTION', `epsAuto: 'sample' must be an integer >= 1; got ${sample}`);
  if (!Number.isInteger(seed)) throw new SegtensorError('BAD_OPTION', `epsAuto: 'seed' must be an integer; got ${seed}`);
  const index = new BlockedIndex(be, x, options.blockBytes ?? DBSCAN_DEFAULTS.blockBytes);
  try {
    return await epsAutoOn(index, x, minSamples, sample, seed);
  } finally {
    index.release();
  }
}

async function epsAutoOn(index: BlockedIndex, x: Matrix, minSamples: number, sample: number, seed: number): Promise<EpsAuto> {
  const n = x.nRows;
  if (minSamples < 2) {
    throw new SegtensorError('BAD_OPTION', `--eps auto needs --min-samples >= 2 (every row is its own first neighbour, at distance 0); got ${minSamples}`);
  }
  if (minSamples > n) throw new SegtensorError('BAD_OPTION', `--eps auto needs --min-samples <= the number of rows (${n}); got ${minSamples}`);
  const rows = sampleRows(n, sample, seed);
  const kd = await index.kDistances(rows, minSamples);
  kd.sort();
  let knee = kneeOfCurve(kd);
  if (!(knee.value > 0)) {
    const p = kd.findIndex((v) => v > 0);
    if (p < 0) throw new SegtensorError('BAD_INPUT', `--eps auto: every sampled row has ${minSamples - 1} duplicates, so every k-distance is 0; give --eps`);
    knee = { index: p, value: kd[p] };
  }
  const m = kd.length;
  const curve = m <= 101 ? Array.from(kd) : Array.from({ length: 101 }, (_, q) => kd[Math.round((q / 100) * (m - 1))]);
  return { eps: knee.value, k: minSamples, nSample: m, seed, kneeIndex: knee.index, kneeQuantile: m > 1 ? knee.index / (m - 1) : 1, curve };
}

/** `size` distinct rows of [0, n), ascending, seeded (partial Fisher–Yates); all rows when size ≥ n. */
function sampleRows(n: number, size: number, seed: number): Int32Array {
  if (size >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const rng = new Random(seed);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < size; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.slice(0, size).sort();
}

/**
 * The part of a fit that model.json keeps (`methodState`) for {@link predictDbscan}:
 * nCore × (nFeatures + 1) numbers.
 *
 * @example
 * const state = dbscanModel(r); // JSON.stringify-able
 * predictDbscan(state, rows);
 */
export function dbscanModel(r: DBSCANResult): DbscanModelJson {
  return {
    method: 'dbscan',
    formatVersion: DBSCAN_FORMAT_VERSION,
    eps: r.eps,
    minSamples: r.minSamples,
    nFeatures: r.nFeatures,
    nClusters: r.nClusters,
    corePoints: Array.from(r.corePoints),
    coreLabels: Array.from(r.coreLabels),
  };
}

/**
 * Labels new rows: the cluster of the nearest core row within eps (distance as in the fit,
 * ties to the earliest core row), else −1. Core rows of the fit get their own cluster; a fit's
 * border row gets the cluster of its nearest core row, which may differ from the fit's (the
 * lowest-numbered cluster reaching it).
 *
 * Host only. Up to 6 features: a grid over the core rows (3^d cells per row). Beyond: the core
 * rows sorted on their widest feature, and each row compared with those within eps on it;
 * worst case nRows × nCore × d.
 *
 * @example
 * const labels = predictDbscan(dbscanModel(r), { data, nRows, nFeatures });
 */
export function predictDbscan(
  saved: Pick<DbscanModelJson, 'eps' | 'nFeatures'> & { corePoints: ArrayLike<number>; coreLabels: ArrayLike<number>; formatVersion?: number },
  x: Matrix,
): Int32Array {
  if (saved.formatVersion !== undefined && saved.formatVersion !== DBSCAN_FORMAT_VERSION) {
    throw new SegtensorError('MODEL_VERSION', `DBSCAN: the saved model has format version ${saved.formatVersion}; this segtensor reads ${DBSCAN_FORMAT_VERSION}`);
  }
  checkEps(saved.eps);
  const d = saved.nFeatures;
  if (x.nFeatures !== d) throw new SegtensorError('BAD_INPUT', `predictDbscan: the rows have ${x.nFeatures} features; the model has ${d}`);
  const nCore = saved.coreLabels.length;
  if (saved.corePoints.length !== nCore * d) {
    throw new SegtensorError('CORRUPT_FILE', `predictDbscan: ${saved.corePoints.length} core values for ${nCore} core rows × ${d} features`);
  }
  checkMatrix('predictDbscan', x);
  const out = new Int32Array(x.nRows).fill(-1);
  if (nCore === 0) return out;
  const cores = saved.corePoints instanceof Float32Array ? saved.corePoints : Float32Array.from(saved.corePoints);
  const eps2 = saved.eps * saved.eps;
  const data = x.data;
  if (d <= DBSCAN_DEFAULTS.gridMaxFeatures) {
    const grid = new GridIndex({ data: cores, nRows: nCore, nFeatures: d }, saved.eps);
    const { pts, order, cellStart } = grid.points();
    const key = new Float64Array(d);
    const cells = new Int32Array(Math.min(3 ** d, grid.nCells));
    for (let i = 0; i < x.nRows; i++) {
      grid.cellOfPoint(data, i * d, key);
      // Cells outside the grid's range (beyond one step) hold nothing, and their coordinates may not fit an int32.
      let inside = true;
      for (let f = 0; f < d && inside; f++) inside = key[f] >= -1 && key[f] <= 2 ** 30 + 1;
      if (!inside) continue;
      const m = grid.around(key, cells);
      let best = -1;
      let bestD = Infinity;
      for (let t = 0; t < m; t++) {
        const e = cells[t];
        for (let q = cellStart[e]; q < cellStart[e + 1]; q++) {
          const s = sqDist(data, i * d, pts, q * d, d);
          if (s <= eps2 && (s < bestD || (s === bestD && order[q] < best))) (bestD = s), (best = order[q]);
        }
      }
      if (best >= 0) out[i] = saved.coreLabels[best];
    }
    return out;
  }
  // The feature with the widest spread prunes best: only cores within eps on it can be within eps.
  let axis = 0;
  let widest = -1;
  for (let f = 0; f < d; f++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < nCore; c++) (lo = Math.min(lo, cores[c * d + f])), (hi = Math.max(hi, cores[c * d + f]));
    if (hi - lo > widest) (widest = hi - lo), (axis = f);
  }
  const byAxis = Int32Array.from({ length: nCore }, (_, c) => c).sort((a, b) => cores[a * d + axis] - cores[b * d + axis] || a - b);
  const keys = Float64Array.from(byAxis, (c) => cores[c * d + axis]);
  for (let i = 0; i < x.nRows; i++) {
    const v = data[i * d + axis];
    // |Δ| on one feature ≤ the distance; the slack covers the rounding of v − eps.
    let p = lowerBound(keys, v - saved.eps * (1 + 1e-9));
    let best = -1;
    let bestD = Infinity;
    for (; p < nCore && keys[p] <= v + saved.eps * (1 + 1e-9); p++) {
      const c = byAxis[p];
      const s = sqDist(data, i * d, cores, c * d, d);
      if (s <= eps2 && (s < bestD || (s === bestD && c < best))) (bestD = s), (best = c);
    }
    if (best >= 0) out[i] = saved.coreLabels[best];
  }
  return out;
}

/** First index in [from, to) with a[i] >= v (a ascending there), else to. */
function lowerBound(a: Float64Array, v: number, from = 0, to = a.length): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
