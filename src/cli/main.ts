#!/usr/bin/env node
/**
 * The segtensor command line. Commands parse options, call the library and print; nothing else.
 * This is the only module that reads process.argv or sets the exit code.
 *
 * Exit codes: 0 success; 1 bad input data or an unwritable output (one line on stderr naming the
 * file, column, row or option); 2 a bad option or job file; 70 an internal error.
 */
import { VERSION } from '../version.js';

// `--version` needs nothing else: answered before commander and the commands load.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

const { CommanderError } = await import('commander');
const { BackendUnavailableError } = await import('../engine/backend.js');
const { SegtensorError } = await import('../errors.js');
const { abortAllRuns, setInvocation } = await import('../io/run-dir.js');
const { buildProgram } = await import('./program.js');
const { badLogFormatEnv, errorLine, resolveLogFormat, setLogFormat } = await import('./progress.js');

// The log format is known before parsing, so that usage errors come out in it too.
const argv = process.argv.slice(2);
const badEnv = badLogFormatEnv(process.env);
if (badEnv) {
  process.stderr.write(`segtensor: error [BAD_OPTION]: ${badEnv}\n`);
  process.exit(2);
}
setLogFormat(resolveLogFormat(argv, process.env, process.stderr.isTTY === true), commandOf(argv));
const program = buildProgram();

/** The command named on the command line (`fit`, `churn predict`), for log events. */
function commandOf(args: string[]): string | null {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    if (args[i] === '--log-format') i++;
    else if (!args[i].startsWith('-')) words.push(args[i]);
    else if (words.length) break;
  }
  if (!words.length) return null;
  return ['churn', 'datasets'].includes(words[0]) && words[1] ? words.join(' ') : words[0];
}

// A scheduler's SIGTERM or a user's Ctrl-C: remove this run's staging directory (nothing was
// published, so the previous outputs stay whole) and exit non-zero with one line.
for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  process.on(sig, () => {
    const { stopped, published } = abortAllRuns();
    // Late: the command had published its outputs and was finishing; say so rather than claim
    // that nothing was published.
    if (stopped === 0 && published > 0) fail(code, 'INTERRUPTED', `${sig} received after the outputs were published; they are complete`);
    fail(code, 'INTERRUPTED', `${sig} received; stopped before publishing, earlier outputs are intact`);
  });
}

function fail(exitCode: number, code: string, message: string): never {
  process.stderr.write(errorLine(code, message, exitCode));
  process.exit(exitCode);
}

try {
  // Recorded in the manifest of every run this command writes (`segtensor run` sets each step's).
  setInvocation(argv);
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are "errors" to commander; they already printed.
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    process.exit(2);
  }
  if (e instanceof SegtensorError) fail(e.code === 'BAD_OPTION' || e.code === 'BAD_JOB' ? 2 : 1, e.code, e.message);
  if (e instanceof BackendUnavailableError) fail(1, e.code, e.message);
  if (e instanceof TypeError && /^--\w/.test(e.message)) fail(2, 'BAD_OPTION', e.message);
  if (process.env.SEGTENSOR_DEBUG) console.error(e);
  fail(70, 'INTERNAL', `${e instanceof Error ? e.message.split('\n')[0] : String(e)} (set SEGTENSOR_DEBUG=1 for details)`);
}
