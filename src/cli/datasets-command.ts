/** `segtensor datasets generate`: parses options, calls {@link generatePopulation}, prints. @internal */
import { Command } from 'commander';
import { POPULATION_DEFAULTS } from '../datasets/population/spec.js';
import { intOption } from './options.js';
import { progress } from './progress.js';

interface GenerateFlags {
  customers: number;
  seed: number;
  out: string;
  asOf: string;
  periodStart: string;
  churnWindow: number;
  arrow?: boolean;
}

export function registerDatasets(program: Command): void {
  const datasets = program.command('datasets').description('synthetic data sets with known ground truth');
  datasets
    .command('generate')
    .description('generate a customer population: customers, a transaction log, true segments and churn (Parquet; Arrow IPC with --arrow)')
    .requiredOption('-n, --customers <n>', 'number of customers', intOption('--customers', 1, 1e9))
    .requiredOption('-o, --out <dir>', 'output directory (created if missing)')
    .option('--seed <n>', 'seed: the same seed writes the same bytes', intOption('--seed', 0, 2 ** 53), POPULATION_DEFAULTS.seed)
    .option('--as-of <date>', 'as-of date YYYY-MM-DD: history before it, churn window from it', POPULATION_DEFAULTS.asOf)
    .option('--period-start <date>', 'first day of the transaction log, YYYY-MM-DD', POPULATION_DEFAULTS.periodStart)
    .option('--churn-window <days>', 'churn window in days; the log ends at as-of + window', intOption('--churn-window', 1, 3650), POPULATION_DEFAULTS.churnWindowDays)
    .option('--arrow', 'also write customers.arrow, transactions.arrow and truth.arrow (Arrow IPC files)')
    .addHelpText(
      'after',
      '\nOutputs: customers.parquet, transactions.parquet, truth.parquet, manifest.json (rules in datasets/README.md)\n' +
        'Example:\n  segtensor datasets generate --customers 1000000 --seed 1 --out data/pop',
    )
    .action(async (flags: GenerateFlags, c: Command) => {
      const p = progress(Boolean(c.optsWithGlobals().quiet));
      const t0 = performance.now();
      // Loaded here, not at start-up: DuckDB costs ~0.5 s to import.
      const { generatePopulation } = await import('../datasets/population/generate.js');
      const r = await generatePopulation({
        customers: flags.customers,
        seed: flags.seed,
        out: flags.out,
        asOf: flags.asOf,
        periodStart: flags.periodStart,
        churnWindowDays: flags.churnWindow,
        arrow: Boolean(flags.arrow),
        log: (l) => p.step(l),
      });
      p.done();
      const s = (performance.now() - t0) / 1000;
      const m = r.manifest;
      console.log(
        `${m.counts.customers} customers, ${m.counts.transactions} transaction rows (${m.periodStart} to ${m.periodEnd}), ` +
          `${m.counts.churned} churned after ${m.asOf} within ${m.churnWindowDays} days; ${s.toFixed(1)} s`,
      );
      console.log(`wrote ${r.files.join(', ')}`);
    });
}
