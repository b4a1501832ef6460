/**
 * Pseudonymous customer ids (`--pseudonymize-ids`): each id is replaced, where it enters a
 * command, by a keyed hash, HMAC-SHA-256(key, the id as text), truncated to its first 128 bits
 * as 32 hex digits (RFC 2104 allows truncation to no less than half the output; 128 bits keep
 * collisions at ~2⁻⁸⁰ for ten million customers). The same key gives the same pseudonym night
 * after night, so `--align-to` transitions and joins between runs still work; without the key
 * a pseudonym cannot be tied back to an id.
 *
 * The key comes from the environment variable {@link KEY_ENV} or a file
 * (`--pseudonym-key-file`): never from the command line (which `ps` and manifests show), and it is
 * never written to an output, a manifest or a log (the key file's path is, not its bytes).
 *
 * @example
 * const key = pseudonymKey({ keyFile: null, env: process.env });
 * pseudonym(key, 'C-1001'); // '3f1c…' (32 hex digits)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { SegtensorError } from '../errors.js';

/** The environment variable holding the key (as text; at least {@link MIN_KEY_BYTES} bytes). */
export const KEY_ENV = 'SEGTENSOR_PSEUDONYM_KEY';
/** 128 bits: shorter keys can be guessed. */
export const MIN_KEY_BYTES = 16;
/** Hex digits kept of the HMAC (128 bits). */
export const PSEUDONYM_HEX = 32;

/** A loaded key; opaque, so it is not printed by accident (`String(key)` shows no bytes). */
export class PseudonymKey {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  /** @internal the key's bytes, for the HMAC only. */
  bytes(): Buffer {
    return this.#bytes;
  }
  toString(): string {
    return '[pseudonym key]';
  }
  toJSON(): string {
    return '[pseudonym key]';
  }
}

/**
 * The key of `--pseudonymize-ids`: the file's bytes (one trailing newline dropped) when
 * `keyFile` is given, else the environment variable's text. Missing or short keys are a
 * BAD_OPTION naming where the key was looked for, never showing it.
 */
export function pseudonymKey(o: { keyFile?: string | null; env?: NodeJS.ProcessEnv }): PseudonymKey {
  let bytes: Buffer;
  let from: string;
  if (o.keyFile) {
    from = `--pseudonym-key-file ${o.keyFile}`;
    try {
      bytes = fs.readFileSync(o.keyFile);
    } catch (e) {
      throw new SegtensorError('BAD_OPTION', `${from}: cannot read the key (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (bytes.length && bytes[bytes.length - 1] === 0x0a) bytes = bytes.subarray(0, bytes.length - (bytes[bytes.length - 2] === 0x0d ? 2 : 1));
  } else {
    from = `environment variable ${KEY_ENV}`;
    const text = (o.env ?? process.env)[KEY_ENV];
    if (text === undefined || text === '') {
      throw new SegtensorError('BAD_OPTION', `--pseudonymize-ids needs a key: set ${KEY_ENV} or pass --pseudonym-key-file <file> (at least ${MIN_KEY_BYTES} bytes)`);
    }
    bytes = Buffer.from(text, 'utf8');
  }
  if (bytes.length < MIN_KEY_BYTES) throw new SegtensorError('BAD_OPTION', `${from}: the key has ${bytes.length} bytes; at least ${MIN_KEY_BYTES} are needed`);
  return new PseudonymKey(Buffer.from(bytes));
}

/**
 * Which key pseudonymised a run, without revealing it: an HMAC of a fixed text under the key,
 * 64 bits in hex. Recorded in manifests, so `segtensor run` reruns a step after the key changes
 * (its pseudonyms would differ) rather than taking the old outputs as up to date.
 */
export function keyFingerprint(key: PseudonymKey): string {
  return crypto.createHmac('sha256', key.bytes()).update('segtensor pseudonym key fingerprint v1', 'utf8').digest('hex').slice(0, 16);
}

/** The pseudonym of one id (its text form: numbers and 64-bit integers as decimal). */
export function pseudonym(key: PseudonymKey, id: string | number | bigint): string {
  return crypto.createHmac('sha256', key.bytes()).update(String(id), 'utf8').digest('hex').slice(0, PSEUDONYM_HEX);
}

/**
 * HMAC's two padded keys (RFC 2104: the key, hashed first when over 64 bytes, zero-padded to the
 * block and XORed with 0x36 and 0x5c), as hex, for computing the same pseudonyms in SQL.
 */
export function hmacPads(key: PseudonymKey): { inner: string; outer: string } {
  let k = key.bytes();
  if (k.length > 64) k = crypto.createHash('sha256').update(k).digest();
  const block = Buffer.alloc(64);
  k.copy(block);
  return { inner: Buffer.from(block.map((b) => b ^ 0x36)).toString('hex'), outer: Buffer.from(block.map((b) => b ^ 0x5c)).toString('hex') };
}

/**
 * Pseudonyms of a column of ids, nulls kept null. HMAC's two padded keys are hashed once and
 * their SHA-256 states copied per id (Hash.copy), which saves two of the four compressions.
 */
export function pseudonyms(key: PseudonymKey, values: ArrayLike<string | number | bigint | null>): (string | null)[] {
  const pads = hmacPads(key);
  const inner = crypto.createHash('sha256').update(Buffer.from(pads.inner, 'hex'));
  const outer = crypto.createHash('sha256').update(Buffer.from(pads.outer, 'hex'));
  const out = new Array<string | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || (typeof v === 'number' && Number.isNaN(v))) {
      out[i] = null;
      continue;
    }
    const h = inner.copy().update(String(v), 'utf8').digest();
    out[i] = outer.copy().update(h).digest('hex').slice(0, PSEUDONYM_HEX);
  }
  return out;
}

/** `--pseudonymize-ids` and where its key is (see src/util/pseudonym.ts). */
export interface PseudonymJob {
  /** Replace customer ids by keyed hashes where they are read. Default false. */
  pseudonymizeIds?: boolean;
  /** A file holding the key; default the environment variable SEGTENSOR_PSEUDONYM_KEY. */
  pseudonymKeyFile?: string | null;
}

/** The job's pseudonym key, loaded before any work (a missing key fails in milliseconds), or null. */
export function jobPseudonymKey(job: PseudonymJob) {
  if (job.pseudonymKeyFile && !job.pseudonymizeIds) throw new SegtensorError('BAD_OPTION', '--pseudonym-key-file applies with --pseudonymize-ids');
  return job.pseudonymizeIds ? pseudonymKey({ keyFile: job.pseudonymKeyFile ?? null, env: process.env }) : null;
}
