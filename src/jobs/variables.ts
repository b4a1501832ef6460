/**
 * `${NAME}` variables of job files: the run date and its relatives, the job's own `vars`, and
 * `${env:NAME}`. Light (no dependencies), so the CLI can check `--date` and `--var` while parsing.
 *
 * @example
 * const vars = jobVariables({ date: '2024-01-02', declared: { root: '/data/${DATE}' } });
 * expandString('${root}/log.parquet', vars, 'steps[0].fit.input'); // '/data/2024-01-02/log.parquet'
 */
import { SegtensorError } from '../errors.js';

/** Set by the run date, never by the job: `--date` moves them all together. */
export const DATE_VARIABLES = ['DATE', 'YESTERDAY', 'DATE_COMPACT'] as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks a run date, `YYYY-MM-DD` naming a real day; returns it. Throws BAD_OPTION naming
 * `option`. A calendar check, not just the pattern: `2024-02-30` would silently roll over.
 */
export function parseRunDate(text: string, option = '--date'): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!m || !d || d.toISOString().slice(0, 10) !== text) throw new SegtensorError('BAD_OPTION', `${option} must be a date YYYY-MM-DD; got '${text}'`);
  return text;
}

/** Today in UTC, YYYY-MM-DD: a nightly job started after midnight anywhere names the same day. */
export function todayUtc(now = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/**
 * Parses `--var name=value`. The name follows the rules of `${name}` references; the value is
 * everything after the first `=` (it may contain `=` and `${…}` references).
 */
export function parseVarAssignment(text: string): [string, string] {
  const at = text.indexOf('=');
  const name = at < 0 ? '' : text.slice(0, at);
  if (!NAME.test(name)) throw new SegtensorError('BAD_OPTION', `--var must be name=value with a name of letters, digits and _; got '${text}'`);
  return [name, text.slice(at + 1)];
}

/** Where a variable's raw text came from, for messages: `vars.root` or `--var root`. */
interface Source {
  text: string;
  where: string;
}

/** The variables of one job run, resolved on first use. */
export interface JobVariables {
  /** The value of `name` (a date variable, a job variable or `env:NAME`), or null when unknown. */
  get(name: string, where: string): string | null;
  /** Names for messages: the date variables, then the job's. */
  readonly names: readonly string[];
}

export interface VariableSpec {
  /** Run date YYYY-MM-DD. */
  date: string;
  /** The job's `vars`, raw (they may refer to the date variables, to each other and to env:). */
  declared: Record<string, string>;
  /** `--var` values, over the job's; only names the job declares. */
  overrides?: Record<string, string>;
  /** For `${env:NAME}`. Default: none set. */
  env?: Record<string, string | undefined>;
  /** The job file's name for messages. */
  file?: string;
}

function bad(file: string | undefined, where: string, message: string): never {
  throw new SegtensorError('BAD_JOB', `${file ? `${file}: ` : ''}${where}: ${message}`);
}

/**
 * The variables of a run: DATE, YESTERDAY (DATE − 1 day), DATE_COMPACT (YYYYMMDD), the job's
 * `vars` with `--var` overrides, and `env:NAME`. A job variable may use any other; a cycle is
 * an error naming it.
 */
export function jobVariables(spec: VariableSpec): JobVariables {
  const day = new Date(`${parseRunDate(spec.date)}T00:00:00Z`);
  const builtin: Record<string, string> = {
    DATE: spec.date,
    YESTERDAY: new Date(day.getTime() - 86_400_000).toISOString().slice(0, 10),
    DATE_COMPACT: spec.date.replaceAll('-', ''),
  };
  const sources = new Map<string, Source>();
  for (const [name, text] of Object.entries(spec.declared)) {
    if (!NAME.test(name)) bad(spec.file, `vars.${name}`, 'a variable name is letters, digits and _, not starting with a digit');
    if (name in builtin) bad(spec.file, `vars.${name}`, `${name} is set by the run date (--date), not by the job`);
    sources.set(name, { text, where: `vars.${name}` });
  }
  for (const [name, text] of Object.entries(spec.overrides ?? {})) {
    if (!sources.has(name)) {
      const known = [...sources.keys()];
      throw new SegtensorError('BAD_OPTION', `--var ${name}: ${spec.file ?? 'the job'} declares no such variable (${known.length ? `vars: ${known.join(', ')}` : 'it has no vars'})`);
    }
    sources.set(name, { text, where: `--var ${name}` });
  }
  const env = spec.env ?? {};
  const resolved = new Map<string, string>();
  const resolving: string[] = [];
  const vars: JobVariables = {
    names: [...DATE_VARIABLES, ...sources.keys()],
    get(name, where) {
      if (name.startsWith('env:')) {
        const v = env[name.slice(4)];
        return v === undefined ? bad(spec.file, where, `environment variable ${name.slice(4)} is not set (\${${name}})`) : v;
      }
      if (name in builtin) return builtin[name];
      const src = sources.get(name);
      if (!src) return null;
      let v = resolved.get(name);
      if (v === undefined) {
        if (resolving.includes(name)) bad(spec.file, src.where, `variables refer to each other in a cycle: ${[...resolving.slice(resolving.indexOf(name)), name].join(' → ')}`);
        resolving.push(name);
        v = expandString(src.text, vars, src.where, spec.file);
        resolving.pop();
        resolved.set(name, v);
      }
      return v;
    },
  };
  return vars;
}

/**
 * Replaces every `${NAME}` and `${env:NAME}` in `text`; `$$` stands for a literal `$`. An unknown
 * or malformed reference is a BAD_JOB error naming `where` (the key path) in `file`.
 */
export function expandString(text: string, vars: JobVariables, where: string, file?: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const at = text.indexOf('$', i);
    if (at < 0) return out + text.slice(i);
    out += text.slice(i, at);
    if (text[at + 1] === '$') {
      out += '$';
      i = at + 2;
    } else if (text[at + 1] === '{') {
      const end = text.indexOf('}', at + 2);
      if (end < 0) bad(file, where, `unterminated '\${' in ${JSON.stringify(text)}`);
      const name = text.slice(at + 2, end);
      if (!NAME.test(name.startsWith('env:') ? name.slice(4) : name)) bad(file, where, `bad variable reference '\${${name}}' (a name of letters, digits and _, or env:NAME)`);
      const v = vars.get(name, where);
      if (v === null) bad(file, where, `unknown variable '${name}' (known: ${vars.names.join(', ')}, env:NAME)`);
      out += v;
      i = end + 1;
    } else {
      out += '$';
      i = at + 1;
    }
  }
}
