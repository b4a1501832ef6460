/**
 * Job files: a night of segtensor commands in one YAML or JSON file, checked whole before any
 * step runs. Each step names one command and gives its options as on the command line (long
 * names without dashes); the options' schema is read from the CLI itself ({@link stepCommands}),
 * so a job file accepts exactly what the command line accepts.
 *
 * ```yaml
 * version: 1
 * vars:
 *   root: /data/nightly
 * steps:
 *   - features: { transactions: "${root}/log-${DATE}.parquet", as-of: "${DATE}", out: "${root}/features-${DATE}.parquet" }
 *   - name: segments
 *     fit: { input: "${root}/features-${DATE}.parquet", k: 6, id: customer_id, align-to: "${root}/seg-${YESTERDAY}", out: "${root}/seg-${DATE}" }
 * ```
 *
 * Relative paths (the values of options that take a file or directory) resolve against the job
 * file's directory, so a job means the same wherever it is started from.
 *
 * @example
 * const job = loadJob('nightly.yaml', { program: buildProgram(), date: '2024-01-02' });
 * job.steps[1].argv; // ['fit', '--input', '/data/nightly/features-2024-01-02.parquet', '--k', '6', …]
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { SegtensorError } from '../errors.js';
import { checkValue, NOT_STEPS, stepArgv, stepCommands, type StepCommand } from './schema.js';
import { expandString, jobVariables, todayUtc, type JobVariables } from './variables.js';

/** The job file format's version; a file states it, so a later format can tell files apart. */
export const JOB_FORMAT_VERSION = 1;

/** One step of a loaded job, its options checked and its variables expanded. */
export interface JobStep {
  /** 0-based position in the file. */
  index: number;
  /** The step's `name`, or null. */
  name: string | null;
  /** The step's command key (`fit`, `churn-train`). */
  command: string;
  /** For messages: `fit` or `fit 'segments'`. */
  label: string;
  /** The command line after `segtensor`: what runs, and what its manifest records. */
  argv: string[];
  /** The step's `--out`, absolute; null when the command writes none (`churn evaluate` without it). */
  out: string | null;
}

/** A job ready to plan or run. */
export interface Job {
  /** The file as given (for messages). */
  file: string;
  /** Its directory, absolute: relative paths in the file resolve against it. */
  dir: string;
  /** The run date, YYYY-MM-DD. */
  date: string;
  steps: JobStep[];
}

export interface LoadJobOptions {
  /** The CLI program whose commands the steps run (their options are the job file's schema). */
  program: Command;
  /** The run date, YYYY-MM-DD (`${DATE}`). Default: today in UTC. */
  date?: string;
  /** `--var name=value` overrides of the job's `vars`. */
  vars?: Record<string, string>;
  /** Environment for `${env:NAME}`. Default: none set (the CLI passes process.env). */
  env?: Record<string, string | undefined>;
}

/** Reads, checks and expands a job file. Every problem is one BAD_JOB line naming the file and key. */
export function loadJob(file: string, opts: LoadJobOptions): Job {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SegtensorError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'BAD_INPUT', `${file}: cannot read the job file (${code ?? (e as Error).message})`);
  }
  return parseJob(text, file, opts);
}

function bad(file: string, where: string, message: string): never {
  throw new SegtensorError('BAD_JOB', `${file}: ${where ? `${where}: ` : ''}${message}`);
}

/**
 * Parses the text: JSON for a `.json` file (JSON's own errors are clearer), else YAML, which
 * JSON also is; a `{`-led file of another name is tried as JSON first.
 */
function parseText(text: string, file: string): unknown {
  const json = /\.json$/i.test(file);
  if (json || /^\s*\{/.test(text)) {
    try {
      return JSON.parse(text);
    } catch (e) {
      if (json) bad(file, '', `not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
  }
  try {
    // Duplicate keys are errors: the second `k:` of a step silently winning hides a typo.
    return parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const at = e.linePos?.[0];
      bad(file, at ? `line ${at.line}, column ${at.col}` : '', `not valid YAML (${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')})`);
    }
    throw e;
  }
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** The file's outer shape; each step's options are checked against its command's schema after. */
const JOB_SCHEMA = z
  .object({
    version: z.literal(JOB_FORMAT_VERSION, { error: (iss) => (iss.input === undefined ? `required (version: ${JOB_FORMAT_VERSION})` : `expected ${JOB_FORMAT_VERSION}, got ${show(iss.input)}`) }),
    vars: z
      .record(z.string(), z.union([z.string(), z.number()], { error: (iss) => `expected a string or a number, got ${show(iss.input)}` }), { error: (iss) => `expected a mapping of names to values, got ${show(iss.input)}` })
      .optional(),
    steps: z
      .array(z.record(z.string(), z.unknown(), { error: (iss) => `expected a mapping with one command key, got ${show(iss.input)}` }), {
        error: (iss) => (iss.input === undefined ? 'required (a list of steps)' : `expected a list of steps, got ${show(iss.input)}`),
      })
      .min(1, { error: 'expected at least one step' }),
  })
  .strict();

/** `steps[1].fit.k`-style key paths, from zod's path. */
function keyPath(parts: readonly PropertyKey[]): string {
  return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

/** The first issue of a failed parse as one line. */
function firstIssue(error: z.ZodError, prefix: string, known?: string[]): { where: string; message: string } {
  // An unknown key first: a misspelt required key also shows up as that key missing.
  const iss = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0];
  const where = !prefix ? keyPath(iss.path) : iss.path.length ? `${prefix}.${keyPath(iss.path)}` : prefix;
  if (iss.code === 'unrecognized_keys') {
    const key = iss.keys[0];
    const hint = known ? suggestion(key, known) : '';
    return { where, message: `unknown ${prefix ? 'option' : 'key'} '${key}'${hint}${known ? ` (${prefix ? 'options' : 'keys'}: ${known.join(', ')})` : ''}` };
  }
  return { where, message: iss.message };
}

/** ` (did you mean 'align-to'?)` for `--align-to`, `alignTo`, `align_to` or `algin-to`. */
function suggestion(key: string, known: string[]): string {
  const kebab = key.replace(/^-+/, '').replace(/_/g, '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  if (kebab !== key && known.includes(kebab)) return ` (did you mean '${kebab}'?)`;
  // A typo: the one known key within two edits, when there is exactly one.
  const near = known.filter((k) => editDistance(kebab, k) <= Math.min(2, k.length - 1));
  return near.length === 1 ? ` (did you mean '${near[0]}'?)` : '';
}

/** Levenshtein distance, two rows. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Checks a parsed job (an object from YAML or JSON) and expands it into runnable steps. */
export function parseJob(text: string, file: string, opts: LoadJobOptions): Job {
  const raw = parseText(text, file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad(file, '', `expected a mapping with version, vars and steps, got ${show(raw)}`);
  const top = JOB_SCHEMA.safeParse(raw);
  if (!top.success) {
    const { where, message } = firstIssue(top.error, '', ['version', 'vars', 'steps']);
    bad(file, where, message);
  }
  const date = opts.date ?? todayUtc();
  const declared = Object.fromEntries(Object.entries(top.data.vars ?? {}).map(([k, v]) => [k, String(v)]));
  const vars = jobVariables({ date, declared, overrides: opts.vars, env: opts.env, file });
  const commands = stepCommands(opts.program);
  const dir = path.dirname(path.resolve(file));
  const steps = top.data.steps.map((step, index) => checkStep(step, index, commands, vars, file, dir));
  // Two steps publishing to one path: the second would replace the first's run, and skipping would flap.
  const seen = new Map<string, JobStep>();
  for (const s of steps) {
    if (!s.out) continue;
    const prev = seen.get(s.out);
    if (prev) bad(file, `steps[${s.index}].${s.command}.out`, `'${s.out}' is also the out of step ${prev.index + 1} (${prev.label}); each step needs its own`);
    seen.set(s.out, s);
  }
  return { file, dir, date, steps };
}

function checkStep(step: Record<string, unknown>, index: number, commands: Map<string, StepCommand>, vars: JobVariables, file: string, dir: string): JobStep {
  const at = `steps[${index}]`;
  const keys = Object.keys(step).filter((k) => k !== 'name');
  const names = [...commands.keys()];
  if (keys.length === 0) bad(file, at, `no command (one of ${names.join(', ')})`);
  for (const k of keys) {
    if (NOT_STEPS.has(k)) bad(file, `${at}.${k}`, `'${k}' is a command but not a job step (steps: ${names.join(', ')})`);
    if (!commands.has(k)) {
      bad(file, `${at}.${k}`, `unknown command '${k}'${suggestion(k.replace(/ /g, '-'), [...names, 'name'])} (commands: ${names.join(', ')})`);
    }
  }
  if (keys.length > 1) bad(file, at, `one command per step; got ${keys.join(' and ')}`);
  const name = step.name;
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '')) bad(file, `${at}.name`, `expected a non-empty string, got ${show(name)}`);
  const cmd = commands.get(keys[0])!;
  const where = `${at}.${cmd.key}`;
  const given = step[cmd.key] ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) bad(file, where, `expected a mapping of options (${cmd.options.map((o) => o.key).join(', ')}), got ${show(given)}`);
  const parsed = cmd.schema.safeParse(given);
  if (!parsed.success) {
    const { where: w, message } = firstIssue(parsed.error, where, cmd.options.map((o) => o.key));
    bad(file, w, message);
  }
  const values: Record<string, unknown> = {};
  for (const o of cmd.options) {
    const v = parsed.data[o.key];
    if (v === undefined || typeof v === 'boolean') {
      values[o.key] = v;
      continue;
    }
    const key = `${where}.${o.key}`;
    const expand = (x: string | number, i?: number) => (typeof x === 'number' ? String(x) : expandString(x, vars, i === undefined ? key : `${key}[${i}]`, file));
    const items = Array.isArray(v) ? (v as (string | number)[]).map(expand) : [expand(v as string | number)];
    if (o.kind === 'list' && items.some((s) => s.trim() === '')) bad(file, key, `expected non-empty list items, got ${show(v)}`);
    let text = items.join(',');
    if (o.path && text !== '') text = path.resolve(dir, text);
    const problem = checkValue(o, text);
    if (problem) bad(file, key, problem);
    values[o.key] = text;
  }
  const out = cmd.options.some((o) => o.key === 'out') && typeof values.out === 'string' ? (values.out as string) : null;
  return { index, name: (name as string | undefined) ?? null, command: cmd.key, label: name ? `${cmd.key} '${name}'` : cmd.key, argv: stepArgv(cmd, values), out };
}
