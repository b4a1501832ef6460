/**
 * The preprocessor records the input types it was fitted on and checks them in transform, and
 * counts categories unseen when fitting (issue 12).
 */
import { describe, expect, it } from 'vitest';
import { ColumnTable, type Column } from '../../src/io/table.js';
import { Preprocessor } from '../../src/preprocess/preprocessor.js';

const num = (name: string, v: number[]): Column => ({ name, type: 'number', values: Float64Array.from(v) });
const str = (name: string, v: (string | null)[]): Column => ({ name, type: 'string', values: v });
const big = (name: string, v: bigint[]): Column => ({ name, type: 'bigint', values: BigInt64Array.from(v), nulls: null });
const table = (cols: Column[], n: number) => new ColumnTable('t.csv', n, cols);

describe('Preprocessor input types', () => {
  const fitted = table([num('a', [1, 2, 3, 4]), big('n', [1n, 2n, 3n, 4n]), str('plan', ['x', 'y', 'x', 'z'])], 4);
  const pre = Preprocessor.fit(fitted, { features: ['a', 'n', 'plan'], maxCategories: 2 });

  it('records each input column with its kind and type', () => {
    expect(pre.toJSON().inputs).toEqual([
      { name: 'a', kind: 'numeric', type: 'number' },
      { name: 'n', kind: 'numeric', type: 'bigint' },
      { name: 'plan', kind: 'categorical', type: 'string' },
    ]);
    // survives model.json
    expect(Preprocessor.fromJSON(JSON.parse(JSON.stringify(pre.toJSON()))).toJSON().inputs).toEqual(pre.toJSON().inputs);
  });

  it('a column of another kind at transform is a TYPE_MISMATCH naming file and column', () => {
    const textForNumber = table([str('a', ['yes', 'no', 'yes', 'no']), big('n', [1n, 2n, 3n, 4n]), str('plan', ['x', 'y', 'x', 'z'])], 4);
    expect(() => pre.transform(textForNumber)).toThrow("t.csv: column 'a' is text here but the model was fitted on numbers (number)");
    const numberForText = table([num('a', [1, 2, 3, 4]), big('n', [1n, 2n, 3n, 4n]), num('plan', [1, 2, 1, 3])], 4);
    const err = (() => {
      try {
        pre.transform(numberForText);
      } catch (e) {
        return e as { code: string; message: string };
      }
    })();
    expect(err?.code).toBe('TYPE_MISMATCH');
    expect(err?.message).toContain("column 'plan' is numbers here but the model was fitted on text (string); declare --dtypes plan:string");
    // number and bigint are both numeric: no error
    expect(pre.transform(table([big('a', [1n, 2n]), num('n', [1, 2]), str('plan', ['x', 'y'])], 2)).nRows).toBe(2);
  });

  it('an older state without input types still loads, and still checks kinds', () => {
    const old = { ...pre.toJSON() };
    delete old.inputs;
    const p = Preprocessor.fromJSON(JSON.parse(JSON.stringify(old)));
    expect(p.transform(fitted).data).toEqual(pre.transform(fitted).data);
    expect(() => p.transform(table([str('a', ['u', 'v']), num('n', [1, 2]), str('plan', ['x', 'y'])], 2))).toThrow("column 'a' is text here but the model was fitted on numbers");
  });

  it('counts values unseen when fitting (not the rare ones seen but capped into __other__)', () => {
    // fitted categories: x (2), then y/z tie → y; z is rare (seen), so not unseen
    expect(pre.toJSON().categorical[0]).toMatchObject({ categories: ['x', 'y'], rare: ['z'] });
    const t = table([num('a', [1, 2, 3, 4, 5, 6]), big('n', [1n, 2n, 3n, 4n, 5n, 6n]), str('plan', ['x', 'gold', 'z', 'gold', null, 'iron'])], 6);
    const m = pre.transform(t);
    expect(m.unseen).toEqual({ plan: { count: 3, distinct: 2, examples: ['gold', 'iron'] } });
    expect(pre.transform(fitted).unseen).toEqual({});
    // unseen values are still scored as __other__
    const d = m.nFeatures;
    const other = pre.featureNames.indexOf('plan=__other__');
    expect([1, 2, 3, 4, 5].map((i) => m.data[i * d + other])).toEqual([1, 1, 1, 1, 1]);
  });
});
