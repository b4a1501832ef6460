/**
 * The segtensor program: every command registered on one commander `Command`. Apart from
 * main.ts so that `segtensor run` can build a fresh program per job step (commander keeps parsed
 * option values on the command objects, so one program parses one command line) and read the
 * commands' options to validate job files against them.
 *
 * Only light modules load here; each command imports its pipeline when it runs.
 *
 * @example
 * await buildProgram().parseAsync(['node', 'segtensor', 'fit', '--input', 'x.csv', '--k', '6', '--out', 'out/']);
 */
import { Command, Option } from 'commander';
import { VERSION } from '../version.js';
import { errorLine, LOG_FORMATS } from './progress.js';
import { registerDemo, registerDoctor, registerFit, registerPredict, registerReport, registerSweep, registerUpdate } from './commands.js';
import { registerDatasets } from './datasets-command.js';
import { registerFeatures } from './features-command.js';
import { registerChurn } from './churn-command.js';
import { registerRun } from './run-command.js';

/** A new program with every command; parse one command line with it. */
export function buildProgram(): Command {
  const program = new Command('segtensor')
    .description('GPU-accelerated customer segmentation: K-Means and friends on Arrow, Parquet and CSV tables.')
    .version(VERSION)
    .addOption(new Option('-q, --quiet', 'no progress output, even on a terminal'))
    .addOption(
      new Option('--log-format <format>', 'text: progress bars on a terminal, notices only off one; json: one JSON line per event on stderr (start, phase, iteration, notice, warning, done, error); auto: text on a terminal, json off one (default: $SEGTENSOR_LOG_FORMAT, else auto)')
        .choices(LOG_FORMATS)
        .default('auto'),
    )
    .configureOutput({
      // Commander's own usage errors get the same one-line shape as ours.
      outputError: (str, write) => write(errorLine('BAD_OPTION', str.replace(/^error: /, '').trimEnd() + ' (see --help)', 2)),
    })
    .exitOverride();

  registerFit(program);
  registerSweep(program);
  registerUpdate(program);
  registerPredict(program);
  registerDemo(program);
  registerReport(program);
  registerDoctor(program);
  registerDatasets(program);
  registerFeatures(program);
  registerChurn(program);
  registerRun(program);
  return program;
}
