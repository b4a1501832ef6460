/**
 * The tfjs instance the churn models run on: the same tfjs-core (and so the same engine, kernel
 * registry and backends) that segmentation's tfjs backends use, with tfjs-layers from the
 * `@tensorflow/tfjs` bundle on top of it.
 *
 * `--backend` takes every segmentation name; the MLP itself only runs on tfjs backends, so
 * `auto`, `native` and `cuda` map to the best tfjs backend available here (`tensorflow` when
 * tfjs-node is installed, else `wasm`, else `cpu`) and say so in a notice.
 *
 * @example
 * const { tf, backend } = await churnTfjs('auto', console.error); // backend: 'wasm' here
 *
 * @internal
 */
import type * as TFL from '@tensorflow/tfjs';
import { BackendUnavailableError, type BackendName } from '../../engine/backend.js';
import '../../engine/backends/index.js';
import { activeTfjs } from '../../engine/backends/tfjs.js';
import { BACKEND_NAMES, getBackend } from '../../engine/registry.js';
import { SegtensorError } from '../../errors.js';

/** tfjs backends the churn MLP can train on, fastest first. */
export const TFJS_ORDER = Object.freeze(['tensorflow', 'wasm', 'cpu'] as const);
export type TfjsBackendName = (typeof TFJS_ORDER)[number];

/** tfjs-layers plus tfjs-core, one shared instance. */
export type Tf = typeof TFL;

/** Loaded on first use: the bundle (layers, converter, data) costs ~0.4 s of start-up to every command. */
let bundle: Promise<Tf> | null = null;

/**
 * Resolves `--backend` for the churn models and activates that tfjs backend.
 * `notice` hears one line when the request was mapped to a different backend.
 */
export async function churnTfjs(name: string, notice: (line: string) => void = () => {}): Promise<{ tf: Tf; backend: TfjsBackendName }> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new SegtensorError('BAD_OPTION', `--backend must be one of ${BACKEND_NAMES.join(', ')}; got '${name}'`);
  }
  let chosen: TfjsBackendName | null = null;
  if ((TFJS_ORDER as readonly string[]).includes(name)) {
    await getBackend(name as BackendName); // throws BackendUnavailableError with the reason
    chosen = name as TfjsBackendName;
  } else {
    for (const n of TFJS_ORDER) {
      try {
        await getBackend(n);
        chosen = n;
        break;
      } catch (e) {
        if (!(e instanceof BackendUnavailableError)) throw e;
      }
    }
    if (!chosen) throw new BackendUnavailableError(name as BackendName, 'no tfjs backend could be loaded for the churn MLP');
    if (name !== 'auto' || chosen !== 'tensorflow') {
      notice(`notice: the churn MLP runs on tfjs backends only; --backend ${name} uses tfjs '${chosen}', the best available here`);
    }
  }
  const core = await activeTfjs(chosen);
  const tfl = await (bundle ??= import('@tensorflow/tfjs'));
  // One engine: tfjs-layers must build its variables in the core our backends registered with.
  if (core.engine() !== tfl.engine()) {
    throw new Error('@tensorflow/tfjs bundles a different tfjs-core instance than @tensorflow/tfjs-core; deduplicate node_modules');
  }
  return { tf: tfl, backend: chosen };
}
