/**
 * The stated rules of the synthetic population: segments, their shares and distributions, the
 * calendar and the churn rule. `datasets/README.md` documents the same numbers; the generator
 * (`sql.ts`) reads them from here, so the two cannot drift apart silently.
 *
 * @example
 * import { SEGMENTS, POPULATION_DEFAULTS } from './spec.js';
 * SEGMENTS.map((s) => s.share); // [0.15, 0.25, 0.15, 0.3, 0.15]
 */

/** Per-segment parameters. Medians are of lognormal draws, `sd*` their log-scale sigmas. */
export interface SegmentSpec {
  /** Stable segment id (truth.segment). */
  id: number;
  name: string;
  /** Expected fraction of customers. */
  share: number;
  /** Median days from first purchase to as-of (tenure), sigma 0.35, clamped to the history. */
  tenure: number;
  /** Median days from last purchase to as-of (recency), sigma {@link recencySd}. */
  recency: number;
  recencySd: number;
  /** Median orders per year while active, sigma 0.35. */
  ordersPerYear: number;
  /** Median line-item value (currency units), sigma 0.5. */
  itemValue: number;
  /** Mean of the latent purchase trend τ (sd 0.3): order times are drawn with density ∝ u^exp(−τ). */
  trend: number;
  /** Mean latent satisfaction in [1, 5] (sd 0.7, clamped). */
  satisfaction: number;
  /** Median sessions per month (sigma 0.4) and pages per session (sigma 0.3). */
  sessions: number;
  pages: number;
  /** Mean cart abandonment rate (sd 0.08, clamped to [0, 1]). */
  abandon: number;
  /** Probability that a purchased line item is returned (a negative-amount row 1–30 days later). */
  returnRate: number;
  /** Category weights, in {@link CATEGORIES} order. */
  categories: readonly number[];
  /** Signup-channel weights, in {@link CHANNELS} order. */
  channels: readonly number[];
  /** Age-band weights, in {@link AGE_BANDS} order. */
  ages: readonly number[];
}

export const CATEGORIES = ['electronics', 'fashion', 'home', 'grocery', 'beauty', 'sports'] as const;
export const CHANNELS = ['web', 'app', 'store', 'referral'] as const;
export const AGE_BANDS = ['18-24', '25-34', '35-44', '45-54', '55-64', '65+'] as const;
export const REGIONS = ['north', 'south', 'east', 'west', 'central'] as const;
/** Region odds, the same in every segment. */
export const REGION_WEIGHTS = [0.22, 0.2, 0.2, 0.18, 0.2] as const;

export const SEGMENTS: readonly SegmentSpec[] = Object.freeze([
  {
    id: 0, name: 'loyal high spenders', share: 0.15, tenure: 800, recency: 6, recencySd: 0.6, ordersPerYear: 10, itemValue: 80,
    trend: 0.1, satisfaction: 4.3, sessions: 18, pages: 6, abandon: 0.12, returnRate: 0.03,
    categories: [0.3, 0.2, 0.25, 0.05, 0.1, 0.1], channels: [0.35, 0.4, 0.15, 0.1], ages: [0.03, 0.17, 0.3, 0.28, 0.15, 0.07],
  },
  {
    id: 1, name: 'bargain hunters', share: 0.25, tenure: 600, recency: 12, recencySd: 0.6, ordersPerYear: 8, itemValue: 18,
    trend: 0, satisfaction: 3.2, sessions: 25, pages: 9, abandon: 0.45, returnRate: 0.1,
    categories: [0.05, 0.25, 0.1, 0.4, 0.15, 0.05], channels: [0.45, 0.4, 0.05, 0.1], ages: [0.2, 0.3, 0.22, 0.14, 0.09, 0.05],
  },
  {
    id: 2, name: 'new customers', share: 0.15, tenure: 50, recency: 10, recencySd: 0.6, ordersPerYear: 15, itemValue: 40,
    trend: 0.3, satisfaction: 3.8, sessions: 10, pages: 5, abandon: 0.3, returnRate: 0.06,
    categories: [0.15, 0.3, 0.15, 0.15, 0.15, 0.1], channels: [0.3, 0.35, 0.1, 0.25], ages: [0.22, 0.3, 0.2, 0.13, 0.1, 0.05],
  },
  {
    id: 3, name: 'occasional buyers', share: 0.3, tenure: 700, recency: 60, recencySd: 0.5, ordersPerYear: 2.5, itemValue: 45,
    trend: 0, satisfaction: 3.4, sessions: 4, pages: 4, abandon: 0.25, returnRate: 0.05,
    categories: [0.2, 0.2, 0.2, 0.15, 0.1, 0.15], channels: [0.4, 0.2, 0.3, 0.1], ages: [0.1, 0.2, 0.22, 0.2, 0.16, 0.12],
  },
  {
    id: 4, name: 'lapsing customers', share: 0.15, tenure: 750, recency: 220, recencySd: 0.35, ordersPerYear: 4, itemValue: 50,
    trend: -0.8, satisfaction: 2.5, sessions: 1.5, pages: 3, abandon: 0.55, returnRate: 0.08,
    categories: [0.15, 0.25, 0.2, 0.15, 0.15, 0.1], channels: [0.4, 0.25, 0.25, 0.1], ages: [0.1, 0.2, 0.22, 0.2, 0.16, 0.12],
  },
]);

/**
 * Churn rule: p = σ(β0 + β1·ln(1+R) − β2·ln(1+F) − β3·τ − β4·(S − 3)), where R is recency in
 * days at as-of (days since signup for a customer with no purchase yet), F the number of orders
 * before as-of, τ the latent purchase trend and S the latent satisfaction; churned = (u < p).
 */
export const CHURN = Object.freeze({ b0: -3, b1: 0.8, b2: 0.6, b3: 1, b4: 0.5 });

export const CHURN_RULE_TEXT =
  `p = 1 / (1 + exp(-(${CHURN.b0} + ${CHURN.b1}*ln(1 + recency_days) - ${CHURN.b2}*ln(1 + frequency) - ${CHURN.b3}*trend - ${CHURN.b4}*(satisfaction - 3)))); ` +
  'churned = uniform(seed, customer_id) < p. recency_days: whole days from the last purchase before as-of to as-of (days since signup when none); ' +
  'frequency: orders before as-of; trend: latent purchase trend tau (order times have density proportional to u^exp(-tau) over the active span); ' +
  'satisfaction: latent score in [1, 5] before rounding and survey non-response. Churners place no order in [asOf, asOf + churnWindowDays); ' +
  'non-churners place max(1, round(2u * orders_per_year * churnWindowDays / 365)) orders there.';

/** Rates of the log's imperfections, per logged row or line item. */
export const NOISE = Object.freeze({
  /** Probability that a logged row (purchase or return) is written twice, byte for byte. */
  duplicate: 0.002,
  /** Probability that a line item also produces a malformed row (null id, null timestamp or NaN amount, a third each). */
  malformed: 0.001,
  /** Probabilities of a second and of a third line item in an order. */
  secondItem: 0.2,
  thirdItem: 0.05,
  /** Share of new customers who signed up but have not bought before as-of. */
  newWithoutPurchase: 0.05,
  /** Share of new customers with exactly one purchase before as-of. */
  newSinglePurchase: 0.3,
  /** Share of satisfaction survey answers that are missing. */
  satisfactionMissing: 0.3,
});

export interface PopulationOptions {
  /** Number of customers. */
  customers: number;
  /** Seed of every draw: the same seed gives the same bytes (for a given DuckDB version). */
  seed: number;
  /** First day of the transaction log, YYYY-MM-DD. Default 2021-01-01. */
  periodStart: string;
  /** The as-of date, YYYY-MM-DD: history before it, churn window from it. Default 2024-01-01. */
  asOf: string;
  /** Churn window in days; the log ends at as-of + window (exclusive). Default 90. */
  churnWindowDays: number;
  /** Also write customers.arrow, transactions.arrow and truth.arrow (Arrow IPC files). Default false. */
  arrow: boolean;
  /** Parquet row-group size in rows. Default 1,000,000 (DuckDB's default is 122,880). */
  rowGroupSize: number;
}

export const POPULATION_DEFAULTS: Readonly<Omit<PopulationOptions, 'customers'>> = Object.freeze({
  seed: 1,
  periodStart: '2021-01-01',
  asOf: '2024-01-01',
  churnWindowDays: 90,
  arrow: false,
  rowGroupSize: 1_000_000,
});
