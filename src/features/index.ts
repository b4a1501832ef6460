/**
 * The library face of `src/features`: {@link buildFeatures} loads the DuckDB-backed
 * implementation on first call, so importing segtensor does not pay DuckDB's ~0.5 s start-up.
 *
 * @example
 * import { buildFeatures } from 'segtensor';
 * const r = await buildFeatures({ transactions: 'tx.parquet', asOf: '2024-01-01', out: 'features.parquet', churnWindow: 90 });
 */
import type { FeatureJob, FeatureResult } from './rfm.js';

export type { FeatureJob, FeatureMeta, FeatureResult } from './rfm.js';
export { FEATURE_DEFAULTS } from './defaults.js';

/** Per-customer RFM and behaviour features from a transaction log; see `src/features/rfm.ts`. */
export async function buildFeatures(job: FeatureJob): Promise<FeatureResult> {
  return (await import('./rfm.js')).buildFeatures(job);
}
