/**
 * `notice:` lines a job prints about its input data, and the counts it returns for manifests.
 * @internal
 */
import { dataRow, SegtensorError } from '../errors.js';
import { numericChunks, type ColumnTable } from '../io/table.js';
import type { UnseenCategories } from '../preprocess/preprocessor.js';

/**
 * One line per categorical feature with values never seen when fitting.
 *
 * @example
 * unseenNotices({ plan: { count: 12, distinct: 3, examples: ['gold'] } });
 * // ["notice: column 'plan': 12 values unseen when fitting (3 distinct, e.g. 'gold'); scored as __other__"]
 */
export function unseenNotices(unseen: Record<string, UnseenCategories>): string[] {
  return Object.entries(unseen).map(([name, u]) => {
    const eg = u.examples.map((e) => `'${e}'`).join(', ');
    const distinct = u.distinct >= 1000 ? 'over 1000' : String(u.distinct);
    return `notice: column '${name}': ${u.count} value${u.count === 1 ? '' : 's'} unseen when fitting (${distinct} distinct, e.g. ${eg}); scored as __other__`;
  });
}

/** Adds a batch's unseen categories to `acc` (a table read in batches): counts summed, a few examples kept. */
export function mergeUnseen(acc: Record<string, UnseenCategories>, batch: Record<string, UnseenCategories>): void {
  for (const [col, u] of Object.entries(batch)) {
    const a = (acc[col] ??= { count: 0, distinct: 0, examples: [] });
    a.count += u.count;
    a.distinct = Math.max(a.distinct, u.distinct);
    for (const e of u.examples) if (a.examples.length < 3 && !a.examples.includes(e)) a.examples.push(e);
  }
}

/** Cells per column holding a value unseen when fitting. */
export function unseenCounts(unseen: Record<string, UnseenCategories>): Record<string, number> {
  return Object.fromEntries(Object.entries(unseen).map(([name, u]) => [name, u.count]));
}

/**
 * Missing cells (null or NaN; imputed with the fitted fill) per numeric column of `names` that
 * has any, for a run's manifest counts. Columns absent or not numeric are left out.
 *
 * @example
 * missingCounts(table, ['spend', 'visits']); // { spend: 2 }
 */
export function missingCounts(table: ColumnTable, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of names) {
    if (!table.has(name)) continue;
    const c = table.column(name);
    let n = 0;
    if (c.type === 'bigint') {
      if (c.nulls) for (const z of c.nulls) n += z;
    } else if (c.type === 'number' || c.type === 'timestamp') {
      // Over the record batches as read: materialising the float64 column costs more than the fit.
      for (const { values, nulls } of numericChunks(c)) {
        for (let i = 0; i < values.length; i++) if ((nulls && nulls[i]) || Number.isNaN(values[i])) n++;
      }
    } else continue;
    if (n) out[name] = n;
  }
  return out;
}

/**
 * ±Inf in a numeric column of `names` is a `NON_FINITE` error naming the column and its data row
 * in `table` (the whole input, so the row is the user's, not one of a training split's).
 */
export function checkFinite(table: ColumnTable, names: readonly string[]): void {
  for (const name of names) {
    if (!table.has(name)) continue;
    const c = table.column(name);
    if (c.type !== 'number' && c.type !== 'timestamp') continue;
    let at = 0;
    for (const { values: v, nulls } of numericChunks(c)) {
      for (let i = 0; i < v.length; i++) {
        if ((v[i] === Infinity || v[i] === -Infinity) && !(nulls && nulls[i])) {
          throw new SegtensorError('NON_FINITE', `${table.path}: column '${name}' ${dataRow(at + i)} is ${v[i]}; values must be finite`);
        }
      }
      at += v.length;
    }
  }
}
