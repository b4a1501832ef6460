/**
 * transitions.csv for a table read in blocks (`fit --memory-limit --align-to --id`): the same
 * counts as ./align.ts `transitionsCsv`, without either run's ids whole in memory. Both runs'
 * (id, segment) pairs are split into buckets by a hash of the id (files in the run's staging
 * directory), and each bucket is joined on its own: memory holds one bucket of the previous
 * run's ids, about 1 / nBuckets of them.
 *
 * Ids match as in memory: integers whatever their stored type (5, 5n), strings by value.
 *
 * @example
 * const t = new TransitionBuckets(path.join(run.staging, '.transitions'), 16);
 * for (const batch of batches) t.add(ids, segments);
 * const { csv, counts } = await t.finish(prev.model, prev.run);
 */
import fs from 'node:fs';
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { readTable, readTableBatches } from '../io/read-table.js';
import type { OpenRun } from '../io/run-dir.js';
import { ArrowBatchWriter, type OutColumn } from '../io/write-table.js';
import type { AlignmentReport } from './align.js';
import type { ModelFile } from './model-file.js';

/** The key ids are matched by (./align.ts): integers as BigInt, anything else as it is. */
function idKey(v: unknown): unknown {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return v;
}

/** FNV-1a over the key's text: equal keys, equal buckets. */
function bucketOf(v: unknown, n: number): number {
  const s = String(idKey(v));
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}

type Ids = OutColumn['values'];

/** Rows `rows` of an id column, in a column of its own kind. */
function pick(ids: Ids, rows: number[]): Ids {
  if (Array.isArray(ids)) return rows.map((i) => ids[i]);
  // Plain loops: a typed array's `from` with a function costs ~0.2 s per million values.
  if (ids instanceof BigInt64Array) {
    const out = new BigInt64Array(rows.length);
    for (let j = 0; j < rows.length; j++) out[j] = ids[rows[j]];
    return out;
  }
  const out = new Float64Array(rows.length);
  for (let j = 0; j < rows.length; j++) out[j] = Number(ids[rows[j]]);
  return out;
}

/** One side's buckets: an Arrow file per bucket, made at its first row. */
class BucketFiles {
  private readonly writers = new Map<number, ArrowBatchWriter>();
  rows = 0;

  constructor(
    private readonly dir: string,
    private readonly side: string,
    private readonly n: number,
  ) {}

  file(b: number): string {
    return path.join(this.dir, `${this.side}-${b}.arrow`);
  }

  has(b: number): boolean {
    return this.writers.has(b);
  }

  add(ids: Ids, segments: ArrayLike<number>): void {
    const rows: number[][] = Array.from({ length: this.n }, () => []);
    for (let i = 0; i < segments.length; i++) rows[bucketOf(ids[i], this.n)].push(i);
    rows.forEach((r, b) => {
      if (!r.length) return;
      let w = this.writers.get(b);
      // Scratch files, removed after the join: not synced to disk.
      if (!w) this.writers.set(b, (w = new ArrowBatchWriter(this.file(b), { sync: false })));
      // Numbers as float64 (integers match BigInt ones through idKey), so a bucket's type stays one.
      const seg = new Int32Array(r.length);
      for (let j = 0; j < r.length; j++) seg[j] = segments[r[j]];
      w.write([{ name: 'id', values: pick(ids, r) }, { name: 'segment', values: seg }]);
    });
    this.rows += segments.length;
  }

  async close(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
  }

  async abort(): Promise<void> {
    for (const w of this.writers.values()) await w.abort();
  }
}

/** See the module comment. */
export class TransitionBuckets {
  private readonly current: BucketFiles;

  constructor(
    private readonly dir: string,
    readonly nBuckets: number,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.current = new BucketFiles(dir, 'current', nBuckets);
  }

  /** One batch of this run: its ids and the segment id of each row. */
  add(ids: Ids, segments: ArrayLike<number>): void {
    this.current.add(ids, segments);
  }

  /** Joins the buckets with the previous run's assignments; removes the bucket files. */
  async finish(prev: ModelFile, prevRun: OpenRun): Promise<{ csv: string; counts: NonNullable<AlignmentReport['transitions']> }> {
    const previous = new BucketFiles(this.dir, 'previous', this.nBuckets);
    try {
      await this.current.close();
      const file = ['assignments.arrow', 'assignments.parquet'].find((f) => prevRun.has(f));
      if (!file) throw new SegtensorError('FILE_NOT_FOUND', `--align-to '${prevRun.dir}': the previous run has no assignments file to count transitions from`);
      const prevName = prev.idColumn;
      if (!prevName) throw new SegtensorError('BAD_OPTION', `--align-to '${prevRun.dir}': the previous fit had no --id column, so customers cannot be followed between runs`);
      for await (const b of readTableBatches(prevRun.file(file), '--align-to')) {
        const c = b.column(prevName);
        const ids = c.type === 'string' || c.type === 'bigint' || c.type === 'number' ? c.values : [];
        previous.add(ids as Ids, b.numeric('segment'));
      }
      await previous.close();
      const pairs = new Map<string, number>();
      let both = 0;
      for (let bucket = 0; bucket < this.nBuckets; bucket++) {
        if (!previous.has(bucket) || !this.current.has(bucket)) continue;
        const p = await readTable(previous.file(bucket), '--align-to');
        const before = new Map<unknown, number>();
        const pIds = (p.column('id') as { values: ArrayLike<unknown> }).values;
        const pSeg = p.numeric('segment');
        for (let i = 0; i < p.nRows; i++) before.set(idKey(pIds[i]), pSeg[i]);
        const c = await readTable(this.current.file(bucket), '--align-to');
        const cIds = (c.column('id') as { values: ArrayLike<unknown> }).values;
        const cSeg = c.numeric('segment');
        for (let i = 0; i < c.nRows; i++) {
          const s = before.get(idKey(cIds[i]));
          if (s === undefined) continue;
          both++;
          const key = `${s},${cSeg[i]}`;
          pairs.set(key, (pairs.get(key) ?? 0) + 1);
        }
      }
      const rows = [...pairs.entries()].map(([key, n]) => [...key.split(',').map(Number), n]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
      const csv = ['previous_segment,segment,customers', ...rows.map((r) => r.join(','))].join('\n') + '\n';
      return { csv, counts: { customersInBoth: both, onlyPrevious: previous.rows - both, onlyCurrent: this.current.rows - both } };
    } catch (e) {
      await this.current.abort().catch(() => {});
      await previous.abort().catch(() => {});
      throw e;
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Removes the bucket files after a failure elsewhere. */
  async abort(): Promise<void> {
    await this.current.abort().catch(() => {});
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
