/**
 * Run directories (issue 12): staged outputs published by one rename, manifests that readers
 * check, the previous run kept, leftovers of dead processes swept, older layouts migrated.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { beginRun, makeDirs, openRun, storeOf, sweepLeftovers } from '../../src/io/run-dir.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-run-dir-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A pid that is certainly dead: a child that has exited. */
const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout.trim();

async function publishDir(out: string, files: Record<string, string>, command = 'fit') {
  const run = beginRun({ command, out, layout: 'dir', options: { n: 1 } });
  try {
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(run.file(name), text);
    return await run.commit();
  } finally {
    run.dispose();
  }
}

describe('beginRun / commit', () => {
  it('nothing is visible until the commit; then all of it, with a manifest of SHA-256s', async () => {
    const out = path.join(dir, 'a');
    const input = path.join(dir, 'in.csv');
    fs.writeFileSync(input, 'x\n1\n');
    const run = beginRun({ command: 'fit', out, layout: 'dir', options: { k: 2 } });
    fs.writeFileSync(run.file('model.json'), '{"m":1}');
    fs.writeFileSync(run.file('metrics.json'), '{}');
    run.input(input);
    run.count({ rows: 1 });
    expect(fs.existsSync(out)).toBe(false);
    const { manifest, files } = await run.commit();
    run.dispose();
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).toBe('{"m":1}');
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['metrics.json', 'model.json']);
    expect(manifest.inputs[0]).toMatchObject({ bytes: 4, sha256: crypto.createHash('sha256').update('x\n1\n').digest('hex') });
    expect(manifest.outputs.find((o) => o.path === 'model.json')).toMatchObject({ bytes: 7, sha256: crypto.createHash('sha256').update('{"m":1}').digest('hex') });
    expect(manifest).toMatchObject({ command: 'fit', options: { k: 2 }, counts: { rows: 1 } });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).runId).toBe(manifest.runId);
  });

  it('a disposed (failed) run leaves the published one and no staging', async () => {
    const out = path.join(dir, 'b');
    await publishDir(out, { 'model.json': 'old' });
    const run = beginRun({ command: 'fit', out, layout: 'dir', options: {} });
    fs.writeFileSync(run.file('model.json'), 'new');
    run.dispose();
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).toBe('old');
    expect(fs.readdirSync(storeOf(out)).filter((n) => n.includes('staging'))).toEqual([]);
  });

  it('keeps the current and the previous run; older ones go', async () => {
    const out = path.join(dir, 'c');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publishDir(out, { 'model.json': String(i) })).manifest.runId);
    const kept = fs.readdirSync(storeOf(out)).filter((n) => n !== 'current').sort();
    expect(kept).toEqual(ids.slice(2).sort());
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).toBe('3');
  });

  it('file layout: the output and its sidecars are links into one run, dangling before the first', async () => {
    const out = path.join(dir, 'scores.csv');
    const side = path.join(dir, 'scores.segment-risk.csv');
    const run = beginRun({ command: 'churn predict', out, layout: 'file', sidecars: [side], options: {} });
    fs.writeFileSync(run.primary, 'p1');
    fs.writeFileSync(run.file('scores.segment-risk.csv'), 's1');
    await run.commit();
    run.dispose();
    expect([fs.readFileSync(out, 'utf8'), fs.readFileSync(side, 'utf8')]).toEqual(['p1', 's1']);
    expect(path.dirname(fs.realpathSync(out))).toBe(path.dirname(fs.realpathSync(side)));
    // A later run without the sidecar: the old sidecar is not shown beside the new output.
    const run2 = beginRun({ command: 'churn predict', out, layout: 'file', options: {} });
    fs.writeFileSync(run2.primary, 'p2');
    await run2.commit();
    run2.dispose();
    expect(fs.readFileSync(out, 'utf8')).toBe('p2');
    expect(fs.existsSync(side)).toBe(false);
  });

  it('every published output must have been written', async () => {
    const run = beginRun({ command: 'predict', out: path.join(dir, 'never.arrow'), layout: 'file', options: {} });
    await expect(run.commit()).rejects.toThrow(/output 'never\.arrow' was not written/);
    run.dispose();
  });
});

describe('refusals', () => {
  it("fit and churn train do not replace each other's outputs", async () => {
    const out = path.join(dir, 'mixed');
    await publishDir(out, { 'model.json': '{}' }, 'fit');
    expect(() => beginRun({ command: 'churn train', out, layout: 'dir', options: {} })).toThrow(/--out '.*mixed' holds the outputs of `segtensor fit`; `segtensor churn train` will not replace them/);
  });

  it('a non-empty directory segtensor did not write is refused; an empty one is used', async () => {
    const mine = path.join(dir, 'photos');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'cat.jpg'), 'meow');
    expect(() => beginRun({ command: 'fit', out: mine, layout: 'dir', options: {} })).toThrow(/non-empty directory that segtensor did not write/);
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    await publishDir(empty, { 'model.json': '1' });
    expect(fs.lstatSync(empty).isSymbolicLink()).toBe(true);
  });

  it('a file output whose path is a directory is refused before any work', () => {
    const taken = path.join(dir, 'taken.arrow');
    fs.mkdirSync(taken);
    expect(() => beginRun({ command: 'predict', out: taken, layout: 'file', options: {} })).toThrow(/--out '.*taken\.arrow': .*taken\.arrow is a directory; a file is needed/);
    expect(fs.statSync(taken).isDirectory()).toBe(true);
  });

  it("an older segtensor's files beside an existing run store are refused, not half-replaced", async () => {
    const out = path.join(dir, 'both');
    await publishDir(out, { 'model.json': 'run' });
    fs.rmSync(out); // the link
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'model.json'), 'by an older segtensor');
    expect(() => beginRun({ command: 'fit', out, layout: 'dir', options: {} })).toThrow(/is a directory of files beside the run store/);
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).toBe('by an older segtensor');
  });

  it('the manifest keeps the options as given, without callbacks or unset fields', async () => {
    const out = path.join(dir, 'opts');
    const run = beginRun({ command: 'fit', out, layout: 'dir', options: { k: 3, log: () => {}, seed: undefined, features: null } });
    fs.writeFileSync(run.file('model.json'), '{}');
    const { manifest } = await run.commit();
    run.dispose();
    expect(manifest.options).toEqual({ k: 3, features: null });
  });

  it('a path under /proc fails at once instead of looping', () => {
    const t0 = performance.now();
    expect(() => makeDirs('/proc/segtensor/out')).toThrow(/\/proc is on the virtual proc filesystem/);
    expect(() => beginRun({ command: 'fit', out: '/proc/segtensor/out', layout: 'dir', options: {} })).toThrow(/UNWRITABLE|virtual proc/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('migration from the older layout', () => {
  it("an older fit directory is kept visible until the new run replaces it", async () => {
    const out = path.join(dir, 'legacy');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'model.json'), 'legacy');
    await publishDir(out, { 'model.json': 'new' });
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).toBe('new');
    // The legacy files are the previous run, kept for readers.
    const legacy = fs.readdirSync(storeOf(out)).find((n) => n.endsWith('-legacy'))!;
    expect(fs.readFileSync(path.join(storeOf(out), legacy, 'model.json'), 'utf8')).toBe('legacy');
  });

  it('an older output file is hard-linked into the store first, so it never disappears', async () => {
    const out = path.join(dir, 'legacy.arrow');
    fs.writeFileSync(out, 'old bytes');
    const run = beginRun({ command: 'predict', out, layout: 'file', options: {} });
    fs.writeFileSync(run.primary, 'new bytes');
    await run.commit();
    run.dispose();
    expect(fs.readFileSync(out, 'utf8')).toBe('new bytes');
  });
});

describe('openRun checks the manifest', () => {
  it('accepts a published run and refuses a changed, missing or unlisted one', async () => {
    const out = path.join(dir, 'checked');
    await publishDir(out, { 'model.json': '{"a":1}', 'metrics.json': '{}' });
    expect((await openRun(out, '--model')).manifest.command).toBe('fit');
    await expect(openRun(out, '--model', ['churn train'])).rejects.toThrow(/holds the outputs of `segtensor fit`; expected `segtensor churn train`/);
    const real = fs.realpathSync(out);
    fs.writeFileSync(path.join(real, 'model.json'), '{"a":2}');
    await expect(openRun(out, '--model')).rejects.toThrow(/--model '.*checked': model\.json changed after the run \(7 bytes/);
    fs.rmSync(path.join(real, 'metrics.json'));
    fs.writeFileSync(path.join(real, 'model.json'), '{"a":1}');
    await expect(openRun(out, '--model')).rejects.toThrow(/metrics\.json is missing/);
    const hand = path.join(dir, 'hand');
    fs.mkdirSync(hand);
    await expect(openRun(hand, '--segments')).rejects.toThrow(/--segments '.*hand' has no manifest\.json/);
  });
});

describe('sweepLeftovers', () => {
  it('removes the staging, temporary, spill and link files of dead processes, never of live ones', () => {
    const at = path.join(dir, 'sweep');
    fs.mkdirSync(at);
    const dead = [`20260101T000000Z-aa.staging-${deadPid}`, `.model.json.tmp-${deadPid}-abc123`, `.segtensor-spill-${deadPid}-x1`, `out.link-${deadPid}-0a0b0c`];
    const live = [`20260101T000000Z-bb.staging-${process.pid}`, `.model.json.tmp-${process.pid}-abc123`, 'model.json', '20260101T000000Z-cc'];
    for (const n of [...dead, ...live]) fs.mkdirSync(path.join(at, n));
    expect(sweepLeftovers(at).sort()).toEqual(dead.sort());
    expect(fs.readdirSync(at).sort()).toEqual(live.sort());
  });
});
