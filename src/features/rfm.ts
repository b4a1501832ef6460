/**
 * `segtensor features`: per-customer RFM and behaviour features from a raw transaction log, as
 * of a date, computed by DuckDB (streamed, parallel, spilling to disk when needed) — never by
 * group-bys over JavaScript objects.
 *
 * Pipeline (one SQL statement per step; see {@link buildFeatures}):
 * 0. a log of more than {@link FEATURE_DEFAULTS}.partitionRows rows is split into customer-disjoint
 *    partitions (ranges of an integer id, else its hash), aggregated one after the other into
 *    one per-customer table: every feature of a customer comes from that customer's rows only,
 *    so the result is the same, while the row-level work of step 1 shrinks by the partition count
 *    (152 M rows in one pass grew past 16 GB). A log written in customer order (the generator's)
 *    lets DuckDB skip the row groups outside each range. Each partition is read from the log once,
 *    into a temp table with a 64-bit hash of every row, which steps 1 to 5 then scan;
 * 1. exact duplicate rows are collapsed, counting the copies: only rows whose row hash repeats
 *    (found by sorting the hashes) can be copies of each other, and only those go through the
 *    exact `GROUP BY ALL` (every column compared, so a hash collision is never taken for a copy);
 *    the rest pass with one copy each (issue 17: the `GROUP BY ALL` of every row was most of the
 *    run time);
 * 2. rows with a null customer id, an unparseable or null timestamp, or an unparseable,
 *    null or non-finite amount are counted and skipped;
 * 3. optionally, |amount| is capped at its (1 − q) quantile over valid rows before as-of;
 * 4. rows are classed as purchase (amount > 0), return (amount < 0) or zero, before as-of, or
 *    in the churn window; with an order column, rows of one (customer, order, class) form
 *    one event timed at their earliest row;
 * 5. rows aggregate per customer: sums and counts straight over the rows, and with an order
 *    column the events, (customer, order, class) groups with only their earliest time, counted
 *    per customer and joined. Every feature reads only rows strictly before as-of; the `churned`
 *    label reads only rows in [as-of, as-of + W days).
 *
 * Guards (issue 12), each a one-line error: as-of must lie inside the log's valid rows and the
 * churn window must end by its last valid timestamp (see `checkRange`); invalid rows beyond
 * `maxInvalid` of the rows read fail the run. Ids are written as the log holds them (whole-number
 * DOUBLE ids become BIGINT; see {@link idExpr}), and `churned` is marked as a label in the
 * metadata and the file's own schema metadata (`segtensor.labels`).
 *
 * DuckDB runs under a memory limit (default 60% of RAM) with a fresh spill directory, removed
 * afterwards, so an input larger than memory spills to disk instead of exhausting RAM.
 *
 * @example
 * const r = await buildFeatures({ transactions: 'tx.parquet', asOf: '2024-01-01', out: 'features.parquet', churnWindow: 90 });
 * r.meta.rows.duplicatesRemoved;
 */
import { hmacPads, jobPseudonymKey, PSEUDONYM_HEX, type PseudonymKey } from '../util/pseudonym.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBTypeId, type DuckDBConnection } from '@duckdb/node-api';
import { SegtensorError } from '../errors.js';
import { atomicProduce, atomicWrite } from '../io/atomic.js';
import { beginRun } from '../io/run-dir.js';
import { metaPathFor } from '../io/table-meta.js';
import { duck, sqlString } from '../io/duckdb-reader.js';
import { formatOf } from '../io/format.js';
import { LABELS_KEY } from '../io/table-meta.js';
import { VERSION } from '../version.js';
import { FEATURE_DEFAULTS } from './defaults.js';
import { copyQueryToArrow } from './duck-arrow.js';
import { amountExpr, column, ident, idExpr, openSource, timestampExpr, type Source, type SourceColumn } from './source.js';

export interface FeatureJob {
  /** Transaction log: .parquet, .csv or .arrow/.arrows/.feather. */
  transactions: string;
  /** As-of date, YYYY-MM-DD (00:00 UTC): features use rows strictly before it. */
  asOf: string;
  /** Output table; format by extension (.parquet, .csv, .arrow). A sidecar `<out>.meta.json` is written too. */
  out: string;
  /** Customer id column. Default `customer_id`; the output's id column keeps this name. */
  customerCol?: string;
  /** Timestamp column (timestamp, date or ISO 8601 text). Default `timestamp`. */
  timeCol?: string;
  /** Amount column (returns negative). Default `amount`. */
  amountCol?: string;
  /** Order id column: rows of one order count as one purchase. Default none (each row is one). */
  orderCol?: string | null;
  /** Category column for spend shares. Default `category` when the log has it, else none. */
  categoryCol?: string | null;
  /** Customer attribute table joined by the customer column and passed through. Default none. */
  customers?: string | null;
  /**
   * Churn window in days: adds the label `churned` (no purchase in [asOf, asOf + W days)), marked
   * as a label in the metadata. The window must end by the end of the day of the log's last
   * valid timestamp.
   * Default none.
   */
  churnWindow?: number | null;
  /**
   * Invalid rows (null id, bad timestamp, bad amount) allowed, as a fraction of the rows read, in
   * [0, 1]; more fail the run (`TOO_MANY_INVALID`), fewer are skipped and counted. Default 0.01.
   */
  maxInvalid?: number;
  /** Winsorize: cap |amount| at its (1 − q) quantile over valid rows before as-of, q in (0, 0.5). Default none. */
  winsorize?: number | null;
  /** Category share columns at most; rarer categories go to `share_other`. Default 20. */
  maxCategories?: number;
  /** Memory DuckDB may use, e.g. `'8GB'`; beyond it, it spills to disk. Default 60% of RAM. */
  memoryLimit?: string | null;
  /** Directory for DuckDB's spill files (a fresh subdirectory, removed afterwards). Default the output's directory. */
  spillDir?: string | null;
  /** Transaction rows per customer partition (see step 0). Default 20,000,000. */
  partitionRows?: number;
  /**
   * Bits of the 64-bit row hash the duplicate prefilter keeps (step 1), in [1, 64]. Default 64.
   * Fewer bits make unequal rows collide, so that tests can drive most rows through the exact
   * comparison; the output must not change.
   * @internal
   */
  rowHashBits?: number;
  /** `--pseudonymize-ids`: the output's customer ids are keyed hashes (src/util/pseudonym.ts), computed by DuckDB. Default false. */
  pseudonymizeIds?: boolean;
  /** `--pseudonym-key-file`; default the environment variable SEGTENSOR_PSEUDONYM_KEY. */
  pseudonymKeyFile?: string | null;
  /** Progress lines. */
  log?: (line: string) => void;
}

export { FEATURE_DEFAULTS };

/** The cleaning record stored in the output's metadata. */
export interface FeatureMeta {
  tool: 'segtensor features';
  version: string;
  transactions: string;
  customers: string | null;
  asOf: string;
  churnWindowDays: number | null;
  /** Label columns of the output (`['churned']` with a churn window, else `[]`): never features. */
  labels: string[];
  /** The first and last valid timestamps of the log (ISO 8601, UTC), which bound as-of and the churn window. */
  validRange: { first: string; last: string };
  /** The `--max-invalid` allowance the run was checked against. */
  maxInvalid: number;
  columns: { customer: string; time: string; amount: string; order: string | null; category: string | null };
  rows: {
    read: number;
    duplicatesRemoved: number;
    invalidNullId: number;
    invalidTimestamp: number;
    invalidAmount: number;
    valid: number;
    validBeforeAsOf: number;
  };
  winsorize: { q: number; cap: number; clipped: number } | null;
  output: { rows: number; fromTransactions: number; withoutPurchaseBeforeAsOf: number; notInCustomersTable: number };
  categories: string[];
  cleaning: string[];
  features: Record<string, string>;
  /** How DuckDB ran: customer partitions (1: one pass) and its memory limit. */
  engine: { partitions: number; memoryLimit: string };
}

export interface FeatureResult {
  out: string;
  metaFile: string;
  meta: FeatureMeta;
  columns: string[];
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** Checks the options once, as data. @internal */
export function checkFeatureJob(job: FeatureJob): void {
  const bad = (m: string) => {
    throw new SegtensorError('BAD_OPTION', `features: ${m}`);
  };
  if (!DATE_RE.test(job.asOf) || !validDate(job.asOf)) bad(`--as-of must be a date YYYY-MM-DD; got '${job.asOf}'`);
  if (job.churnWindow != null && (!Number.isSafeInteger(job.churnWindow) || job.churnWindow < 1)) {
    bad(`--churn-window must be a positive integer number of days; got '${job.churnWindow}'`);
  }
  if (job.maxInvalid != null && !(job.maxInvalid >= 0 && job.maxInvalid <= 1)) bad(`--max-invalid must be a fraction in [0, 1]; got '${job.maxInvalid}'`);
  if (job.winsorize != null && !(job.winsorize > 0 && job.winsorize < 0.5)) bad(`--winsorize must be in (0, 0.5); got '${job.winsorize}'`);
  const maxCat = job.maxCategories ?? FEATURE_DEFAULTS.maxCategories;
  if (!Number.isSafeInteger(maxCat) || maxCat < 0 || maxCat > 200) bad(`--max-categories must be an integer in [0, 200]; got '${maxCat}'`);
  if (job.memoryLimit != null && !MEMORY_RE.test(job.memoryLimit)) bad(`--memory-limit must be a size such as '8GB' or '512MiB'; got '${job.memoryLimit}'`);
  const pr = job.partitionRows ?? FEATURE_DEFAULTS.partitionRows;
  if (!Number.isSafeInteger(pr) || pr < 1) bad(`partitionRows must be a positive integer; got '${pr}'`);
  const hb = job.rowHashBits ?? 64;
  if (!Number.isSafeInteger(hb) || hb < 1 || hb > 64) bad(`rowHashBits must be an integer in [1, 64]; got '${hb}'`);
  formatOf(job.out, '--out');
}

const MEMORY_RE = /^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

function validDate(s: string): boolean {
  const t = Date.parse(`${s}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === s;
}

const DAY_US = 86_400_000_000;

/** `1.25%`: a fraction as a percentage for messages. */
function percent(f: number): string {
  return `${Number((100 * f).toPrecision(3))}%`;
}

/** An instant in epoch microseconds as ISO 8601 (UTC), without zero milliseconds. */
function isoOf(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('.000Z', 'Z');
}

/**
 * Checks as-of and the churn window against the log's valid rows (issue 12); returns their
 * first and last timestamps. Rules, with `first` and `last` the extreme valid timestamps:
 * - `first < as-of`: at least one valid row lies strictly before as-of;
 * - `as-of ≤ the start of the day after last's day`: as-of names a day, so a log ending on
 *   2011-12-09 14:00 may be summarised "as of 2011-12-10", when every row counts; later dates
 *   would report recency for days the log does not cover;
 * - with a churn window of W days, `as-of + W days ≤ the start of the day after last's day`:
 *   the window ends within the log's last day, since a customer cannot be seen buying in days
 *   past the log. The log is taken to cover the whole day of its last row, as for as-of: the
 *   generator's log for as-of 2024-01-01 and 90 days ends 2024-03-30 23:59, a second before its
 *   window, and must be accepted; a window reaching one day further is not.
 * `lo` and `hi` are those timestamps in epoch microseconds (null without a valid row), from the
 * survey scan that also counts the categories, before the aggregation.
 * @internal
 */
async function checkRange(job: FeatureJob, tx: Source, run: (sql: string) => Promise<unknown[][]>, lo: unknown, hi: unknown): Promise<FeatureMeta['validRange']> {
  if (lo === null || hi === null) {
    const [[total]] = await run(`SELECT count(*) FROM ${tx.relation}`);
    throw new SegtensorError('EMPTY_TABLE', `${tx.file}: no valid transaction rows among ${Number(total)} (each has a null id, a bad timestamp or a bad amount)`);
  }
  const first = Number(lo);
  const last = Number(hi);
  const asOf = Date.parse(`${job.asOf}T00:00:00Z`) * 1000;
  const span = `${tx.file}'s valid rows run from ${isoOf(first)} to ${isoOf(last)}`;
  if (asOf <= first) {
    throw new SegtensorError('OUT_OF_RANGE', `features: --as-of ${job.asOf} is not after the log's first valid timestamp (${span}); features read only rows strictly before as-of`);
  }
  const latest = (Math.floor(last / DAY_US) + 1) * DAY_US;
  if (asOf > latest) {
    throw new SegtensorError('OUT_OF_RANGE', `features: --as-of ${job.asOf} is after the log (${span}); the latest as-of is ${isoOf(latest).slice(0, 10)}, the day after its last row`);
  }
  const W = job.churnWindow;
  if (W != null && asOf + W * DAY_US > latest) {
    const fits = Math.floor((latest - asOf) / DAY_US);
    throw new SegtensorError(
      'OUT_OF_RANGE',
      `features: --churn-window ${W} ends at ${isoOf(asOf + W * DAY_US)}, after the day of the log's last valid timestamp ${isoOf(last)} (${span}); ` +
        (fits >= 1 ? `use at most ${fits} days from --as-of ${job.asOf}, or an earlier --as-of` : `use an earlier --as-of`),
    );
  }
  return { first: isoOf(first), last: isoOf(last) };
}

/** A column-name-safe form of a category value. */
function shareName(cat: string, used: Set<string>): string {
  let base = `share_${cat.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'blank'}`;
  if (base === 'share_other') base = 'share_other_';
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
  used.add(name);
  return name;
}

const FEATURE_DOCS: Record<string, string> = {
  recency_days: 'calendar days from the date of the last purchase before as-of to as-of; null without a purchase',
  frequency: 'purchases before as-of: distinct orders with a positive amount (rows with a positive amount when no order column); 0 without one',
  monetary_total: 'sum of all valid amounts before as-of, returns included; 0 without rows',
  monetary_mean: 'monetary_total / frequency; null when frequency is 0',
  tenure_days: 'calendar days from the date of the first purchase before as-of to as-of; null without a purchase',
  mean_gap_days: '(last − first purchase time) / (frequency − 1), in days; null when frequency < 2',
  return_count: 'returns before as-of: distinct orders with a negative amount (rows when no order column); 0 without one',
  return_rate: 'return_count / frequency; null when frequency is 0',
  spend_last_90d: 'purchase amounts in [as-of − 90 days, as-of); 0 without',
  spend_prev_90d: 'purchase amounts in [as-of − 180 days, as-of − 90 days); 0 without',
  spend_trend: '(spend_last_90d − spend_prev_90d) / (spend_last_90d + spend_prev_90d), in [−1, 1]; null when both are 0',
  churned: 'true when the customer makes no purchase (positive amount) in [as-of, as-of + churn window); read only from rows after as-of',
};

/** Builds the feature table. Every output is written atomically; the metadata goes to `<out>.meta.json` (and Parquet key-value metadata). */
export async function buildFeatures(job: FeatureJob): Promise<FeatureResult> {
  checkFeatureJob(job);
  const key = jobPseudonymKey(job);
  // Staged and published with the metadata sidecar in one step (src/io/run-dir.ts).
  const run = beginRun({ command: 'features', out: job.out, layout: 'file', sidecars: [metaPathFor(job.out)], options: job, pseudonymKey: key });
  try {
    // Spill inside the staging directory: beside --out (the disk chosen for large files), and
    // removed with it when the run is interrupted.
    const r = await buildInto({ ...job, spillDir: job.spillDir ?? run.staging }, run.primary, run.file(path.basename(metaPathFor(job.out))), key);
    run.input(job.transactions);
    if (job.customers) run.input(job.customers);
    run.count({ rows: r.meta.rows, customers: r.meta.output.rows });
    await run.commit();
    return { ...r, out: job.out, metaFile: metaPathFor(job.out) };
  } finally {
    run.dispose();
  }
}

async function buildInto(job: FeatureJob, dest: string, metaDest: string, key: PseudonymKey | null): Promise<FeatureResult> {
  const conn = await duck();
  const memoryLimit = job.memoryLimit ?? `${Math.floor((os.totalmem() * FEATURE_DEFAULTS.memoryFraction) / 2 ** 20)}MiB`;
  // Spill next to the output by default: that disk was chosen for large files, while
  // os.tmpdir() may be a RAM-backed tmpfs, which would defeat spilling.
  const spill = makeSpillDir(job.spillDir ?? path.dirname(path.resolve(job.out)));
  try {
    await conn.run(`SET memory_limit = ${sqlString(memoryLimit)}`);
    await conn.run(`SET temp_directory = ${sqlString(spill)}`);
    // Every output is ORDER BY'd, so DuckDB need not keep row order between operators (less buffering).
    await conn.run('SET preserve_insertion_order = false');
    return await featuresWith(job, conn, memoryLimit, dest, metaDest, key);
  } finally {
    // Nothing else in segtensor sets these, so DuckDB's defaults are what was there before.
    for (const name of ['memory_limit', 'temp_directory', 'preserve_insertion_order']) await conn.run(`RESET ${name}`).catch(() => {});
    fs.rmSync(spill, { recursive: true, force: true });
  }
}

/** A fresh spill directory under `dir`, or under os.tmpdir() when `dir` is missing or read-only. */
function makeSpillDir(dir: string): string {
  try {
    // The pid in the name lets the next run remove the spill of a killed one (sweepLeftovers).
    return fs.mkdtempSync(path.join(dir, `.segtensor-spill-${process.pid}-`));
  } catch {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-spill-'));
  }
}

const INTEGER_TYPES = new Set<DuckDBTypeId>([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
]);

/** The log's row count: exact for Parquet (footer) and Arrow (temp table); for CSV, bytes / 32, a transaction row's rough lower size. */
async function estimateRows(conn: DuckDBConnection, tx: Source): Promise<number> {
  const format = formatOf(tx.file, '--transactions');
  if (format === 'csv') return Math.ceil(fs.statSync(tx.file).size / 32);
  const sql = format === 'parquet' ? `SELECT sum(num_rows) FROM parquet_file_metadata(${sqlString(tx.file)})` : `SELECT count(*) FROM ${tx.relation}`;
  const [[n]] = (await conn.runAndReadAll(sql)).getRows();
  return Number(n ?? 0);
}

/**
 * Predicates on the raw customer column that split the log into customer-disjoint partitions of
 * about `partitionRows` rows: every row, null ids included, satisfies exactly one. Integer ids
 * are cut at approximate quantiles (so a log sorted by customer is read once in all, row groups
 * outside a range being skipped); other ids by hash. `['TRUE']` when one pass will do.
 * @internal
 */
export async function customerPartitions(conn: DuckDBConnection, tx: Source, cid: SourceColumn, partitionRows: number): Promise<string[]> {
  const n = Math.min(256, Math.ceil((await estimateRows(conn, tx)) / partitionRows));
  if (n <= 1) return ['TRUE'];
  const c = ident(cid.name);
  if (!INTEGER_TYPES.has(cid.typeId)) return Array.from({ length: n }, (_, i) => `hash(${c}) % ${n} = ${i}`);
  const qs = Array.from({ length: n - 1 }, (_, i) => (i + 1) / n);
  const [[list]] = (await conn.runAndReadAll(`SELECT approx_quantile(${c}, [${qs.join(', ')}]) FROM ${tx.relation}`)).getRowsJS();
  const bounds = [...new Set(((list as unknown[] | null) ?? []).filter((b) => b !== null).map(String))];
  if (bounds.length === 0) return ['TRUE'];
  return [
    `(${c} <= ${bounds[0]} OR ${c} IS NULL)`,
    ...bounds.slice(1).map((b, i) => `(${c} > ${bounds[i]} AND ${c} <= ${b})`),
    `${c} > ${bounds[bounds.length - 1]}`,
  ];
}

async function featuresWith(job: FeatureJob, conn: DuckDBConnection, memoryLimit: string, dest: string, metaDest: string, key: PseudonymKey | null): Promise<FeatureResult> {
  const log = job.log ?? (() => {});
  const customerCol = job.customerCol ?? FEATURE_DEFAULTS.customerCol;
  const timeCol = job.timeCol ?? FEATURE_DEFAULTS.timeCol;
  const amountCol = job.amountCol ?? FEATURE_DEFAULTS.amountCol;
  const maxCategories = job.maxCategories ?? FEATURE_DEFAULTS.maxCategories;
  const W = job.churnWindow ?? null;
  const run = async (sql: string) => (await conn.runAndReadAll(sql)).getRows();
  const tag = `st_feat_${process.pid}_${Date.now()}`;

  const tx = await openSource(job.transactions, '--transactions');
  let cust: Source | null = null;
  try {
    const cidCol = column(tx, customerCol, '--customer-col');
    const tsSql = timestampExpr(tx, column(tx, timeCol, '--time-col'), '--time-col');
    const amtSql = amountExpr(tx, column(tx, amountCol, '--amount-col'), '--amount-col');
    const orderCol = job.orderCol ?? null;
    if (orderCol) column(tx, orderCol, '--order-col');
    let categoryCol = job.categoryCol ?? null;
    if (categoryCol) column(tx, categoryCol, '--category-col');
    else if (job.categoryCol === undefined && tx.columns.some((c) => c.name === 'category')) categoryCol = 'category';
    const cidSql = await idExpr(tx, cidCol);

    const asOf = `TIMESTAMP ${sqlString(`${job.asOf} 00:00:00`)}`;
    const asOfDate = `DATE ${sqlString(job.asOf)}`;
    const T = FEATURE_DEFAULTS.trendDays;
    // Work tables of one partition: its rows with their row hash, and the hashes that repeat.
    const rawTable = `${tag}_raw`;
    const dupTable = `${tag}_dup`;
    const taken = new Set(tx.columns.map((c) => c.name));
    const fresh = (base: string) => {
      let name = base;
      while (taken.has(name)) name += '_';
      taken.add(name);
      return name;
    };
    const hashCol = ident(fresh('st_row_hash'));
    const hashBits = job.rowHashBits ?? 64;
    const copiesCol = ident(fresh('st_copies'));
    // hash() of every column: rows equal under GROUP BY (NULL = NULL, NaN = NaN, -0.0 = 0.0) hash
    // alike, so rows whose hash occurs once have no copy. The rows sharing a hash (the copies, and
    // any collision) are grouped exactly, every column compared, as before the prefilter.
    const loadRaw = (part: string) => `CREATE TEMP TABLE ${rawTable} AS
      SELECT *, hash(${tx.columns.map((c) => ident(c.name)).join(', ')})${hashBits < 64 ? ` >> ${64 - hashBits}` : ''} AS ${hashCol} FROM ${tx.relation} WHERE ${part}`;
    // Sorting 8-byte hashes finds the repeats in about half the time of a hash aggregate with one group per row.
    const findRepeats = `CREATE TEMP TABLE ${dupTable} AS
      SELECT DISTINCT h FROM (SELECT ${hashCol} AS h, lag(${hashCol}) OVER (ORDER BY ${hashCol}) AS prev FROM ${rawTable}) WHERE h = prev`;
    const deduped = `SELECT * EXCLUDE (${hashCol}), 1 AS ${copiesCol} FROM ${rawTable} ANTI JOIN ${dupTable} d ON ${rawTable}.${hashCol} = d.h
      UNION ALL
      SELECT *, count(*) AS ${copiesCol} FROM (SELECT * EXCLUDE (${hashCol}) FROM ${rawTable} SEMI JOIN ${dupTable} d ON ${rawTable}.${hashCol} = d.h) GROUP BY ALL`;
    // Typed, flagged rows of the loaded partition after exact-duplicate removal. `bad`: 1 null id, 2 bad timestamp, 3 bad amount.
    const typed = (rows: string) => `SELECT ${cidSql} AS cid, ${tsSql} AS ts, ${amtSql} AS amt,
        ${orderCol ? ident(orderCol) : 'NULL'} AS ord, ${categoryCol ? `CAST(${ident(categoryCol)} AS VARCHAR)` : 'NULL::VARCHAR'} AS cat,
        ${copiesCol} - 1 AS dups
      FROM (${rows})`;
    const flagged = (rows: string) => `SELECT *, CASE WHEN cid IS NULL THEN 1 WHEN ts IS NULL THEN 2 WHEN amt IS NULL OR NOT isfinite(amt) THEN 3 ELSE 0 END AS bad FROM (${typed(rows)})`;

    // Categories and the winsorizing cap come from valid rows before as-of only, so rows after
    // as-of cannot change the column set or any value.
    const rawValid = `SELECT ${tsSql} AS ts, ${amtSql} AS amt${categoryCol ? `, CAST(${ident(categoryCol)} AS VARCHAR) AS cat` : ''}
      FROM ${tx.relation} WHERE ${cidSql} IS NOT NULL`;
    // One scan for both: the valid range (rows with a timestamp and a finite amount) and, per
    // category, its purchases before as-of (a subset of those rows).
    log('checking as-of and the churn window against the log');
    const withCats = categoryCol != null && maxCategories > 0;
    const surveyTable = `${tag}_survey`;
    let range: FeatureMeta['validRange'];
    let categories: string[] = [];
    let hasOther = false;
    try {
      await conn.run(`CREATE TEMP TABLE ${surveyTable} AS SELECT ${withCats ? 'cat' : 'NULL::VARCHAR AS cat'},
          ${withCats ? `count(*) FILTER (ts < ${asOf} AND amt > 0)` : '0'} AS n, min(ts) AS lo, max(ts) AS hi
        FROM (${rawValid}) WHERE ts IS NOT NULL AND isfinite(amt) ${withCats ? 'GROUP BY cat' : ''}`);
      const [[lo, hi]] = await run(`SELECT epoch_us(min(lo)), epoch_us(max(hi)) FROM ${surveyTable}`);
      range = await checkRange(job, tx, (sql) => run(sql), lo, hi);
      if (withCats) {
        log('finding categories');
        const rows = await run(`SELECT cat FROM ${surveyTable} WHERE cat IS NOT NULL AND n > 0 ORDER BY n DESC, cat LIMIT ${maxCategories + 1}`);
        categories = rows.slice(0, maxCategories).map((r) => String(r[0]));
        hasOther = rows.length > maxCategories;
      }
    } finally {
      await conn.run(`DROP TABLE IF EXISTS temp.${surveyTable}`);
    }
    let winsor: FeatureMeta['winsorize'] = null;
    if (job.winsorize != null) {
      log('computing the winsorizing cap');
      const [[cap]] = await run(`SELECT quantile_cont(abs(amt), ${1 - job.winsorize}) FROM (${rawValid}) WHERE ts < ${asOf} AND isfinite(amt)`);
      winsor = { q: job.winsorize, cap: cap === null ? Infinity : Number(cap), clipped: 0 };
    }
    const amtClean = winsor && Number.isFinite(winsor.cap) ? `sign(amt) * least(abs(amt), ${winsor.cap})` : 'amt';
    const clipFlag = winsor && Number.isFinite(winsor.cap) ? `(abs(amt) > ${winsor.cap} AND ts < ${asOf})::INTEGER` : '0';
    // Row class, a small integer (cheaper than text in every FILTER): 0 invalid, 1 purchase,
    // 2 return, 3 zero amount (all before as-of), 4 purchase in the churn window, 5 anything else.
    const cls = `CASE WHEN bad > 0 THEN 0 WHEN ts < ${asOf} THEN (CASE WHEN amt > 0 THEN 1 WHEN amt < 0 THEN 2 ELSE 3 END)
      ${W != null ? `WHEN ts < ${asOf} + INTERVAL ${W} DAY AND amt > 0 THEN 4` : ''} ELSE 5 END`;
    const catExpr = (c: string) => `CASE WHEN cat = ${sqlString(c)} THEN a END`;
    const otherExpr = `CASE WHEN cat IS NULL OR cat NOT IN (${categories.map(sqlString).join(', ') || 'NULL'}) THEN a END`;
    const catCols = [...categories.map((c, i) => [`c${i}`, catExpr(c)]), ...(hasOther ? [['c_other', otherExpr]] : [])];
    // Row level: class, cleaned amount `a`, per-row pieces of every aggregate.
    const rowsSql = (rows: string) => `SELECT cid, ord, ts, bad, dups, clip, cls, a,
        CASE WHEN ts >= ${asOf} - INTERVAL ${T} DAY THEN a END AS s_last,
        CASE WHEN ts >= ${asOf} - INTERVAL ${2 * T} DAY AND ts < ${asOf} - INTERVAL ${T} DAY THEN a END AS s_prev
        ${catCols.map(([n, e]) => `, ${e} AS ${n}`).join('')}
      FROM (SELECT *, ${cls} AS cls, CASE WHEN bad = 0 THEN ${amtClean} END AS a, CASE WHEN bad = 0 THEN ${clipFlag} ELSE 0 END AS clip FROM (${flagged(rows)}))`;
    const P = `FILTER (cls = 1)`;
    const pre = `FILTER (cls IN (1, 2, 3))`;
    const aggTable = `${tag}_agg`;
    const parts = await customerPartitions(conn, tx, cidCol, job.partitionRows ?? FEATURE_DEFAULTS.partitionRows);
    // Events: one per row without an order column (counted here), else one per (customer,
    // order, class) (counted by eventsSql). Every other aggregate sums rows directly: a sum over
    // an order's rows and then over orders is the same sum, in another order.
    const perCustomer = `SELECT cid,
        count(*) ${pre} AS n_pre_rows,
        min(ts) ${P} AS first_ts,
        coalesce(sum(a) ${pre}, 0) AS monetary_total,
        coalesce(sum(s_last) ${P}, 0) AS spend_last_90d,
        coalesce(sum(s_prev) ${P}, 0) AS spend_prev_90d,
        sum(a) ${P} AS gross${catCols.map(([n]) => `, sum(${n}) ${P} AS ${n}`).join('')},
        count(*) FILTER (cls = 4) > 0 AS bought_in_window,
        count(*) AS n_rows, sum(dups) AS dups, ${winsor && Number.isFinite(winsor.cap) ? 'sum(clip)' : '0'} AS clip,
        count(*) FILTER (bad = 1) AS bad_id, count(*) FILTER (bad = 2) AS bad_ts, count(*) FILTER (bad = 3) AS bad_amt
        ${orderCol ? '' : `, count(*) ${P} AS frequency, max(ts) ${P} AS last_ts, count(*) FILTER (cls = 2) AS return_count`}
      FROM (${rowsSql(deduped)}) GROUP BY cid`;
    // With an order column, an event is timed at its earliest row. Copies of a row fall in the
    // row's event and leave its time as it is, so events read the partition before duplicate
    // removal. Only purchase and return rows enter this hash table, which has a group for nearly
    // each of them (15 M rows: 10.4 M events).
    const eventsSql = `SELECT cid, count(*) ${P} AS frequency, max(t) ${P} AS last_ts, count(*) FILTER (cls = 2) AS return_count
      FROM (SELECT cid, ord, cls, min(ts) AS t FROM (${rowsSql(`SELECT * EXCLUDE (${hashCol}), 1 AS ${copiesCol} FROM ${rawTable}`)})
        WHERE cls IN (1, 2) GROUP BY cid, ord, cls)
      GROUP BY cid`;
    const withEvents = orderCol
      ? `SELECT s.*, coalesce(e.frequency, 0) AS frequency, e.last_ts, coalesce(e.return_count, 0) AS return_count
          FROM (${perCustomer}) s LEFT JOIN (${eventsSql}) e ON s.cid = e.cid`
      : perCustomer;
    const aggSql = `SELECT *, n_pre_rows > 0 AS has_pre, n_rows - bad_id - bad_ts - bad_amt AS n_valid FROM (${withEvents})`;
    try {
      for (let i = 0; i < parts.length; i++) {
        log(parts.length > 1 ? `aggregating transactions: customer partition ${i + 1}/${parts.length}` : 'aggregating transactions');
        try {
          await conn.run(loadRaw(parts[i]));
          await conn.run(findRepeats);
          await conn.run(i === 0 ? `CREATE TEMP TABLE ${aggTable} AS ${aggSql}` : `INSERT INTO ${aggTable} BY NAME ${aggSql}`);
        } finally {
          await conn.run(`DROP TABLE IF EXISTS temp.${rawTable}`);
          await conn.run(`DROP TABLE IF EXISTS temp.${dupTable}`);
        }
      }
      const [stats] = await run(
        `SELECT sum(n_rows + dups), sum(dups), sum(bad_id), sum(bad_ts), sum(bad_amt), coalesce(sum(n_valid), 0), coalesce(sum(n_pre_rows), 0), coalesce(sum(clip), 0),
           count(*) FILTER (cid IS NOT NULL AND has_pre) FROM ${aggTable}`,
      );
      const n = stats.map((v) => Number(v ?? 0));
      if (winsor) winsor.clipped = n[7];
      const maxInvalid = job.maxInvalid ?? FEATURE_DEFAULTS.maxInvalid;
      const nInvalid = n[2] + n[3] + n[4];
      if (nInvalid > 0) {
        const what =
          `${nInvalid} of ${n[0]} rows read from ${tx.file} are invalid (${percent(nInvalid / n[0])}: ${n[2]} null '${customerCol}', ` +
          `${n[3]} null or unparseable '${timeCol}', ${n[4]} null, unparseable or non-finite '${amountCol}')`;
        if (nInvalid > maxInvalid * n[0]) {
          throw new SegtensorError('TOO_MANY_INVALID', `features: ${what}, more than --max-invalid ${maxInvalid} (${percent(maxInvalid)}) allows; fix the log or raise --max-invalid`);
        }
        log(`notice: ${what}; skipped (within --max-invalid ${maxInvalid}), counted in the metadata`);
      }

      // The output relation: customers table (if any) left/full-joined with the aggregates.
      const usedNames = new Set<string>();
      const shareCols: [string, string][] = categories.map((c, i) => [`c${i}`, shareName(c, usedNames)]);
      if (hasOther) shareCols.push(['c_other', 'share_other']);
      const featureSql = (g: string) => [
        `CASE WHEN ${g}.last_ts IS NOT NULL THEN (${asOfDate} - CAST(${g}.last_ts AS DATE))::INTEGER END AS recency_days`,
        `coalesce(${g}.frequency, 0)::BIGINT AS frequency`,
        `coalesce(${g}.monetary_total, 0)::DOUBLE AS monetary_total`,
        `CASE WHEN ${g}.frequency > 0 THEN ${g}.monetary_total / ${g}.frequency END AS monetary_mean`,
        `CASE WHEN ${g}.first_ts IS NOT NULL THEN (${asOfDate} - CAST(${g}.first_ts AS DATE))::INTEGER END AS tenure_days`,
        `CASE WHEN ${g}.frequency >= 2 THEN epoch(${g}.last_ts - ${g}.first_ts) / 86400.0 / (${g}.frequency - 1) END AS mean_gap_days`,
        `coalesce(${g}.return_count, 0)::BIGINT AS return_count`,
        `CASE WHEN ${g}.frequency > 0 THEN ${g}.return_count / ${g}.frequency END AS return_rate`,
        ...shareCols.map(([src, name]) => `CASE WHEN ${g}.gross > 0 THEN coalesce(${g}.${src}, 0) / ${g}.gross END AS ${ident(name)}`),
        `coalesce(${g}.spend_last_90d, 0)::DOUBLE AS spend_last_90d`,
        `coalesce(${g}.spend_prev_90d, 0)::DOUBLE AS spend_prev_90d`,
        `CASE WHEN coalesce(${g}.spend_last_90d, 0) + coalesce(${g}.spend_prev_90d, 0) > 0 THEN (coalesce(${g}.spend_last_90d, 0) - coalesce(${g}.spend_prev_90d, 0)) / (coalesce(${g}.spend_last_90d, 0) + coalesce(${g}.spend_prev_90d, 0)) END AS spend_trend`,
        ...(W != null ? [`NOT coalesce(${g}.bought_in_window, false) AS churned`] : []),
      ];
      const featureNames = ['recency_days', 'frequency', 'monetary_total', 'monetary_mean', 'tenure_days', 'mean_gap_days', 'return_count', 'return_rate',
        ...shareCols.map(([, name]) => name), 'spend_last_90d', 'spend_prev_90d', 'spend_trend', ...(W != null ? ['churned'] : [])];
      const id = ident(customerCol);
      let select: string;
      let notInCustomers = 0;
      let withoutPurchase = 0;
      let outRows = 0;
      if (job.customers) {
        cust = await openSource(job.customers, '--customers');
        column(cust, customerCol, '--customer-col');
        const clash = cust.columns.find((c) => c.name !== customerCol && featureNames.includes(c.name));
        if (clash) {
          throw new SegtensorError('BAD_INPUT', `${cust.file}: column '${clash.name}' (--customers) has the name of a feature column; rename it`);
        }
        const [dup] = await run(`SELECT ${id}, count(*) AS n FROM ${cust.relation} GROUP BY ${id} HAVING count(*) > 1 LIMIT 1`);
        if (dup) throw new SegtensorError('DUPLICATE_ID', `${cust.file}: id column '${customerCol}' (--customers) repeats '${dup[0]}' (${dup[1]} rows)`);
        const attrs = cust.columns.filter((c) => c.name !== customerCol).map((c) => `c.${ident(c.name)}`);
        // Ids as written, as in the log: whole-number DOUBLE ids join and print as integers.
        const custIds = `(SELECT * FROM (SELECT * REPLACE (${await idExpr(cust, column(cust, customerCol, '--customer-col'))} AS ${id}) FROM ${cust.relation}) WHERE ${id} IS NOT NULL)`;
        // Every customer of the table, plus any customer who bought before as-of but is missing from it.
        select = `SELECT coalesce(c.${id}, g.cid) AS ${id}, ${featureSql('g').join(', ')}${attrs.map((a) => `, ${a}`).join('')}
          FROM ${custIds} c
          FULL OUTER JOIN (SELECT * FROM ${aggTable} WHERE cid IS NOT NULL) g ON c.${id} = g.cid
          WHERE c.${id} IS NOT NULL OR g.has_pre
          ORDER BY 1`;
        const [[a, b, t]] = await run(
          `SELECT count(*) FILTER (c.${id} IS NULL), count(*) FILTER (NOT coalesce(g.has_pre, false)), count(*)
           FROM ${custIds} c
           FULL OUTER JOIN (SELECT cid, has_pre FROM ${aggTable} WHERE cid IS NOT NULL) g ON c.${id} = g.cid
           WHERE c.${id} IS NOT NULL OR g.has_pre`,
        ).catch((e) => {
          throw new SegtensorError('BAD_INPUT', `${cust!.file}: cannot join '${customerCol}' with ${tx.file}'s (${String(e.message).split('\n')[0]})`);
        });
        notInCustomers = Number(a);
        withoutPurchase = Number(b);
        outRows = Number(t);
      } else {
        select = `SELECT g.cid AS ${id}, ${featureSql('g').join(', ')} FROM ${aggTable} g WHERE g.cid IS NOT NULL AND g.has_pre ORDER BY 1`;
        outRows = n[8];
      }
      // --pseudonymize-ids: HMAC-SHA-256 of the id's text in SQL, its padded keys in a temp table
      // filled through parameters, so neither the key nor anything derived from it is in a query's
      // text (which DuckDB repeats in its errors).
      let outSql = select;
      if (key) {
        const pads = hmacPads(key);
        await conn.run(`CREATE OR REPLACE TEMP TABLE ${tag}_key AS SELECT unhex($1) AS ip, unhex($2) AS op`, [pads.inner, pads.outer]);
        outSql = `SELECT t.* REPLACE (left(sha256(k.op || unhex(sha256(k.ip || encode(CAST(t.${id} AS VARCHAR))))), ${PSEUDONYM_HEX}) AS ${id})
          FROM (${select}) t CROSS JOIN ${tag}_key k ORDER BY 1`;
      }
      const meta: FeatureMeta = {
        tool: 'segtensor features',
        version: VERSION,
        transactions: job.transactions,
        customers: job.customers ?? null,
        asOf: job.asOf,
        churnWindowDays: W,
        labels: W != null ? ['churned'] : [],
        validRange: range,
        maxInvalid,
        columns: { customer: customerCol, time: timeCol, amount: amountCol, order: orderCol, category: categoryCol },
        rows: {
          read: n[0],
          duplicatesRemoved: n[1],
          invalidNullId: n[2],
          invalidTimestamp: n[3],
          invalidAmount: n[4],
          valid: n[5],
          validBeforeAsOf: n[6],
        },
        winsorize: winsor,
        output: { rows: outRows, fromTransactions: n[8], withoutPurchaseBeforeAsOf: withoutPurchase, notInCustomersTable: notInCustomers },
        categories: [...categories, ...(hasOther ? ['(other)'] : [])],
        cleaning: [
          `exact duplicate rows removed: ${n[1]} (every column equal; one copy kept)`,
          `rows with a null '${customerCol}' skipped: ${n[2]}`,
          `rows with a null or unparseable '${timeCol}' skipped: ${n[3]}`,
          `rows with a null, unparseable or non-finite '${amountCol}' skipped: ${n[4]}`,
          winsor
            ? `|${amountCol}| capped at ${winsor.cap} (its ${1 - winsor.q} quantile over valid rows before as-of, before duplicate removal): ${winsor.clipped} rows clipped`
            : 'no winsorizing',
        ],
        features: Object.fromEntries(
          featureNames.map((f) => [f, FEATURE_DOCS[f] ?? `share of purchase amount before as-of in category ${categories[shareCols.findIndex(([, nm]) => nm === f)] ?? '(other)'}; null when frequency is 0`]),
        ),
        engine: { partitions: parts.length, memoryLimit },
      };
      log(`writing ${job.out}`);
      await writeOutput(outSql, dest, meta);
      atomicWrite(metaDest, JSON.stringify(meta, null, 2) + '\n');
      const probe = await conn.run(`SELECT * FROM (${outSql}) LIMIT 0`);
      return { out: job.out, metaFile: metaPathFor(job.out), meta, columns: probe.columnNames() };
    } finally {
      await conn.run(`DROP TABLE IF EXISTS temp.${aggTable}`);
      await conn.run(`DROP TABLE IF EXISTS temp.${tag}_key`);
    }
  } finally {
    await tx.dispose();
    await (cust as Source | null)?.dispose();
  }
}

/**
 * Writes the feature table. Parquet and Arrow carry the metadata in the file's own schema
 * metadata: `segtensor:features` (the whole record) and `segtensor.labels` (a JSON array of
 * label column names, read back by `readLabelColumns` in `src/io/table-meta.ts`), so the label
 * marking travels with the file; CSV has only the sidecar.
 */
async function writeOutput(sql: string, dest: string, meta: FeatureMeta): Promise<void> {
  const conn = await duck();
  const format = formatOf(dest, '--out');
  const kv: [string, string][] = [
    ['segtensor:features', JSON.stringify(meta)],
    [LABELS_KEY, JSON.stringify(meta.labels)],
  ];
  if (format === 'arrow') {
    await copyQueryToArrow(sql, dest, new Map(kv));
    return;
  }
  const options =
    format === 'csv'
      ? 'FORMAT csv, HEADER true'
      : `FORMAT parquet, COMPRESSION zstd, KV_METADATA {${kv.map(([k, v]) => `${sqlString(k)}: ${sqlString(v)}`).join(', ')}}`;
  await atomicProduce(dest, async (tmp) => {
    await conn.run(`COPY (${sql}) TO ${sqlString(tmp)} (${options})`);
  });
}

