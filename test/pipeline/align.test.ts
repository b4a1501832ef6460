/**
 * Stable segment ids (issue 14): `fit --align-to` gives back a previous model's ids when the same
 * segments are found under another numbering, flags segments that appear or vanish (new ids are
 * never reused), counts customers between runs (`transitions.csv`), and `--warm-start` starts
 * from the previous centroids. `predict` writes a model's segment ids, not its row numbers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';
import { alignCentroids } from '../../src/pipeline/align.js';
import { fitSegmentation, type FitJob } from '../../src/pipeline/fit.js';
import { predictSegments } from '../../src/pipeline/predict.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const wineCsv = path.join(root, 'test/fixtures/wine.csv');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-align-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);

/** wine.csv's data rows [from, to) as a CSV of their own. */
function wineRows(name: string, from: number, to: number): string {
  const lines = fs.readFileSync(wineCsv, 'utf8').trim().split('\n');
  const f = at(name);
  fs.writeFileSync(f, [lines[0], ...lines.slice(1 + from, 1 + to)].join('\n') + '\n');
  return f;
}

const base = { input: wineCsv, id: 'wine_id', backend: 'native', nInit: 10 } as const;
const fit = (job: Partial<FitJob> & { out: string; k: FitJob['k'] }) => fitSegmentation({ ...base, ...job });

async function segmentsOf(out: string): Promise<Map<bigint, number>> {
  const t = await readTable(path.join(out, 'assignments.arrow'));
  const ids = t.column('wine_id').values as BigInt64Array;
  const seg = t.numeric('segment');
  return new Map(Array.from(ids, (id, i) => [id, seg[i]]));
}

const json = (out: string, name: string) => JSON.parse(fs.readFileSync(path.join(out, name), 'utf8'));

describe('fit --align-to', () => {
  it("gives back the previous ids exactly when a refit numbers the same segments differently", async () => {
    const prev = at('prev');
    await fit({ k: 3, seed: 1, out: prev });
    const before = await segmentsOf(prev);
    // A seed whose own numbering differs from the previous fit's (the same partition, permuted).
    let seed = 0;
    for (let s = 2; s < 30 && !seed; s++) {
      await fit({ k: 3, seed: s, out: at(`raw-${s}`) });
      const raw = await segmentsOf(at(`raw-${s}`));
      if ([...raw].some(([id, l]) => l !== before.get(id))) seed = s;
    }
    expect(seed, 'no seed among 2..29 renumbered the segments').toBeGreaterThan(0);
    const aligned = at('aligned');
    await fit({ k: 3, seed, out: aligned, alignTo: prev });
    const after = await segmentsOf(aligned);
    expect([...after].every(([id, l]) => before.get(id) === l)).toBe(true);
    const m = json(aligned, 'metrics.json');
    expect(m.alignment.matches.map((x: { segment: number }) => x.segment)).toEqual([0, 1, 2]);
    for (const x of m.alignment.matches) expect(x.cost).toBeLessThan(1e-9);
    expect(m.alignment.newSegments).toEqual([]);
    expect(m.alignment.retired).toEqual([]);
    // Every customer is in both runs, in the same segment.
    expect(m.alignment.transitions).toEqual({ customersInBoth: 178, onlyPrevious: 0, onlyCurrent: 0 });
    const tr = fs.readFileSync(path.join(aligned, 'transitions.csv'), 'utf8').trim().split('\n');
    expect(tr[0]).toBe('previous_segment,segment,customers');
    expect(tr.slice(1).every((l) => l.split(',')[0] === l.split(',')[1])).toBe(true);
    // The segment profile carries the ids too.
    expect(fs.readFileSync(path.join(aligned, 'segments.csv'), 'utf8').split('\n')[1].startsWith('0,')).toBe(true);
  });

  it('counts transitions over the customers present in both runs only', async () => {
    const prev = at('sub-prev');
    await fit({ k: 3, input: wineRows('first.csv', 0, 140), out: prev });
    const now = at('sub-now');
    await fit({ k: 3, input: wineRows('last.csv', 40, 178), out: now, alignTo: prev });
    const rows = fs.readFileSync(path.join(now, 'transitions.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    expect(rows.reduce((s, r) => s + r[2], 0)).toBe(100);
    expect(json(now, 'metrics.json').alignment.transitions).toEqual({ customersInBoth: 100, onlyPrevious: 40, onlyCurrent: 38 });
    // Against a direct join of the two assignments.
    const a = await segmentsOf(prev);
    const b = await segmentsOf(now);
    const direct = new Map<string, number>();
    for (const [id, s] of b) if (a.has(id)) direct.set(`${a.get(id)},${s}`, (direct.get(`${a.get(id)},${s}`) ?? 0) + 1);
    expect(new Map(rows.map((r) => [`${r[0]},${r[1]}`, r[2]]))).toEqual(direct);
  });

  it('flags a segment that appears, lists vanished ones as retired, and never reuses a retired id', async () => {
    const three = at('k3');
    await fit({ k: 3, seed: 1, out: three });
    const four = at('k4');
    const r4 = await fit({ k: 4, seed: 1, out: four, alignTo: three });
    expect(r4.metrics.alignment!.newSegments).toEqual([3]);
    expect(r4.metrics.alignment!.retired).toEqual([]);
    expect(r4.model.nextSegmentId).toBe(4);
    const two = at('k2');
    const r2 = await fit({ k: 2, seed: 1, out: two, alignTo: four });
    expect(r2.metrics.alignment!.retired).toHaveLength(2);
    expect(r2.metrics.alignment!.newSegments).toEqual([]);
    const kept = r2.model.segmentIds!;
    expect(kept).toHaveLength(2);
    expect(new Set(await segmentsOf(two).then((m) => [...m.values()]))).toEqual(new Set(kept));
    expect(r2.metrics.segmentIds).toEqual(kept);
    // Growing again: the new segment gets id 4, not an id retired a night ago.
    const again = await fit({ k: 3, seed: 1, out: at('k3-again'), alignTo: two });
    expect(again.metrics.alignment!.newSegments).toEqual([4]);
    expect(again.model.segmentIds).toEqual([...kept, 4].sort((a, b) => a - b));

    // predict writes the model's ids, the same the fit wrote.
    const out = at('pred-k2.arrow');
    const p = await predictSegments({ model: two, input: wineCsv, out });
    expect(p.segmentIds).toEqual(kept);
    const t = await readTable(out);
    const fitted = await segmentsOf(two);
    const ids = t.column('wine_id').values as BigInt64Array;
    const seg = t.numeric('segment');
    ids.forEach((id, i) => expect(seg[i]).toBe(fitted.get(id)));
  });

  it('says so when --align-to has no --id to follow customers with, and writes no transitions', async () => {
    const lines: string[] = [];
    const out = at('no-id');
    await fitSegmentation({ input: wineCsv, exclude: ['wine_id'], backend: 'native', nInit: 3, k: 3, seed: 2, out, alignTo: at('prev'), log: (l) => lines.push(l) });
    expect(lines).toContain('notice: --align-to without --id: customers cannot be followed between runs, so no transitions.csv');
    expect(fs.existsSync(path.join(out, 'transitions.csv'))).toBe(false);
    expect(json(out, 'metrics.json').alignment.transitions).toBeNull();
  });

  it('refuses to match more segments than the cubic matching can take in reasonable time', () => {
    const prev = { k: 4097 } as Parameters<typeof alignCentroids>[0];
    expect(() => alignCentroids(prev, {} as Parameters<typeof alignCentroids>[1], {} as Parameters<typeof alignCentroids>[2], new Float32Array(0), 3)).toThrow(
      '--align-to matches up to 4096 segments (the matching is cubic in k); this fit has k = 3, the previous one 4097',
    );
  });

  it('refuses a previous model with other features, naming the difference', async () => {
    const prev = at('feat-prev');
    await fit({ k: 3, out: prev, features: ['alcohol', 'malic_acid', 'ash'] });
    const err = await fit({ k: 3, out: at('feat-now'), features: ['alcohol', 'malic_acid', 'hue'], alignTo: prev }).catch((e) => e);
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toMatch(/^--align-to '.*feat-prev': the previous model's features differ from this fit's \(-ash, \+hue\)/);
  });
});

describe('fit --warm-start', () => {
  it("starts from the previous centroids: on the same data it converges at once to the previous fit's inertia", async () => {
    const prev = at('warm-prev');
    const a = await fit({ k: 4, seed: 3, out: prev });
    const b = await fit({ k: 4, seed: 99, out: at('warm-now'), warmStart: prev });
    expect(b.model.params.init).toBe('array');
    expect(b.metrics.nIter).toBeLessThanOrEqual(2);
    expect(b.metrics.inertia / a.metrics.inertia).toBeCloseTo(1, 9);
  });

  it('refuses another k and --k auto', async () => {
    const prev = at('warm-prev');
    await expect(fit({ k: 5, out: at('warm-k5'), warmStart: prev })).rejects.toThrow("--warm-start: the previous model has k = 4; --k must be the same (got 5)");
    await expect(fit({ k: 'auto', out: at('warm-auto'), warmStart: prev })).rejects.toThrow('--warm-start needs a fixed --k');
  });
});
