/**
 * Every backend usable on this machine, so each suite runs on all of them (tfjs's
 * describeWithFlags(ALL_ENVS) idea). Unavailable ones are listed with the reason and skipped.
 */
import '../../src/engine/backends/index.js';
import type { Backend, BackendName } from '../../src/engine/backend.js';
import { AUTO_ORDER, getBackend } from '../../src/engine/registry.js';

export async function usableBackends(): Promise<Backend[]> {
  const out: Backend[] = [];
  for (const name of AUTO_ORDER) {
    try {
      out.push(await getBackend(name as BackendName));
    } catch {
      // not usable here (e.g. no tfjs-node, no GPU); the suite reports what it ran on
    }
  }
  return out;
}

/** Backends every machine has; their absence is a failure, not a skip. */
export const ALWAYS: BackendName[] = ['cpu', 'wasm'];

/**
 * Set by scripts/gpu-run.sh: the lent GPU machine runs the shared suites from a pack that
 * carries no tfjs and no DuckDB (scripts/gpu-pack.sh says why), so the checks that every machine
 * has `cpu` and `wasm` are skipped there, visibly.
 */
export const GPU_PACK = process.env.SEGTENSOR_GPU_PACK === '1';

/**
 * Runs fn once per instruction set the native addon has when `be` is the native backend
 * (setIsa is process-wide, restored to auto after), once otherwise; fn gets a label for messages.
 */
export async function perIsa(
  be: Backend,
  addon: { info(): { isas: string[] }; setIsa(isa: 'auto' | 'baseline' | 'avx2' | 'avx512'): void } | null,
  fn: (isa: string) => Promise<void>,
): Promise<void> {
  if (be.name !== 'native' || !addon) return fn('');
  try {
    for (const isa of addon.info().isas) {
      addon.setIsa(isa as 'baseline' | 'avx2' | 'avx512');
      await fn(` (${isa})`);
    }
  } finally {
    addon.setIsa('auto');
  }
}
