/** The built CLI run as a child process, as a user runs it (`npm test` builds it first). */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BIN = path.join(ROOT, 'dist/src/cli/main.js');

/** A runner of `segtensor <args>` in `cwd`: exit code, stdout, stderr. */
export function cliRunner(cwd: string): (...args: string[]) => { code: number | null; out: string; err: string } {
  return (...args) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd, env: { ...process.env, SEGTENSOR_DEBUG: '' } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
}
