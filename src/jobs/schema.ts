/**
 * The options a job step may give each command, read from the CLI's own commander definitions:
 * the long option names (without dashes) are the keys, whether an option takes a value, its
 * choices and whether it is required come from the `Option` objects, and each value goes through
 * the option's own argument parser. A new option, choice or check on the CLI is a new key, choice
 * or check of job files the same day; the two cannot drift apart.
 *
 * @example
 * const cmds = stepCommands(buildProgram());
 * const fit = cmds.get('fit')!;
 * fit.schema.safeParse({ input: 'x.parquet', k: 6, out: 'seg/' }).success; // true
 * stepArgv(fit, { out: 'seg/', k: 6, input: 'x.parquet' }); // ['fit', '--input', 'x.parquet', '--k', '6', '--out', 'seg/']
 */
import type { Command, Option } from 'commander';
import { z } from 'zod';

/** What a job step may set for one option of a command. */
export interface StepOption {
  /** The key in the job file: the long name without its dashes (`align-to`, `no-linear-skip`). */
  key: string;
  /** The long flag (`--align-to`). */
  flag: string;
  /** `flag`: true or false; `value`: a string or number; `list`: also an array, joined with commas. */
  kind: 'flag' | 'value' | 'list';
  choices: readonly string[] | null;
  /** The value is a file or directory (resolved against the job file's directory). */
  path: boolean;
  required: boolean;
  /** The value's name in the CLI's help, `n|auto` of `--k <n|auto>`; null for a flag. */
  placeholder: string | null;
  /** What the value must be, in words, for messages. */
  expected: string;
  /** @internal the commander option (its parser checks values). */
  option: Option;
}

/** A command a job step may run. */
export interface StepCommand {
  /** The step's key: the command's name, `churn-train` for `churn train`. */
  key: string;
  /** The command line words before the options (`['churn', 'train']`). */
  words: string[];
  /** In the CLI's order, which is also the order of the options on a step's command line. */
  options: StepOption[];
  /** The zod schema of the step's options object: unknown keys and wrong types are errors. */
  schema: z.ZodType<Record<string, unknown>>;
}

/**
 * Commands that are not job steps: `demo` and `doctor` write nothing a later step reads, `run`
 * would nest jobs, and `datasets generate` writes test data without a run manifest (so it could
 * never be skipped as up to date).
 */
export const NOT_STEPS: ReadonlySet<string> = new Set(['demo', 'doctor', 'run', 'datasets-generate']);

/** Placeholders of options whose value is a file or a directory. */
const PATH_PLACEHOLDER = /^(table|dir|file(\.\w+)?|scores)$/;

/** Placeholders of options whose value is a comma-separated list (`<a,b,...>`, `<col:type,...>`) or a k range/list (`<range>`). */
const LIST_PLACEHOLDER = /,|^range$/;

function show(v: unknown): string {
  return v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
}

function expectedText(o: Omit<StepOption, 'expected' | 'option'>): string {
  if (o.kind === 'flag') return 'true or false';
  if (o.choices) return `one of ${o.choices.join(', ')}`;
  if (o.kind === 'list') return `${o.path ? 'a path or a list of paths' : 'a string, a number or a list of them'} (<${o.placeholder}>)`;
  return `${o.path ? 'a path' : 'a string or a number'} (<${o.placeholder}>)`;
}

function stepOption(opt: Option): StepOption | null {
  if (!opt.long) return null;
  const takesValue = opt.required || opt.optional;
  const placeholder = takesValue ? (/[<[]([^>\]]+)[>\]]/.exec(opt.flags)?.[1] ?? 'value') : null;
  const base = {
    key: opt.long.replace(/^--/, ''),
    flag: opt.long,
    kind: !takesValue ? 'flag' : opt.variadic || LIST_PLACEHOLDER.test(placeholder!) ? 'list' : 'value',
    choices: opt.argChoices ? [...opt.argChoices] : null,
    path: placeholder !== null && PATH_PLACEHOLDER.test(placeholder),
    // A default satisfies commander's mandatory check, so such an option may be left out.
    required: opt.mandatory && opt.defaultValue === undefined,
    placeholder,
  } as const;
  return { ...base, expected: expectedText(base), option: opt };
}

function zodFor(o: StepOption): z.ZodType {
  const error = (iss: { input?: unknown }) => (iss.input === undefined ? `required option missing (${o.flag} <${o.placeholder}>)` : `expected ${o.expected}, got ${show(iss.input)}`);
  const scalar = z.union([z.string(), z.number()]);
  const t =
    o.kind === 'flag'
      ? z.boolean({ error })
      : o.choices
        ? z.enum(o.choices as [string, ...string[]], { error })
        : o.kind === 'list'
          ? z.union([z.string(), z.number(), z.array(scalar).min(1)], { error })
          : z.union([z.string(), z.number()], { error });
  return o.required ? t : t.optional();
}

/** The commands a job step may run, by step key, with their options and schemas. */
export function stepCommands(program: Command): Map<string, StepCommand> {
  const out = new Map<string, StepCommand>();
  const add = (cmd: Command, words: string[]) => {
    const key = words.join('-');
    // Positional arguments have no key in a step; no command with one is a step today.
    if (NOT_STEPS.has(key) || cmd.registeredArguments.length > 0) return;
    const options = cmd.options.map(stepOption).filter((o): o is StepOption => o !== null && !o.option.hidden);
    const schema = z.object(Object.fromEntries(options.map((o) => [o.key, zodFor(o)]))).strict() as unknown as z.ZodType<Record<string, unknown>>;
    out.set(key, { key, words, options, schema });
  };
  for (const cmd of program.commands) {
    if (cmd.commands.length > 0) for (const sub of cmd.commands) add(sub, [cmd.name(), sub.name()]);
    else add(cmd, [cmd.name()]);
  }
  return out;
}

/**
 * Checks one value with the option's own parser (the CLI's checks: ranges, choices, formats) and
 * returns the message of its complaint, or null. The CLI's `--x must be …; got 'v'` becomes
 * `expected …, got "v"`; words of the placeholder that the parser takes as they are (the `auto` of
 * `<n|auto>`) are added to what is expected.
 */
export function checkValue(o: StepOption, text: string): string | null {
  const parse = o.option.parseArg;
  if (!parse) return null;
  try {
    parse(text, o.option.defaultValue);
    return null;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const m = /^--[\w-]+ must be (.+?); got '.*?'( \(.*\))?$/s.exec(msg);
    if (!m) return `${msg.replace(/^error: /, '')} (got ${show(text)})`;
    const literals = (o.placeholder ?? '').split('|').filter((w) => !m[1].includes(w) && accepts(o, w));
    return `expected ${m[1]}${literals.map((w) => ` or '${w}'`).join('')}, got ${show(text)}${m[2] ?? ''}`;
  }
}

function accepts(o: StepOption, word: string): boolean {
  try {
    return o.option.parseArg!(word, o.option.defaultValue) === word;
  } catch {
    return false;
  }
}

/** The command line (after `segtensor`) of a step: its words, then its options in the CLI's order. */
export function stepArgv(cmd: StepCommand, values: Record<string, unknown>): string[] {
  const argv = [...cmd.words];
  for (const o of cmd.options) {
    const v = values[o.key];
    if (v === undefined || v === false) continue;
    if (o.kind === 'flag') argv.push(o.flag);
    else argv.push(o.flag, Array.isArray(v) ? v.map(String).join(',') : String(v));
  }
  return argv;
}
