/** Column statistics used by the fitted transforms. @internal */
import { nativeHelper } from '../util/native-addon.js';

/** Median of the non-NaN values (numpy's: mean of the two middle values for an even count); NaN if none. */
export function median(values: Float64Array): number {
  // A plain loop: Float64Array.prototype.filter with a callback is ~10× slower on 1M values.
  const v = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i])) v[n++] = values[i];
  return medianInPlace(v.subarray(0, n));
}

/**
 * Median of `v` (no NaN), reordering it in place: no copy, for a caller-owned scratch buffer.
 * Uses the native addon's radix selection when it is built (exact, the same value, faster).
 */
export function medianInPlace(v: Float64Array): number {
  const native = nativeHelper<(v: Float64Array, n: number) => number>('medianInPlace');
  if (native && v.length > 0) return native(v, v.length);
  return quickselectMedian(v);
}

/** The JavaScript path of {@link medianInPlace}. @internal */
export function quickselectMedian(v: Float64Array): number {
  const n = v.length;
  if (n === 0) return NaN;
  const hi = select(v, n >> 1);
  if (n % 2 === 1) return hi === 0 ? 0 : hi;
  // After select, every value left of n/2 is <= hi: the lower middle is their maximum.
  let lo = -Infinity;
  for (let i = 0; i < n >> 1; i++) if (v[i] > lo) lo = v[i];
  const m = (lo + hi) / 2;
  return m === 0 ? 0 : m; // +0, as the native path
}

/** k-th smallest (0-based) by in-place quickselect with median-of-three pivots: O(n), not a sort. */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** Mean, population standard deviation, min and max of the non-NaN values (two-pass, float64). */
export function moments(values: ArrayLike<number>): { mean: number; std: number; min: number; max: number; count: number } {
  // Index loops: for-of over a typed array is several times slower in V8.
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    if (x !== x) continue;
    count++;
    sum += x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const mean = count ? sum / count : NaN;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    if (x === x) ss += (x - mean) * (x - mean);
  }
  return { mean, std: count ? Math.sqrt(ss / count) : NaN, min, max, count };
}

/** {@link moments} for values known to hold no NaN (a gathered scratch buffer): no per-value test. */
export function momentsDense(v: Float64Array): { mean: number; std: number; min: number; max: number; count: number } {
  const n = v.length;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = v[i];
    sum += x;
    min = x < min ? x : min;
    max = x > max ? x : max;
  }
  const mean = n ? sum / n : NaN;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const t = v[i] - mean;
    ss += t * t;
  }
  return { mean, std: n ? Math.sqrt(ss / n) : NaN, min, max, count: n };
}

/** The q-quantile of ascending `sorted` values, linear between the two nearest ranks (numpy's default). */
export function quantileSorted(sorted: Float64Array, q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}
