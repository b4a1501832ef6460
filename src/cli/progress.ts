/**
 * What a command tells the person or the scheduler watching it, in one of two forms
 * (`--log-format`, default `auto`):
 *
 * - `text`: on a terminal, step lines and a live progress bar for long phases (counts, rate, ETA);
 *   off a terminal, only notices and warnings, so a cron mail holds the summary;
 * - `json`: one JSON object per line on stderr for every event (`start`, `phase`, `iteration`,
 *   `message`, `notice`, `warning`, `done`, `error`), each with its time, the command, the run id
 *   once the run has begun, and the process's resident memory; what a log collector ingests.
 *
 * `auto` is `text` on a terminal and `json` off one. `SEGTENSOR_LOG_FORMAT` sets the default for
 * every command of a job. Events carry counts, rates, paths and column names, never a customer's
 * values. @internal
 */
import { onRunBegin } from '../io/run-dir.js';

export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = 'text' | 'json';

/** A SEGTENSOR_LOG_FORMAT that is set but not a format: the one-line error, or null. */
export function badLogFormatEnv(env: NodeJS.ProcessEnv): string | null {
  const v = env.SEGTENSOR_LOG_FORMAT;
  return v && !(LOG_FORMATS as readonly string[]).includes(v) ? `SEGTENSOR_LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}; got '${v}'` : null;
}

/** The format of this process: `--log-format` in `argv` (either form), else the environment's, else auto. */
export function resolveLogFormat(argv: readonly string[], env: NodeJS.ProcessEnv, tty: boolean): LogFormat {
  let asked: string | undefined = env.SEGTENSOR_LOG_FORMAT || undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--log-format' && i + 1 < argv.length) asked = argv[i + 1];
    else if (argv[i].startsWith('--log-format=')) asked = argv[i].slice('--log-format='.length);
  }
  if (asked === 'text' || asked === 'json') return asked;
  return tty ? 'text' : 'json';
}

let format: LogFormat = 'text';
let command: string | null = null;
let runId: string | null = null;
onRunBegin((id) => (runId ??= id));

/** Sets the process's format and the command events name (main.ts, once per command). */
export function setLogFormat(f: LogFormat, cmd: string | null): void {
  format = f;
  command = cmd;
  runId = null;
}

export function logFormat(): LogFormat {
  return format;
}

/** One JSON event line on stderr. */
export function emit(event: string, fields: Record<string, unknown> = {}): void {
  const line = { time: new Date().toISOString(), event, command, runId, ...fields, rssMB: Math.round(process.memoryUsage.rss() / 1048576) };
  process.stderr.write(JSON.stringify(line) + '\n');
}

/** A command's error as it is printed: `segtensor: error [CODE]: message`, or its JSON event. */
export function errorLine(code: string, message: string, exitCode: number): string {
  if (format === 'json') {
    return JSON.stringify({ time: new Date().toISOString(), event: 'error', command, runId, code, message, exitCode }) + '\n';
  }
  return code === 'INTERNAL' ? `segtensor: internal error: ${message}\n` : `segtensor: error [${code}]: ${message}\n`;
}

/** A long phase with a known amount of work, shown as a bar (text) or events (json). */
export interface Bar {
  /** `done` units of `total` finished; `extra` is shown beside the bar and sent with events. */
  tick(done: number, extra?: Record<string, unknown> & { text?: string }): void;
  end(): void;
}

export interface Progress {
  /** A step line (text on a terminal; a `message` event). */
  step(line: string): void;
  /** A transient line replaced by the next (text on a terminal only). */
  live(line: string): void;
  /**
   * A pipeline's log line: notices and warnings always shown; other lines as {@link step}, or
   * with `always` shown off a terminal too (`segtensor: <line>`).
   */
  message(line: string, always?: boolean): void;
  /** A structured event (json only; text shows nothing). */
  event(name: string, fields?: Record<string, unknown>): void;
  /**
   * A progress bar for `total` units named `unit` (e.g. 300 iterations). Off a terminal each tick
   * is an event named `name`, or `event` with the name as its `phase`; with `everyMs`, at most one
   * per that many milliseconds (and the last).
   */
  bar(name: string, total: number, unit: string, opts?: { everyMs?: number; event?: string }): Bar;
  done(): void;
}

const BAR_WIDTH = 24;

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function progress(quiet: boolean): Progress {
  const json = format === 'json';
  const tty = !json && !quiet && process.stderr.isTTY === true;
  let liveShown = false;
  const clear = () => {
    if (liveShown) process.stderr.write('\r\x1b[K');
    liveShown = false;
  };
  const p: Progress = {
    step(line) {
      if (json) return quiet ? undefined : emit('message', { message: line });
      if (!tty) return;
      clear();
      process.stderr.write(line + '\n');
    },
    live(line) {
      if (!tty) return;
      process.stderr.write('\r\x1b[K' + line);
      liveShown = true;
    },
    message(line, always = false) {
      const m = /^(notice|warning): (.*)$/s.exec(line);
      if (!m && !always) return p.step(line);
      if (json) return m ? emit(m[1], { message: m[2] }) : emit('message', { message: line });
      clear();
      process.stderr.write(`segtensor: ${line}\n`);
    },
    event(name, fields = {}) {
      if (json && !quiet) emit(name, fields);
    },
    bar(name, total, unit, { everyMs = 0, event } = {}) {
      const t0 = performance.now();
      let lastDraw = 0;
      let lastEvent = -Infinity;
      return {
        tick(done, extra = {}) {
          const { text, ...fields } = extra;
          const s = (performance.now() - t0) / 1000;
          const rate = done / Math.max(s, 1e-9);
          if (json) {
            const now = performance.now();
            if (everyMs > 0 && done < total && now - lastEvent < everyMs) return;
            lastEvent = now;
            return p.event(event ?? name, { ...(event ? { phase: name } : {}), done, total, unit, perSecond: Number(rate.toPrecision(4)), etaSeconds: done > 0 ? Number(((total - done) / rate).toFixed(1)) : null, ...fields });
          }
          if (!tty) return;
          const now = performance.now();
          if (now - lastDraw < 100 && done < total) return; // ~10 redraws a second at most
          lastDraw = now;
          const filled = Math.round((BAR_WIDTH * Math.min(done, total)) / Math.max(total, 1));
          const eta = done > 0 ? `ETA ≤ ${clock((total - done) / rate)}` : 'ETA ?';
          p.live(`${name} [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${done}/${total} ${unit}, ${rate.toPrecision(3)} ${unit}/s, ${eta}${text ? `, ${text}` : ''}`);
        },
        end() {
          if (tty) clear();
        },
      };
    },
    done() {
      if (tty) clear();
    },
  };
  return p;
}
