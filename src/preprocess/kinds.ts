/** Scaler and imputer names (a module of its own: the CLI loads it at start-up). */
export type ScaleKind = 'standard' | 'minmax' | 'log1p' | 'none';
export type ImputeKind = 'median' | 'mean' | 'zero';

export const SCALES: readonly ScaleKind[] = ['standard', 'minmax', 'log1p', 'none'];
export const IMPUTES: readonly ImputeKind[] = ['median', 'mean', 'zero'];
