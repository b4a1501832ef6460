/**
 * A float32 matrix in a file, read back block by block (issue 17, out-of-core): the preprocessed
 * rows of a table larger than memory are written once, then every pass of a fit (seeding, each
 * Lloyd step) reads them again, one block of `chunkRows` rows in memory at a time. Raw
 * little-endian float32, row-major, no header: the caller knows the shape.
 *
 * The operating system's page cache keeps what fits of the file in memory between passes; a
 * memory limit (a cgroup) counts those pages but may reclaim them, so a pass then reads from disk.
 *
 * @example
 * const w = new MatrixCacheWriter(file, 32);
 * w.append(block); // any number of rows at a time
 * const x = w.finish(1 << 16); // a ChunkedMatrix over the file
 * try { await new KMeans({ k: 8 }).fit(be, x); } finally { x.close(); }
 */
import fs from 'node:fs';
import type { ChunkedMatrix } from '../core/matrix.js';

/** Writes rows to the cache file in order. */
export class MatrixCacheWriter {
  private readonly fd: number;
  private rowsWritten = 0;
  private closed = false;

  constructor(
    readonly file: string,
    readonly nFeatures: number,
  ) {
    this.fd = fs.openSync(file, 'w');
  }

  get nRows(): number {
    return this.rowsWritten;
  }

  /** Appends rows (row-major, a multiple of nFeatures values). */
  append(rows: Float32Array): void {
    if (rows.length % this.nFeatures !== 0) throw new RangeError(`MatrixCacheWriter.append: ${rows.length} values is not a whole number of rows of ${this.nFeatures}`);
    const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
    for (let at = 0; at < bytes.length; ) at += fs.writeSync(this.fd, bytes, at, bytes.length - at);
    this.rowsWritten += rows.length / this.nFeatures;
  }

  /** Closes and removes the file (after a failure). */
  abort(): void {
    if (!this.closed) {
      fs.closeSync(this.fd);
      this.closed = true;
    }
    fs.rmSync(this.file, { force: true });
  }

  /** Closes the file for writing and opens it for reading in blocks of `chunkRows` rows. */
  finish(chunkRows: number): ChunkedMatrix & { close(): void } {
    if (!this.closed) {
      fs.closeSync(this.fd);
      this.closed = true;
    }
    return openMatrixCache(this.file, this.rowsWritten, this.nFeatures, chunkRows);
  }
}

/** A {@link ChunkedMatrix} over a cache file of nRows × nFeatures float32; `close()` it. */
export function openMatrixCache(file: string, nRows: number, nFeatures: number, chunkRows: number): ChunkedMatrix & { close(): void } {
  const size = fs.statSync(file).size;
  if (size !== nRows * nFeatures * 4) throw new RangeError(`${file}: ${size} bytes, not ${nRows} × ${nFeatures} float32`);
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new RangeError(`openMatrixCache: chunkRows must be an integer >= 1; got ${chunkRows}`);
  const fd = fs.openSync(file, 'r');
  const rowBytes = nFeatures * 4;
  // One block buffer, reused by every chunk() call (the ChunkedMatrix contract allows it).
  const block = new Float32Array(Math.min(chunkRows, Math.max(nRows, 1)) * nFeatures);
  const blockBytes = new Uint8Array(block.buffer);
  const readAt = (dest: Uint8Array, bytes: number, position: number) => {
    for (let at = 0; at < bytes; ) {
      const n = fs.readSync(fd, dest, at, bytes - at, position + at);
      if (n === 0) throw new Error(`${file}: ended at byte ${position + at} of ${size}`);
      at += n;
    }
  };
  return {
    nRows,
    nFeatures,
    chunkRows,
    nChunks: Math.ceil(nRows / chunkRows),
    chunk(c) {
      const start = c * chunkRows;
      const rows = Math.min(chunkRows, nRows - start);
      if (!(rows > 0)) throw new RangeError(`matrix cache: no block ${c} of ${Math.ceil(nRows / chunkRows)}`);
      readAt(blockBytes, rows * rowBytes, start * rowBytes);
      return rows === chunkRows ? block : block.subarray(0, rows * nFeatures);
    },
    rows(ids) {
      const out = new Float32Array(ids.length * nFeatures);
      const bytes = new Uint8Array(out.buffer);
      for (let j = 0; j < ids.length; j++) readAt(bytes.subarray(j * rowBytes), rowBytes, ids[j] * rowBytes);
      return out;
    },
    close() {
      fs.closeSync(fd);
    },
  };
}
