/**
 * The library face of the population generator: {@link generatePopulation} loads the
 * DuckDB-backed implementation on first call.
 *
 * @example
 * import { generatePopulation } from 'segtensor';
 * await generatePopulation({ customers: 100_000, seed: 1, out: 'data/pop' });
 */
import type { GenerateJob, GenerateResult } from './generate.js';

export type { GenerateJob, GenerateResult, PopulationManifest } from './generate.js';
export { CATEGORIES, CHURN, CHURN_RULE_TEXT, NOISE, POPULATION_DEFAULTS, SEGMENTS, type PopulationOptions, type SegmentSpec } from './spec.js';

/** Writes customers, transactions, truth and manifest.json to `job.out`; see `generate.ts`. */
export async function generatePopulation(job: GenerateJob): Promise<GenerateResult> {
  return (await import('./generate.js')).generatePopulation(job);
}
