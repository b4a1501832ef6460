/**
 * `segtensor datasets generate`: writes a synthetic customer population with known segments
 * and churn to a directory (customers.parquet, transactions.parquet, truth.parquet,
 * manifest.json; optionally the three tables as Arrow IPC too). DuckDB produces and writes
 * every row in streamed row groups, so 10 million customers never sit in memory.
 *
 * @example
 * const r = await generatePopulation({ customers: 20_000, seed: 7, out: 'data/pop' });
 * r.manifest.counts.transactions;
 */
import path from 'node:path';
import { SegtensorError } from '../../errors.js';
import { atomicProduce, atomicWrite, ensureWritableDir } from '../../io/atomic.js';
import { duck, sqlString } from '../../io/duckdb-reader.js';
import { copyQueryToArrow } from '../../features/duck-arrow.js';
import { customersQuery, MACROS, transactionsQuery, truthQuery } from './sql.js';
import { CATEGORIES, CHURN, CHURN_RULE_TEXT, NOISE, POPULATION_DEFAULTS, SEGMENTS, type PopulationOptions } from './spec.js';

export interface GenerateJob extends Partial<Omit<PopulationOptions, 'customers'>> {
  customers: number;
  /** Output directory (created if missing). */
  out: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** manifest.json: what was generated and by which rules. */
export interface PopulationManifest {
  generator: 'segtensor datasets generate';
  formatVersion: 1;
  seed: number;
  counts: { customers: number; transactions: number; churned: number; segments: number[] };
  periodStart: string;
  /** Last day of the log (inclusive); the log covers [periodStart, asOf + churnWindowDays). */
  periodEnd: string;
  asOf: string;
  churnWindowDays: number;
  segments: { id: number; name: string; share: number }[];
  categories: string[];
  churnRule: string;
  churnCoefficients: typeof CHURN;
  noise: typeof NOISE;
  files: Record<string, string>;
  duckdbVersion: string;
}

export interface GenerateResult {
  manifest: PopulationManifest;
  files: string[];
  /** Wall-clock milliseconds per output. */
  timingsMs: Record<string, number>;
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

function checkDate(name: string, v: string): void {
  if (!DATE_RE.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`)) || new Date(`${v}T00:00:00Z`).toISOString().slice(0, 10) !== v) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: '${name}' must be a date YYYY-MM-DD; got '${v}'`);
  }
}

/** Checks the options once, as data; returns the filled-in options. */
export function resolvePopulationOptions(job: GenerateJob): PopulationOptions {
  const o: PopulationOptions = { ...POPULATION_DEFAULTS, ...stripUndefined(job), customers: job.customers };
  if (!Number.isSafeInteger(o.customers) || o.customers < 1 || o.customers > 1e9) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: 'customers' must be an integer in [1, 1e9]; got ${o.customers}`);
  }
  if (!Number.isSafeInteger(o.seed) || o.seed < 0 || o.seed > 2 ** 53) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: 'seed' must be a non-negative integer; got ${o.seed}`);
  }
  checkDate('periodStart', o.periodStart);
  checkDate('asOf', o.asOf);
  const history = (Date.parse(o.asOf) - Date.parse(o.periodStart)) / 86_400_000;
  if (history < 400) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: the history from periodStart to asOf must be at least 400 days; got ${history} (${o.periodStart} to ${o.asOf})`);
  }
  if (!Number.isSafeInteger(o.churnWindowDays) || o.churnWindowDays < 1 || o.churnWindowDays > 3650) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: 'churnWindowDays' must be an integer in [1, 3650]; got ${o.churnWindowDays}`);
  }
  if (!Number.isSafeInteger(o.rowGroupSize) || o.rowGroupSize < 1024) {
    throw new SegtensorError('BAD_OPTION', `datasets generate: 'rowGroupSize' must be an integer >= 1024; got ${o.rowGroupSize}`);
  }
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** Generates the population into `job.out`. Every file is written atomically. */
export async function generatePopulation(job: GenerateJob): Promise<GenerateResult> {
  const o = resolvePopulationOptions(job);
  const log = job.log ?? (() => {});
  ensureWritableDir(job.out);
  const conn = await duck();
  for (const m of MACROS) await conn.run(m);
  const ids = `st_population_ids_${process.pid}_${Date.now()}`;
  // A real table (not range()) as the source, so DuckDB scans it with every thread.
  await conn.run(`CREATE TEMP TABLE ${ids} AS SELECT range AS i FROM range(${o.customers})`);
  const files: string[] = [];
  const timingsMs: Record<string, number> = {};
  const copy = async (name: string, sql: string) => {
    const dest = path.join(job.out, name);
    const t0 = performance.now();
    log(`writing ${dest}`);
    await atomicProduce(dest, async (tmp) => {
      await conn.run(`COPY (${sql}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${o.rowGroupSize})`);
    });
    timingsMs[name] = performance.now() - t0;
    files.push(dest);
    return dest;
  };
  try {
    const customersFile = await copy('customers.parquet', customersQuery(o, ids));
    const truthFile = await copy('truth.parquet', truthQuery(o, ids));
    const txFile = await copy('transactions.parquet', transactionsQuery(o, ids));
    const count = async (sql: string) => (await conn.runAndReadAll(sql)).getRows();
    const [[nTx]] = await count(`SELECT count(*) FROM read_parquet(${sqlString(txFile)})`);
    const segRows = await count(
      `SELECT segment, count(*), sum(churned::INTEGER) FROM read_parquet(${sqlString(truthFile)}) GROUP BY segment ORDER BY segment`,
    );
    const segments = SEGMENTS.map((s) => Number(segRows.find((r) => Number(r[0]) === s.id)?.[1] ?? 0));
    const churned = segRows.reduce((a, r) => a + Number(r[2] ?? 0), 0);
    const [[version]] = await count('SELECT version()');
    const manifest: PopulationManifest = {
      generator: 'segtensor datasets generate',
      formatVersion: 1,
      seed: o.seed,
      counts: { customers: o.customers, transactions: Number(nTx), churned, segments },
      periodStart: o.periodStart,
      periodEnd: addDays(o.asOf, o.churnWindowDays - 1),
      asOf: o.asOf,
      churnWindowDays: o.churnWindowDays,
      segments: SEGMENTS.map((s) => ({ id: s.id, name: s.name, share: s.share })),
      categories: [...CATEGORIES],
      churnRule: CHURN_RULE_TEXT,
      churnCoefficients: CHURN,
      noise: NOISE,
      files: { customers: 'customers.parquet', transactions: 'transactions.parquet', truth: 'truth.parquet' },
      duckdbVersion: String(version),
    };
    if (o.arrow) {
      for (const [key, file] of [['customers', customersFile], ['transactions', txFile], ['truth', truthFile]] as const) {
        const dest = file.replace(/\.parquet$/, '.arrow');
        const t0 = performance.now();
        log(`writing ${dest}`);
        await copyQueryToArrow(`SELECT * FROM read_parquet(${sqlString(file)})`, dest);
        timingsMs[path.basename(dest)] = performance.now() - t0;
        manifest.files[`${key}Arrow`] = path.basename(dest);
        files.push(dest);
      }
    }
    const manifestFile = path.join(job.out, 'manifest.json');
    atomicWrite(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    files.push(manifestFile);
    return { manifest, files, timingsMs };
  } finally {
    await conn.run(`DROP TABLE IF EXISTS temp.${ids}`);
  }
}
