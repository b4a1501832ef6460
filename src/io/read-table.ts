import fs from 'node:fs';
import { SegtensorError } from '../errors.js';
import { readArrow } from './arrow-reader.js';
import { readWithDuckDB } from './duckdb-reader.js';
import { formatOf, type TableFormat } from './format.js';
import type { ColumnTable } from './table.js';

/**
 * Reads a customer table; the format follows the extension (`.arrow`/`.arrows`/`.feather`,
 * `.parquet`, `.csv`). Errors name the file.
 *
 * @example
 * const t = await readTable('customers.arrow');
 */
export async function readTable(file: string, option = '--input'): Promise<ColumnTable> {
  const format = checkInputFile(file, option);
  return format === 'arrow' ? readArrow(file) : readWithDuckDB(file, format);
}

/**
 * The checks every input file gets before a reader opens it — a known extension, present, a
 * regular file, not empty — as one-line errors naming `option`. Returns its format.
 */
export function checkInputFile(file: string, option: string): TableFormat {
  const format = formatOf(file, option);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${file}': no such file`);
  }
  if (!st.isFile()) throw new SegtensorError('BAD_INPUT', `${option} '${file}': not a regular file`);
  if (st.size === 0) throw new SegtensorError('EMPTY_TABLE', `${file}: the file is empty`);
  return format;
}
