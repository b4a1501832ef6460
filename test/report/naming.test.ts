/**
 * Segment names and "what makes each segment distinct" (issue 16), on hand-made profiles whose
 * z-scores and names are worked out by hand in the comments.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SegtensorError } from '../../src/errors.js';
import {
  describeSegment,
  distinctFeatures,
  findRoles,
  formatNumber,
  formatShare,
  levelOf,
  moneyColumn,
  readNamesFile,
  rfmName,
  segmentNames,
  segmentZ,
  type ProfileLike,
} from '../../src/report/naming.js';

/** A profile from segment rows `[segment, count, ...means]`. */
function profile(columns: string[], rows: number[][]): ProfileLike {
  const n = rows.reduce((s, r) => s + r[1], 0);
  return { columns, rows: rows.map(([segment, count, ...values]) => ({ segment, count, share: count / n, values })) };
}

// Four segments of 100 customers each.
// recency 10, 200, 10, 60: mean 70, spread √6050 = 77.78 → z −0.77 (low), 1.67 (high), −0.77 (low), −0.13 (mid)
// frequency 20, 2, 2, 5: mean 7.25, spread 7.46 → z 1.71 (high), −0.70 (low), −0.70 (low), −0.30 (mid)
// monetary 2000, 100, 100, 300: mean 625, spread 798 → z 1.72 (high), −0.66 (low), −0.66 (low), −0.41 (mid)
// tenure 1000, 1000, 30, 1000: mean 757.5, spread 420 → z 0.58 (high) ×3 and −1.73 (low)
const RFM = profile(
  ['recency_days', 'frequency', 'monetary_total', 'tenure_days'],
  [
    [0, 100, 10, 20, 2000, 1000],
    [1, 100, 200, 2, 100, 1000],
    [2, 100, 10, 2, 100, 30],
    [3, 100, 60, 5, 300, 1000],
  ],
);

describe('levels', () => {
  it('z-scores segment means against the size-weighted mean and spread of the segment means', () => {
    // sizes 1 and 3, means 0 and 4: overall 3, spread √((1·9 + 3·1)/4) = √3
    const z = segmentZ(profile(['x'], [[0, 1, 0], [1, 3, 4]]));
    expect(z[0][0]).toBeCloseTo(-3 / Math.sqrt(3), 12);
    expect(z[1][0]).toBeCloseTo(1 / Math.sqrt(3), 12);
    const rfm = segmentZ(RFM);
    expect(rfm.map((r) => r[0])).toEqual([-60, 130, -60, -10].map((d) => expect.closeTo(d / Math.sqrt(6050), 9)));
    expect(rfm[2][3]).toBeCloseTo(-727.5 / Math.sqrt(176418.75), 9);
  });

  it('are high above +0.5, low below −0.5, mid between (thresholds included in mid)', () => {
    expect([0.51, 0.5, 0, -0.5, -0.51].map(levelOf)).toEqual(['high', 'mid', 'mid', 'mid', 'low']);
  });

  it('equal means score 0 everywhere (no spread), and NaN means score 0', () => {
    const z = segmentZ(profile(['a', 'b'], [[0, 5, 1, NaN], [1, 5, 1, 2]]));
    expect(z).toEqual([[0, 0], [0, 0]]);
  });
});

describe('RFM names', () => {
  it('finds the roles by column name, a total preferred for monetary, one-hot columns never', () => {
    expect(findRoles(['days_since_last', 'orders_per_year', 'monetary_mean', 'monetary_total', 'tenure_days', 'region=north'])).toEqual({
      recency: 'days_since_last',
      frequency: 'orders_per_year',
      monetary: 'monetary_total',
      tenure: 'tenure_days',
    });
    expect(findRoles(['alcohol', 'spend=high'])).toEqual({ recency: null, frequency: null, monetary: null, tenure: null });
    expect(moneyColumn(['basket_value', 'revenue_total'])).toBe('revenue_total');
    expect(moneyColumn(['alcohol'])).toBeNull();
  });

  it('follow the rule table', () => {
    const cases: [Parameters<typeof rfmName>[0], boolean, string][] = [
      [{ r: 'low', f: 'high', m: 'high', t: 'high' }, true, 'loyal high spenders'],
      [{ r: 'high', f: 'low', m: 'low', t: 'high' }, true, 'lapsing occasional buyers'],
      [{ r: 'low', f: 'low', m: 'low', t: 'low' }, true, 'new customers'],
      [{ r: 'low', f: 'low', m: 'mid', t: 'mid' }, false, 'new customers'],
      [{ r: 'high', f: 'low', m: 'low', t: 'low' }, true, 'lapsing occasional buyers'], // lapsing beats new
      [{ r: 'low', f: 'low', m: 'high', t: 'mid' }, true, 'active occasional high spenders'],
      [{ r: 'low', f: 'high', m: 'low', t: 'mid' }, true, 'loyal bargain hunters'],
      [{ r: 'high', f: 'high', m: 'high', t: 'mid' }, true, 'lapsing frequent high spenders'],
      [{ r: 'mid', f: 'low', m: 'mid', t: 'mid' }, true, 'occasional buyers'],
      [{ r: 'mid', f: 'high', m: 'mid', t: 'mid' }, true, 'loyal buyers'],
      [{ r: 'high', f: 'mid', m: 'mid', t: 'mid' }, true, 'lapsing buyers'],
      [{ r: 'low', f: 'mid', m: 'mid', t: 'mid' }, true, 'active buyers'],
      [{ r: 'mid', f: 'mid', m: 'mid', t: 'mid' }, true, 'average customers'],
    ];
    for (const [levels, tenure, name] of cases) expect(rfmName(levels, tenure), JSON.stringify(levels)).toBe(name);
  });

  it('name a hand-made profile: loyal high spenders, lapsing occasional buyers, new customers, average customers', () => {
    expect(segmentNames(RFM)).toEqual(['loyal high spenders', 'lapsing occasional buyers', 'new customers', 'average customers']);
    // Without the tenure column, "new" is recent and infrequent: segment 2 again.
    const noTenure = { columns: RFM.columns.slice(0, 3), rows: RFM.rows.map((r) => ({ ...r, values: r.values.slice(0, 3) })) };
    expect(segmentNames(noTenure)).toEqual(['loyal high spenders', 'lapsing occasional buyers', 'new customers', 'average customers']);
  });

  it('noise is named noise and stays out of the reference', () => {
    const withNoise = { columns: RFM.columns, rows: [...RFM.rows, { segment: -1, count: 50, share: 0.1, values: [9999, 999, 1e7, 1] }] };
    expect(segmentNames(withNoise)).toEqual(['loyal high spenders', 'lapsing occasional buyers', 'new customers', 'average customers', 'noise']);
    expect(segmentZ(withNoise).slice(0, 4)).toEqual(segmentZ(RFM));
  });
});

describe('generic names', () => {
  // Sizes 100, 100, 200.
  // a 10, 0, 5: mean 5, spread √12.5 → z 1.41, −1.41, 0
  // b 0, 0, 1: mean 0.5, spread 0.5 → z −1, −1, 1
  // c 5, 5, 5: no spread → z 0
  const G = profile(['a', 'b', 'c'], [[0, 100, 10, 0, 5], [1, 100, 0, 0, 5], [2, 200, 5, 1, 5]]);

  it('take the two features with the largest |z|, the second only beyond 0.5', () => {
    expect(segmentNames(G)).toEqual(['high a, low b', 'low a, low b', 'high b']);
  });

  it('call a segment with no |z| above 0.5 average customers', () => {
    // x 1.0, 1.2 with sizes 9 and 1: mean 1.02, spread √(9·0.0004 + 0.0324)/10 = 0.06 → z −0.33, 3 → segment 0 average
    expect(segmentNames(profile(['x'], [[0, 9, 1.0], [1, 1, 1.2]]))).toEqual(['average customers', 'high x']);
  });
});

describe('unique names', () => {
  // Two segments are loyal high spenders; sessions tells them apart:
  // sessions 30, 5, 10, 10: mean 13.75, spread 9.60 → z 1.69, −0.91, −0.39, −0.39.
  const TWINS = profile(
    ['recency', 'frequency', 'monetary', 'sessions'],
    [
      [0, 100, 10, 20, 2000, 30],
      [1, 100, 10, 20, 2000, 5],
      [2, 100, 200, 2, 100, 10],
      [3, 100, 100, 2, 100, 10],
    ],
  );

  it('append the largest-|z| feature the rule did not name', () => {
    expect(segmentNames(TWINS)).toEqual(['loyal high spenders (high sessions)', 'loyal high spenders (low sessions)', 'lapsing occasional buyers', 'occasional buyers']);
  });

  it('number the later ones when no feature tells them apart', () => {
    const same = { columns: TWINS.columns, rows: TWINS.rows.map((r) => (r.segment === 1 ? { ...r, values: [10, 20, 2000, 30] } : r)) };
    const names = segmentNames(same);
    expect(names.slice(0, 2)).toEqual(['loyal high spenders', 'loyal high spenders (2)']);
    expect(new Set(names).size).toBe(4);
  });

  it('hold on every profile: no two segments share a name', () => {
    for (let seed = 1; seed <= 20; seed++) {
      let s = seed;
      const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
      const rows = Array.from({ length: 12 }, (_, j) => [j, 10 + Math.floor(rnd() * 100), ...[0, 1, 2].map(() => Math.round(rnd() * 3))]);
      const names = segmentNames(profile(['recency', 'frequency', 'spend'], rows));
      expect(new Set(names).size, names.join(' | ')).toBe(12);
    }
  });
});

describe('overrides', () => {
  it('replace the derived names of their segments', () => {
    expect(segmentNames(RFM, { 1: 'win-back list', 3: 'the middle' })).toEqual(['loyal high spenders', 'win-back list', 'new customers', 'the middle']);
  });

  it('keep their name when a derived name collides; the derived one moves aside', () => {
    // Segment 1 is derived "lapsing occasional buyers"; every column is used by the rule, so it is numbered.
    expect(segmentNames(RFM, { 3: 'lapsing occasional buyers' })).toEqual(['loyal high spenders', 'lapsing occasional buyers (2)', 'new customers', 'lapsing occasional buyers']);
  });

  it('must be unique among themselves', () => {
    expect(() => segmentNames(RFM, { 0: 'vip', 2: 'vip' })).toThrow(/segments 0 and 2 are both named 'vip'/);
  });
});

describe('what makes a segment distinct', () => {
  // Sizes 100, 100, 200; segment 0 against the other 300 customers:
  // a: 10 against (0·100 + 5·200)/300 = 3.33; b: 0 against 0.667; c: 5 against 5.
  const G = profile(['a', 'b', 'c'], [[0, 100, 10, 0, 5], [1, 100, 0, 0, 5], [2, 200, 5, 1, 5]]);

  it('ranks features by |segment mean − rest mean| / spread', () => {
    const top = distinctFeatures(G, 0, { spread: [2, 0.5, 1] });
    expect(top.map((f) => f.feature)).toEqual(['a', 'b', 'c']);
    expect(top[0]).toEqual({ feature: 'a', difference: expect.closeTo(20 / 3 / 2, 12), mean: 10, restMean: expect.closeTo(10 / 3, 12) });
    expect(top[1].difference).toBeCloseTo(-2 / 3 / 0.5, 12);
    expect(top[2].difference).toBe(0);
    expect(distinctFeatures(G, 0, { spread: [2, 0.5, 1], top: 1 })).toHaveLength(1);
  });

  it('measures against the spread of the segment means by default, leaving out features without spread', () => {
    const top = distinctFeatures(G, 0);
    expect(top.map((f) => f.feature)).toEqual(['a', 'b']);
    expect(top[0].difference).toBeCloseTo(20 / 3 / Math.sqrt(12.5), 12);
  });

  it('is written as a sentence, differences under 0.2 left out', () => {
    expect(describeSegment(G, 0, 'high a, low b', { spread: [2, 0.5, 1] })).toBe(
      'Segment 0 (high a, low b, 25 % of customers): a is 3.3 standard deviations above the rest (mean 10 against 3.33); b is 1.3 below (0 against 0.667).',
    );
    const flat = profile(['a'], [[0, 5, 1], [1, 5, 1]]);
    expect(describeSegment(flat, 1, 'x', { spread: [1] })).toBe('Segment 1 (x, 50 % of customers): no feature differs from the rest by 0.2 standard deviations or more.');
    const noisy = profile(['a'], [[0, 90, 1], [-1, 10, 5]]);
    expect(describeSegment(noisy, -1, 'noise', { spread: [1] })).toBe('Noise (10 % of customers, in no segment): a is 4.0 standard deviations above the rest (mean 5 against 1).');
  });

  it('formats numbers and shares for sentences', () => {
    expect([1234.5, 0.01234, 3.33333, 0, -45678, 1e-5].map(formatNumber)).toEqual(['1,235', '0.0123', '3.33', '0', '-45,678', '1.00e-5']);
    expect([0.123, 0.05, 1].map(formatShare)).toEqual(['12 %', '5.0 %', '100 %']);
  });

  it('refuses a segment the profile does not have', () => {
    expect(() => distinctFeatures(G, 7)).toThrow(/no segment 7/);
  });
});

describe('names file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-names-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  /** The error: a SegtensorError of `code`, one line, naming the file. */
  function fails(f: string, ids: number[] | null, code: string, pattern: RegExp) {
    let err: unknown = null;
    try {
      readNamesFile(f, ids);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SegtensorError);
    const e = err as SegtensorError;
    expect(e.code).toBe(code);
    expect(e.message).not.toContain('\n');
    expect(e.message).toContain(`--names '${f}'`);
    expect(e.message).toMatch(pattern);
  }

  it('reads segment id → name', () => {
    expect(readNamesFile(file('ok.json', '{"0": "VIPs", "-1": " outliers "}'), [0, 1, -1])).toEqual({ 0: 'VIPs', [-1]: 'outliers' });
  });

  it('refuses bad JSON, naming the file', () => {
    fails(file('bad.json', '{"0": "VIPs",'), [0, 1], 'BAD_INPUT', /not valid JSON/);
  });

  it('refuses an unknown segment id, listing the run\'s', () => {
    fails(file('unknown.json', '{"7": "ghosts"}'), [0, 1, 2], 'BAD_INPUT', /'7' is not a segment id of this run \(segments: 0, 1, 2\)/);
    fails(file('word.json', '{"vip": "ghosts"}'), null, 'BAD_INPUT', /'vip' is not a segment id/);
  });

  it('refuses other shapes, empty names and duplicates', () => {
    fails(file('array.json', '["a", "b"]'), [0, 1], 'BAD_INPUT', /expected an object of segment id to name.*got an array/);
    fails(file('number.json', '{"0": 3}'), [0, 1], 'BAD_INPUT', /name of segment 0 must be a non-empty string; got 3/);
    fails(file('empty.json', '{"0": "  "}'), [0, 1], 'BAD_INPUT', /non-empty string/);
    fails(file('dup.json', '{"0": "a", "1": "a"}'), [0, 1], 'BAD_INPUT', /segments 0 and 1 are both named 'a'/);
  });

  it('refuses a missing file', () => {
    fails(path.join(dir, 'nope.json'), [0], 'FILE_NOT_FOUND', /no such file/);
  });
});
