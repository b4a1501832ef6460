/**
 * Finding and loading the native addon (kernels/cpu), shared by the `native` backend and the
 * memory-mapped file reader. Returns null instead of throwing: callers decide whether a missing
 * addon is an error (the backend) or a reason to take a slower path (the reader).
 * @internal
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the build puts the addon, relative to the repository root. */
export const NATIVE_ADDON_PATH = 'kernels/build/Release/segtensor_native.node';

/** The built addon: `SEGTENSOR_NATIVE_ADDON`, else kernels/build under the nearest ancestor that has it. */
export function findNativeAddon(): string | null {
  const override = process.env.SEGTENSOR_NATIVE_ADDON;
  if (override) return existsSync(override) ? override : null;
  let dir = dirname(fileURLToPath(import.meta.url));
  // src/util when run from source, dist/src/util once compiled.
  for (let i = 0; i < 6; i++) {
    const p = join(dir, NATIVE_ADDON_PATH);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

let cached: { module: unknown } | { error: string } | null = null;

/** The addon's exports, loaded once, or `{ error }` with a one-line reason. */
export function loadNativeModule(): { module: unknown } | { error: string } {
  if (cached) return cached;
  const path = findNativeAddon();
  if (!path) cached = { error: `addon not built (${NATIVE_ADDON_PATH} missing; run 'node scripts/build-native.mjs')` };
  else {
    try {
      cached = { module: createRequire(import.meta.url)(path) };
    } catch (e) {
      cached = { error: `addon failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
    }
  }
  return cached;
}

/**
 * A zero-filled Float32Array of `n` values whose memory the native addon starts faulting in on a
 * background thread, so that cost overlaps with whatever the caller does before writing it.
 * Without the addon, a plain Float32Array.
 */
export function allocFloat32(n: number): Float32Array {
  const r = loadNativeModule();
  const alloc = 'module' in r ? (r.module as { allocPopulated?: (bytes: number) => ArrayBuffer }).allocPopulated : undefined;
  // Small arrays are not worth a thread.
  if (alloc && n >= 1 << 20) return new Float32Array(alloc(n * 4));
  return new Float32Array(n);
}
