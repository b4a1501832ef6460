/**
 * Checkpoints of a long fit: the model's state (see {@link KMeansState}) in one file of the
 * output's run store, written atomically, so `fit --resume` after a kill continues where the
 * killed process left off and reaches the same model, bit for bit, as an uninterrupted run.
 *
 * The file sits at `<parent>/.<name>.runs/fit.checkpoint`, beside the runs, outside any staging
 * directory (those are swept when their process is dead). Publishing the run removes it (the
 * store's pruning removes every file that is not a run). It is keyed by a hash of what decides the
 * fit's floats: the input's SHA-256, the options that reach the model, the backend, the
 * segtensor version; a checkpoint of anything else is never resumed.
 *
 * Layout: `SEGCKPT1`, a uint32 (little-endian) header length, the header (JSON: key, the state
 * with each typed array replaced by `{ "$array": i }`, and each array's type, offset and length),
 * then the arrays' bytes, each at a multiple of 8.
 *
 * @example
 * const cp = fitCheckpoints({ store: run.store, key, resume: true, everySeconds: 30, log });
 * await new KMeans({ k: 8, checkpoints: cp }).fit(be, x);
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { atomicWrite } from '../io/atomic.js';
import type { KMeansCheckpoints, KMeansState } from '../models/kmeans.js';

export const CHECKPOINT_FILE = 'fit.checkpoint';
const MAGIC = 'SEGCKPT1';
/** Bumped when {@link KMeansState} changes shape: an older file is then not resumed. */
const CHECKPOINT_VERSION = 1;

type ArrayKind = 'f32' | 'f64' | 'i32';
const KINDS: Record<ArrayKind, { ctor: Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor; bytes: number }> = {
  f32: { ctor: Float32Array, bytes: 4 },
  f64: { ctor: Float64Array, bytes: 8 },
  i32: { ctor: Int32Array, bytes: 4 },
};

function kindOf(v: unknown): ArrayKind | null {
  if (v instanceof Float32Array) return 'f32';
  if (v instanceof Float64Array) return 'f64';
  if (v instanceof Int32Array) return 'i32';
  return null;
}

/** The state as header JSON plus the arrays' bytes. */
export function encodeCheckpoint(key: string, state: KMeansState): Uint8Array[] {
  const arrays: { kind: ArrayKind; data: Uint8Array }[] = [];
  const body = JSON.stringify({ version: CHECKPOINT_VERSION, key, state }, (_k, v) => {
    const kind = kindOf(v);
    if (!kind) return v;
    const a = v as Float32Array | Float64Array | Int32Array;
    arrays.push({ kind, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
    return { $array: arrays.length - 1 };
  });
  let at = 0;
  const index = arrays.map((a) => {
    const e = { kind: a.kind, offset: at, length: a.data.byteLength / KINDS[a.kind].bytes };
    at += Math.ceil(a.data.byteLength / 8) * 8;
    return e;
  });
  const header = Buffer.from(JSON.stringify({ arrays: index, body }), 'utf8');
  const head = Buffer.alloc(MAGIC.length + 4);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(header.length, MAGIC.length);
  const pad = (n: number) => new Uint8Array((8 - (n % 8)) % 8);
  const pieces: Uint8Array[] = [head, header, pad(head.length + header.length)];
  for (const a of arrays) pieces.push(a.data, pad(a.data.byteLength));
  return pieces;
}

/** The key and state of a checkpoint file's bytes; throws on anything malformed. */
export function decodeCheckpoint(buf: Buffer): { key: string; state: KMeansState } {
  if (buf.length < MAGIC.length + 4 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) throw new Error('not a segtensor checkpoint');
  const n = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const { arrays, body } = JSON.parse(buf.toString('utf8', start, start + n)) as { arrays: { kind: ArrayKind; offset: number; length: number }[]; body: string };
  const dataAt = Math.ceil((start + n) / 8) * 8;
  const parsed = JSON.parse(body, (_k, v) => {
    if (v && typeof v === 'object' && typeof v.$array === 'number') {
      const e = arrays[v.$array];
      const { ctor, bytes } = KINDS[e.kind];
      const from = dataAt + e.offset;
      if (from + e.length * bytes > buf.length) throw new Error('truncated');
      // A copy: aligned, and independent of the file's buffer.
      const out = new ctor(e.length);
      new Uint8Array(out.buffer).set(buf.subarray(from, from + e.length * bytes));
      return out;
    }
    return v;
  }) as { version: number; key: string; state: KMeansState };
  if (parsed.version !== CHECKPOINT_VERSION) throw new Error(`checkpoint version ${parsed.version}, not ${CHECKPOINT_VERSION}`);
  return { key: parsed.key, state: parsed.state };
}

/** The key of a fit: a hash of everything that decides its floats. */
export function checkpointKey(parts: Record<string, unknown>): string {
  return crypto.createHash('sha256').update(JSON.stringify({ version: CHECKPOINT_VERSION, ...parts })).digest('hex');
}

export interface CheckpointStore extends KMeansCheckpoints {
  /** Where the checkpoint lives. */
  readonly file: string;
  /** What the fit resumed from (`restart r, iteration i`), or null when it started afresh. */
  readonly resumedFrom: string | null;
  /** Checkpoints written by this process. */
  readonly written: number;
}

export interface CheckpointOptions {
  /** The output's run store (RunWriter.store). */
  store: string;
  /**
   * What the checkpoint is keyed by: a string, or a function computing it when it is first
   * needed (the input's SHA-256 is then hashed beside the fit, not waited for before it).
   * `resume` needs a string: restoring compares keys at the start.
   */
  key: string | (() => Promise<string>);
  /** Continue from a checkpoint with the same key, when there is one. */
  resume: boolean;
  /** Write a state at most this often (seconds); 0: at every point the model offers. */
  everySeconds: number;
  log: (line: string) => void;
}

/** The file-backed store of a fit's checkpoints (see the module comment). */
export function fitCheckpoints(o: CheckpointOptions): CheckpointStore {
  const file = path.join(o.store, CHECKPOINT_FILE);
  let last = performance.now();
  let resumedFrom: string | null = null;
  let written = 0;
  return {
    file,
    get resumedFrom() {
      return resumedFrom;
    },
    get written() {
      return written;
    },
    restore(): KMeansState | null {
      if (!o.resume) return null;
      let buf: Buffer;
      try {
        buf = fs.readFileSync(file);
      } catch {
        o.log(`notice: --resume: no checkpoint in ${o.store}; fitting from the start`);
        return null;
      }
      let got: { key: string; state: KMeansState };
      try {
        got = decodeCheckpoint(buf);
      } catch (e) {
        o.log(`warning: --resume: ${file} is unreadable (${(e as Error).message}); fitting from the start`);
        return null;
      }
      if (typeof o.key !== 'string') throw new Error('fitCheckpoints: resume needs the key up front');
      if (got.key !== o.key) {
        o.log(`warning: --resume: the checkpoint in ${o.store} is of another input, options, backend or version; fitting from the start`);
        return null;
      }
      const s = got.state;
      resumedFrom = s.current ? `restart ${s.run + 1}, iteration ${s.current.iteration}` : `the start of restart ${s.run + 1}`;
      o.log(`notice: --resume: resuming from ${resumedFrom} (${file})`);
      return s;
    },
    due(): boolean {
      return o.everySeconds === 0 || performance.now() - last >= o.everySeconds * 1000;
    },
    async save(state: KMeansState): Promise<void> {
      if (typeof o.key !== 'string') o.key = await o.key();
      atomicWrite(file, encodeCheckpoint(o.key, state));
      written++;
      last = performance.now();
    },
  };
}
