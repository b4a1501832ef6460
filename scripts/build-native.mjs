#!/usr/bin/env node
/**
 * Builds the optional native kernels: the C++ addon in kernels/ (node-gyp) and, when nvcc is on
 * PATH, the CUDA addon in kernels/cuda/. Never fails an install: any problem prints one notice
 * line and exits 0, and segtensor then runs on the tfjs backends.
 *
 * Offline by design: node-gyp is pointed at headers already on this machine (--nodedir), so it
 * never downloads a header tarball.
 *
 *   node scripts/build-native.mjs            # both, as far as the machine allows
 *   node scripts/build-native.mjs --cpu-only
 *   SEGTENSOR_SKIP_NATIVE=1 npm install      # skip entirely
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const kernels = join(root, 'kernels');
const verbose = process.argv.includes('--verbose');

function notice(what, why) {
  console.log(`segtensor: ${what} not built (${why}); the other backends still work`);
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** A directory with include/node/node_api.h whose common.gypi node-gyp can use, or null. */
function localNodeDir() {
  const candidates = [
    process.env.npm_config_nodedir,
    join(dirname(process.execPath), '..'), // official tarballs and nvm: <prefix>/include/node
    '/usr',
    '/usr/local',
  ];
  for (const c of candidates) {
    if (c && existsSync(join(c, 'include', 'node', 'node_api.h')) && existsSync(join(c, 'include', 'node', 'common.gypi'))) return c;
  }
  // node-gyp's own cache, if an earlier online build filled it.
  const home = process.env.HOME ?? '';
  const cached = join(home, '.cache', 'node-gyp', process.versions.node);
  if (existsSync(join(cached, 'include', 'node', 'node_api.h'))) return cached;
  return null;
}

/** Runs a command; returns null on success, else the last meaningful line of its output. */
function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, npm_config_nodedir: undefined } });
  if (verbose) process.stdout.write((r.stdout ?? '') + (r.stderr ?? ''));
  if (r.error) return r.error.message;
  if (r.status === 0) return null;
  const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim());
  const err = lines.find((l) => /error/i.test(l) && !/^gyp ERR! (stack|System|command|cwd|node|not ok)/.test(l));
  return (err ?? `exit code ${r.status}`).slice(0, 200);
}

function buildCpu() {
  if (process.platform === 'win32') return notice('native CPU kernels', 'Windows build is not supported yet');
  let gyp;
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return notice('native CPU kernels', 'node-gyp is not installed');
  }
  const nodedir = localNodeDir();
  if (!nodedir) return notice('native CPU kernels', 'Node headers not found locally (install nodejs-dev or set npm_config_nodedir)');
  const err = run(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'], kernels);
  if (err) return notice('native CPU kernels', err);
  console.log('segtensor: native CPU kernels built');
}

function buildCuda() {
  const nvcc = process.env.NVCC ?? which('nvcc');
  if (!nvcc) return; // silent: most machines have no CUDA toolkit
  const err = run(process.execPath, [join(kernels, 'cuda', 'build.mjs'), `--nvcc=${nvcc}`], kernels);
  if (err) return notice('CUDA kernels', err);
  console.log('segtensor: CUDA kernels built');
}

try {
  if (process.env.SEGTENSOR_SKIP_NATIVE) {
    notice('native kernels', 'SEGTENSOR_SKIP_NATIVE is set');
  } else {
    buildCpu();
    if (!process.argv.includes('--cpu-only')) buildCuda();
  }
} catch (e) {
  notice('native kernels', String(e?.message ?? e).split('\n')[0]);
}
process.exit(0);
