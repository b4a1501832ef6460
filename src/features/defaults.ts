/**
 * Defaults of `segtensor features`, apart from the SQL so that the CLI can show them without
 * loading DuckDB (which costs ~0.5 s at start-up).
 *
 * @example
 * FEATURE_DEFAULTS.customerCol; // 'customer_id'
 */
export const FEATURE_DEFAULTS = Object.freeze({
  /** Customer id column; the output's id column keeps its name. */
  customerCol: 'customer_id',
  /** Timestamp column (timestamp, date or ISO 8601 text). */
  timeCol: 'timestamp',
  /** Amount column; returns are negative. */
  amountCol: 'amount',
  /** Category share columns at most; rarer categories go to `share_other`. */
  maxCategories: 20,
  /** Days in each of the two spend-trend windows. */
  trendDays: 90,
});
