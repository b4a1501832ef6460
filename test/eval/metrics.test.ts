import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { calinskiHarabasz, daviesBouldin, sampleRows, silhouette } from '../../src/eval/metrics.js';
import { readTable } from '../../src/io/read-table.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { ColumnTable } from '../../src/io/table.js';
import { GPU_PACK, usableBackends } from '../helpers/backends.js';

const backends = await usableBackends();
const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-wine.json', import.meta.url), 'utf8'));

async function wine() {
  const file = new URL('../fixtures/wine.csv', import.meta.url).pathname;
  // The GPU pack carries no DuckDB (scripts/gpu-pack.sh): there the fixture's numbers are parsed
  // by hand (the metrics, not the reader, are under test).
  const t = GPU_PACK ? plainCsv(file) : await readTable(file);
  return Preprocessor.fit(t, { exclude: ['wine_id'] }).transform(t);
}

/** A CSV of numbers as a table of float64 columns. */
function plainCsv(file: string): ColumnTable {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(','));
  return new ColumnTable(file, rows.length, head.map((name, c) => ({ name, type: 'number' as const, values: Float64Array.from(rows, (r) => Number(r[c])) })));
}

describe('cluster metrics', () => {
  it("match scikit-learn's on the wine fixture labels", async () => {
    const x = await wine();
    const labels = Int32Array.from(fx.labels3);
    expect(calinskiHarabasz(x, labels, 3)! / fx.calinskiHarabasz3).toBeCloseTo(1, 5);
    expect(daviesBouldin(x, labels, 3)! / fx.daviesBouldin3).toBeCloseTo(1, 5);
    for (const be of backends) expect((await silhouette(be, x, labels, 3))! / fx.silhouette3).toBeCloseTo(1, 4);
  });

  it('equal hand-computed values on a 1-D toy set', async () => {
    // clusters {0, 2} and {10}: means 1 and 10, overall mean 4
    const x = { data: Float32Array.from([0, 2, 10]), nRows: 3, nFeatures: 1 };
    const labels = Int32Array.from([0, 0, 1]);
    // B = 2·(1−4)² + 1·(10−4)² = 54, W = 2, CH = (54/1)/(2/1) = 27
    expect(calinskiHarabasz(x, labels, 2)).toBeCloseTo(27, 10);
    // s0 = 1, s1 = 0, M = 9: DB = mean(1/9, 1/9)
    expect(daviesBouldin(x, labels, 2)).toBeCloseTo(1 / 9, 10);
    // row 0: a = 2, b = 10 → 0.8; row 1: a = 2, b = 8 → 0.75; row 2: singleton → 0
    expect(await silhouette(backends[0], x, labels, 2)).toBeCloseTo((0.8 + 0.75) / 3, 5);
  });

  it('are null with a single populated cluster', async () => {
    const x = { data: Float32Array.from([0, 1, 2]), nRows: 3, nFeatures: 1 };
    const labels = Int32Array.from([1, 1, 1]);
    expect(calinskiHarabasz(x, labels, 2)).toBeNull();
    expect(daviesBouldin(x, labels, 2)).toBeNull();
    expect(await silhouette(backends[0], x, labels, 2)).toBeNull();
  });

  it('sample distinct rows reproducibly', () => {
    const a = sampleRows(1_000_000, 20000, 3);
    expect(new Set(a).size).toBe(20000);
    expect([...a]).toEqual([...sampleRows(1_000_000, 20000, 3)]);
    expect([...a]).not.toEqual([...sampleRows(1_000_000, 20000, 4)]);
    expect(Math.max(...a)).toBeLessThan(1_000_000);
    expect([...sampleRows(5, 10, 0)]).toEqual([0, 1, 2, 3, 4]);
  });
});
