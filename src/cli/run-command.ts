/** `segtensor run`: parses options, loads and plans or runs a job file (src/jobs), prints. @internal */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { SegtensorError } from '../errors.js';
import { parseRunDate, parseVarAssignment } from '../jobs/variables.js';

interface RunFlags {
  plan?: boolean;
  date?: string;
  var: [string, string][];
  force?: boolean;
}

/** Commander wants its own error type from a parser to print it as a usage error. */
function asArgument<T>(parse: (v: string) => T) {
  return (v: string): T => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** POSIX shell quoting, so a printed plan line can be pasted into a shell. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Commander prints its own errors; a step's are printed once, by main, with the step named. */
function silence(cmd: Command): void {
  cmd.configureOutput({ outputError: () => {} });
  for (const sub of cmd.commands) silence(sub);
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a job file (YAML or JSON): segtensor commands as steps, with ${DATE}-style variables; steps whose published run is up to date are skipped')
    .argument('<job>', 'job file: .yaml/.yml, or .json')
    .option('--plan', 'print each step with its command line and whether it would run or be skipped (and why); changes nothing')
    .option('--date <YYYY-MM-DD>', 'the run date: ${DATE}, ${YESTERDAY}, ${DATE_COMPACT} (default: today, UTC)', asArgument((v) => parseRunDate(v)))
    .option('--var <name=value>', "set a job variable declared under the job's vars (repeatable)", (v: string, prev: [string, string][]) => [...prev, asArgument(parseVarAssignment)(v)], [] as [string, string][])
    .option('--force', 'run every step, up to date or not')
    .addHelpText(
      'after',
      '\nJob file:\n' +
        '  version: 1\n' +
        '  vars:\n' +
        '    root: /data/nightly\n' +
        '  steps:\n' +
        '    - features: { transactions: "${root}/log-${DATE}.parquet", as-of: "${DATE}", out: "${root}/features-${DATE}.parquet" }\n' +
        '    - name: segments\n' +
        '      fit: { input: "${root}/features-${DATE}.parquet", k: 6, id: customer_id, align-to: "${root}/seg-${YESTERDAY}", out: "${root}/seg-${DATE}", report: true }\n\n' +
        'Each step is one command (fit, sweep, update, predict, features, report, churn-train, churn-evaluate, churn-predict)\n' +
        "with that command's long options, without dashes. Variables: ${DATE}, ${YESTERDAY}, ${DATE_COMPACT}, the job's vars,\n" +
        '${env:NAME}. Relative paths resolve against the job file\'s directory. A step is skipped when its --out holds a\n' +
        'run made by the same command line whose inputs are unchanged (size and SHA-256).\n\n' +
        'Example:\n  segtensor run nightly.yaml --plan\n  segtensor run nightly.yaml --date 2024-01-02',
    )
    .action(async (file: string, flags: RunFlags, c: Command) => {
      // Loaded here: the job library brings YAML and zod, which no other command needs.
      const { loadJob } = await import('../jobs/job-file.js');
      const { planJob, runJob } = await import('../jobs/execute.js');
      const { buildProgram } = await import('./program.js');
      const { setInvocation } = await import('../io/run-dir.js');
      const { logFormat, setLogFormat } = await import('./progress.js');
      const job = loadJob(file, { program: buildProgram(), date: flags.date, vars: Object.fromEntries(flags.var), env: process.env });
      const n = job.steps.length;
      const title = (s: (typeof job.steps)[number]) => `step ${s.index + 1}/${n} ${s.command}${s.name ? ` (${s.name})` : ''}`;

      if (flags.plan) {
        console.log(`${file}: ${n} step${n === 1 ? '' : 's'} for ${job.date} (plan only: nothing runs or changes)`);
        for (const p of await planJob(job, { force: flags.force })) {
          console.log(`${title(p.step)}: ${p.run ? `would run (${p.reason})` : 'would skip: up to date'}`);
          console.log(`  segtensor ${p.step.argv.map(shellQuote).join(' ')}`);
        }
        return;
      }

      const quiet = Boolean(c.optsWithGlobals().quiet);
      const t0 = performance.now();
      const outcomes = await runJob(job, {
        force: flags.force,
        runStep: async (step) => {
          // A fresh program per step: commander keeps each parse's option values on its commands.
          const program = buildProgram();
          silence(program);
          setInvocation(step.argv);
          // Events name the step's command and run; the job's format holds for every step.
          setLogFormat(logFormat(), step.argv[0] === 'churn' ? `churn ${step.argv[1]}` : step.argv[0]);
          try {
            await program.parseAsync(['node', 'segtensor', ...(quiet ? ['--quiet'] : []), ...step.argv]);
          } catch (e) {
            // Both are option errors, which main maps to exit 2; validation should have caught them.
            if (e instanceof CommanderError) throw new SegtensorError('BAD_OPTION', e.message.replace(/^error: /, ''));
            if (e instanceof TypeError && /^--\w/.test(e.message)) throw new SegtensorError('BAD_OPTION', e.message);
            throw e;
          } finally {
            setInvocation(null);
          }
        },
        onStep: (o) => console.log(`${title(o.step)}: ${o.run ? `ran in ${o.seconds.toFixed(1)} s (${o.reason})` : 'skipped: up to date'}`),
      });
      const ran = outcomes.filter((o) => o.run).length;
      console.log(`${file} for ${job.date}: ${ran} ran, ${n - ran} skipped, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    });
}
