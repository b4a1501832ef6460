/** `segtensor features`: parses options, calls {@link buildFeatures}, prints. @internal */
import { Command } from 'commander';
import { FEATURE_DEFAULTS } from '../features/defaults.js';
import { addPseudonymFlags, floatOption, intOption } from './options.js';
import { progress } from './progress.js';

interface FeaturesFlags {
  transactions: string;
  asOf: string;
  out: string;
  customerCol: string;
  timeCol: string;
  amountCol: string;
  orderCol?: string;
  categoryCol?: string;
  customers?: string;
  churnWindow?: number;
  winsorize?: number;
  maxCategories: number;
  maxInvalid: number;
}

export function registerFeatures(program: Command): void {
  const cmd = program
    .command('features')
    .description('per-customer RFM and behaviour features from a transaction log, as of a date (DuckDB)')
    .requiredOption('-t, --transactions <table>', 'transaction log: .parquet, .csv or .arrow/.arrows/.feather')
    .requiredOption('--as-of <date>', 'YYYY-MM-DD (00:00 UTC); only rows strictly before it feed the features; after the log\'s first valid timestamp, at most the day after its last')
    .requiredOption('-o, --out <table>', 'feature table; format by extension (.parquet, .csv, .arrow); metadata also in <out>.meta.json')
    .option('--customer-col <col>', 'customer id column (the output keeps its name)', FEATURE_DEFAULTS.customerCol)
    .option('--time-col <col>', 'timestamp column: timestamps, dates or ISO 8601 text', FEATURE_DEFAULTS.timeCol)
    .option('--amount-col <col>', 'amount column; returns are negative', FEATURE_DEFAULTS.amountCol)
    .option('--order-col <col>', 'order id column: rows of one order count as one purchase (default: each row is one)')
    .option('--category-col <col>', "category column for spend shares (default: 'category' when present)")
    .option('--customers <table>', 'customer attributes joined by the customer column and passed through; customers without purchases still appear')
    .option(
      '--churn-window <days>',
      "add the label 'churned' (marked as a label in the metadata): no purchase in [as-of, as-of + days), from rows after as-of only; the window must end within the day of the log's last timestamp",
      intOption('--churn-window', 1),
    )
    .option(
      '--max-invalid <fraction>',
      'invalid rows (null id, bad timestamp, bad amount) allowed, as a fraction of rows read; more fail the run',
      floatOption('--max-invalid', 0),
      FEATURE_DEFAULTS.maxInvalid,
    )
    .option('--winsorize <q>', 'cap |amount| at its (1 - q) quantile over valid rows before as-of, q in (0, 0.5)', floatOption('--winsorize', 0))
    .option('--max-categories <n>', 'category share columns at most (rarer ones go to share_other)', intOption('--max-categories', 0, 200), FEATURE_DEFAULTS.maxCategories)
    .option('--memory-limit <size>', "DuckDB's memory limit, e.g. 8GB; beyond it work spills to a temporary folder beside --out (default: 60% of RAM)");
  addPseudonymFlags(cmd)
    .addHelpText(
      'after',
      '\nExample:\n  segtensor features --transactions tx.parquet --as-of 2024-01-01 --churn-window 90 --customers customers.parquet --out features.parquet',
    )
    .action(async (flags: FeaturesFlags, c: Command) => {
      const p = progress(Boolean(c.optsWithGlobals().quiet));
      // Loaded here, not at start-up: DuckDB costs ~0.5 s to import.
      const { buildFeatures } = await import('../features/rfm.js');
      // Notices (e.g. invalid rows skipped) are kept on stderr even with --quiet; progress is not.
      const r = await buildFeatures({ ...flags, log: (l) => p.message(l) });
      p.done();
      const m = r.meta;
      console.log(
        `read ${m.rows.read} rows: ${m.rows.duplicatesRemoved} exact duplicates removed, invalid rows skipped: ` +
          `${m.rows.invalidNullId} null id, ${m.rows.invalidTimestamp} bad timestamp, ${m.rows.invalidAmount} bad amount` +
          (m.winsorize ? `; ${m.winsorize.clipped} amounts capped at ${m.winsorize.cap}` : ''),
      );
      console.log(
        `wrote ${m.output.rows} customers × ${r.columns.length} columns to ${r.out} (metadata: ${r.metaFile})` +
          (m.labels.length ? `; label columns, not features: ${m.labels.join(', ')}` : ''),
      );
      p.event('done', { outputs: [r.out, r.metaFile], rowsRead: m.rows.read, customers: m.output.rows });
    });
}
