import { describe, expect, it } from 'vitest';
import { chunkedColumn, ColumnTable, type Column, type NumericChunk } from '../../src/io/table.js';
import { profileCsv, profileSegments } from '../../src/pipeline/profile.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';
import { addonBuilt, bothPaths } from '../helpers/native-paths.js';



describe('segment profiles', () => {
  it('give each segment its size, share and per-feature means in input units, nulls ignored', () => {
    // spend: rows 0-3, one null and one NaN; region: one-hot shares.
    const spend: NumericChunk[] = [
      { values: Float64Array.from([10, 20, 999, 40]), nulls: Uint8Array.from([0, 0, 1, 0]) },
      { values: Float64Array.from([NaN, 60]), nulls: null },
    ];
    const cols: Column[] = [
      chunkedColumn('spend', 'number', spend),
      { name: 'region', type: 'string', values: ['n', 's', 'n', 'n', 's', 'n'] },
    ];
    const t = new ColumnTable('t.arrow', 6, cols);
    const { pre, matrix } = Preprocessor.fitTransform(t, { scale: 'none', features: ['spend', 'region'] });
    const labels = Int32Array.from([0, 1, 0, 1, 1, 0]);
    for (const p of bothPaths(() => profileSegments(t, pre, matrix, labels, 2))) {
      expect(p.columns).toEqual(['spend', 'region=n', 'region=s', 'region=__other__']);
      // Segment 0: rows 0, 2 (null), 5 → spend mean of 10 and 60; regions n, n, n.
      expect(p.rows[0]).toEqual({ segment: 0, count: 3, share: 0.5, values: [35, 1, 0, 0] });
      // Segment 1: rows 1, 3, 4 (NaN) → spend mean of 20 and 40; regions s, n, s.
      expect(p.rows[1]).toEqual({ segment: 1, count: 3, share: 0.5, values: [30, 1 / 3, 2 / 3, 0] });
      expect(profileCsv(p).split('\n')[0]).toBe('segment,count,share,spend,region=n,region=s,region=__other__');
    }
  });

  it.skipIf(!addonBuilt)('are the same through the addon as in JavaScript, on every numeric array type', () => {
    const n = 9000;
    const types = [Float64Array, Float32Array, Int32Array, Uint16Array, Int8Array] as const;
    const cols: Column[] = types.map((T, c) => {
      const chunks: NumericChunk[] = [];
      for (let r0 = 0; r0 < n; r0 += 1000) {
        const values = new T(1000);
        const nulls = c % 2 ? null : new Uint8Array(1000);
        for (let i = 0; i < 1000; i++) {
          values[i] = ((r0 + i) * (c + 3) * 7919) % 101 - 40 + (T === Float64Array ? 0.125 : 0);
          if (nulls && (r0 + i) % 13 === c) nulls[i] = 1;
        }
        chunks.push({ values, nulls });
      }
      return chunkedColumn(`c${c}`, 'number', chunks);
    });
    const t = new ColumnTable('t.arrow', n, cols);
    const { pre, matrix } = Preprocessor.fitTransform(t);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 31) % 7);
    const [js, nat] = bothPaths(() => profileSegments(t, pre, matrix, labels, 7));
    expect(nat).toEqual(js);
  });
});
