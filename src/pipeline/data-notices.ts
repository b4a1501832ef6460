/**
 * `notice:` lines a job prints about its input data, and the counts it returns for manifests.
 * @internal
 */
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

/** Cells per column holding a value unseen when fitting. */
export function unseenCounts(unseen: Record<string, UnseenCategories>): Record<string, number> {
  return Object.fromEntries(Object.entries(unseen).map(([name, u]) => [name, u.count]));
}
