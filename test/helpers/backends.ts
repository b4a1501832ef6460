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
