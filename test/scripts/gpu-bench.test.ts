/**
 * bench/gpu.ts, the script a lent GPU runs (scripts/gpu-run.sh), rehearsed here through the
 * stand-in addon (test/engine/cuda-standin.cjs): every section runs and is reported, so a lent
 * GPU's few minutes are not lost to a broken script. It measures nothing here.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('bench/gpu.ts', () => {
  it('rehearses every section through the stand-in addon and writes its report', () => {
    const out = mkdtempSync(join(tmpdir(), 'segtensor-gpu-rehearsal-'));
    try {
      const r = spawnSync(process.execPath, [join(root, 'dist/bench/gpu.js'), '--rehearse', '--out', out], {
        encoding: 'utf8',
        env: { ...process.env, SEGTENSOR_CUDA_ADDON: join(root, 'test/engine/cuda-standin.cjs') },
      });
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(readFileSync(join(out, 'gpu-bench.json'), 'utf8'));
      expect(j.rows).toHaveLength(2);
      for (const row of j.rows) expect(row.cudaMsAll).toHaveLength(row.config.iters);
      expect(j.wholeFit.sameBits).toBe(true);
      expect(j.wholeProcess.seconds).toBeGreaterThan(0);
      expect(j.labelsVsNative.rows).toBe(4000); // native is built wherever the suite runs: the comparison ran
      expect(j.labelsVsNative.notNearTie).toBe(0);
      expect(j.tensorCoreLabels.differFromFloat64Argmin).toBe(0);
      expect(j.streaming.note).toMatch(/not rehearsed/);
      const md = readFileSync(join(out, 'gpu-bench.md'), 'utf8');
      for (const key of ['wholeFit', 'wholeProcess', 'labelsVsNative', 'tensorCoreLabels', 'streaming']) expect(md).toContain(`${key}:`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
