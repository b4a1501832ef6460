/**
 * Atomic output: every file is written to a temporary name in its destination directory and
 * renamed into place, so a failed run leaves earlier outputs intact and readers never see a
 * half-written file.
 *
 * @example
 * await atomicWrite('out/model.json', JSON.stringify(model));
 */
import fs from 'node:fs';
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { firstLine } from './arrow-reader.js';
import { makeDirs } from './run-dir.js';

/** A temporary path beside `dest` (same filesystem, so rename is atomic). */
export function tempPathFor(dest: string): string {
  const dir = path.dirname(dest);
  return path.join(dir, `.${path.basename(dest)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/**
 * Ensures `dir` exists and is writable, or throws `UNWRITABLE_OUTPUT` naming the option.
 * Called before any work, so a bad output path fails in a second, not after an hour.
 */
export function ensureWritableDir(dir: string, option = '--out'): void {
  makeDirs(dir, option); // fails fast on /proc and friends, where mkdir -p loops
  try {
    const probe = tempPathFor(path.join(dir, 'probe'));
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new SegtensorError('UNWRITABLE_OUTPUT', `${option} '${dir}': cannot write there (${firstLine(e)})`);
  }
}

/** Writes bytes or text (or pieces of bytes, in order) to `dest` atomically (temp file, fsync, rename). */
export function atomicWrite(dest: string, data: string | Uint8Array | Uint8Array[]): void {
  const tmp = tempPathFor(dest);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      if (Array.isArray(data)) {
        for (const piece of data) {
          for (let at = 0; at < piece.length; ) at += fs.writeSync(fd, piece, at, piece.length - at);
        }
      } else fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new SegtensorError('UNWRITABLE_OUTPUT', `${dest}: cannot write (${firstLine(e)})`);
  }
}

/**
 * Runs `produce(tmp)` to create a file at a temporary path (e.g. DuckDB's COPY), then renames
 * it over `dest`. The temp file is removed if anything fails.
 */
export async function atomicProduce(dest: string, produce: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(dest);
  try {
    await produce(tmp);
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true, recursive: true });
    if (e instanceof SegtensorError) throw e;
    throw new SegtensorError('UNWRITABLE_OUTPUT', `${dest}: cannot write (${firstLine(e)})`);
  }
}
