/**
 * Agglomerative clustering against scipy's linkage matrices and scikit-learn's
 * AgglomerativeClustering labels on iris and wine (test/fixtures/make-hierarchy-fixtures.py),
 * against closed forms, and its two-stage mode against the exact one.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Agglomerative,
  agglomerativeModel,
  cutTree,
  dendrogramJson,
  EXACT_LIMITS,
  leafOrder,
  linkageTree,
  predictAgglomerative,
  type Linkage,
} from '../../src/models/agglomerative.js';
import { SegtensorError } from '../../src/errors.js';
import { usableBackends } from '../helpers/backends.js';
import { adjustedRand, blobs, refAssign, samePartition } from '../helpers/reference.js';

const backends = await usableBackends();
const be = backends[0];
interface Dataset {
  nRows: number;
  nFeatures: number;
  data: number[];
  linkage: Record<Linkage, { merges: number[]; leaves: number[] }>;
  agglomerative: Record<Linkage, Record<string, number[]>>;
}
const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-hierarchy.json', import.meta.url), 'utf8')) as { datasets: Record<string, Dataset> };
const LINKS: Linkage[] = ['ward', 'average', 'complete'];
const matrixOf = (ds: Dataset) => ({ data: Float32Array.from(ds.data), nRows: ds.nRows, nFeatures: ds.nFeatures });
const heights = (z: Float64Array) => [...z].filter((_, i) => i % 4 === 2);

/** A valid scipy linkage matrix over n leaves: each node used once, a < b < the new node, sizes add up, heights sorted. */
function expectValidTree(z: Float64Array, n: number, leafSizes: ArrayLike<number>): void {
  expect(z.length).toBe((n - 1) * 4);
  const used = new Uint8Array(2 * n - 1);
  const size = new Float64Array(2 * n - 1);
  for (let i = 0; i < n; i++) size[i] = leafSizes[i];
  for (let i = 0; i < n - 1; i++) {
    const [a, b, h, s] = z.subarray(i * 4, i * 4 + 4);
    expect(a < b && b < n + i, `merge ${i}`).toBe(true);
    expect(used[a] + used[b], `merge ${i}`).toBe(0);
    used[a] = used[b] = 1;
    size[n + i] = size[a] + size[b];
    expect(s).toBe(size[n + i]);
    if (i > 0) expect(h).toBeGreaterThanOrEqual(z[i * 4 - 2]);
  }
}

describe.each(Object.keys(fx.datasets))("scipy's linkage and scikit-learn's labels on %s", (name) => {
  const ds = fx.datasets[name];
  const pts = Float64Array.from(Float32Array.from(ds.data));

  it.each(LINKS)('%s: the same merges as scipy, heights to 1e-9, the same leaf order', (linkage) => {
    const z = linkageTree(pts, ds.nRows, ds.nFeatures, null, null, linkage);
    const ref = ds.linkage[linkage].merges;
    expect(z.length).toBe(ref.length);
    for (let i = 0; i < ds.nRows - 1; i++) {
      expect([z[i * 4], z[i * 4 + 1], z[i * 4 + 3]], `merge ${i}`).toEqual([ref[i * 4], ref[i * 4 + 1], ref[i * 4 + 3]]);
      const h = ref[i * 4 + 2];
      expect(Math.abs(z[i * 4 + 2] - h), `height of merge ${i}`).toBeLessThanOrEqual(1e-9 * h);
    }
    expect([...leafOrder(z, ds.nRows)]).toEqual(ds.linkage[linkage].leaves);
  });

  it.each(LINKS)("%s: labels at each k are scikit-learn's, numbering included", async (linkage) => {
    for (const [k, labels] of Object.entries(ds.agglomerative[linkage])) {
      const r = await new Agglomerative({ k: Number(k), linkage }).fit(be, matrixOf(ds));
      expect(r.mode).toBe('exact');
      expect([...r.labels], `k = ${k}`).toEqual(labels);
    }
  });
});

describe('agglomerative fit', () => {
  it('Ward on three points on a line: heights √(2·wₐw_b/(wₐ + w_b))·‖cₐ − c_b‖', () => {
    const z = linkageTree(Float64Array.from([0, 1, 5]), 3, 1, null, null, 'ward');
    // {0, 1} at 1; then {0, 1} (centroid 0.5, mass 2) with 5: √(2·2·1/3·4.5²) = √27.
    expect([...z]).toEqual([0, 1, 1, 2, 2, 3, Math.sqrt(27), 3]);
    // Average: mean of 5 and 4; complete: the farther, 5.
    expect([...linkageTree(Float64Array.from([0, 1, 5]), 3, 1, null, null, 'average')]).toEqual([0, 1, 1, 2, 2, 3, 4.5, 3]);
    expect([...linkageTree(Float64Array.from([0, 1, 5]), 3, 1, null, null, 'complete')]).toEqual([0, 1, 1, 2, 2, 3, 5, 3]);
  });

  it.each(['ward', 'average'] as const)('%s: integer weights give the tree of duplicated rows', (linkage) => {
    const n = 40;
    const { data } = blobs(n, 2, 3, 6, 5);
    const w = new Float64Array(n).map((_, i) => 1 + (i % 3));
    const dup: number[] = [];
    for (let i = 0; i < n; i++) for (let c = 0; c < w[i]; c++) dup.push(data[i * 2], data[i * 2 + 1]);
    const m = dup.length / 2;
    const zw = linkageTree(Float64Array.from(data), n, 2, w, null, linkage);
    const zd = linkageTree(Float64Array.from(dup), m, 2, null, null, linkage);
    // The duplicates merge first at height 0 (to rounding); the rest is the weighted tree.
    const hd = heights(zd).filter((h) => h > 1e-9);
    expect(hd.length).toBe(n - 1);
    heights(zw).forEach((h, i) => expect(Math.abs(h - hd[i])).toBeLessThanOrEqual(1e-9 * h));
  });

  it('fit gives weighted segment centroids, sizes and inertia, and a model predict reads', async () => {
    const { data, truth } = blobs(400, 3, 4, 10, 7);
    const x = { data, nRows: 400, nFeatures: 3 };
    const w = new Float32Array(400).map((_, i) => 1 + (i % 2));
    const r = await new Agglomerative({ k: 4, linkage: 'ward' }).fit(be, x, w);
    expect(adjustedRand(r.labels, truth)).toBe(1);
    let inertia = 0;
    for (let j = 0; j < 4; j++) {
      let tw = 0;
      const s = [0, 0, 0];
      for (let i = 0; i < 400; i++) {
        if (r.labels[i] !== j) continue;
        tw += w[i];
        for (let f = 0; f < 3; f++) s[f] += w[i] * data[i * 3 + f];
      }
      expect(r.sizes[j]).toBe(tw);
      for (let f = 0; f < 3; f++) expect(r.centroids[j * 3 + f]).toBeCloseTo(s[f] / tw, 5);
      for (let i = 0; i < 400; i++) if (r.labels[i] === j) for (let f = 0; f < 3; f++) inertia += w[i] * (data[i * 3 + f] - s[f] / tw) ** 2;
    }
    expect(r.inertia / inertia).toBeCloseTo(1, 9);
    const model = JSON.parse(JSON.stringify(agglomerativeModel(r)));
    expect(model).toMatchObject({ method: 'agglomerative', formatVersion: 1, linkage: 'ward', mode: 'exact', k: 4 });
    for (const b of backends) expect([...(await predictAgglomerative(b, model, x))], b.name).toEqual([...r.labels]);
    // Held-out rows go to the nearest segment centroid.
    const held = blobs(200, 3, 4, 10, 8).data;
    const ref = refAssign(held, 200, 3, r.centroids, 4);
    expect([...(await predictAgglomerative(be, model, { data: held, nRows: 200, nFeatures: 3 }))]).toEqual([...ref.labels]);
  });

  it('dendrogramJson gives the merges, the leaf order and the mode', async () => {
    const ds = fx.datasets.iris;
    const r = await new Agglomerative({ k: 3, linkage: 'average' }).fit(be, matrixOf(ds));
    const j = JSON.parse(JSON.stringify(dendrogramJson(r)));
    expect(j).toMatchObject({ linkage: 'average', mode: 'exact', nLeaves: 150 });
    expect(j.merges).toHaveLength(149);
    expect(j.merges[148]).toEqual({ a: ds.linkage.average.merges[148 * 4], b: ds.linkage.average.merges[148 * 4 + 1], height: ds.linkage.average.merges[148 * 4 + 2], size: 150 });
    expect(j.leaves).toEqual(ds.linkage.average.leaves);
    expect(j.leafSizes).toBeUndefined();
  });
});

describe('two-stage mode', () => {
  it.each(LINKS)('%s: with as many micro-clusters as rows it builds the exact tree', async (linkage) => {
    const n = 240;
    const { data } = blobs(n, 3, 5, 8, 3);
    const x = { data, nRows: n, nFeatures: 3 };
    const ex = await new Agglomerative({ k: 5, linkage }).fit(be, x);
    const ts = await new Agglomerative({ k: 5, linkage, mode: 'two-stage', microClusters: n }).fit(be, x);
    expect([ts.mode, ts.microClusters, ts.nLeaves]).toEqual(['two-stage', n, n]);
    const he = heights(ex.merges);
    heights(ts.merges).forEach((h, i) => expect(Math.abs(h - he[i])).toBeLessThanOrEqual(1e-9 * he[i]));
    expect(samePartition(ex.labels, ts.labels)).toBe(true);
  });

  it('summarises a larger table into a valid tree of micro-clusters', async () => {
    const n = 6000;
    const { data, truth } = blobs(n, 4, 6, 12, 9);
    const x = { data, nRows: n, nFeatures: 4 };
    const r = await new Agglomerative({ k: 6, linkage: 'ward', mode: 'two-stage', microClusters: 300, seed: 2 }).fit(be, x);
    expect(r.mode).toBe('two-stage');
    expect(r.microClusters).toBe(300);
    expect(r.nLeaves).toBeLessThanOrEqual(300);
    expectValidTree(r.merges, r.nLeaves, r.leafSizes!);
    expect(r.merges[(r.nLeaves - 2) * 4 + 3]).toBe(n);
    expect(r.leafSizes!.reduce((a, b) => a + b, 0)).toBe(n);
    const leafLabels = cutTree(r.merges, r.nLeaves, 6);
    expect([...r.labels]).toEqual([...r.leafOf!].map((l) => leafLabels[l]));
    expect(adjustedRand(r.labels, truth)).toBeGreaterThan(0.99);
    const j = dendrogramJson(r);
    expect(j.mode).toBe('two-stage');
    expect(j.leafSizes).toEqual([...r.leafSizes!]);
    expect([...j.leaves].sort((a, b) => a - b)).toEqual(Array.from({ length: r.nLeaves }, (_, i) => i));
  });

  it("'auto' goes two-stage above the exact limit", async () => {
    const n = EXACT_LIMITS.average + 1;
    const { data } = blobs(n, 2, 3, 10, 4);
    const r = await new Agglomerative({ k: 3, linkage: 'average', mode: 'auto', microClusters: 60 }).fit(be, { data, nRows: n, nFeatures: 2 });
    expect(r.mode).toBe('two-stage');
    expectValidTree(r.merges, r.nLeaves, r.leafSizes!);
    expect(r.merges[(r.nLeaves - 2) * 4 + 3]).toBe(n);
  });
});

describe('agglomerative errors', () => {
  const x = { data: Float32Array.from([0, 0, 1, 1, 5, 5]), nRows: 3, nFeatures: 2 };
  const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => (e instanceof SegtensorError ? `${e.code}: ${e.message}` : String(e)));

  it('names the option, what is allowed and what arrived', async () => {
    expect(await code(new Agglomerative({ k: 2, linkage: 'single' as Linkage }).fit(be, x))).toBe("BAD_OPTION: --linkage must be ward, average or complete; got 'single'");
    expect(await code(new Agglomerative({ k: 4 }).fit(be, x))).toBe("BAD_OPTION: Agglomerative: 'k' must be an integer in [1, nRows = 3]; got 4");
    expect(await code(new Agglomerative({ k: 0 }).fit(be, x))).toMatch(/'k' must be an integer in \[1, nRows = 3\]; got 0/);
    expect(await code(new Agglomerative({ k: 2, linkage: 'average', microClusters: 20_000 }).fit(be, x))).toMatch(/'microClusters' must be an integer in \[1, 10000\]/);
    expect(await code(new Agglomerative({ k: 2 }).fit(be, { ...x, data: Float32Array.from([0, 0, NaN, 1, 5, 5]) }))).toMatch(/^NON_FINITE: .*row 1, feature 0 is NaN/);
    expect(() => cutTree(new Float64Array(12), 3, 2)).toThrow('a full tree of 3 leaves holds 2 merges; got 3');
    expect(() => cutTree(new Float64Array(8), 3, 4)).toThrow("'k' must be an integer in [1, leaves = 3]; got 4");
  });

  it.each(['average', 'complete'] as const)('%s: refuses exact mode above the limit, suggesting the two-stage mode', async (linkage) => {
    const n = EXACT_LIMITS[linkage] + 1;
    const big = { data: new Float32Array(n), nRows: n, nFeatures: 1 };
    expect(await code(new Agglomerative({ k: 2, linkage }).fit(be, big))).toBe(
      `BAD_OPTION: Agglomerative: exact ${linkage} linkage handles at most 10000 rows; got 10001. Use the two-stage mode (--mode two-stage: K-Means micro-clusters, then exact linkage on them)`,
    );
  });
});
