/**
 * The bundled demo sample: a deterministic synthetic customer feature table with five latent
 * segments, generated on demand (not stored in git).
 *
 * Segments and how their features are drawn (lognormal spend and counts, so tails are heavy as
 * in real data):
 * | id | segment               | recency (days) | orders / yr | mean order | tenure (days) | sessions / mo | cart abandon |
 * |----|-----------------------|----------------|-------------|------------|---------------|---------------|--------------|
 * | 0  | loyal high spenders   | ~8             | ~24         | ~120       | ~1400         | ~20           | ~0.10        |
 * | 1  | bargain hunters       | ~20            | ~18         | ~25        | ~900          | ~25           | ~0.45        |
 * | 2  | new customers         | ~10            | ~3          | ~50        | ~45           | ~10           | ~0.30        |
 * | 3  | occasional buyers     | ~90            | ~4          | ~60        | ~1000         | ~3            | ~0.25        |
 * | 4  | lapsing customers     | ~250           | ~2          | ~70        | ~1200         | ~1            | ~0.60        |
 * Shares: 15%, 25%, 15%, 30%, 15%. Region is one of five with segment-independent odds.
 *
 * @example
 * await writeSample('datasets/sample', { customers: 100_000, seed: 7 });
 */
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Float64, Int64, Utf8, Table, makeData, makeVector, tableToIPC, vectorFromArray } from '../io/arrow.js';
import { atomicWrite } from '../io/atomic.js';
import { Random } from '../util/random.js';

interface Profile {
  share: number;
  recency: number;
  orders: number;
  order: number;
  tenure: number;
  sessions: number;
  abandon: number;
}

import { SAMPLE_DEFAULTS, SEGMENT_NAMES, type SampleOptions } from './sample-defaults.js';
export { SAMPLE_DEFAULTS, SEGMENT_NAMES, type SampleOptions };

const PROFILES: Profile[] = [
  { share: 0.15, recency: 8, orders: 24, order: 120, tenure: 1400, sessions: 20, abandon: 0.1 },
  { share: 0.25, recency: 20, orders: 18, order: 25, tenure: 900, sessions: 25, abandon: 0.45 },
  { share: 0.15, recency: 10, orders: 3, order: 50, tenure: 45, sessions: 10, abandon: 0.3 },
  { share: 0.3, recency: 90, orders: 4, order: 60, tenure: 1000, sessions: 3, abandon: 0.25 },
  { share: 0.15, recency: 250, orders: 2, order: 70, tenure: 1200, sessions: 1, abandon: 0.6 },
];

const REGIONS = ['north', 'south', 'east', 'west', 'central'];


/** Generates the sample in memory: feature columns and the true segment of every customer. */
export function generateSample(o: SampleOptions = SAMPLE_DEFAULTS) {
  const r = new Random(o.seed);
  const n = o.customers;
  const logn = (median: number, sigma: number) => median * Math.exp(sigma * r.gauss());
  const cols = {
    customer_id: new BigInt64Array(n),
    recency_days: new Float64Array(n),
    frequency: new Float64Array(n),
    monetary_mean: new Float64Array(n),
    monetary_total: new Float64Array(n),
    tenure_days: new Float64Array(n),
    sessions_per_month: new Float64Array(n),
    cart_abandon_rate: new Float64Array(n),
  };
  const region: string[] = new Array(n);
  const truth = new Int32Array(n);
  const cum = PROFILES.map((_, i) => PROFILES.slice(0, i + 1).reduce((s, p) => s + p.share, 0));
  for (let i = 0; i < n; i++) {
    const u = r.next();
    const s = cum.findIndex((c) => u < c);
    const seg = s < 0 ? PROFILES.length - 1 : s;
    const p = PROFILES[seg];
    truth[i] = seg;
    cols.customer_id[i] = BigInt(100000 + i);
    const tenure = Math.max(1, Math.round(logn(p.tenure, 0.3)));
    cols.tenure_days[i] = tenure;
    cols.recency_days[i] = Math.min(tenure, Math.round(logn(p.recency, 0.4)));
    const freq = Math.max(1, Math.round(logn(p.orders, 0.3) * Math.min(1, tenure / 365)));
    cols.frequency[i] = freq;
    const mean = logn(p.order, 0.3);
    cols.monetary_mean[i] = Math.round(mean * 100) / 100;
    cols.monetary_total[i] = Math.round(mean * freq * 100) / 100;
    cols.sessions_per_month[i] = Math.round(logn(p.sessions, 0.3) * 10) / 10;
    cols.cart_abandon_rate[i] = Math.min(1, Math.max(0, p.abandon + 0.08 * r.gauss()));
    region[i] = REGIONS[r.int(REGIONS.length)];
  }
  // A few missing values, as real tables have: preprocessing imputes them.
  for (let m = 0; m < Math.floor(n / 500); m++) cols.sessions_per_month[r.int(n)] = NaN;
  return { cols, region, truth };
}

/** Writes `<dir>/customers.arrow` (features) and `<dir>/truth.arrow` (customer_id, true segment). */
export function writeSample(dir: string, o: SampleOptions = SAMPLE_DEFAULTS): { customers: string; truth: string } {
  const { cols, region, truth } = generateSample(o);
  fs.mkdirSync(dir, { recursive: true });
  const id = makeVector(makeData({ type: new Int64(), data: cols.customer_id }));
  const vectors: Record<string, ReturnType<typeof makeVector>> = { customer_id: id };
  for (const [name, v] of Object.entries(cols)) {
    if (name === 'customer_id') continue;
    // Arrow nulls, not NaN, for the missing values.
    const arr = Array.from(v as Float64Array, (x) => (Number.isNaN(x) ? null : x));
    vectors[name] = vectorFromArray(arr, new Float64());
  }
  vectors.region = vectorFromArray(region, new Utf8());
  const customers = path.join(dir, 'customers.arrow');
  const truthFile = path.join(dir, 'truth.arrow');
  atomicWrite(customers, tableToIPC(new Table(vectors), 'file'));
  const t = new Table({ customer_id: id, segment: makeVector(makeData({ type: new Int32(), data: truth })) });
  atomicWrite(truthFile, tableToIPC(t, 'file'));
  return { customers, truth: truthFile };
}

