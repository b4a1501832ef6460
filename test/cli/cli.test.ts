/**
 * The CLI contract, end to end through the built binary (`npm test` builds it first):
 * outputs, scikit-learn agreement, predict, and one-line errors with non-zero exits.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/io/read-table.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const wineCsv = path.join(root, 'test/fixtures/wine.csv');
const fx = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/sklearn-wine.json'), 'utf8'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, SEGTENSOR_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

beforeAll(() => {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run 'npm test' (it builds first) or 'npm run build'`);
});

describe('segtensor fit', () => {
  const out = path.join(dir, 'wine-out');
  let fit: ReturnType<typeof run>;
  beforeAll(() => {
    fit = run('fit', '--input', wineCsv, '--k', '3', '--id', 'wine_id', '--out', out, '--n-init', '10', '--backend', 'wasm');
  });

  it('exits 0, prints the segment table and writes the four outputs', () => {
    expect(fit.err).toBe('');
    expect(fit.code).toBe(0);
    expect(fit.out).toMatch(/^segment\s+count\s+share\s+alcohol/m);
    for (const f of ['model.json', 'metrics.json', 'assignments.arrow', 'segments.csv']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  });

  it("reaches scikit-learn's best-of-10 inertia within 1% with the same standard scaling", () => {
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    for (const key of ['inertia', 'nIter', 'converged', 'sizes', 'silhouette', 'calinskiHarabasz', 'daviesBouldin']) expect(m).toHaveProperty(key);
    expect(Math.abs(m.inertia / fx.kmeans['3'].inertia - 1)).toBeLessThan(0.01);
    expect(m.sizes.reduce((a: number, b: number) => a + b)).toBe(178);
  });

  it('writes assignments with the id passed through, and a profile per segment', () => {
    const t = tableFromIPC(fs.readFileSync(path.join(out, 'assignments.arrow')));
    expect(t.schema.fields.map((f) => f.name)).toEqual(['wine_id', 'segment', 'distance', 'segment_name']);
    expect(t.getChild('wine_id')!.get(0)).toBe(1000n);
    expect(t.numRows).toBe(178);
    const csv = fs.readFileSync(path.join(out, 'segments.csv'), 'utf8').trim().split('\n');
    expect(csv[0].startsWith('segment,count,share,alcohol')).toBe(true);
    expect(csv.length).toBe(4);
    const model = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(model.formatVersion).toBe(1);
    expect(model.centroidsOriginal[0]).toHaveLength(13);
    // original-unit centroids are the scaled ones mapped back through the fitted scaler
    expect(model.centroidsOriginal[0][0]).toBeCloseTo(model.centroidsScaled[0][0] * fx.scale[0] + fx.mean[0], 3);
  });

  it('predict gives the same segments for the training rows, in any output format', async () => {
    const fitted = tableFromIPC(fs.readFileSync(path.join(out, 'assignments.arrow')));
    for (const ext of ['arrow', 'parquet', 'csv']) {
      const dest = path.join(dir, `pred.${ext}`);
      const r = run('predict', '--model', out, '--input', wineCsv, '--out', dest);
      expect(r.code, r.err).toBe(0);
      const t = await readTable(dest);
      expect(t.names).toEqual(['wine_id', 'segment', 'distance']);
      expect([...t.numeric('segment')]).toEqual([...fitted.getChild('segment')!.toArray()]);
    }
  });

  it('writes Parquet assignments with --format parquet', async () => {
    const o = path.join(dir, 'pq-out');
    const r = run('fit', '-i', wineCsv, '-k', '2', '-o', o, '--format', 'parquet', '--scale', 'minmax');
    expect(r.code, r.err).toBe(0);
    // No --id: the id column is clustered like any numeric column, with a warning that says so.
    expect(r.err).toContain("segtensor: warning: feature column 'wine_id' looks like an identifier; pass --id wine_id");
    const t = await readTable(path.join(o, 'assignments.parquet'));
    expect(t.names).toEqual(['row', 'segment', 'distance', 'segment_name']);
  });
});

describe('--coerce-invalid and --dtypes (issue 12)', () => {
  it('fit reads a stray text cell as null with a notice, and --dtypes declares a column text', () => {
    write('stray.csv', 'id,a,b,code\n1,12,1,10\n2,n/a,2,20\n3,14,3,10\n4,15,5,30\n5,16,8,20\n6,17,13,10\n');
    const r = run('fit', '-i', 'stray.csv', '-k', '2', '--id', 'id', '-o', 'stray-out', '--coerce-invalid', '--dtypes', 'code:string', '--features', 'a,b,code');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("segtensor: notice: stray.csv: column 'a': 1 cell that did not convert read as null (--coerce-invalid)");
    const model = JSON.parse(fs.readFileSync(path.join(dir, 'stray-out', 'model.json'), 'utf8'));
    expect(model.featureNames).toEqual(['a', 'b', 'code=10', 'code=20', 'code=30', 'code=__other__']);
    const p = run('predict', '--model', 'stray-out', '-i', 'stray.csv', '-o', 'stray-pred.arrow', '--coerce-invalid', '--dtypes', 'code:string');
    expect(p.code, p.err).toBe(0);
    // without --dtypes the code column is numbers, which the model was not fitted on
    const q = run('predict', '--model', 'stray-out', '-i', 'stray.csv', '-o', 'stray-pred2.arrow', '--coerce-invalid');
    expect(q.code).not.toBe(0);
    expect(q.err).toContain("[TYPE_MISMATCH]: stray.csv: column 'code' is numbers here but the model was fitted on text (string); declare --dtypes code:string");
  });
});

describe('bad input: one line, named, non-zero exit, earlier outputs intact', () => {
  const good = path.join(dir, 'keep');
  let before: Record<string, string>;
  beforeAll(() => {
    write('ok.csv', 'id,a,b,region\n1,1,2,n\n2,3,4,s\n3,5,6,n\n4,7,9,e\n');
    write('dup.csv', 'id,a\n1,1\n2,3\n1,5\n');
    write('allnull.csv', 'id,a,b\n1,1,\n2,3,\n3,4,\n');
    write('inf.csv', 'id,a\n1,1\n2,inf\n3,4\n');
    write('header.csv', 'id,a\n');
    write('text.csv', 'id,a\n1,12\n2,n/a\n3,14\n4,15\n5,16\n6,17\n7,18\n8,19\n9,20\n10,21\n11,22\n');
    write('garbage.parquet', 'this is not parquet');
    write('ragged.csv', 'id,a,b\n1,2,3\n4,5\n6,7,8\n');
    const r = run('fit', '-i', 'ok.csv', '-k', '2', '--id', 'id', '-o', good);
    expect(r.code, r.err).toBe(0);
    before = Object.fromEntries(fs.readdirSync(good).map((f) => [f, fs.readFileSync(path.join(good, f), 'utf8')]));
    const model = JSON.parse(before['model.json']);
    // A published run whose model.json is of another version, its manifest updated to match.
    fs.cpSync(fs.realpathSync(good), path.join(dir, 'v99'), { recursive: true });
    const v99 = JSON.stringify({ ...model, formatVersion: 99 });
    fs.writeFileSync(path.join(dir, 'v99/model.json'), v99);
    const mf = JSON.parse(fs.readFileSync(path.join(dir, 'v99/manifest.json'), 'utf8'));
    const entry = mf.outputs.find((o: { path: string }) => o.path === 'model.json');
    Object.assign(entry, { bytes: Buffer.byteLength(v99), sha256: crypto.createHash('sha256').update(v99).digest('hex') });
    fs.writeFileSync(path.join(dir, 'v99/manifest.json'), JSON.stringify(mf));
    // An older segtensor's `churn train` directory (no manifest).
    fs.mkdirSync(path.join(dir, 'churn-dir'));
    fs.writeFileSync(path.join(dir, 'churn-dir/churn.json'), '{}');
    // A directory made by hand: model.json without a manifest.
    fs.mkdirSync(path.join(dir, 'by-hand'));
    fs.writeFileSync(path.join(dir, 'by-hand/model.json'), before['model.json']);
    // A published run changed after the fact.
    fs.cpSync(fs.realpathSync(good), path.join(dir, 'edited'), { recursive: true });
    fs.appendFileSync(path.join(dir, 'edited/model.json'), ' ');
    fs.writeFileSync(path.join(dir, 'a-file'), '');
  });

  const cases: [string, string[], RegExp][] = [
    ['missing file', ['fit', '-i', 'nope.csv', '-k', '2', '-o', 'keep'], /\[FILE_NOT_FOUND\]: --input 'nope.csv': no such file/],
    ['unknown feature', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'keep', '--features', 'a,zzz'], /ok\.csv: no column 'zzz'/],
    // issue 12: a stray text cell in a numeric column names its file line, --features or not
    ['non-numeric feature', ['fit', '-i', 'text.csv', '-k', '2', '-o', 'keep', '--features', 'a'], /\[MIXED_COLUMN\]: text\.csv: column 'a' is mostly numbers \(10 of 11 cells\) but line 3 holds 'n\/a'/],
    ['stray text cell, default features', ['fit', '-i', 'text.csv', '-k', '2', '-o', 'keep'], /\[MIXED_COLUMN\]: text\.csv: column 'a' is mostly numbers \(10 of 11 cells\) but line 3 holds 'n\/a'/],
    ['ragged CSV', ['fit', '-i', 'ragged.csv', '-k', '2', '-o', 'keep'], /\[CORRUPT_FILE\]: ragged\.csv: malformed CSV at line 3: expected 3 fields, found 2/],
    ['bad --dtypes', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'keep', '--dtypes', 'a:float'], /--dtypes must be a comma-separated list of column:type/],
    ['non-numeric weight', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'keep', '--weight', 'region'], /column 'region' is string, not numeric/],
    ['all-null column', ['fit', '-i', 'allnull.csv', '-k', '2', '-o', 'keep', '--features', 'a,b'], /column 'b' has no values/],
    ['Inf value', ['fit', '-i', 'inf.csv', '-k', '2', '-o', 'keep'], /inf\.csv: column 'a' data row 2 is Infinity/],
    ['empty table', ['fit', '-i', 'header.csv', '-k', '2', '-o', 'keep'], /header\.csv: the table has no rows/],
    ['k < 1', ['fit', '-i', 'ok.csv', '-k', '0', '-o', 'keep'], /--k must be an integer in \[1, ∞\]; got '0'/],
    ['k > rows', ['fit', '-i', 'ok.csv', '-k', '9', '-o', 'keep'], /'k' must be an integer in \[1, nRows = 4\]; got 9/],
    ['duplicate ids', ['fit', '-i', 'dup.csv', '-k', '2', '-o', 'keep', '--id', 'id'], /id column 'id' repeats '1' at data row 3/],
    ['unwritable output', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'a-file/out'], /\[UNWRITABLE_OUTPUT\]: --out 'a-file\/out': .*a-file is not a directory/],
    ['output on /proc', ['fit', '-i', 'ok.csv', '-k', '2', '-o', '/proc/segtensor-out'], /\[UNWRITABLE_OUTPUT\]: --out '\/proc\/segtensor-out': \/proc is on the virtual proc filesystem/],
    ['model directory made by hand', ['predict', '--model', 'by-hand', '-i', 'ok.csv', '-o', 'p.arrow'], /--model 'by-hand' has no manifest\.json: not a complete segtensor run/],
    ['model changed after its run', ['predict', '--model', 'edited', '-i', 'ok.csv', '-o', 'p.arrow'], /--model 'edited': model\.json changed after the run/],
    ['fit into a churn model directory', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'churn-dir'], /--out 'churn-dir' holds the outputs of `segtensor churn train`/],
    ['corrupt parquet', ['fit', '-i', 'garbage.parquet', '-k', '2', '-o', 'keep'], /garbage\.parquet: not a readable Parquet file/],
    ['unknown backend', ['fit', '-i', 'ok.csv', '-k', '2', '-o', 'keep', '--backend', 'gpu9'], /--backend/],
    ['model of another version', ['predict', '--model', 'v99', '-i', 'ok.csv', '-o', 'p.arrow'], /model format version 99, this segtensor reads version 1/],
    ['bad output extension', ['predict', '--model', 'keep', '-i', 'ok.csv', '-o', 'p.xlsx'], /--out 'p\.xlsx': unknown extension/],
  ];

  it.each(cases)('%s', (_name, args, msg) => {
    const r = run(...args);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(msg);
    // A fallback notice (native kernels not built) or a warning may precede the error line.
    const lines = r.err.trim().split('\n').filter((l) => !/^segtensor: (notice|warning):/.test(l));
    expect(lines).toHaveLength(1);
    expect(r.err).not.toMatch(/\n\s+at /);
    const after = Object.fromEntries(fs.readdirSync(good).map((f) => [f, fs.readFileSync(path.join(good, f), 'utf8')]));
    expect(after).toEqual(before);
  });
});

describe('segtensor demo', () => {
  it('generates the sample, prints the segment table and recovers the known segments', () => {
    const r = run('demo', '--customers', '5000', '--dir', path.join(dir, 'demo'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^segment\s+count\s+share\s+recency_days/m);
    const ari = Number(/adjusted Rand index ([\d.]+)/.exec(r.out)?.[1]);
    expect(ari).toBeGreaterThan(0.9);
    for (const f of ['model.json', 'metrics.json', 'assignments.arrow', 'segments.csv']) expect(fs.existsSync(path.join(dir, 'demo', 'out', f))).toBe(true);
  });
});

describe('segtensor --help and doctor', () => {
  it('documents the fit contract', () => {
    const r = run('fit', '--help');
    expect(r.code).toBe(0);
    for (const o of ['--input', '--k', '--out', '--features', '--id', '--weight', '--scale', '--seed', '--n-init', '--max-iter', '--tol', '--backend', '--format']) {
      expect(r.out).toContain(o);
    }
  });

  it('lists backends with their status', () => {
    const r = run('doctor');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok +wasm/m);
    expect(r.out).toMatch(/^ok +cpu/m);
    expect(r.out).toMatch(/tensorflow/);
  });
});
