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

/**
 * A built addon: the file named by the environment variable `envVar` if set, else `relPath`
 * under the nearest ancestor of this module that has it (src/util from source, dist/src/util
 * once compiled).
 */
export function findAddon(relPath: string, envVar: string): string | null {
  const override = process.env[envVar];
  if (override) return existsSync(override) ? override : null;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, relPath);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

/** Loads the addon at `relPath` (see {@link findAddon}), or `{ error }` with a one-line reason. */
export function loadAddon(relPath: string, envVar: string, howToBuild: string): { module: unknown } | { error: string } {
  const path = findAddon(relPath, envVar);
  if (!path) return { error: `addon not built (${relPath} missing; ${howToBuild})` };
  try {
    return { module: createRequire(import.meta.url)(path) };
  } catch (e) {
    return { error: `addon failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
  }
}

let cached: { module: unknown } | { error: string } | null = null;
let helpersOn = true;

/**
 * Turns the addon's data helpers off (or back on) for the modules that have a JavaScript path
 * beside them (preprocessing, segment profiles): the tests run both paths on the same tables
 * and compare them. The backends are not affected. @internal
 */
export function useNativeHelpers(on: boolean): void {
  helpersOn = on;
}

/**
 * The addon's export `name` for a data helper with a JavaScript twin, or null (addon not built,
 * too old to have it, or helpers turned off). @internal
 */
export function nativeHelper<F>(name: string): F | null {
  if (!helpersOn) return null;
  const r = loadNativeModule();
  return 'module' in r ? (((r.module as Record<string, unknown>)[name] as F | undefined) ?? null) : null;
}

/** The CPU addon's exports, loaded once (`SEGTENSOR_NATIVE_ADDON` overrides the path). */
export function loadNativeModule(): { module: unknown } | { error: string } {
  cached ??= loadAddon(NATIVE_ADDON_PATH, 'SEGTENSOR_NATIVE_ADDON', "run 'node scripts/build-native.mjs'");
  return cached;
}

/**
 * Zero-filled memory of `bytes` whose pages the native addon starts faulting in on a background
 * thread (on transparent huge pages where the kernel allows), so that cost overlaps with whatever
 * the caller does before writing it. Below 4 MiB, or without the addon, a plain ArrayBuffer.
 */
export function allocZeroed(bytes: number): ArrayBuffer {
  const r = loadNativeModule();
  const alloc = 'module' in r ? (r.module as { allocPopulated?: (bytes: number) => ArrayBuffer }).allocPopulated : undefined;
  // Small buffers are not worth a thread.
  if (alloc && bytes >= 4 << 20) return alloc(bytes);
  return new ArrayBuffer(bytes);
}

/** A zero-filled Float32Array of `n` values through {@link allocZeroed}. */
export function allocFloat32(n: number): Float32Array {
  return new Float32Array(allocZeroed(n * 4));
}
