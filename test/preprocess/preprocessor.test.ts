import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ColumnTable, type Column } from '../../src/io/table.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { chunkedColumn, type NumericChunk } from '../../src/io/table.js';
import { addonBuilt, bothPaths } from '../helpers/native-paths.js';
import { median, medianInPlace, quickselectMedian } from '../../src/preprocess/stats.js';
import { readTable } from '../../src/io/read-table.js';

function table(cols: Column[], n: number) {
  return new ColumnTable('t.arrow', n, cols);
}
const num = (name: string, v: number[]): Column => ({ name, type: 'number', values: Float64Array.from(v) });


/** Whether two typed arrays hold the same bytes (toEqual walks large arrays value by value, seconds at 10⁵). */
function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('Preprocessor', () => {
  it('standardises with the population std, as StandardScaler', () => {
    const t = table([num('a', [1, 2, 3, 4]), num('b', [10, 10, 10, 10])], 4);
    const p = Preprocessor.fit(t);
    const m = p.transform(t);
    const std = Math.sqrt(1.25); // population std of 1..4
    expect([...m.data.filter((_, i) => i % 2 === 0)].map((v) => +v.toFixed(6))).toEqual(
      [1, 2, 3, 4].map((v) => +((v - 2.5) / std).toFixed(6)),
    );
    // constant column: scale 1, so it becomes 0 (not NaN)
    expect([...m.data.filter((_, i) => i % 2 === 1)]).toEqual([0, 0, 0, 0]);
  });

  it("matches scikit-learn's StandardScaler on the wine fixture", async () => {
    const fx = JSON.parse(fs.readFileSync(new URL('../fixtures/sklearn-wine.json', import.meta.url), 'utf8'));
    const t = await readTable(new URL('../fixtures/wine.csv', import.meta.url).pathname);
    const p = Preprocessor.fit(t, { exclude: ['wine_id'] });
    expect(p.featureNames).toEqual(fx.features);
    p.state.numeric.forEach((s, f) => {
      expect(s.center).toBeCloseTo(fx.mean[f], 10);
      expect(s.scale / fx.scale[f]).toBeCloseTo(1, 12);
    });
  });

  it('imputes the median by default, and mean or zero on request', () => {
    const t = table([num('a', [1, NaN, 3, 10])], 4);
    expect(Preprocessor.fit(t, { scale: 'none' }).transform(t).data[1]).toBe(3);
    expect(Preprocessor.fit(t, { scale: 'none', impute: 'mean' }).transform(t).data[1]).toBeCloseTo(14 / 3, 5);
    expect(Preprocessor.fit(t, { scale: 'none', impute: 'zero' }).transform(t).data[1]).toBe(0);
  });

  it('computes medians like numpy (even and odd counts, NaN skipped)', () => {
    expect(median(Float64Array.from([5, 1, 3]))).toBe(3);
    expect(median(Float64Array.from([5, 1, 3, 100]))).toBe(4);
    expect(median(Float64Array.from([NaN, 2, NaN, 8]))).toBe(5);
    const big = Float64Array.from({ length: 10001 }, (_, i) => (i * 7919) % 10001);
    expect(median(big)).toBe(5000);
  });

  it('gives the same median natively (radix select) as the JavaScript quickselect and a sort', () => {
    const gen: [string, (i: number) => number][] = [
      ['spread', (i) => (Math.sin(i * 12.9898) * 43758.5453) % 97],
      ['heavy ties', (i) => (i * 7) % 5],
      ['signed zeros and negatives', (i) => [0, -0, -1.5, 2, -0][i % 5]],
      ['all equal', () => 3.25],
      ['many binades', (i) => Math.sign(Math.sin(i)) * 2 ** ((i * 37) % 200 - 100)],
      ['one digit apart', (i) => 1 + (i % 3) * Number.EPSILON],
      // From 32,768 values the addon brackets the middle with a strided sample first: sorted
      // input, and input whose strided sample is all outliers (the bracket misses, radix
      // selection takes over), must give the same median.
      ['ascending', (i) => i * 0.5 - 1000],
      ['descending', (i) => -i],
      ['outliers at the sample stride', (i) => (i % 24 === 12 ? 1e9 : i % 1000)],
    ];
    for (const [, f] of gen) {
      for (const n of [1, 2, 3, 10, 64, 65, 1001, 100000, 100001, 400001]) {
        const v = Float64Array.from({ length: n }, (_, i) => f(i));
        const sorted = v.slice().sort();
        const ref = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        const w = v.slice();
        const got = medianInPlace(w);
        expect(got).toBe(ref === 0 ? 0 : ref);
        expect(quickselectMedian(v.slice())).toBe(ref === 0 ? 0 : ref);
        // Reordered, not overwritten: the same values (callers reuse the buffer).
        expect(sameBits(w.slice().sort(), sorted)).toBe(true);
      }
    }
  });

  it('min-max scales to [0, 1] and log1p is signed and standardised', () => {
    const t = table([num('a', [2, 4, 6])], 3);
    expect([...Preprocessor.fit(t, { scale: 'minmax' }).transform(t).data]).toEqual([0, 0.5, 1]);
    const t2 = table([num('a', [-1, 0, Math.E - 1])], 3);
    const p = Preprocessor.fit(t2, { scale: 'log1p' });
    const y = [...p.transform(t2).data];
    // log values -ln2, 0, 1: mean and population std of those
    const lv = [-Math.log(2), 0, 1];
    const mu = lv.reduce((a, b) => a + b) / 3;
    const sd = Math.sqrt(lv.reduce((a, b) => a + (b - mu) ** 2, 0) / 3);
    y.forEach((v, i) => expect(v).toBeCloseTo((lv[i] - mu) / sd, 5));
    // inverse maps centroids back to input units
    const back = p.inverse(Float32Array.from(y), 3).map((r) => r[0]);
    back.forEach((v, i) => expect(v).toBeCloseTo([-1, 0, Math.E - 1][i], 4));
  });

  it('one-hot encodes strings, most frequent first, capping rare values into __other__', () => {
    const s: Column = { name: 'region', type: 'string', values: ['n', 's', 'n', 'e', null, 'n', 's'] };
    const t = table([num('a', [1, 2, 3, 4, 5, 6, 7]), s], 7);
    const p = Preprocessor.fit(t, { features: ['a', 'region'], maxCategories: 2 });
    expect(p.featureNames).toEqual(['a', 'region=n', 'region=s', 'region=__other__']);
    const m = p.transform(t);
    const rows = Array.from({ length: 7 }, (_, i) => [...m.data.slice(i * 4 + 1, i * 4 + 4)]);
    expect(rows).toEqual([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0], [0, 1, 0]]);
  });

  it('excludes the id and weight columns by default and refuses them as features', () => {
    const t = table([num('id', [1, 2]), num('w', [1, 1]), num('a', [3, 4])], 2);
    expect(Preprocessor.fit(t, { exclude: ['id', 'w'] }).featureNames).toEqual(['a']);
    expect(() => Preprocessor.fit(t, { features: ['id', 'a'], exclude: ['id'] })).toThrow("'id' is the id or weight column");
  });

  it('names the file, column and row of bad values (rows as 1-based data rows, issue 12)', () => {
    expect(() => Preprocessor.fit(table([num('a', [1, Infinity])], 2))).toThrow("t.arrow: column 'a' data row 2 is Infinity");
    expect(() => Preprocessor.fit(table([num('a', [NaN, NaN])], 2))).toThrow("column 'a' has no values (all 2 are null)");
    expect(() => Preprocessor.fit(table([num('a', [1])], 1), { features: ['b'] })).toThrow("t.arrow: no column 'b'");
    const s: Column = { name: 's', type: 'string', values: ['x'] };
    expect(() => Preprocessor.fit(table([num('a', [1]), s], 1), { features: ['a'] }).transform(table([s], 1))).toThrow("no column 'a'");
    expect(() => Preprocessor.fit(table([], 0))).toThrow('no rows');
    // a value outside the fitted range that overflows float32 after scaling
    const p = Preprocessor.fit(table([num('a', [0, 1e-30])], 2));
    expect(() => p.transform(table([num('a', [0, 1e300])], 2))).toThrow("column 'a' data row 2 is 1e+300");
  });

  it('fitTransform equals fit then transform, also on a table large enough for the prefaulted buffer', () => {
    const n = 300_000;
    const a = Float64Array.from({ length: n }, (_, i) => (i % 1000) / 7);
    const b = Float64Array.from({ length: n }, (_, i) => (i % 3 === 0 ? NaN : i / n));
    const r: Column = { name: 'r', type: 'string', values: Array.from({ length: n }, (_, i) => ['x', 'y', 'z'][i % 3]) };
    const t = table([{ name: 'a', type: 'number', values: a }, { name: 'b', type: 'number', values: b }, r], n);
    const o = { features: ['a', 'b', 'r'] };
    const { pre, matrix } = Preprocessor.fitTransform(t, o);
    expect(pre.toJSON()).toEqual(Preprocessor.fit(t, o).toJSON());
    expect(matrix.nFeatures).toBe(2 + 4);
    expect(Buffer.from(matrix.data.buffer, matrix.data.byteOffset, matrix.data.byteLength).equals(Buffer.from(pre.transform(t).data.buffer))).toBe(true);
  });

  it('round-trips through JSON', () => {
    const t = table([num('a', [1, 5, 9]), { name: 'r', type: 'string', values: ['x', 'y', 'x'] }], 3);
    const p = Preprocessor.fit(t, { features: ['a', 'r'] });
    const q = Preprocessor.fromJSON(JSON.parse(JSON.stringify(p.toJSON())));
    expect([...q.transform(t).data]).toEqual([...p.transform(t).data]);
  });


  /** Chunked columns of every numeric array type, with nulls, NaN, negatives and ±0. */
  function mixedTable(n: number, poison?: { col: number; row: number; value: number }) {
    const makers: ((i: number) => number)[] = [
      (i) => Math.sin(i * 0.37) * 1e3,
      (i) => (i * 7919) % 1000,
      (i) => -((i * 31) % 200),
      (i) => (i * 13) % 250,
      (i) => [0, -0, 1.5, -2.25][i % 4],
    ];
    const types = [Float64Array, Int32Array, Int16Array, Uint8Array, Float32Array] as const;
    const batch = 700;
    const cols: Column[] = makers.map((mk, c) => {
      const chunks: NumericChunk[] = [];
      for (let r0 = 0; r0 < n; r0 += batch) {
        const len = Math.min(batch, n - r0);
        const values = new types[c](len);
        const nulls = c % 2 === 0 ? new Uint8Array(len) : null;
        for (let i = 0; i < len; i++) {
          const row = r0 + i;
          values[i] = poison && poison.col === c && poison.row === row ? poison.value : mk(row);
          if (nulls && row % 11 === 3) nulls[i] = 1;
          if (c === 4 && row % 17 === 5) values[i] = NaN;
        }
        chunks.push({ values, nulls });
      }
      return chunkedColumn(`c${c}`, 'number', chunks);
    });
    return table(cols, n);
  }


  it.skipIf(!addonBuilt)('fits and transforms with the same bits through the addon as in JavaScript', () => {
    // 40,000 rows: columns without a null mask or NaN (c1, c3) take the addon's in-place path
    // (moments read from the record batches, the median by its sampled bracket).
    for (const t of [mixedTable(5000), mixedTable(40000)])
    for (const scale of ['standard', 'minmax', 'none', 'log1p'] as const) {
      for (const impute of ['median', 'mean', 'zero'] as const) {
        const [js, nat] = bothPaths(() => Preprocessor.fitTransform(t, { scale, impute }));
        expect(nat.pre.toJSON()).toEqual(js.pre.toJSON());
        expect(sameBits(nat.matrix.data, js.matrix.data)).toBe(true);
        // transform alone (predict's path) too, into a fresh array
        const [a, b] = bothPaths(() => js.pre.transform(t).data);
        expect(sameBits(b, a)).toBe(true);
      }
    }
  });

  it.skipIf(!addonBuilt)('names the same infinity through the addon when a column has no null mask and no NaN', () => {
    const n = 40000;
    const values = Float64Array.from({ length: n }, (_, i) => Math.cos(i) * 10);
    values[33333] = Infinity;
    const t = table([chunkedColumn('a', 'number', [{ values, nulls: null }])], n);
    const [js, nat] = bothPaths(() => {
      try {
        Preprocessor.fit(t);
        return 'no error';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(js).toBe("t.arrow: column 'a' data row 33334 is Infinity; values must be finite");
    expect(nat).toBe(js);
  });

  it.skipIf(!addonBuilt)('reports the same first bad value through the addon as in JavaScript', () => {
    const inf = mixedTable(3000, { col: 0, row: 2101, value: -Infinity });
    const [js, nat] = bothPaths(() => {
      try {
        Preprocessor.fit(inf);
        return 'no error';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(js).toBe("t.arrow: column 'c0' data row 2102 is -Infinity; values must be finite");
    expect(nat).toBe(js);
    // Overflow after scaling: found by the transform, named by the general path in both.
    const big = mixedTable(3000, { col: 0, row: 1500, value: 1e300 });
    const pre = Preprocessor.fit(big, { scale: 'none' });
    const [a, b] = bothPaths(() => {
      try {
        pre.transform(big);
        return 'no error';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(a).toMatch(/column 'c0' data row 1501 is 1e\+300/);
    expect(b).toBe(a);
  });
});
