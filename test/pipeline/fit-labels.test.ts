/**
 * Issue 12: labels are never features by accident. `fit` leaves out columns that `features`
 * marked as labels (in the file's metadata or its `.meta.json`), columns named by `exclude`, and
 * label-like names (churn, churned, label, target) unless `features` asks for them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitSegmentation } from '../../src/pipeline/fit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-fit-labels-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const csv = path.join(dir, 'customers.csv');

beforeAll(() => {
  // The labels separate the rows perfectly: a clustering that used them would split on them.
  const rows = ['customer_id,spend,visits,renewed,churn,target_margin'];
  for (let i = 0; i < 60; i++) rows.push(`${i + 1},${(i * 7) % 13},${(i * 5) % 11},${i % 2},${(i + 1) % 2},${(i % 3) / 2}`);
  fs.writeFileSync(csv, rows.join('\n') + '\n');
  // `renewed` is a label by the metadata alone (its name says nothing).
  fs.writeFileSync(`${csv}.meta.json`, JSON.stringify({ labels: ['renewed'] }));
});

async function fit(extra: Record<string, unknown>, out: string) {
  const lines: string[] = [];
  const r = await fitSegmentation({ input: csv, k: 2, id: 'customer_id', out: path.join(dir, out), nInit: 1, log: (l) => lines.push(l), ...extra });
  return { features: r.model.featureNames, excluded: r.model.excluded, log: lines.join('\n') };
}

describe('fit keeps labels out of the default features (issue 12)', () => {
  it('marked and label-like columns are left out, with a line each', async () => {
    const r = await fit({}, 'a');
    expect(r.features).toEqual(['spend', 'visits', 'target_margin']);
    expect(r.excluded).toEqual(expect.arrayContaining(['customer_id', 'renewed', 'churn']));
    expect(r.log).toMatch(/notice: column 'renewed' is marked as a label in .*customers\.csv's metadata; left out/);
    expect(r.log).toMatch(/warning: column 'churn' looks like a label; left out of the features/);
  });

  it('--exclude leaves out any column; --features uses a label when asked, with a warning', async () => {
    expect((await fit({ exclude: ['visits'] }, 'b')).features).toEqual(['spend', 'target_margin']);
    const r = await fit({ features: ['spend', 'renewed', 'churn'] }, 'c');
    expect(r.features).toEqual(['spend', 'renewed', 'churn']);
    expect(r.log).toMatch(/warning: feature 'renewed' is marked as a label/);
  });

  it('an --exclude column that does not exist is an error naming it', async () => {
    await expect(fit({ exclude: ['nope'] }, 'd')).rejects.toThrow(/customers\.csv: no column 'nope'/);
  });
});
