/**
 * Minimum-cost assignment (the linear sum assignment problem), as SciPy's
 * `linear_sum_assignment`: for an nRows × nCols cost matrix, min(nRows, nCols) pairs (row, col),
 * each row and each column used at most once, with the least total cost. Used to match
 * clusters between fits (stability in the k sweep, stable segment ids across nights).
 *
 * The shortest-augmenting-path Hungarian algorithm with row and column potentials (Kuhn–Munkres
 * in the form of Jonker & Volgenant): O(r²·c) for r = min(nRows, nCols), c the other side, so
 * k = 1,000 segments match in well under a second. Ties may pair differently from SciPy; the
 * total cost is the same (the optimum).
 *
 * @example
 * linearSumAssignment([[4, 1, 3], [2, 0, 5], [3, 2, 2]]); // rows [0, 1, 2], cols [1, 0, 2], total 5
 */
import { SegtensorError } from '../errors.js';

/**
 * The most rows or columns the callers match (segments): the algorithm is cubic, ~0.2 s at
 * 1,024 on random costs and minutes beyond a few thousand, so larger problems are refused
 * with a message rather than left to run.
 */
export const MAX_MATCHED_SEGMENTS = 4096;

export interface Assignment {
  /** Row of each pair, ascending. */
  rows: Int32Array;
  /** Column matched to rows[i]. */
  cols: Int32Array;
  /** Sum of the matched costs. */
  total: number;
}

/** Solves the assignment for `cost` (rows of equal length, finite numbers). */
export function linearSumAssignment(cost: ArrayLike<number>[]): Assignment {
  const nRows = cost.length;
  const nCols = nRows ? cost[0].length : 0;
  for (let i = 0; i < nRows; i++) {
    if (cost[i].length !== nCols) throw new SegtensorError('BAD_INPUT', `linearSumAssignment: row ${i} has ${cost[i].length} costs, row 0 has ${nCols}`);
    for (let j = 0; j < nCols; j++) {
      if (!Number.isFinite(cost[i][j])) throw new SegtensorError('BAD_INPUT', `linearSumAssignment: cost[${i}][${j}] is ${cost[i][j]}; costs must be finite`);
    }
  }
  if (nRows === 0 || nCols === 0) return { rows: new Int32Array(0), cols: new Int32Array(0), total: 0 };
  // The algorithm below wants no more rows than columns: solve the transpose otherwise.
  const transposed = nRows > nCols;
  const n = transposed ? nCols : nRows;
  const m = transposed ? nRows : nCols;
  const a = (i: number, j: number) => (transposed ? cost[j][i] : cost[i][j]);
  const colOf = solve(n, m, a);
  const pairs: [number, number][] = [];
  for (let i = 0; i < n; i++) pairs.push(transposed ? [colOf[i], i] : [i, colOf[i]]);
  pairs.sort((p, q) => p[0] - q[0]);
  let total = 0;
  for (const [r, c] of pairs) total += cost[r][c];
  return { rows: Int32Array.from(pairs, (p) => p[0]), cols: Int32Array.from(pairs, (p) => p[1]), total };
}

/**
 * n ≤ m: for each row i (0-based), its column. Rows are added one at a time; each addition finds
 * the shortest augmenting path over reduced costs a(i, j) − u(i) − v(j) ≥ 0 (Dijkstra on the
 * columns) and updates the potentials so the reduced costs stay non-negative.
 */
function solve(n: number, m: number, a: (i: number, j: number) => number): Int32Array {
  // 1-based rows and columns; column 0 is the virtual start of each augmenting path.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1); // p[j]: the row matched to column j (0 = none)
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = -1;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const colOf = new Int32Array(n);
  for (let j = 1; j <= m; j++) if (p[j] !== 0) colOf[p[j] - 1] = j - 1;
  return colOf;
}
