/** The k values of `sweep --k` and `fit --k-range`: light, so the CLI can parse them before loading a pipeline. */
import { SegtensorError } from '../errors.js';

/** `fit --k auto`'s range. */
export const AUTO_K_RANGE = '2..10';

/**
 * Parses `--k` for the sweep: a range `2..12` or a list `2,4,8`; every k an integer ≥ 2,
 * at most 200 values, returned ascending without repeats.
 */
export function parseKRange(text: string, option = '--k'): number[] {
  const bad = (why: string): never => {
    throw new SegtensorError('BAD_OPTION', `${option} must be a range like 2..12 or a list like 2,4,8 of integers >= 2; got '${text}' (${why})`);
  };
  const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
  let ks: number[];
  if (m) {
    const [lo, hi] = [Number(m[1]), Number(m[2])];
    if (hi < lo) bad('the range is empty');
    if (hi - lo >= 200) bad('more than 200 values');
    ks = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  } else {
    const parts = text.split(',').map((s) => s.trim());
    if (parts.some((p) => !/^\d+$/.test(p))) bad('not an integer');
    ks = parts.map(Number);
  }
  if (ks.some((k) => k < 2)) bad('k = 1 has no clusters to compare');
  ks = [...new Set(ks)].sort((a, b) => a - b);
  if (ks.length > 200) bad('more than 200 values');
  return ks;
}

