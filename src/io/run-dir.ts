/**
 * Runs that appear whole: every command writes its outputs into a fresh staging directory and
 * publishes them with one atomic rename, so a reader sees all of the previous run or all of the
 * new one, never a mix, whenever the process is killed.
 *
 * Layout for `--out <parent>/<name>` (a directory for `fit` and `churn train`, a file for
 * `predict`, `churn predict` and `features`):
 *
 * ```
 * <parent>/.<name>.runs/<runId>/             one complete run: its outputs and manifest.json
 * <parent>/.<name>.runs/current -> <runId>    the published run (swapped with rename(2))
 * <parent>/.<name>.runs/<runId>.staging-<pid> a run being written (removed when its process dies)
 * <parent>/<name> -> .<name>.runs/current            directory layout
 * <parent>/<name> -> .<name>.runs/current/<name>     file layout (and one link per sidecar file)
 * ```
 *
 * The user-facing paths are links that never change once made; publishing a run is the single
 * rename of `current`. Before the first run they dangle, so nothing is visible until everything
 * is. The run published before the newest is kept, so a reader that resolved the old one just
 * before the swap can finish; older ones are removed by the next run, with the staging and spill
 * files of dead processes.
 *
 * Readers resolve the path once ({@link openRun}) and check `manifest.json`: every output it
 * lists must be there with its size and SHA-256.
 *
 * @example
 * const run = beginRun({ command: 'fit', out: 'seg/', layout: 'dir', options: { k: 6 } });
 * try {
 *   fs.writeFileSync(run.file('model.json'), json);
 *   run.input('customers.parquet');
 *   await run.commit();
 * } finally {
 *   run.dispose();
 * }
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { keyFingerprint, type PseudonymKey } from '../util/pseudonym.js';
import { VERSION } from '../version.js';

export const RUN_MANIFEST = 'manifest.json';
export const RUN_FORMAT = 'segtensor-run';
export const RUN_FORMAT_VERSION = 1;

export type RunLayout = 'dir' | 'file';

/** One file of a run, as listed in its manifest. */
export interface ManifestFile {
  /** Path as given (inputs) or name inside the run directory (outputs). */
  path: string;
  bytes: number;
  sha256: string;
}

/** manifest.json of a run directory. */
export interface RunManifest {
  format: typeof RUN_FORMAT;
  formatVersion: number;
  runId: string;
  /** `fit`, `predict`, `features`, `churn train`, `churn predict`, … */
  command: string;
  /** The job's options, as the command received them. */
  options: Record<string, unknown>;
  /**
   * The command line after `segtensor` (`['fit', '--input', 'x.csv', …]`), as set by
   * {@link setInvocation} when the run began; absent for runs made through the library. `segtensor
   * run` records each step's own command line here and skips a step whose published run has the
   * same one and unchanged inputs, so it is compared verbatim (paths as the step gave them).
   */
  argv?: string[];
  /**
   * With `--pseudonymize-ids`: which key made the pseudonyms (util/pseudonym.ts keyFingerprint,
   * which does not reveal it), so a job reruns a step after the key changes.
   */
  pseudonymKey?: string;
  inputs: (ManifestFile & { resolved: string })[];
  outputs: ManifestFile[];
  /** Rows read and written, and the counts of anything coerced, dropped or unseen. */
  counts: Record<string, unknown>;
  /** The backend the run ended on (`native` after a GPU fallback), or null for commands that use none. */
  backend: string | null;
  /**
   * Present when the run moved off a GPU that ran out of memory: from which backend to which,
   * the op that failed and why (sizes and the device's message). See src/engine/fallback.ts.
   */
  backendFallback?: { from: string; to: string; op: string; reason: string };
  versions: { segtensor: string; node: string; platform: string };
  startedAt: string;
  endedAt: string;
}

export interface RunSpec {
  command: string;
  /** `--out` as given. */
  out: string;
  layout: RunLayout;
  /** File layout: other outputs beside `out` (e.g. `<out>.meta.json`), published with it. */
  sidecars?: string[];
  /** The job as the command received it; callbacks and unset fields are left out of the manifest. */
  options: object;
  /** Option name for messages. Default `--out`. */
  option?: string;
  /** The key of `--pseudonymize-ids`, when the run pseudonymises ids: its fingerprint goes into the manifest. */
  pseudonymKey?: PseudonymKey | null;
}

/** Linux filesystems that look writable but hold no files (a recursive mkdir there never ends). */
const VIRTUAL_FS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x1cd1, 'devpts'],
]);

/** Processes alive? (a leftover of a dead one may be removed). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}: ${err.message.split('\n')[0]}` : String((e as Error)?.message ?? e).split('\n')[0];
}

/**
 * Creates `dir` and its missing parents one level at a time, after checking that the nearest
 * existing ancestor is a writable directory on a real filesystem: fails in milliseconds where
 * `mkdir -p` under /proc loops forever.
 */
export function makeDirs(dir: string, option = '--out', shown = dir): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${shown}': cannot use ${at} (${errText(e)})`);
    }
    if (st) {
      if (!st.isDirectory()) throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${shown}': ${at} is not a directory`);
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  try {
    const fsType = Number(fs.statfsSync(at).type);
    const virtual = VIRTUAL_FS.get(fsType);
    if (virtual) throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${shown}': ${at} is on the virtual ${virtual} filesystem, which holds no files`);
    fs.accessSync(at, fs.constants.W_OK);
  } catch (e) {
    if (e instanceof SegtensorError) throw e;
    throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${shown}': cannot write in ${at} (${errText(e)})`);
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${shown}': cannot create ${d} (${errText(e)})`);
    }
  }
}

/** The store beside an output path: `<parent>/.<name>.runs`. */
export function storeOf(out: string): string {
  const abs = path.resolve(out);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.runs`);
}

function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${crypto.randomBytes(4).toString('hex')}`;
}

/** Hashes of this process, by file identity: a file a run both records and reads is read once. */
const hashes = new Map<string, Promise<{ bytes: number; sha256: string }>>();

/**
 * SHA-256 and size of a file, streamed; remembered for the same file (path, inode, size and
 * modification time), so an input recorded in a manifest and checked by a reader is read once.
 * `worker: false` hashes on this thread even a large file: when nothing else runs meanwhile (a
 * commit hashing its outputs), starting a worker costs more than it saves.
 */
export async function hashFile(file: string, { worker = true }: { worker?: boolean } = {}): Promise<{ bytes: number; sha256: string }> {
  const st = await fs.promises.stat(file);
  const key = `${path.resolve(file)}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  let p = hashes.get(key);
  if (!p) {
    p = hashStream(file, worker);
    hashes.set(key, p);
    p.catch(() => hashes.delete(key));
  }
  return p;
}

/** Files from this size on are hashed on a worker thread, beside the command's own work. */
const HASH_ON_WORKER_FROM = 16 << 20;

/** The worker's program: the same streamed SHA-256 as {@link hashStream}, posted back. */
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const h = crypto.createHash('sha256');
const buf = Buffer.allocUnsafe(1 << 22);
let bytes = 0;
const fd = fs.openSync(workerData, 'r');
try {
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    bytes += n;
  }
} finally {
  fs.closeSync(fd);
}
parentPort.postMessage({ bytes, sha256: h.digest('hex') });
`;

/**
 * SHA-256 of a file. Large inputs (a customer table is hashed while the command reads and fits
 * it) go to a worker thread, so the hash costs the command a second core's time rather than
 * its own: ~0.1 s per 136 MB on the development VM.
 */
async function hashStream(file: string, worker: boolean): Promise<{ bytes: number; sha256: string }> {
  const size = (await fs.promises.stat(file)).size;
  if (worker && size >= HASH_ON_WORKER_FROM) {
    const { Worker } = await import('node:worker_threads');
    return new Promise((resolve, reject) => {
      const w = new Worker(HASH_WORKER, { eval: true, workerData: file });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`hash worker for ${file} exited with code ${code}`)));
    });
  }
  const h = crypto.createHash('sha256');
  let bytes = 0;
  // Synchronous reads: a commit's outputs are in the page cache, and each awaited read of
  // 4 MiB cost a turn of the event loop.
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { bytes, sha256: h.digest('hex') };
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the renames are still atomic.
  }
}

/** Replaces (or creates) `link` with a symlink to `target`, atomically. */
function swapLink(link: string, target: string): void {
  const tmp = `${link}.link-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.symlinkSync(target, tmp);
  try {
    fs.renameSync(tmp, link);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

const LEFTOVER = [
  // A run being staged: <runId>.staging-<pid>
  /\.staging-(\d+)$/,
  // atomicWrite's temporary files: .<name>.tmp-<pid>-<rand>
  /^\..+\.tmp-(\d+)-[a-z0-9]+$/,
  // DuckDB spill directories: .segtensor-spill-<pid>-<rand>
  /^\.segtensor-spill-(\d+)-/,
  // A link being swapped: <name>.link-<pid>-<rand>
  /\.link-(\d+)-[0-9a-f]+$/,
];

/** Removes the staging directories, temporary files and spill directories of dead processes in `dir`. */
export function sweepLeftovers(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    for (const re of LEFTOVER) {
      const m = re.exec(name);
      if (m && !alive(Number(m[1]))) {
        fs.rmSync(path.join(dir, name), { recursive: true, force: true });
        removed.push(name);
        break;
      }
    }
  }
  return removed;
}

/** Called with each run's id as it begins (the CLI's logs name the run). */
const runListeners: ((runId: string, command: string) => void)[] = [];

/** Calls `fn(runId, command)` whenever a run begins in this process. */
export function onRunBegin(fn: (runId: string, command: string) => void): void {
  runListeners.push(fn);
}

/** The command line of the command now running, for the manifests of the runs it begins. */
let invocation: string[] | null = null;

/**
 * Sets the command line that runs begun from now on record as `argv` in their manifests (`null`:
 * none). Module state rather than a {@link RunSpec} field, so the pipelines need not carry it: the
 * CLI sets it once per command (`segtensor run` once per step, as steps run one at a time).
 *
 * @example
 * setInvocation(process.argv.slice(2));
 */
export function setInvocation(argv: string[] | null): void {
  invocation = argv ? [...argv] : null;
}

/** Processes that may hold staging directories: aborted on SIGTERM/SIGINT by the CLI. */
const live = new Set<RunWriter>();
/** Runs this process has published. */
let published = 0;

/** Called by {@link abortAllRuns} before it removes anything: stop writers that would add files. */
const abortHooks: (() => void)[] = [];

/**
 * Registers `fn` to run first when the runs are aborted (a signal): e.g. DuckDB's interrupt, so
 * its threads stop writing spill and output files into a staging directory being removed.
 */
export function onAbort(fn: () => void): void {
  abortHooks.push(fn);
}

/**
 * Removes the staging directories of every unfinished run of this process (for signal handlers).
 * Returns how many runs were stopped before their publish, and how many this process published:
 * a signal that stops none after a publish came while the process was finishing.
 */
export function abortAllRuns(): { stopped: number; published: number } {
  const stopped = live.size;
  for (const fn of abortHooks) {
    try {
      fn();
    } catch {
      // Best effort: the removal below retries.
    }
  }
  for (const r of [...live]) {
    try {
      r.dispose();
    } catch {
      // The next run sweeps what is left (this pid will be dead by then).
    }
  }
  return { stopped, published };
}

function readManifestAt(dir: string): RunManifest | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RUN_MANIFEST), 'utf8')) as RunManifest;
  } catch {
    return null;
  }
}

/** A run being written. Create with {@link beginRun}; always `dispose()` in a `finally`. */
export class RunWriter {
  readonly runId = newRunId();
  readonly staging: string;
  readonly store: string;
  private readonly outAbs: string;
  private readonly names: string[];
  private readonly inputs = new Map<string, Promise<{ bytes: number; sha256: string }>>();
  private readonly counts: Record<string, unknown> = {};
  private backendName: string | null = null;
  private backendFallback: RunManifest['backendFallback'] | null = null;
  private readonly startedAt = new Date().toISOString();
  private readonly argv = invocation;
  private done = false;

  /** @internal use {@link beginRun} */
  constructor(readonly spec: RunSpec) {
    const option = spec.option ?? '--out';
    this.outAbs = path.resolve(spec.out);
    this.store = storeOf(spec.out);
    const parent = path.dirname(this.outAbs);
    makeDirs(parent, option, spec.out);
    this.names = [path.basename(this.outAbs)];
    for (const s of spec.sidecars ?? []) {
      const abs = path.resolve(s);
      if (path.dirname(abs) !== parent) throw new RangeError(`beginRun: sidecar '${s}' must lie beside '${spec.out}'`);
      this.names.push(path.basename(abs));
    }
    this.checkReplaceable(option);
    sweepLeftovers(parent);
    sweepLeftovers(this.store);
    try {
      fs.mkdirSync(this.store, { recursive: true });
      this.staging = path.join(this.store, `${this.runId}.staging-${process.pid}`);
      fs.mkdirSync(this.staging);
    } catch (e) {
      throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${spec.out}': cannot write there (${errText(e)})`);
    }
    live.add(this);
    for (const fn of runListeners) fn(this.runId, spec.command);
  }

  /** Refuses to publish over another command's outputs, or over files segtensor did not write. */
  private checkReplaceable(option: string): void {
    const cur = readManifestAt(path.join(this.store, 'current'));
    // `update` writes what `fit` writes (a model directory): either may replace the other.
    const family = (c: string) => (c === 'update' ? 'fit' : c);
    if (cur && family(cur.command) !== family(this.spec.command)) {
      throw new SegtensorError(
        'UNWRITABLE_OUTPUT',
        `${option} '${this.spec.out}' holds the outputs of \`segtensor ${cur.command}\`; \`segtensor ${this.spec.command}\` will not replace them: choose another ${option}`,
      );
    }
    if (this.spec.layout === 'file') {
      for (const n of this.names) {
        const p = path.join(path.dirname(this.outAbs), n);
        const st = fs.lstatSync(p, { throwIfNoEntry: false });
        if (st?.isDirectory()) throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${this.spec.out}': ${p} is a directory; a file is needed`);
      }
    }
    if (this.spec.layout === 'dir') {
      let st: fs.Stats | null = null;
      try {
        st = fs.lstatSync(this.outAbs);
      } catch {
        return;
      }
      if (st.isSymbolicLink()) return;
      if (!st.isDirectory()) throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${this.spec.out}' is a file; a directory is needed`);
      const entries = fs.readdirSync(this.outAbs);
      if (entries.length === 0) return;
      // A directory written by an older segtensor (files renamed into place one by one).
      const own = { fit: 'model.json', 'churn train': 'churn.json' } as Record<string, string>;
      const hasChurn = entries.includes('churn.json');
      const hasFit = entries.includes('model.json') && !hasChurn;
      const kind = hasChurn ? 'churn train' : hasFit ? 'fit' : null;
      if (!kind) {
        throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${this.spec.out}' is a non-empty directory that segtensor did not write; choose another ${option} or empty it`);
      }
      if (fs.existsSync(path.join(this.store, 'current'))) {
        // Both an older segtensor's files and a run store: which one is the output is unclear.
        throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${this.spec.out}' is a directory of files beside the run store ${this.store}; move one of them away`);
      }
      if (kind !== this.spec.command) {
        throw new SegtensorError(
          'UNWRITABLE_OUTPUT',
          `${option} '${this.spec.out}' holds the outputs of \`segtensor ${kind}\` (${own[kind]}); \`segtensor ${this.spec.command}\` will not replace them: choose another ${option}`,
        );
      }
    }
  }

  /** Where to write output `name` (a file name inside the run; in file layout one of the published names). */
  file(name: string): string {
    if (this.spec.layout === 'file' && !this.names.includes(name)) throw new RangeError(`RunWriter.file: '${name}' is not one of ${this.names.join(', ')}`);
    return path.join(this.staging, name);
  }

  /** The staged path of the primary output (file layout) or the staging directory (dir layout). */
  get primary(): string {
    return this.spec.layout === 'file' ? path.join(this.staging, this.names[0]) : this.staging;
  }

  /** Records an input file: its size and SHA-256 go into the manifest (hashed in the background). */
  input(file: string): void {
    const abs = path.resolve(file);
    if (!this.inputs.has(abs)) {
      const p = hashFile(abs);
      p.catch(() => {});
      this.inputs.set(abs, p);
    }
  }

  /** Adds counts (rows read and written, values coerced, …) to the manifest. */
  count(values: Record<string, unknown>): void {
    Object.assign(this.counts, values);
  }

  /**
   * Records the backend the run used and, when it fell back from a GPU that ran out of memory
   * (the backend's `fallback`, see src/engine/fallback.ts), that fallback.
   *
   * @example
   * run.backend(be.name, be.fallback); // manifest.json: backend 'native', backendFallback { from: 'cuda', … }
   */
  backend(name: string, fallback?: { from: string; to: string; op: string; reason: string } | null): void {
    this.backendName = name;
    this.backendFallback = fallback ? { from: fallback.from, to: fallback.to, op: fallback.op, reason: fallback.reason } : null;
  }

  /**
   * Writes manifest.json, renames the staging directory to its run id and swaps `current` to
   * it: the one step that publishes. Returns the published paths of the outputs.
   */
  async commit(): Promise<{ manifest: RunManifest; files: string[] }> {
    if (this.done) throw new Error('RunWriter.commit: the run is already finished');
    const outputs: ManifestFile[] = [];
    for (const name of fs.readdirSync(this.staging).sort()) {
      const f = path.join(this.staging, name);
      if (!fs.statSync(f).isFile()) continue;
      outputs.push({ path: name, ...(await hashFile(f, { worker: false })) });
    }
    for (const n of this.spec.layout === 'file' ? this.names : []) {
      if (!outputs.some((o) => o.path === n)) throw new Error(`RunWriter.commit: output '${n}' was not written`);
    }
    const inputs: RunManifest['inputs'] = [];
    for (const [abs, p] of this.inputs) {
      const h = await p.catch((e) => {
        throw new SegtensorError('FILE_NOT_FOUND', `${abs}: cannot read the input to record it (${errText(e)})`);
      });
      inputs.push({ path: path.relative(process.cwd(), abs) || abs, resolved: abs, ...h });
    }
    const manifest: RunManifest = {
      format: RUN_FORMAT,
      formatVersion: RUN_FORMAT_VERSION,
      runId: this.runId,
      command: this.spec.command,
      options: Object.fromEntries(Object.entries(this.spec.options).filter(([, v]) => typeof v !== 'function' && v !== undefined)),
      ...(this.argv ? { argv: this.argv } : {}),
      ...(this.spec.pseudonymKey ? { pseudonymKey: keyFingerprint(this.spec.pseudonymKey) } : {}),
      inputs,
      outputs,
      counts: this.counts,
      backend: this.backendName,
      ...(this.backendFallback ? { backendFallback: this.backendFallback } : {}),
      versions: { segtensor: VERSION, node: process.version, platform: `${os.platform()}-${os.arch()}` },
      startedAt: this.startedAt,
      endedAt: new Date().toISOString(),
    };
    const mf = path.join(this.staging, RUN_MANIFEST);
    const fd = fs.openSync(mf, 'w');
    try {
      fs.writeFileSync(fd, JSON.stringify(manifest, null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fsyncDir(this.staging);
    const final = path.join(this.store, this.runId);
    fs.renameSync(this.staging, final);
    this.done = true;
    fsyncDir(this.store);
    const parent = path.dirname(this.outAbs);
    const current = path.join(this.store, 'current');
    this.placeLinks(parent); // may make the outputs of an older segtensor the current run
    const previous = fs.existsSync(current) ? fs.realpathSync(current) : null;
    swapLink(current, this.runId); // ← the publish
    // Live (for a signal handler: stopped before publishing) until here.
    live.delete(this);
    published++;
    fsyncDir(this.store);
    this.prune(final, previous);
    const files = this.spec.layout === 'dir' ? outputs.map((o) => path.join(this.spec.out, o.path)) : this.names.map((n) => path.join(parent, n));
    return { manifest, files };
  }

  /**
   * Makes the user-facing links (once; they point into `current` and never change). Outputs of
   * an older segtensor found there are first moved into the store as a run of their own, so the
   * link shows the same content until the publish.
   */
  private placeLinks(parent: string): void {
    const rel = path.basename(this.store);
    const targets = this.spec.layout === 'dir' ? [[this.outAbs, path.join(rel, 'current')]] : this.names.map((n) => [path.join(parent, n), path.join(rel, 'current', n)]);
    const current = path.join(this.store, 'current');
    const lstat = (p: string) => {
      try {
        return fs.lstatSync(p);
      } catch {
        return null; // missing: a dangling link until the publish
      }
    };
    const legacy = targets.filter(([link]) => {
      const st = lstat(link);
      return st && !st.isSymbolicLink() && !(st.isDirectory() && fs.readdirSync(link).length === 0);
    });
    if (legacy.length && !fs.existsSync(current)) {
      // Outputs of an older segtensor: moved into the store as a run of their own, so the links
      // show the same content until the publish.
      const dir = path.join(this.store, `${newRunId()}-legacy`);
      if (this.spec.layout === 'dir') {
        // A directory cannot be replaced by a link atomically: there is a moment without it.
        fs.renameSync(this.outAbs, dir);
      } else {
        fs.mkdirSync(dir);
        for (const [link] of legacy) fs.linkSync(link, path.join(dir, path.basename(link)));
      }
      swapLink(current, path.basename(dir));
    }
    for (const [link, target] of targets) {
      const st = lstat(link);
      if (st?.isSymbolicLink() && fs.readlinkSync(link) === target) continue;
      if (st?.isDirectory()) fs.rmdirSync(link); // empty (checked when the run began)
      swapLink(link, target);
    }
  }

  /** Removes runs older than the previous one. */
  private prune(final: string, previous: string | null): void {
    for (const name of fs.readdirSync(this.store)) {
      const p = path.join(this.store, name);
      if (name === 'current' || p === final || p === previous) continue;
      if (LEFTOVER.some((re) => re.test(name))) continue; // staging of a live run
      fs.rmSync(p, { recursive: true, force: true });
    }
  }

  /** Removes the staging directory unless the run was committed. Safe to call twice. */
  dispose(): void {
    if (!this.done) {
      this.done = true;
      // Retried: a writer thread (DuckDB's COPY and spill files, libuv) may still be adding a file
      // when a signal handler gets here, which makes a pass fail with ENOTEMPTY (linear back-off,
      // ~1 s in all).
      fs.rmSync(this.staging, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
    }
    live.delete(this);
  }
}

/** Starts a run: checks `--out` (in milliseconds), sweeps leftovers of dead runs, makes the staging directory. */
export function beginRun(s: RunSpec): RunWriter {
  return new RunWriter(s);
}

/** A published run, resolved once and checked against its manifest. */
export interface OpenRun {
  /** The run directory (resolved: later publishes do not change what is read). */
  dir: string;
  manifest: RunManifest;
  /** Path of output `name` inside the run. */
  file(name: string): string;
  has(name: string): boolean;
}

/**
 * Opens a run for reading: `target` is a run's published directory or one of its published
 * files (or any file inside one). Refuses a directory without a manifest, or whose files do not
 * match it (size and SHA-256), naming `option`.
 */
export async function openRun(target: string, option: string, expect?: string[]): Promise<OpenRun> {
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${target}': no such file or directory`);
  }
  const dir = fs.statSync(real).isDirectory() ? real : path.dirname(real);
  const mfile = path.join(dir, RUN_MANIFEST);
  let m: RunManifest;
  try {
    m = JSON.parse(fs.readFileSync(mfile, 'utf8')) as RunManifest;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'has no manifest.json' : `has an unreadable manifest.json (${errText(e)})`;
    throw new SegtensorError('CORRUPT_FILE', `${option} '${target}' ${why}: not a complete segtensor run (an interrupted run, an older segtensor or files copied by hand); rerun the command that makes it`);
  }
  if (m?.format !== RUN_FORMAT || m.formatVersion !== RUN_FORMAT_VERSION || !Array.isArray(m.outputs)) {
    throw new SegtensorError('CORRUPT_FILE', `${option} '${target}': ${mfile} is not a segtensor run manifest (version ${RUN_FORMAT_VERSION})`);
  }
  if (expect && !expect.includes(m.command)) {
    throw new SegtensorError('BAD_INPUT', `${option} '${target}' holds the outputs of \`segtensor ${m.command}\`; expected ${expect.map((c) => `\`segtensor ${c}\``).join(' or ')}`);
  }
  for (const o of m.outputs) {
    const f = path.join(dir, o.path);
    let h: { bytes: number; sha256: string };
    try {
      h = await hashFile(f);
    } catch {
      throw new SegtensorError('CORRUPT_FILE', `${option} '${target}': ${o.path} is missing; the run directory does not match its manifest`);
    }
    if (h.bytes !== o.bytes || h.sha256 !== o.sha256) {
      throw new SegtensorError('CORRUPT_FILE', `${option} '${target}': ${o.path} changed after the run (${h.bytes} bytes, sha256 ${h.sha256.slice(0, 12)}…; the manifest says ${o.bytes} bytes, ${o.sha256.slice(0, 12)}…)`);
    }
  }
  const listed = new Set(m.outputs.map((o) => o.path));
  return { dir, manifest: m, file: (name) => path.join(dir, name), has: (name) => listed.has(name) };
}
