/**
 * Cluster metrics at large k (issue 13): Davies-Bouldin with the centroid distances screened on
 * a backend gives the host loop's value bit for bit on every backend, and both match
 * scikit-learn's on the digits data at k = 256 (test/fixtures/make-kmeans-init-fixtures.py).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { calinskiHarabasz, daviesBouldin, daviesBouldinOn, dispersion, dispersionJs, sampleRows, silhouette, SILHOUETTE_BLOCK_BYTES } from '../../src/eval/metrics.js';
import { usableBackends } from '../helpers/backends.js';
import { addonBuilt } from '../helpers/native-paths.js';
import { blobs } from '../helpers/reference.js';

const backends = await usableBackends();
const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-kmeans-init.json', import.meta.url), 'utf8'));
const digits = {
  data: Float32Array.from(fx.digits.pixels as string, (ch) => parseInt(ch, 17) / 16),
  nRows: fx.digits.nRows as number,
  nFeatures: fx.digits.nFeatures as number,
};
const labels256 = Int32Array.from(fx.digits.labels256 as number[]);

describe("metrics at large k against scikit-learn's", () => {
  it('Davies-Bouldin and Calinski-Harabasz on digits, k = 256', () => {
    expect(daviesBouldin(digits, labels256, 256)! / fx.digits.daviesBouldin256).toBeCloseTo(1, 6);
    expect(calinskiHarabasz(digits, labels256, 256)! / fx.digits.calinskiHarabasz256).toBeCloseTo(1, 6);
  });
});

describe('cluster dispersion (means, sizes, scatter, within) for Calinski-Harabasz and Davies-Bouldin', () => {
  const { data } = blobs(5000, 7, 9, 4, 11);
  const x = { data, nRows: 5000, nFeatures: 7 };
  // Cluster 3 empty, so its mean and scatter must stay 0.
  const labels = Int32Array.from({ length: 5000 }, (_, i) => [0, 1, 2, 4, 5, 6, 7, 8][(i * 7919) % 8]);

  it('the JavaScript loops match a float64 brute force', () => {
    const disp = dispersionJs(x, labels, 9);
    for (let j = 0; j < 9; j++) {
      const rows = [...labels.keys()].filter((i) => labels[i] === j);
      expect(disp.sizes[j]).toBe(rows.length);
      for (let f = 0; f < 7; f++) {
        const mean = rows.length ? rows.reduce((s, i) => s + data[i * 7 + f], 0) / rows.length : 0;
        expect(disp.means[j * 7 + f]).toBeCloseTo(mean, 10);
      }
      const dist = rows.map((i) => Math.hypot(...Array.from({ length: 7 }, (_, f) => data[i * 7 + f] - disp.means[j * 7 + f])));
      expect(disp.scatter[j]).toBeCloseTo(rows.length ? dist.reduce((a, b) => a + b, 0) / rows.length : 0, 10);
    }
    let within = 0;
    for (let i = 0; i < 5000; i++) for (let f = 0; f < 7; f++) within += (data[i * 7 + f] - disp.means[labels[i] * 7 + f]) ** 2;
    expect(disp.within / within).toBeCloseTo(1, 12);
  });

  it.skipIf(!addonBuilt)('the addon gives the JavaScript loops\' bits (skipped: addon not built)', () => {
    const js = dispersionJs(x, labels, 9);
    const native = dispersion(x, labels, 9);
    expect(native.within).toBe(js.within);
    expect([...native.means]).toEqual([...js.means]);
    expect([...native.sizes]).toEqual([...js.sizes]);
    expect([...native.scatter]).toEqual([...js.scatter]);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('Davies-Bouldin screened on %s', (_n, be) => {
  it("equals the host loop bit for bit on digits at k = 256 (scikit-learn's labels)", async () => {
    expect(await daviesBouldinOn(be, digits, labels256, 256, undefined, { exactBelow: 0 })).toBe(daviesBouldin(digits, labels256, 256));
  });

  it('equals the host loop bit for bit at k = 600, data far from the origin, with empty and coincident clusters', async () => {
    const { data } = blobs(6000, 12, 40, 5, 3);
    for (let i = 0; i < data.length; i++) data[i] += 1000; // large norms: the screen must centre the means
    const x = { data, nRows: 6000, nFeatures: 12 };
    // Labels by row index: 600 clusters of 10 rows, cluster 7 empty, clusters 1 and 2 the same rows' copies.
    const labels = Int32Array.from({ length: 6000 }, (_, i) => Math.floor(i / 10) % 600);
    for (let i = 0; i < 6000; i++) if (labels[i] === 7) labels[i] = 8;
    for (let f = 0; f < 12; f++) for (let r = 0; r < 10; r++) data[(20 + r) * 12 + f] = data[(10 + r) * 12 + f];
    const disp = dispersion(x, labels, 600);
    const exact = daviesBouldin(x, labels, 600, disp);
    expect(exact).toBe(Infinity); // coincident centres with scatter: scikit-learn's inf
    for (let r = 0; r < 10; r++) for (let f = 0; f < 12; f++) data[(20 + r) * 12 + f] += 0.25 * (f + 1);
    const disp2 = dispersion(x, labels, 600);
    const exact2 = daviesBouldin(x, labels, 600, disp2)!;
    expect(Number.isFinite(exact2)).toBe(true);
    expect(await daviesBouldinOn(be, x, labels, 600, disp2, { exactBelow: 0 })).toBe(exact2);
    expect(await daviesBouldinOn(be, x, labels, 600, disp, { exactBelow: 0 })).toBe(Infinity);
  });

  it("the silhouette equals scikit-learn's on digits at k = 256", async () => {
    // 1,797 rows × 256 clusters × 8 bytes = 3.7 MB: under the block size, so one block here;
    // the block loop is exercised by the k = 40,000 case below.
    expect(SILHOUETTE_BLOCK_BYTES).toBeGreaterThan(1797 * 256 * 8);
    const all = sampleRows(digits.nRows, digits.nRows, 0);
    expect((await silhouette(be, digits, labels256, 256, all))! / fx.digits.silhouette256).toBeCloseTo(1, 5);
  });

  it('keeps its buffer to the block size at k = 40,000 (the rows come in blocks, same value as a direct sum)', async () => {
    // 600 rows in 3 clusters, labelled within k = 40,000: a whole call would hold 600 × 40,000
    // float64 = 192 MB; the blocks hold ≤ 64 MB. The value against a float64 brute force.
    const { data } = blobs(600, 3, 3, 6, 17);
    const x = { data, nRows: 600, nFeatures: 3 };
    const labels = Int32Array.from({ length: 600 }, (_, i) => [5, 20000, 39999][i % 3]);
    // Every call's output is recorded: more than one block, none above the block size.
    const outBytes: number[] = [];
    const spy = Object.create(be) as typeof be;
    spy.clusterDistanceSums = (dx, l, k, rows) => {
      outBytes.push(((rows?.end ?? dx.nRows) - (rows?.start ?? 0)) * k * 8);
      return be.clusterDistanceSums(dx, l, k, rows);
    };
    const got = (await silhouette(spy, x, labels, 40000))!;
    expect(outBytes.length).toBeGreaterThan(1);
    expect(Math.max(...outBytes)).toBeLessThanOrEqual(SILHOUETTE_BLOCK_BYTES);
    expect(outBytes.reduce((a, b) => a + b)).toBe(600 * 40000 * 8);
    let total = 0;
    for (let i = 0; i < 600; i++) {
      const sums = new Map<number, [number, number]>();
      for (let j = 0; j < 600; j++) {
        if (j === i) continue;
        const dist = Math.hypot(data[i * 3] - data[j * 3], data[i * 3 + 1] - data[j * 3 + 1], data[i * 3 + 2] - data[j * 3 + 2]);
        const e = sums.get(labels[j]) ?? [0, 0];
        sums.set(labels[j], [e[0] + dist, e[1] + 1]);
      }
      const a = sums.get(labels[i])![0] / sums.get(labels[i])![1];
      const b = Math.min(...[...sums].filter(([l]) => l !== labels[i]).map(([, [s, c]]) => s / c));
      total += (b - a) / Math.max(a, b);
    }
    expect(got).toBeCloseTo(total / 600, 5);
  });

  it('is null with fewer than 2 populated clusters', async () => {
    const x = { data: new Float32Array(8), nRows: 4, nFeatures: 2 };
    expect(await daviesBouldinOn(be, x, new Int32Array(4).fill(3), 5, undefined, { exactBelow: 0 })).toBeNull();
  });
});
