/**
 * The population as DuckDB SQL. Every random draw is a counter-based hash of
 * (seed, customer_id, order, line item, draw number), never a stateful generator, so rows
 * can be produced by any thread in any chunk and still come out the same; DuckDB's
 * insertion-order preservation then writes them in (customer, order, item) order, which makes
 * the output files byte-identical for a seed.
 *
 * Why hash twice: DuckDB's `hash(a, b, c)` combines the per-argument hashes with a xor-like
 * step, so two draws of one customer that differ only in the last argument would be correlated
 * bit by bit. `st_u` therefore xors a per-draw constant into the row's base hash and applies
 * DuckDB's 64-bit finaliser (murmur's fmix) again, which is splitmix64's construction.
 * @internal
 */
import { sqlString } from '../../io/duckdb-reader.js';
import {
  AGE_BANDS,
  CATEGORIES,
  CHANNELS,
  CHURN,
  NOISE,
  REGION_WEIGHTS,
  REGIONS,
  SEGMENTS,
  type PopulationOptions,
} from './spec.js';

const DAY_US = 86_400_000_000n;

/**
 * Row kinds an item may log: 0 the purchase, 1 its duplicate, 2 the return, 3 the return's
 * duplicate, 4 a malformed copy. Entry m lists the kinds for flag mask m = dup0 + 2·ret +
 * 4·(ret ∧ dup1) + 8·mal.
 */
const KIND_LISTS = `[${Array.from({ length: 16 }, (_, m) => `[${[0, 1, 2, 3, 4].filter((kind) => kind === 0 || (m >> (kind - 1)) & 1).join(', ')}]`).join(', ')}]`;

/** Draw constants: (k + 1) · golden gamma mod 2^64, as UBIGINT literals. */
function k(n: number): string {
  return `${((BigInt(n + 1) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn).toString()}::UBIGINT`;
}

/** Uniform in [0, 1) from base hash `h`, draw number `n`. */
function u(h: string, n: number): string {
  return `st_u(${h}, ${k(n)})`;
}

/** Standard normal from two draws (Box–Muller). */
function z(h: string, n: number): string {
  return `(sqrt(-2 * ln(1 - ${u(h, n)})) * cos(2 * pi() * ${u(h, n + 1)}))`;
}

/** `[v0, v1, ...][seg + 1]`: a per-segment parameter. */
function bySeg(values: readonly (number | string)[]): string {
  return `[${values.map((v) => (typeof v === 'string' ? sqlString(v) : String(v))).join(', ')}][seg + 1]`;
}

/** A categorical draw: labels[i] where the uniform falls in the i-th cumulative-weight bin. */
function categorical(uniform: string, labels: readonly string[], weights: (seg: number) => readonly number[], perSegment: boolean): string {
  const cum = (w: readonly number[]) => {
    const total = w.reduce((a, b) => a + b, 0);
    let c = 0;
    return w.slice(0, -1).map((x) => (c += x / total));
  };
  const whens = labels.slice(0, -1).map((lab, i) => {
    const bound = perSegment ? bySeg(SEGMENTS.map((s) => cum(weights(s.id))[i])) : String(cum(weights(0))[i]);
    return `WHEN ${uniform} < ${bound} THEN ${sqlString(lab)}`;
  });
  return `CASE ${whens.join(' ')} ELSE ${sqlString(labels[labels.length - 1])} END`;
}

function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** Temp macros the queries use. Run once per connection before the queries. */
export const MACROS = [
  'CREATE OR REPLACE TEMP MACRO st_u(h, c) AS ((hash(xor(h, c)) >> 11)::DOUBLE / 9007199254740992.0)',
];

/**
 * The customer-level CTE over a table `ids(i)` of 0-based customer indexes: segment,
 * demographics, behaviour, the history shape (tenure T, recency R, orders before as-of) and
 * the churn draw.
 */
export function customerCte(o: PopulationOptions, idsTable: string): string {
  const H = daysBetween(o.periodStart, o.asOf);
  const W = o.churnWindowDays;
  let cum = 0;
  const segCase = SEGMENTS.slice(0, -1)
    .map((s) => `WHEN ${u('h', 0)} < ${(cum += s.share)} THEN ${s.id}`)
    .join(' ');
  return `
c0 AS (
  SELECT i + 1 AS customer_id, hash(${o.seed}::UBIGINT, (i + 1)::BIGINT) AS h FROM ${idsTable}
),
c1 AS (
  SELECT customer_id, h, CASE ${segCase} ELSE ${SEGMENTS.length - 1} END AS seg FROM c0
),
c2 AS (
  SELECT *,
    ${u('h', 1)} AS u_new,
    least(${H - 1}, greatest(1, round(${bySeg(SEGMENTS.map((s) => s.tenure))} * exp(${bySeg(SEGMENTS.map((s) => (s.id === 2 ? 0.5 : 0.35)))} * ${z('h', 2)}))))::INTEGER AS t_raw,
    ${bySeg(SEGMENTS.map((s) => s.recency))} * exp(${bySeg(SEGMENTS.map((s) => s.recencySd))} * ${z('h', 4)}) AS r_raw,
    ${bySeg(SEGMENTS.map((s) => s.ordersPerYear))} * exp(0.35 * ${z('h', 6)}) AS rate,
    ${bySeg(SEGMENTS.map((s) => s.trend))} + 0.3 * ${z('h', 8)} AS trend,
    least(5.0, greatest(1.0, ${bySeg(SEGMENTS.map((s) => s.satisfaction))} + 0.7 * ${z('h', 10)})) AS sat
  FROM c1
),
c3 AS (
  SELECT *,
    seg = 2 AND u_new < ${NOISE.newWithoutPurchase} AS no_purchase,
    CASE WHEN seg = 2 AND u_new >= ${NOISE.newWithoutPurchase} AND u_new < ${NOISE.newWithoutPurchase + NOISE.newSinglePurchase}
      THEN t_raw ELSE least(t_raw, greatest(1, round(r_raw)))::INTEGER END AS r
  FROM c2
),
c4 AS (
  SELECT *,
    CASE WHEN no_purchase THEN 0 WHEN r = t_raw THEN 1 ELSE greatest(2, round(rate * (t_raw - r) / 365.0))::INTEGER END AS n_pre,
    CASE WHEN no_purchase THEN 1 + floor(30 * ${u('h', 12)})::INTEGER ELSE t_raw + floor(30 * ${u('h', 12)})::INTEGER END AS signup_days
  FROM c3
),
c5 AS (
  SELECT *,
    1.0 / (1.0 + exp(-(${CHURN.b0} + ${CHURN.b1} * ln(1 + CASE WHEN no_purchase THEN signup_days ELSE r END)
      - ${CHURN.b2} * ln(1 + n_pre) - ${CHURN.b3} * trend - ${CHURN.b4} * (sat - 3)))) AS churn_p
  FROM c4
),
cust AS (
  SELECT *,
    ${u('h', 13)} < churn_p AS churned,
    CASE WHEN ${u('h', 13)} < churn_p THEN 0 ELSE greatest(1, round(2 * ${u('h', 14)} * rate * ${W} / 365.0))::INTEGER END AS n_post
  FROM c5
)`;
}

/** customers.parquet's query. */
export function customersQuery(o: PopulationOptions, idsTable: string): string {
  return `WITH ${customerCte(o, idsTable)}
SELECT customer_id,
  ${categorical(u('h', 20), AGE_BANDS, (s) => SEGMENTS[s].ages, true)} AS age_band,
  ${categorical(u('h', 21), REGIONS, () => REGION_WEIGHTS, false)} AS region,
  ${categorical(u('h', 22), CHANNELS, (s) => SEGMENTS[s].channels, true)} AS signup_channel,
  (DATE ${sqlString(o.asOf)} - signup_days)::DATE AS signup_date,
  round(${bySeg(SEGMENTS.map((s) => s.sessions))} * exp(0.4 * ${z('h', 23)}), 2) AS sessions_per_month,
  round(${bySeg(SEGMENTS.map((s) => s.pages))} * exp(0.3 * ${z('h', 25)}), 2) AS pages_per_session,
  round(least(1.0, greatest(0.0, ${bySeg(SEGMENTS.map((s) => s.abandon))} + 0.08 * ${z('h', 27)})), 3) AS cart_abandon_rate,
  CASE WHEN ${u('h', 29)} < ${NOISE.satisfactionMissing} THEN NULL ELSE round(sat)::INTEGER END AS satisfaction
FROM cust`;
}

/** truth.parquet's query. */
export function truthQuery(o: PopulationOptions, idsTable: string): string {
  return `WITH ${customerCte(o, idsTable)}
SELECT customer_id, seg::INTEGER AS segment, ${bySeg(SEGMENTS.map((s) => s.name))} AS segment_name,
  churn_p AS churn_probability, churned
FROM cust`;
}

/**
 * transactions.parquet's query: orders (first at −T, last at −R days, the rest between with
 * density ∝ v^exp(−τ); after as-of only for non-churners), line items, returns, exact duplicates
 * and malformed rows, in (customer, order, item, kind) order.
 */
export function transactionsQuery(o: PopulationOptions, idsTable: string): string {
  const W = o.churnWindowDays;
  const asOfUs = BigInt(Date.parse(`${o.asOf}T00:00:00Z`)) * 1000n;
  return `WITH ${customerCte(o, idsTable)},
ord AS (
  SELECT customer_id, seg, t_raw, r, n_pre, trend, unnest(range(n_pre + n_post)) AS j FROM cust
),
ord2 AS (
  SELECT customer_id, seg, j, hash(h_o) AS ho,
    CASE WHEN j >= n_pre THEN floor(${W} * ${u('h_o', 0)})::INTEGER
         WHEN j = 0 THEN -t_raw
         WHEN j = n_pre - 1 THEN -r
         ELSE -t_raw + floor((t_raw - r) * pow(${u('h_o', 0)}, exp(-trend)))::INTEGER END AS day,
    floor(86400 * ${u('h_o', 1)})::BIGINT AS sec,
    1 + (${u('h_o', 2)} < ${NOISE.secondItem})::INTEGER
      + (${u('h_o', 2)} < ${NOISE.secondItem} AND ${u('h_o', 3)} < ${NOISE.thirdItem / NOISE.secondItem})::INTEGER AS n_items
  FROM (SELECT *, hash(${o.seed}::UBIGINT, customer_id, j) AS h_o FROM ord)
),
item AS (
  SELECT customer_id, seg, j, day, sec, hash(ho, li) AS hi FROM (SELECT *, unnest(range(n_items)) AS li FROM ord2)
),
item2 AS (
  SELECT customer_id, j, day, sec,
    greatest(0.5, round(${bySeg(SEGMENTS.map((s) => s.itemValue))} * exp(0.5 * ${z('hi', 0)}), 2)) AS amount,
    ${categorical(u('hi', 2), CATEGORIES, (s) => SEGMENTS[s].categories, true)} AS category,
    ${u('hi', 3)} < ${bySeg(SEGMENTS.map((s) => s.returnRate))} AND day + 1 + floor(30 * ${u('hi', 4)})::INTEGER < ${W} AS ret,
    day + 1 + floor(30 * ${u('hi', 4)})::INTEGER AS ret_day,
    ${u('hi', 5)} < ${NOISE.duplicate} AS dup0,
    ${u('hi', 6)} < ${NOISE.duplicate} AS dup1,
    ${u('hi', 7)} < ${NOISE.malformed} AS mal,
    floor(3 * ${u('hi', 8)})::INTEGER AS mal_kind
  FROM item
),
rows AS (
  -- Which rows an item logs, as a bitmask into a constant list of kind lists (cheaper than
  -- expanding every item five times and filtering).
  SELECT *, unnest(${KIND_LISTS}[1 + dup0::INTEGER + 2 * ret::INTEGER + 4 * (ret AND dup1)::INTEGER + 8 * mal::INTEGER]) AS kind FROM item2
)
SELECT
  CASE WHEN kind = 4 AND mal_kind = 0 THEN NULL ELSE customer_id END AS customer_id,
  customer_id * 10000 + j AS order_id,
  CASE WHEN kind = 4 AND mal_kind = 1 THEN NULL
       ELSE make_timestamp(${asOfUs} + (CASE WHEN kind IN (2, 3) THEN ret_day ELSE day END) * ${DAY_US} + sec * 1000000) END AS "timestamp",
  CASE WHEN kind = 4 AND mal_kind = 2 THEN 'NaN'::DOUBLE WHEN kind IN (2, 3) THEN -amount ELSE amount END AS amount,
  category
FROM rows`;
}
