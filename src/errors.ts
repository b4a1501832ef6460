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
  | 'BACKEND_UNAVAILABLE';

export class SegtensorError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SegtensorError';
  }
}
