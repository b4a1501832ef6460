/**
 * Issue 12: coercions and unseen categories are counted in the run's manifest, not only printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRun } from '../../src/io/run-dir.js';
import { fitSegmentation } from '../../src/pipeline/fit.js';
import { predictSegments } from '../../src/pipeline/predict.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-counts-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('manifest counts (issue 12)', () => {
  it('--coerce-invalid cells and unseen categories are in manifest.json', async () => {
    const train = path.join(dir, 'train.csv');
    const rows = ['id,spend,plan'];
    for (let i = 1; i <= 40; i++) rows.push(`${i},${i === 7 ? 'n/a' : i * 3},${['basic', 'pro'][i % 2]}`);
    fs.writeFileSync(train, rows.join('\n') + '\n');
    const seg = path.join(dir, 'seg');
    await fitSegmentation({ input: train, k: 2, id: 'id', features: ['spend', 'plan'], out: seg, coerceInvalid: true, nInit: 1 });
    expect((await openRun(seg, '--model')).manifest.counts).toMatchObject({ rowsRead: 40, coercedToNull: { spend: 1 } });

    const later = path.join(dir, 'later.csv');
    fs.writeFileSync(later, 'id,spend,plan\n1,5,basic\n2,6,gold\n3,7,gold\n4,8,family\n');
    const out = path.join(dir, 'p.arrow');
    await predictSegments({ model: seg, input: later, out });
    expect((await openRun(out, '--out')).manifest.counts).toMatchObject({ rowsRead: 4, unseenCategories: { plan: 3 } });
  });
});
