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
  /**
   * Invalid transaction rows (null id, bad timestamp, bad amount) allowed, as a fraction of the
   * rows read; more fail the run with their counts, fewer are skipped, counted and noticed.
   */
  maxInvalid: 0.01,
  /** Share of the machine's RAM (`os.totalmem()`) DuckDB may use before it spills to disk. */
  memoryFraction: 0.6,
  /**
   * Transaction rows per customer partition: larger logs are aggregated in customer-disjoint
   * partitions, one after the other, so the partition's temp table, its hash sort and the event
   * hash table hold at most about this many rows (15 M rows in one pass peaked at 1.8 GB; 152 M
   * rows in 8 partitions at 7.3 GB; before issue 17's prefilter 4.2 GB and 8.2 GB).
   */
  partitionRows: 20_000_000,
});
