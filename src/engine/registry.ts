/**
 * Backends by name. Each entry is a lazy loader: a backend whose library is missing (tfjs-node
 * not installed, native addon not built, no CUDA device) throws {@link BackendUnavailableError}
 * with the reason, and `auto` moves on to the next one.
 *
 * @example
 * const be = await resolveBackend('auto'); // fastest usable backend
 */
import { BackendUnavailableError, type Backend, type BackendName } from './backend.js';
import { withNativeFallback } from './fallback.js';

type Loader = () => Promise<Backend>;

const loaders = new Map<BackendName, Loader>();
const loaded = new Map<BackendName, Promise<Backend>>();

/** Order in which `auto` tries backends: fastest first. */
export const AUTO_ORDER: readonly BackendName[] = Object.freeze(['cuda', 'native', 'tensorflow', 'wasm', 'cpu']);

/** Every name `--backend` accepts. */
export const BACKEND_NAMES: readonly string[] = Object.freeze(['auto', ...AUTO_ORDER]);

/** Registers a backend loader; a second registration of the same name is refused. */
export function registerBackend(name: BackendName, load: Loader): void {
  if (loaders.has(name)) throw new Error(`registerBackend: backend '${name}' is already registered`);
  loaders.set(name, load);
}

/** Loads (once) and returns the named backend; throws BackendUnavailableError if it cannot run here. */
export async function getBackend(name: BackendName): Promise<Backend> {
  const load = loaders.get(name);
  if (!load) throw new BackendUnavailableError(name, 'no such backend is registered');
  let p = loaded.get(name);
  if (!p) {
    p = load();
    loaded.set(name, p);
    // A failed load is not cached, so a later call reports the same reason afresh.
    p.catch(() => loaded.delete(name));
  }
  return p;
}

/** Why each backend can or cannot run here, for `segtensor doctor`. */
export async function probeBackends(): Promise<{ name: BackendName; usable: boolean; detail: string }[]> {
  const out: { name: BackendName; usable: boolean; detail: string }[] = [];
  for (const name of AUTO_ORDER) {
    try {
      const be = await getBackend(name);
      out.push({ name, usable: true, detail: be.description });
    } catch (e) {
      out.push({ name, usable: false, detail: e instanceof BackendUnavailableError ? e.reason : String(e) });
    }
  }
  return out;
}

/**
 * Resolves `--backend`: a name, or `auto` for the first usable backend in {@link AUTO_ORDER}.
 * `onFallback` hears one line for each backend that `auto` skipped and why, and the warning if
 * the GPU later runs out of memory: `cuda` (named or chosen by `auto`) comes wrapped so that a
 * device out-of-memory error that its retries in smaller pieces do not cure moves the run to
 * `native` instead of failing it (see ./fallback.ts; `backendFallback(be)` says whether it did,
 * and `be.name` is the backend in use). `getBackend('cuda')` is the bare backend.
 */
export async function resolveBackend(name: string, onFallback?: (line: string) => void): Promise<Backend> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new TypeError(`--backend must be one of ${BACKEND_NAMES.join(', ')}; got '${name}'`);
  }
  if (name !== 'auto') return withFallback(await getBackend(name as BackendName), onFallback);
  for (const n of AUTO_ORDER) {
    try {
      return await withFallback(await getBackend(n), onFallback);
    } catch (e) {
      if (!(e instanceof BackendUnavailableError)) throw e;
      // Silence for backends that are expected to be absent on most machines.
      if (n === 'native') onFallback?.(`notice: ${e.message}; falling back`);
    }
  }
  throw new BackendUnavailableError('auto', 'no backend could be loaded');
}

/** `be` with the fallback to `native` on device out-of-memory when it is `cuda`; other backends as they are. */
async function withFallback(be: Backend, log?: (line: string) => void): Promise<Backend> {
  if (be.name !== 'cuda') return be;
  try {
    return withNativeFallback(be, await getBackend('native'), log);
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    return withNativeFallback(be, null, log, e.reason);
  }
}
