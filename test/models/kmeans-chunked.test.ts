/**
 * Issue 17, out-of-core: K-Means on a matrix held in blocks (in memory, or in a cache file read
 * one block at a time) finds what the resident fit finds: the same labels and the same centroids
 * to float32 rounding (the float64 sums are grouped by block), on every backend, with k-means++,
 * k-means‖ and weights; blocks of an awkward size (not dividing the rows) included.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkedMatrix, type Matrix } from '../../src/core/matrix.js';
import { MatrixCacheWriter, openMatrixCache } from '../../src/io/matrix-cache.js';
import { KMeans } from '../../src/models/kmeans.js';
import { Random } from '../../src/util/random.js';
import { ALWAYS, GPU_PACK, usableBackends } from '../helpers/backends.js';

const backends = await usableBackends();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-chunked-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function blobs(n: number, d: number, centres: number, seed: number): { x: Matrix; w: Float32Array } {
  const r = new Random(seed);
  const mu = Array.from({ length: centres * d }, () => 10 * r.gauss());
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = r.int(centres);
    for (let f = 0; f < d; f++) data[i * d + f] = mu[c * d + f] + r.gauss();
  }
  const w = Float32Array.from({ length: n }, () => 0.2 + 2 * r.next());
  return { x: { data, nRows: n, nFeatures: d }, w };
}

function blocksOf(x: Matrix, rows: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let s = 0; s < x.nRows; s += rows) out.push(x.data.slice(s * x.nFeatures, Math.min(x.nRows, s + rows) * x.nFeatures));
  return out;
}

describe('K-Means on blocks of rows (issue 17)', () => {
  it.skipIf(GPU_PACK)('runs on the backends every machine has (not in the GPU pack, which carries no tfjs)', () => {
    for (const name of ALWAYS) expect(backends.map((b) => b.name)).toContain(name);
  });

  const cases = [
    { name: 'k = 6, k-means++, weighted', n: 5000, d: 8, k: 6, init: 'k-means++' as const, weighted: true },
    { name: 'k = 40, k-means||', n: 6000, d: 5, k: 40, init: 'k-means||' as const, weighted: false },
  ];
  for (const be of backends) {
    for (const c of cases) {
      it(`${be.name}: ${c.name}: blocks in memory and in a cache file match the resident fit`, async () => {
        const { x, w } = blobs(c.n, c.d, c.k, 5);
        const weights = c.weighted ? w : null;
        const o = { k: c.k, nInit: 2, maxIter: 60, seed: 3, init: c.init };
        const resident = await new KMeans(o).fit(be, x, weights);
        const file = path.join(dir, `${be.name}-${c.k}.f32`);
        const writer = new MatrixCacheWriter(file, c.d);
        // Written in pieces that do not line up with the blocks read back.
        for (const piece of blocksOf(x, 1234)) writer.append(piece);
        const cached = writer.finish(777);
        try {
          for (const [form, chunked] of [['memory', chunkedMatrix(blocksOf(x, 777), c.d)], ['file', cached]] as const) {
            const r = await new KMeans(o).fit(be, chunked, weights);
            expect(Array.from(r.labels), `${form}: labels`).toEqual(Array.from(resident.labels));
            expect(r.nIter, `${form}: nIter`).toBe(resident.nIter);
            let worst = 0;
            for (let i = 0; i < r.centroids.length; i++) worst = Math.max(worst, Math.abs(r.centroids[i] - resident.centroids[i]) / Math.max(1, Math.abs(resident.centroids[i])));
            expect(worst, `${form}: centroids`).toBeLessThan(1e-5);
            expect(Math.abs(r.inertia - resident.inertia) / resident.inertia, `${form}: inertia`).toBeLessThan(1e-6);
          }
        } finally {
          cached.close();
        }
      }, 120_000);
    }
  }

  it('a cache file of the wrong size, or blocks of uneven size, are refused', () => {
    const file = path.join(dir, 'short.f32');
    fs.writeFileSync(file, Buffer.alloc(40));
    expect(() => openMatrixCache(file, 3, 4, 2)).toThrow(/40 bytes, not 3 × 4 float32/);
    expect(() => chunkedMatrix([new Float32Array(8), new Float32Array(12)], 4)).toThrow(/every block but the last must hold 2 rows/);
    const x = chunkedMatrix([Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6)], 2);
    expect(x.nRows).toBe(3);
    expect(Array.from(x.rows([2, 0, 2]))).toEqual([5, 6, 1, 2, 5, 6]);
  });
});
