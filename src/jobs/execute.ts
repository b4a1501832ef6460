/**
 * Plans and runs a loaded job: steps in order, one at a time, each skipped when its published
 * run is up to date ({@link freshness}). The caller runs a step's command line (the CLI parses
 * it with a fresh program), so a step behaves exactly as the same command typed by hand and
 * publishes its run atomically; a failing step stops the job, and the runs published before it
 * stay published.
 *
 * @example
 * const plan = await planJob(job);            // reads only
 * await runJob(job, { runStep: (s) => cli(s.argv), onStep: (r) => console.log(r.status) });
 */
import { SegtensorError } from '../errors.js';
import type { Job, JobStep } from './job-file.js';
import { freshness, writes } from './up-to-date.js';

/** What a plan says of one step. */
export interface PlannedStep {
  step: JobStep;
  /** Whether the step would run; a step counted as up to date is skipped. */
  run: boolean;
  /** Why: `up to date`, `no previous run`, `options changed`, `input <path> changed`, `--force`, … */
  reason: string;
}

/** What happened to one step of a run. */
export interface StepOutcome extends PlannedStep {
  /** Wall time of the step (the check included), seconds. */
  seconds: number;
}

export interface RunJobOptions {
  /** Runs one step's command line (after `segtensor`); throws what the command throws. */
  runStep: (step: JobStep) => Promise<void>;
  /** Rerun every step, up to date or not. */
  force?: boolean;
  /** Told after each step, in order (the CLI prints a line). */
  onStep?: (outcome: StepOutcome, job: Job) => void;
}

/**
 * What a run would do, changing nothing on disk. A step after one that would run and that reads
 * its outputs is counted as running: what it reads will be new.
 */
export async function planJob(job: Job, { force = false }: { force?: boolean } = {}): Promise<PlannedStep[]> {
  const planned: PlannedStep[] = [];
  for (const step of job.steps) {
    if (force) {
      planned.push({ step, run: true, reason: '--force' });
      continue;
    }
    const f = await freshness(step, (file) => planned.find((p) => p.run && writes(p.step, file))?.step ?? null);
    planned.push(f.upToDate ? { step, run: false, reason: 'up to date' } : { step, run: true, reason: f.reason });
  }
  return planned;
}

/** The prefix of a failed step's error: `step 2 (fit 'segments')`. */
export function stepLabel(step: JobStep): string {
  return `step ${step.index + 1} (${step.label})`;
}

/**
 * Runs the job. Each step is checked just before it runs, after the steps before it have
 * published, so a step whose input an earlier step rewrote with the same bytes is still skipped.
 * A failing step's error is rethrown with the step named first, keeping its code (and so the
 * CLI's exit status).
 */
export async function runJob(job: Job, opts: RunJobOptions): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const step of job.steps) {
    const t0 = performance.now();
    const f = opts.force ? ({ upToDate: false, reason: '--force' } as const) : await freshness(step);
    if (!f.upToDate) {
      try {
        await opts.runStep(step);
      } catch (e) {
        throw withStep(step, e);
      }
    }
    const outcome: StepOutcome = { step, run: !f.upToDate, reason: f.upToDate ? 'up to date' : f.reason, seconds: (performance.now() - t0) / 1000 };
    outcomes.push(outcome);
    opts.onStep?.(outcome, job);
  }
  return outcomes;
}

function withStep(step: JobStep, e: unknown): unknown {
  const prefix = `${stepLabel(step)}: `;
  if (e instanceof SegtensorError) return new SegtensorError(e.code, prefix + e.message);
  // Other errors keep their class (a backend error keeps its code, an internal error stays one).
  if (e instanceof Error) e.message = prefix + e.message;
  return e;
}
