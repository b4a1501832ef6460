/**
 * For modules with an addon path and a JavaScript path beside it (preprocessing, segment
 * profiles): run the same call both ways, to compare them.
 */
import { loadNativeModule, useNativeHelpers } from '../../src/util/native-addon.js';

/** Whether the addon is built here (otherwise both paths are the JavaScript one). */
export const addonBuilt = 'module' in loadNativeModule();

/** fn() with the addon's data helpers off, then on: [JavaScript result, addon result]. */
export function bothPaths<T>(fn: () => T): [T, T] {
  try {
    useNativeHelpers(false);
    const js = fn();
    useNativeHelpers(true);
    return [js, fn()];
  } finally {
    useNativeHelpers(true);
  }
}
