/** Table formats by file extension. @internal */
import path from 'node:path';
import { SegtensorError } from '../errors.js';

export type TableFormat = 'arrow' | 'parquet' | 'csv';

const EXT: Record<string, TableFormat> = {
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
  '.parquet': 'parquet',
  '.csv': 'csv',
};

/** The format a file's extension names, or an `UNSUPPORTED_FORMAT` error listing the accepted ones. */
export function formatOf(file: string, option = 'file'): TableFormat {
  const f = EXT[path.extname(file).toLowerCase()];
  if (!f) {
    throw new SegtensorError(
      'UNSUPPORTED_FORMAT',
      `${option} '${file}': unknown extension '${path.extname(file)}'; use one of ${Object.keys(EXT).join(', ')}`,
    );
  }
  return f;
}
