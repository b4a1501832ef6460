/**
 * Seeded synthetic churn data with known churn probabilities, for the churn tests: numeric RFM-like
 * features (skewed, some missing), a categorical plan, noise columns, and
 * P(churn) = σ(f(x)) with f partly non-linear (an interaction and a threshold), so an MLP can beat
 * a linear model but a linear model is still decent.
 */
import { Random } from '../../src/util/random.js';
import { writeTable, type OutColumn } from '../../src/io/write-table.js';

export interface ChurnSample {
  columns: OutColumn[];
  /** True P(churn) per row. */
  p: Float64Array;
  /** Drawn labels. */
  y: Uint8Array;
  nRows: number;
}

const PLANS = ['basic', 'plus', 'pro', 'family'];

export function churnSample(nRows: number, seed: number, intercept = -1.6): ChurnSample {
  const r = new Random(seed);
  const id = new BigInt64Array(nRows);
  const recency = new Float64Array(nRows);
  const frequency = new Float64Array(nRows);
  const monetary = new Float64Array(nRows);
  const tenure = new Float64Array(nRows);
  const noise1 = new Float64Array(nRows);
  const noise2 = new Float64Array(nRows);
  const plan: (string | null)[] = new Array(nRows);
  const p = new Float64Array(nRows);
  const y = new Uint8Array(nRows);
  const churned: string[] = new Array(nRows);
  const planEffect = [0.4, 0, -0.5, -0.2];
  for (let i = 0; i < nRows; i++) {
    id[i] = BigInt(100000 + i);
    const a = r.gauss();
    const b = r.gauss();
    const c = r.gauss();
    const t = r.gauss();
    recency[i] = Math.exp(1.5 + 0.8 * a); // days, skewed
    frequency[i] = Math.round(Math.exp(1.2 + 0.6 * b));
    monetary[i] = r.next() < 0.03 ? NaN : Math.exp(3 + 0.7 * c + 0.3 * b);
    tenure[i] = Math.max(1, 24 + 12 * t);
    noise1[i] = r.gauss();
    noise2[i] = r.next() * 100;
    const k = r.int(4);
    plan[i] = PLANS[k];
    const f = intercept + 1.1 * a - 0.8 * b - 0.4 * c + 0.9 * a * b + (t < -0.5 ? 1.2 : 0) + planEffect[k];
    p[i] = 1 / (1 + Math.exp(-f));
    y[i] = r.next() < p[i] ? 1 : 0;
    churned[i] = y[i] ? 'yes' : 'no';
  }
  return {
    columns: [
      { name: 'customer_id', values: id },
      { name: 'recency_days', values: recency },
      { name: 'frequency', values: frequency },
      { name: 'monetary', values: monetary },
      { name: 'tenure_months', values: tenure },
      { name: 'plan', values: plan },
      { name: 'noise_a', values: noise1 },
      { name: 'noise_b', values: noise2 },
      { name: 'churned', values: churned },
    ],
    p,
    y,
    nRows,
  };
}

/** Writes the sample (without the true probabilities) to `file`; format by extension. */
export async function writeChurnSample(file: string, s: ChurnSample): Promise<void> {
  await writeTable(file, s.columns);
}
