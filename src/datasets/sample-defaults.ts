/** The demo sample's size, seed and segment names (no Arrow: the CLI loads this at start-up). */
export interface SampleOptions {
  customers: number;
  seed: number;
}

export const SAMPLE_DEFAULTS: SampleOptions = Object.freeze({ customers: 100_000, seed: 7 });

export const SEGMENT_NAMES = ['loyal high spenders', 'bargain hunters', 'new customers', 'occasional buyers', 'lapsing customers'];
