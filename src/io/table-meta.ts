/**
 * Table metadata that travels with a file: which columns are labels (issue 12), so that no
 * later step uses a label as a feature by accident. `segtensor features` writes the list under
 * {@link LABELS_KEY} as a JSON array in a Parquet file's key-value metadata and in an Arrow
 * file's schema metadata; CSV has no such place, so there it lives in the `labels` field of the
 * `<file>.meta.json` sidecar (which Parquet and Arrow outputs have too).
 *
 * @example
 * await readLabelColumns('features.parquet'); // ['churned'] after `features --churn-window 90`
 */
import fs from 'node:fs';
import { RecordBatchReader } from './arrow.js';
import { SegtensorError } from '../errors.js';
import { firstLine } from './arrow-reader.js';
import { duck, sqlString } from './duckdb-reader.js';
import { checkInputFile } from './read-table.js';

/** The schema-metadata key holding the label columns, a JSON array of column names. */
export const LABELS_KEY = 'segtensor.labels';

/**
 * The label columns of a table: from the file's own schema metadata (Parquet key-value
 * metadata, Arrow schema metadata) when it has {@link LABELS_KEY}, else from the `labels` field
 * of `<file>.meta.json` beside it, else `[]`. A value that is not an array of strings is a
 * `CORRUPT_FILE` error naming the file; `option` names the CLI option in a missing-file error.
 *
 * @example
 * const labels = await readLabelColumns('features.csv'); // from features.csv.meta.json
 */
export async function readLabelColumns(file: string, option = 'file'): Promise<string[]> {
  const format = checkInputFile(file, option);
  const raw = format === 'parquet' ? await parquetValue(file, LABELS_KEY) : format === 'arrow' ? await arrowValue(file, LABELS_KEY) : undefined;
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (e) {
      throw new SegtensorError('CORRUPT_FILE', `${file}: metadata '${LABELS_KEY}' is not JSON (${firstLine(e)})`);
    }
    return labelList(parsed, `${file}: metadata '${LABELS_KEY}'`);
  }
  return sidecarLabels(metaPathFor(file));
}

/** The metadata sidecar of a table file: `<file>.meta.json`, beside it. */
export function metaPathFor(file: string): string {
  return `${file}.meta.json`;
}

function labelList(v: unknown, owner: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new SegtensorError('CORRUPT_FILE', `${owner} must be a JSON array of column names; got ${JSON.stringify(v)?.slice(0, 80)}`);
  }
  return v as string[];
}

function sidecarLabels(sidecar: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(sidecar, 'utf8');
  } catch {
    return []; // no sidecar: nothing is marked
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${sidecar}: not JSON (${firstLine(e)})`);
  }
  const labels = meta && typeof meta === 'object' ? (meta as { labels?: unknown }).labels : undefined;
  return labels === undefined ? [] : labelList(labels, `${sidecar}: 'labels'`);
}

/** One key of a Parquet file's key-value metadata (read from the footer only). */
async function parquetValue(file: string, key: string): Promise<string | undefined> {
  const conn = await duck();
  try {
    const r = await conn.runAndReadAll(`SELECT decode(value) FROM parquet_kv_metadata(${sqlString(file)}) WHERE decode(key) = ${sqlString(key)}`);
    const rows = r.getRows();
    return rows.length ? String(rows[0][0]) : undefined;
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable Parquet file (${firstLine(e)})`);
  }
}

/** One key of an Arrow IPC file's or stream's schema metadata (the footer or the first message only). */
async function arrowValue(file: string, key: string): Promise<string | undefined> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(file, 'r');
    const reader = await RecordBatchReader.from(handle);
    await reader.open();
    return reader.schema?.metadata.get(key);
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not a readable Arrow IPC file or stream (${firstLine(e)})`);
  } finally {
    await handle?.close().catch(() => {});
  }
}
