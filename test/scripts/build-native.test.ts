/**
 * Install never breaks: the native build script exits 0 with one notice line when no compiler
 * is available, and `--backend auto` then falls back to tfjs-wasm with a one-line notice.
 * Runs on a copy of the sources, so the real build in kernels/build is untouched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-build-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('scripts/build-native.mjs', () => {
  it('exits 0 with one notice line when no compiler is on PATH', () => {
    fs.cpSync(path.join(root, 'scripts'), path.join(tmp, 'scripts'), { recursive: true });
    fs.cpSync(path.join(root, 'kernels'), path.join(tmp, 'kernels'), { recursive: true, filter: (p) => !p.includes(`${path.sep}build`) });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(tmp, 'node_modules'));
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = spawnSync(path.join(bin, 'node'), [path.join(tmp, 'scripts', 'build-native.mjs')], {
      encoding: 'utf8',
      env: { PATH: bin, HOME: tmp, CC: '/nonexistent/cc', CXX: '/nonexistent/c++' },
    });
    expect(r.status).toBe(0);
    const lines = (r.stdout + r.stderr).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^segtensor: native CPU kernels not built \(.+\); the other backends still work$/);
    expect(fs.existsSync(path.join(tmp, 'kernels', 'build', 'Release', 'segtensor_native.node'))).toBe(false);
  });
});

describe('--backend auto without the native addon', () => {
  it('falls back to wasm with a one-line notice and still succeeds', () => {
    const r = spawnSync(
      process.execPath,
      [path.join(root, 'dist/src/cli/main.js'), 'fit', '-i', path.join(root, 'test/fixtures/wine.csv'), '-k', '3', '--id', 'wine_id', '-o', path.join(tmp, 'out'), '--n-init', '1'],
      { encoding: 'utf8', env: { ...process.env, SEGTENSOR_NATIVE_ADDON: path.join(tmp, 'missing.node') } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^segtensor: notice: backend 'native' is not available: addon not built .*; falling back$/)]);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'out', 'metrics.json'), 'utf8')).backend).toBe('wasm');
  });
});
