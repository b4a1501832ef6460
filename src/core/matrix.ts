/**
 * The host matrix every layer shares: `io` and `preprocess` make it, the engine uploads it,
 * models and metrics read it. It lives below all of them so that none imports a higher layer
 * for it.
 *
 * @example
 * const x: Matrix = { data: new Float32Array(6), nRows: 2, nFeatures: 3 };
 */

/** A dense row-major float32 matrix on the host. `data.length === nRows * nFeatures`. */
export interface Matrix {
  data: Float32Array;
  nRows: number;
  nFeatures: number;
}

/**
 * A matrix held as blocks of rows, for data that does not fit in one typed array or in memory:
 * the blocks live in memory ({@link chunkedMatrix}) or in a file read block by block
 * (src/io/matrix-cache.ts). Node caps one typed array at 2³² elements (16 GiB of float32), and
 * a table larger than memory is read one block at a time.
 *
 * @example
 * const x = chunkedMatrix([a, b], 3); // two row-major blocks of 3 features
 * for (let c = 0; c < x.nChunks; c++) use(x.chunk(c));
 */
export interface ChunkedMatrix {
  readonly nRows: number;
  readonly nFeatures: number;
  /** Rows per block; the last block may hold fewer. */
  readonly chunkRows: number;
  readonly nChunks: number;
  /** Block c's rows, row-major. The array may be reused by the next call: copy what must outlive it. */
  chunk(c: number): Float32Array;
  /** Rows `ids` (any order, repeats allowed), copied into one ids.length × nFeatures array. */
  rows(ids: ArrayLike<number>): Float32Array;
}

/** A host matrix in one array or in blocks. */
export type HostMatrix = Matrix | ChunkedMatrix;

export function isChunked(x: HostMatrix): x is ChunkedMatrix {
  return typeof (x as ChunkedMatrix).chunk === 'function';
}

/** Rows [start, end) of block c of `x`. */
export function chunkRange(x: ChunkedMatrix, c: number): { start: number; end: number } {
  const start = c * x.chunkRows;
  return { start, end: Math.min(x.nRows, start + x.chunkRows) };
}

/** A chunked matrix over row-major blocks in memory, every block but the last of `chunkRows` rows. */
export function chunkedMatrix(blocks: Float32Array[], nFeatures: number): ChunkedMatrix {
  if (!blocks.length) throw new RangeError('chunkedMatrix: no blocks');
  const chunkRows = blocks[0].length / nFeatures;
  let nRows = 0;
  blocks.forEach((b, c) => {
    const r = b.length / nFeatures;
    if (!Number.isInteger(r) || (c < blocks.length - 1 && r !== chunkRows) || r > chunkRows || r === 0) {
      throw new RangeError(`chunkedMatrix: block ${c} holds ${b.length} values; every block but the last must hold ${chunkRows} rows of ${nFeatures}`);
    }
    nRows += r;
  });
  return {
    nRows,
    nFeatures,
    chunkRows,
    nChunks: blocks.length,
    chunk: (c) => blocks[c],
    rows(ids) {
      const out = new Float32Array(ids.length * nFeatures);
      for (let j = 0; j < ids.length; j++) {
        const i = ids[j];
        const b = blocks[Math.floor(i / chunkRows)];
        const at = (i % chunkRows) * nFeatures;
        out.set(b.subarray(at, at + nFeatures), j * nFeatures);
      }
      return out;
    },
  };
}

/** Rows `ids` of `x` in one array, whichever its form. */
export function hostRows(x: HostMatrix, ids: ArrayLike<number>): Float32Array {
  if (isChunked(x)) return x.rows(ids);
  const d = x.nFeatures;
  const out = new Float32Array(ids.length * d);
  for (let j = 0; j < ids.length; j++) out.set(x.data.subarray(ids[j] * d, (ids[j] + 1) * d), j * d);
  return out;
}
