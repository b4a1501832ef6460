/** `update --half-life`: light, so the CLI parses it before loading the update pipeline. */
import { SegtensorError } from '../errors.js';

export type HalfLife = { rows: number } | { days: number };

/** `--half-life`: a number of rows (`500000`) or of days (`30d`). */
export function parseHalfLife(text: string, option = '--half-life'): HalfLife {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(d|days?)?\s*$/i.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!m || !(v > 0)) throw new SegtensorError('BAD_OPTION', `${option} must be a positive number of rows (500000) or days (30d); got '${text}'`);
  return m[2] ? { days: v } : { rows: v };
}

