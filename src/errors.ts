/**
 * Errors a user can act on. Each carries a stable `code` the CLI prints and scripts can match;
 * the message names the owner (file, column, option) and shows what arrived.
 *
 * @example
 * throw new SegtensorError('BAD_OPTION', "KMeans: 'k' must be an integer in [1, nRows]; got 0");
 */
export type ErrorCode =
  | 'BAD_OPTION'
  | 'BAD_INPUT'
  | 'MISSING_COLUMN'
  | 'NON_NUMERIC_COLUMN'
  | 'ALL_NULL_COLUMN'
  | 'NON_FINITE'
  | 'EMPTY_TABLE'
  | 'DUPLICATE_ID'
  | 'FILE_NOT_FOUND'
  | 'CORRUPT_FILE'
  | 'UNSUPPORTED_FORMAT'
  | 'UNWRITABLE_OUTPUT'
  | 'MODEL_VERSION'
  | 'BACKEND_UNAVAILABLE'
  /** A mostly numeric column with cells that are not numbers, or a cell that does not convert to its `--dtypes` type. */
  | 'MIXED_COLUMN'
  /** A column's type differs from the one the model was fitted on. */
  | 'TYPE_MISMATCH'
  /** An option's value lies outside what the data allows (e.g. `--as-of` outside the log). */
  | 'OUT_OF_RANGE'
  /** More invalid input rows than the run's allowance (`features --max-invalid`). */
  | 'TOO_MANY_INVALID'
  /** A job file (`segtensor run`) that does not parse or validate: names the file, the key and what was expected. */
  | 'BAD_JOB'
  /** The GPU ran out of memory and no CPU backend could take over: names the op and the sizes. */
  | 'DEVICE_MEMORY';

export class SegtensorError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SegtensorError';
  }
}

/**
 * How errors name a row of a table: `data row N`, 1-based, counting data rows only (a CSV's
 * header is not one). Structural CSV errors name the file line instead.
 *
 * @example
 * dataRow(0); // 'data row 1'
 */
export function dataRow(i: number): string {
  return `data row ${i + 1}`;
}
