/**
 * A whole input file as bytes: memory-mapped through the native addon when it is built (the
 * page cache's own pages, no copy), else read with readFileSync.
 * @internal
 */
import fs from 'node:fs';
import { loadNativeModule } from '../util/native-addon.js';

interface MapFile {
  mapFile?: (path: string) => ArrayBuffer;
}

export function readFileBytes(file: string): Uint8Array {
  const r = loadNativeModule();
  const map = 'module' in r ? (r.module as MapFile).mapFile : undefined;
  if (map) {
    try {
      return new Uint8Array(map(file));
    } catch {
      // e.g. a special file that cannot be mapped: read it instead
    }
  }
  return fs.readFileSync(file);
}
