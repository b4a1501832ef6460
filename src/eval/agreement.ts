/**
 * Agreement between two labelings of the same rows, up to a renaming of the labels: the adjusted
 * Rand index of Hubert & Arabie (1985), as scikit-learn's `adjusted_rand_score` computes it.
 *
 * @example
 * adjustedRandIndex([0, 0, 1, 1], [1, 1, 0, 0]); // 1 (the same partition, labels renamed)
 */
import { SegtensorError } from '../errors.js';

/** A label per row: any values compared with `===` (numbers, bigints or strings). */
export type Labeling = ArrayLike<number | bigint | string>;

/**
 * Adjusted Rand index between two labelings of the same n rows: 1 for identical partitions,
 * about 0 for independent ones (negative when worse than chance).
 *
 * With nᵢⱼ the contingency table, aᵢ and bⱼ its row and column sums, and ordered pair counts
 * tp = Σnᵢⱼ² − n (together in both), fp = Σbⱼ² − Σnᵢⱼ², fn = Σaᵢ² − Σnᵢⱼ², tn = n² − tp − fp − fn − n:
 * ARI = 2(tp·tn − fn·fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)), and 1 when fn = fp = 0
 * (scikit-learn's `pair_confusion_matrix` form, which gives its special cases: one cluster each,
 * all singletons each, fewer than two rows). Counts are exact up to 2⁵³; the products are taken
 * in float64, so the index is good to ~1e-15 relative.
 *
 * @example
 * adjustedRandIndex([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]); // 0.24242424…
 */
export function adjustedRandIndex(a: Labeling, b: Labeling): number {
  if (a.length !== b.length) throw new SegtensorError('BAD_INPUT', `adjustedRandIndex: the labelings must have one label per row each; got ${a.length} and ${b.length}`);
  const n = a.length;
  if (a instanceof Int32Array && b instanceof Int32Array) {
    const t = contingency(a, b);
    if (t) return ariOfCounts(t.cells, t.rows, t.cols, n);
  }
  const cells = new Map<string, number>();
  const rows = new Map<unknown, number>();
  const cols = new Map<unknown, number>();
  // The cell key keeps the label type (1 and '1' differ), as `===` does for the margins.
  const key = (v: number | bigint | string) => `${typeof v}:${String(v)}`;
  for (let i = 0; i < n; i++) {
    rows.set(a[i], (rows.get(a[i]) ?? 0) + 1);
    cols.set(b[i], (cols.get(b[i]) ?? 0) + 1);
    const k = `${key(a[i])}\u0000${key(b[i])}`;
    cells.set(k, (cells.get(k) ?? 0) + 1);
  }
  return ariOfCounts(cells.values(), rows.values(), cols.values(), n);
}

/** The index from the contingency counts (cells) and its margins (rows of a, columns of b). */
function ariOfCounts(cells: Iterable<number>, rows: Iterable<number>, cols: Iterable<number>, n: number): number {
  const squares = (m: Iterable<number>) => {
    let s = 0;
    for (const c of m) s += c * c;
    return s;
  };
  const sumCells = squares(cells);
  const tp = sumCells - n;
  const fp = squares(cols) - sumCells;
  const fn = squares(rows) - sumCells;
  const tn = n * n - tp - fp - fn - n;
  if (fn === 0 && fp === 0) return 1;
  return (2 * (tp * tn - fn * fp)) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

/**
 * The contingency table of two labelings with labels in [0, 4096): cells[i·kb + j] counts the
 * rows labelled i in a and j in b; rows and cols are its margins. Null for other labels (the
 * caller then counts with maps). Segment labels take this path: one pass, no strings.
 */
export function contingency(a: Int32Array, b: Int32Array): { cells: Float64Array; rows: Float64Array; cols: Float64Array; ka: number; kb: number } | null {
  let ka = 0;
  let kb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x < 0 || y < 0 || x >= 4096 || y >= 4096) return null;
    if (x >= ka) ka = x + 1;
    if (y >= kb) kb = y + 1;
  }
  const cells = new Float64Array(ka * kb);
  const rows = new Float64Array(ka);
  const cols = new Float64Array(kb);
  for (let i = 0; i < a.length; i++) {
    cells[a[i] * kb + b[i]]++;
    rows[a[i]]++;
    cols[b[i]]++;
  }
  return { cells, rows, cols, ka, kb };
}
