/**
 * Segment names and "what makes each segment distinct", derived from a segment profile (the
 * per-segment feature means of `segments.csv`) by stated rules. Pure functions: no I/O but
 * {@link readNamesFile}.
 *
 * **Levels.** For each feature, a segment's mean becomes a z-score against the segment-weighted
 * overall mean and the segment-weighted spread (standard deviation) of the segment means:
 * z = (mean_j − Σ nᵢ·meanᵢ / N) / √(Σ nᵢ·(meanᵢ − overall)² / N), noise (segment −1) left out of
 * the reference. The level is `high` when z > 0.5, `low` when z < −0.5, `mid` otherwise
 * ({@link LEVEL_THRESHOLD}). A feature whose segment means are all equal is `mid` everywhere.
 *
 * **Recency, frequency, monetary (RFM) rule.** It applies when at least two of these roles are
 * found among the numeric profile columns (one-hot `col=value` columns never take a role; each
 * column takes one role; the first matching column in profile order wins, except that for
 * monetary a name with total/sum/lifetime/ltv/clv is preferred):
 *
 * | role | column name matches (case-insensitive) |
 * |---|---|
 * | recency (days since the last purchase: high is bad) | `recency`, `days_since` |
 * | tenure (optional) | `tenure`, `customer_age`, `days_as_customer`, `first_order`, `first_purchase` |
 * | monetary | `monetary`, `revenue`, `spend`, `amount` |
 * | frequency | `frequency`, `orders`, `purchases`, `visits` |
 *
 * A role that is absent counts as `mid`. With levels r (recency), f (frequency), m (monetary)
 * and t (tenure), the name is, first rule that applies:
 *
 * | rule | name |
 * |---|---|
 * | r ≠ high and (tenure column ? t = low : r = low and f = low) | `new customers` |
 * | otherwise: prefix + frequency word + noun | |
 * | prefix: r = high → `lapsing`; else f = high → `loyal`; else r = low → `active`; else none | |
 * | frequency word: f = high (and prefix ≠ `loyal`) → `frequent`; f = low → `occasional`; else none | |
 * | noun: m = high → `high spenders`; m = low and f = high → `bargain hunters`; else `buyers` | |
 * | no prefix, no frequency word, noun `buyers` | `average customers` |
 *
 * So r low, f high, m high gives `loyal high spenders`; r high, f low, m low gives `lapsing
 * occasional buyers`; r mid, f low, m mid gives `occasional buyers`.
 *
 * **Generic rule** (fewer than two RFM roles): `<high|low> X, <high|low> Y` from the two features
 * with the largest |z| (the sign gives high or low); the second only when its |z| > 0.5; a segment
 * whose largest |z| is at most 0.5 is `average customers`.
 *
 * **Unique within a run.** When several segments get the same name, each of them gets its
 * largest-|z| feature that the rule did not already name appended, as `name (high X)`; if the
 * names still collide, the segments after the first (in id order) get ` (2)`, ` (3)`, …
 * Noise (segment −1) is `noise`. Names from an override file ({@link readNamesFile}) replace the
 * derived ones before the uniqueness step, and must be unique among themselves.
 *
 * @example
 * const names = segmentNames(profile);            // ['loyal high spenders', 'new customers', …]
 * const top = distinctFeatures(profile, 3);       // [{ feature: 'spend', difference: 2.1, … }, …]
 * describeSegment(profile, 3, names[3]);          // 'Segment 3 (loyal high spenders, 12 % of customers): spend is 2.1 standard deviations above the rest …'
 */
import fs from 'node:fs';
import { SegtensorError } from '../errors.js';

/** The profile the rules read: `SegmentProfile` of src/pipeline/profile.ts. */
export interface ProfileLike {
  columns: string[];
  rows: { segment: number; count: number; share: number; values: number[] }[];
}

export type Level = 'low' | 'mid' | 'high';

/** |z| above which a segment mean is `high` or `low`. */
export const LEVEL_THRESHOLD = 0.5;

/** The segment id of DBSCAN's noise rows. */
export const NOISE_SEGMENT = -1;
export const NOISE_NAME = 'noise';

/** Column-name patterns of the RFM roles (see the module's table). */
export const ROLE_PATTERNS: Readonly<Record<'recency' | 'tenure' | 'monetary' | 'frequency', RegExp>> = Object.freeze({
  recency: /recency|days_since/i,
  tenure: /tenure|customer_age|days_as_customer|first_order|first_purchase/i,
  monetary: /monetary|revenue|spend|amount/i,
  frequency: /frequency|orders|purchases|visits/i,
});

/** Monetary columns with these words are preferred: a total, not a per-order mean. */
const TOTAL_LIKE = /total|sum|lifetime|ltv|clv/i;

/** Columns that may hold money, for the revenue share (a broader pattern than the naming role). */
export const MONEY_LIKE = /monetary|revenue|spend|amount|value/i;

export interface Roles {
  recency: string | null;
  tenure: string | null;
  monetary: string | null;
  frequency: string | null;
}

/** The level of a z-score: `high` above {@link LEVEL_THRESHOLD}, `low` below its negative. */
export function levelOf(z: number): Level {
  return z > LEVEL_THRESHOLD ? 'high' : z < -LEVEL_THRESHOLD ? 'low' : 'mid';
}

/**
 * z-scores of every segment mean (rows × columns) against the segment-weighted overall mean and
 * spread of the segment means; noise rows are scored but not part of the reference. NaN means
 * (a segment with no values) score 0.
 *
 * @example
 * // sizes 1 and 3, means 0 and 4: overall 3, spread √3 → z = [−√3, 1/√3]
 * segmentZ({ columns: ['x'], rows: [{ segment: 0, count: 1, share: .25, values: [0] }, { segment: 1, count: 3, share: .75, values: [4] }] });
 */
export function segmentZ(p: ProfileLike): number[][] {
  const ref = referenceOf(p);
  return p.rows.map((r) => r.values.map((v, c) => (Number.isFinite(v) && ref.spread[c] > 0 ? (v - ref.mean[c]) / ref.spread[c] : 0)));
}

/** The segment-weighted mean and spread of the segment means, per column (noise left out). @internal */
export function referenceOf(p: ProfileLike): { mean: number[]; spread: number[] } {
  const mean: number[] = [];
  const spread: number[] = [];
  p.columns.forEach((_, c) => {
    let n = 0;
    let s = 0;
    for (const r of p.rows) {
      if (r.segment === NOISE_SEGMENT || !Number.isFinite(r.values[c])) continue;
      n += r.count;
      s += r.count * r.values[c];
    }
    const m = n > 0 ? s / n : NaN;
    let ss = 0;
    for (const r of p.rows) {
      if (r.segment === NOISE_SEGMENT || !Number.isFinite(r.values[c])) continue;
      ss += r.count * (r.values[c] - m) ** 2;
    }
    mean.push(m);
    // Relative floor: equal means that differ in the last bits are equal.
    const sd = n > 0 ? Math.sqrt(ss / n) : 0;
    spread.push(sd > 1e-12 * Math.max(1, Math.abs(m)) ? sd : 0);
  });
  return { mean, spread };
}

/** The columns that take the RFM roles (null where none matches). */
export function findRoles(columns: string[]): Roles {
  const taken = new Set<string>();
  const numeric = columns.filter((c) => !c.includes('='));
  const pick = (re: RegExp, prefer?: RegExp): string | null => {
    const hits = numeric.filter((c) => !taken.has(c) && re.test(c));
    const c = (prefer && hits.find((h) => prefer.test(h))) ?? hits[0] ?? null;
    if (c) taken.add(c);
    return c;
  };
  const recency = pick(ROLE_PATTERNS.recency);
  const tenure = pick(ROLE_PATTERNS.tenure);
  const monetary = pick(ROLE_PATTERNS.monetary, TOTAL_LIKE);
  const frequency = pick(ROLE_PATTERNS.frequency);
  return { recency, tenure, monetary, frequency };
}

/** The column that holds money for a revenue share, or null: a total preferred. */
export function moneyColumn(columns: string[]): string | null {
  const hits = columns.filter((c) => !c.includes('=') && MONEY_LIKE.test(c));
  return hits.find((h) => TOTAL_LIKE.test(h)) ?? hits[0] ?? null;
}

/** Whether the RFM rule applies: at least two of recency, frequency and monetary found. */
export function usesRfm(r: Roles): boolean {
  return [r.recency, r.frequency, r.monetary].filter(Boolean).length >= 2;
}

/**
 * The RFM name of one segment from its levels (see the module's table). Absent roles are `mid`;
 * `hasTenure` says whether a tenure column exists (then `t` decides `new customers`).
 *
 * @example
 * rfmName({ r: 'low', f: 'high', m: 'high', t: 'mid' }, true); // 'loyal high spenders'
 */
export function rfmName(l: { r: Level; f: Level; m: Level; t: Level }, hasTenure: boolean): string {
  const isNew = l.r !== 'high' && (hasTenure ? l.t === 'low' : l.r === 'low' && l.f === 'low');
  if (isNew) return 'new customers';
  const prefix = l.r === 'high' ? 'lapsing' : l.f === 'high' ? 'loyal' : l.r === 'low' ? 'active' : '';
  const freq = l.f === 'high' && prefix !== 'loyal' ? 'frequent' : l.f === 'low' ? 'occasional' : '';
  const noun = l.m === 'high' ? 'high spenders' : l.m === 'low' && l.f === 'high' ? 'bargain hunters' : 'buyers';
  if (!prefix && !freq && noun === 'buyers') return 'average customers';
  return [prefix, freq, noun].filter(Boolean).join(' ');
}

/** How the names of a profile are made, in words (for the report). */
export function nameRuleText(p: ProfileLike): string {
  const roles = findRoles(p.columns);
  const t = `levels are the segment mean's z-score against the size-weighted mean and spread of the segment means: high above +${LEVEL_THRESHOLD}, low below −${LEVEL_THRESHOLD}`;
  if (!usesRfm(roles)) return `Generic rule: the two features with the largest |z| ("high X, low Y"); ${t}.`;
  const used = (['recency', 'frequency', 'monetary', 'tenure'] as const).filter((k) => roles[k]).map((k) => `${k} = ${roles[k]}`);
  return `Recency/frequency/monetary rule (${used.join(', ')}); ${t}.`;
}

interface Derived {
  name: string;
  /** Columns the rule named (not used again to tell collisions apart). */
  used: number[];
}

function derive(p: ProfileLike, z: number[][]): Derived[] {
  const roles = findRoles(p.columns);
  const col = (name: string | null) => (name === null ? -1 : p.columns.indexOf(name));
  const ci = { r: col(roles.recency), f: col(roles.frequency), m: col(roles.monetary), t: col(roles.tenure) };
  const rfm = usesRfm(roles);
  return p.rows.map((row, j) => {
    if (row.segment === NOISE_SEGMENT) return { name: NOISE_NAME, used: [] };
    if (rfm) {
      const lv = (c: number): Level => (c < 0 ? 'mid' : levelOf(z[j][c]));
      return { name: rfmName({ r: lv(ci.r), f: lv(ci.f), m: lv(ci.m), t: lv(ci.t) }, ci.t >= 0), used: [ci.r, ci.f, ci.m, ci.t].filter((c) => c >= 0) };
    }
    const order = byAbs(z[j]);
    if (!order.length || Math.abs(z[j][order[0]]) <= LEVEL_THRESHOLD) return { name: 'average customers', used: [] };
    const word = (c: number) => `${z[j][c] > 0 ? 'high' : 'low'} ${p.columns[c]}`;
    const used = order.length > 1 && Math.abs(z[j][order[1]]) > LEVEL_THRESHOLD ? order.slice(0, 2) : order.slice(0, 1);
    return { name: used.map(word).join(', '), used };
  });
}

/** Column indices by decreasing |z| (ties: column order), non-zero only. */
function byAbs(z: number[]): number[] {
  return z
    .map((v, c) => [Math.abs(v), c])
    .filter(([a]) => a > 0)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, c]) => c);
}

/**
 * The name of every profile row (in row order): derived by the rules above, `overrides` (segment
 * id → name) applied, then made unique.
 *
 * @example
 * segmentNames(profile, { 3: 'VIPs' });
 */
export function segmentNames(p: ProfileLike, overrides: Record<number, string> = {}): string[] {
  const z = segmentZ(p);
  const derived = derive(p, z);
  const fixed = p.rows.map((r) => Object.hasOwn(overrides, r.segment));
  const names = p.rows.map((r, j) => (fixed[j] ? overrides[r.segment] : derived[j].name));
  const seen = new Map<string, number>();
  names.forEach((n, j) => {
    if (!fixed[j]) return;
    if (seen.has(n)) throw new SegtensorError('BAD_INPUT', `segment names must be unique: segments ${p.rows[seen.get(n)!].segment} and ${p.rows[j].segment} are both named '${n}'`);
    seen.set(n, j);
  });
  // Groups of rows sharing a name; an override keeps its name, the derived ones move aside.
  const groups = new Map<string, number[]>();
  names.forEach((n, j) => groups.set(n, [...(groups.get(n) ?? []), j]));
  for (const [n, rows] of groups) {
    if (rows.length < 2) continue;
    const movable = rows.filter((j) => !fixed[j]);
    const tried = movable.map((j) => {
      const c = byAbs(z[j]).find((c) => !derived[j].used.includes(c));
      return c === undefined ? null : `${n} (${z[j][c] > 0 ? 'high' : 'low'} ${p.columns[c]})`;
    });
    const others = new Set(names.filter((_, j) => !rows.includes(j)));
    const keepsOne = rows.length > movable.length; // an override holds the bare name
    const ok = tried.every((t) => t !== null && !others.has(t)) && new Set(tried).size === tried.length;
    if (ok) movable.forEach((j, i) => (names[j] = tried[i]!));
    else {
      let next = 2;
      movable.forEach((j, i) => {
        if (i === 0 && !keepsOne) return;
        while (names.includes(`${n} (${next})`)) next++;
        names[j] = `${n} (${next++})`;
      });
    }
  }
  return names;
}

/** One feature of {@link distinctFeatures}. */
export interface DistinctFeature {
  feature: string;
  /** (segment mean − rest mean) / spread: standard deviations, signed. */
  difference: number;
  mean: number;
  restMean: number;
}

export interface DistinctOptions {
  /**
   * The spread of each column (profile order) the difference is measured in: the pooled
   * within-segment standard deviation of the customers when a data sample is at hand. Default:
   * the segment-weighted spread of the segment means (the naming rule's).
   */
  spread?: number[];
  /** How many features. Default 3. */
  top?: number;
}

/**
 * A segment's features by |standardised difference| from the rest of the customers: the
 * segment's mean against the size-weighted mean of every other row of the profile (noise
 * included), over `spread`. Features with no finite difference are left out.
 *
 * @example
 * distinctFeatures(profile, 3, { spread: pooledSd, top: 3 });
 */
export function distinctFeatures(p: ProfileLike, segment: number, o: DistinctOptions = {}): DistinctFeature[] {
  const j = p.rows.findIndex((r) => r.segment === segment);
  if (j < 0) throw new RangeError(`distinctFeatures: no segment ${segment} in the profile (segments: ${p.rows.map((r) => r.segment).join(', ')})`);
  const spread = o.spread ?? referenceOf(p).spread;
  const out: DistinctFeature[] = [];
  p.columns.forEach((feature, c) => {
    let n = 0;
    let s = 0;
    for (const r of p.rows) {
      if (r === p.rows[j] || !Number.isFinite(r.values[c])) continue;
      n += r.count;
      s += r.count * r.values[c];
    }
    const mean = p.rows[j].values[c];
    const restMean = n > 0 ? s / n : NaN;
    const difference = (mean - restMean) / spread[c];
    if (Number.isFinite(difference) && spread[c] > 0) out.push({ feature, difference, mean, restMean });
  });
  return out.sort((a, b) => Math.abs(b.difference) - Math.abs(a.difference) || p.columns.indexOf(a.feature) - p.columns.indexOf(b.feature)).slice(0, o.top ?? 3);
}

/** A number in 3 significant digits with thousands separators: 1234.5 → '1,235', 0.01234 → '0.0123'. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
  const s = a >= 1000 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
  return s.replace(/^(-?\d+)/, (int) => int.replace(/\B(?=(\d{3})+$)/g, ','));
}

/** A share as a percentage: one decimal below 10 %, none above. */
export function formatShare(share: number): string {
  const pct = share * 100;
  return `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)} %`;
}

/**
 * "What makes the segment distinct", as a sentence: its top features by standardised difference
 * from the rest (see {@link distinctFeatures}). Differences below `minDifference` (default 0.2)
 * standard deviations are not mentioned.
 *
 * @example
 * describeSegment(profile, 3, 'loyal high spenders');
 * // 'Segment 3 (loyal high spenders, 12 % of customers): spend is 2.1 standard deviations above the rest (mean 1,234 against 456); recency_days is 1.3 below (8.1 against 64).'
 */
export function describeSegment(p: ProfileLike, segment: number, name: string, o: DistinctOptions & { minDifference?: number } = {}): string {
  const row = p.rows.find((r) => r.segment === segment);
  if (!row) throw new RangeError(`describeSegment: no segment ${segment} in the profile`);
  const who = segment === NOISE_SEGMENT ? `Noise (${formatShare(row.share)} of customers, in no segment)` : `Segment ${segment} (${name}, ${formatShare(row.share)} of customers)`;
  const min = o.minDifference ?? 0.2;
  const top = distinctFeatures(p, segment, o).filter((f) => Math.abs(f.difference) >= min);
  if (!top.length) return `${who}: no feature differs from the rest by ${min} standard deviations or more.`;
  const parts = top.map((f, i) => {
    const dir = f.difference > 0 ? 'above' : 'below';
    const size = Math.abs(f.difference).toFixed(1);
    return i === 0
      ? `${f.feature} is ${size} standard deviations ${dir} the rest (mean ${formatNumber(f.mean)} against ${formatNumber(f.restMean)})`
      : `${f.feature} is ${size} ${dir} (${formatNumber(f.mean)} against ${formatNumber(f.restMean)})`;
  });
  return `${who}: ${parts.join('; ')}.`;
}

/**
 * Reads a names file, `{ "<segment id>": "name", … }`, checking it against the run's segment ids
 * (`null`: only its form, before the segments are known). Every error is one line naming the
 * file and `option`.
 *
 * @example
 * readNamesFile('names.json', [0, 1, 2]); // { 0: 'VIPs', 2: 'window shoppers' }
 */
export function readNamesFile(file: string, segmentIds: number[] | null, option = '--names'): Record<number, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${file}': ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`}`);
  }
  return parseNames(text, file, segmentIds, option);
}

/** The checks of {@link readNamesFile} on the file's text. @internal */
export function parseNames(text: string, file: string, segmentIds: number[] | null, option = '--names'): Record<number, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SegtensorError('BAD_INPUT', `${option} '${file}': not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SegtensorError('BAD_INPUT', `${option} '${file}': expected an object of segment id to name, like {"0": "loyal customers"}; got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw}`);
  }
  const out: Record<number, string> = {};
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(raw)) {
    const id = /^-?\d+$/.test(key.trim()) ? Number(key) : NaN;
    if (Number.isNaN(id) || (segmentIds && !segmentIds.includes(id))) {
      throw new SegtensorError('BAD_INPUT', `${option} '${file}': '${key}' is not a segment id ${segmentIds ? `of this run (segments: ${segmentIds.join(', ')})` : '(an integer, -1 for noise)'}`);
    }
    if (typeof value !== 'string' || value.trim() === '') {
      throw new SegtensorError('BAD_INPUT', `${option} '${file}': the name of segment ${key} must be a non-empty string; got ${JSON.stringify(value)}`);
    }
    const name = value.trim();
    if (seen.has(name)) throw new SegtensorError('BAD_INPUT', `${option} '${file}': segments ${seen.get(name)} and ${key} are both named '${name}'; names must be unique`);
    seen.set(name, key);
    out[id] = name;
  }
  return out;
}
