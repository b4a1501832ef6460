/** The column types `--dtypes` declares (a module of its own: the CLI loads it at start-up). */
export const DTYPES = Object.freeze(['number', 'integer', 'string', 'timestamp'] as const);
export type DType = (typeof DTYPES)[number];
