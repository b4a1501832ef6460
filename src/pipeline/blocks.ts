/**
 * Tables read in blocks (`--memory-limit`, issue 17): the decision, the block size, and the
 * batch loop of the commands that score row by row (predict, churn predict). Apart from the
 * streaming fit (./fit-stream.ts) so that those commands do not load the fit.
 */
import fs from 'node:fs';
import { SegtensorError } from '../errors.js';
import { readTableBatches, TextNumbers } from '../io/read-table.js';
import type { ColumnTable } from '../io/table.js';
import { ArrowBatchWriter } from '../io/write-table.js';
import { IdCheck } from './ids.js';

/** Rows per block of the cache (and per batch of Parquet/CSV reads): 64 Ki rows, 8 MiB at 32 features. */
export const BLOCK_ROWS = 1 << 16;

/**
 * Whether `--memory-limit` sends the table through blocks: when its resident form (estimated
 * from the file: Arrow and CSV about 1.5 × their size as float64 cells plus the float32 matrix,
 * Parquet 6 ×, for its compression) would exceed the limit. Says which, and why.
 */
export function readsInBlocks(input: string, limit: number, log: (l: string) => void): boolean {
  let size: number;
  try {
    size = fs.statSync(input).size;
  } catch {
    return false; // the read names the missing file
  }
  const factor = /\.parquet$/i.test(input) ? 6 : 1.5;
  const estimate = size * factor;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const blocks = estimate > limit;
  log(`notice: --memory-limit ${gb(limit)}: the table would take about ${gb(estimate)} in memory; ${blocks ? 'reading it in blocks' : 'fitting in memory'}`);
  return blocks;
}

/**
 * The text-by-content rule on a table read in batches. In memory, a text column whose cells are
 * mostly numbers is read as numbers (./io/read-table.ts); batches keep text as text, so a table
 * read in blocks would silently cluster, weigh or name rows differently. Counting every text
 * column's cells over the batches (`add` each) finds such a column; `finish` refuses it in one
 * line. Only the columns `watch` names (those the work reads) are counted.
 */
export class TextColumnsCheck {
  private readonly counts = new Map<string, TextNumbers>();

  constructor(
    private readonly file: string,
    private readonly watch: (name: string) => boolean,
  ) {}

  add(b: ColumnTable): void {
    for (const c of b.columns) {
      if (c.type !== 'string' || !this.watch(c.name)) continue;
      let t = this.counts.get(c.name);
      if (!t) this.counts.set(c.name, (t = new TextNumbers()));
      t.add(c.values);
    }
  }

  finish(): void {
    for (const [name, t] of this.counts) {
      if (t.numeric) {
        throw new SegtensorError(
          'BAD_INPUT',
          `--memory-limit: column '${name}' of ${this.file} holds numbers stored as text, which a table read in memory reads as numbers and one read in blocks does not (yet); store it as numbers, leave it out (--exclude ${name}), or run without --memory-limit`,
        );
      }
    }
  }
}

/**
 * The scoring loop of predict and churn predict on a table read in batches: each batch's ids
 * checked (nulls, and duplicates across batches) before `score` sees it, then `score` writes the batch's rows to `dest`
 * (an Arrow file published only when every batch went through). Returns the rows read.
 */
export async function scoreBatches(
  input: string,
  dest: string,
  idNameOf: (b: ColumnTable) => string | null,
  /** Whether `score` pseudonymises the ids: an id error then names rows, never values. */
  pseudonymized: boolean,
  log: (l: string) => void,
  score: (b: ColumnTable, at: number, idName: string | null, out: ArrowBatchWriter) => Promise<void>,
): Promise<number> {
  const out = new ArrowBatchWriter(dest);
  let ids: IdCheck | null = null;
  let text: TextColumnsCheck | null = null;
  let nRows = 0;
  try {
    for await (const b of readTableBatches(input, '--input', BLOCK_ROWS)) {
      const idName = idNameOf(b);
      ids ??= new IdCheck(input, idName, !pseudonymized);
      ids.add(b, nRows);
      // The id column: in memory, ids stored as text holding numbers are read as numbers.
      text ??= new TextColumnsCheck(input, (name) => name === idName);
      text.add(b);
      await score(b, nRows, idName, out);
      nRows += b.nRows;
    }
    if (nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${input}: the table has no rows`);
    ids!.finish(log);
    text!.finish();
    await out.close();
  } catch (e) {
    await out.abort();
    throw e;
  }
  return nRows;
}

