/**
 * Whether a job step's published run already is what the step would make: its manifest records
 * the same command line and every input it read still has the same size and SHA-256. Reads only;
 * nothing is created or changed, so `--plan` can ask it too.
 *
 * @example
 * const f = await freshness(step);
 * if (!f.upToDate) console.log(`runs: ${f.reason}`); // e.g. 'input /data/log-2024-01-02.parquet changed'
 */
import path from 'node:path';
import { SegtensorError } from '../errors.js';
import { hashFile, openRun, storeOf } from '../io/run-dir.js';
import { keyFingerprint, pseudonymKey } from '../util/pseudonym.js';
import type { JobStep } from './job-file.js';

export type Freshness = { upToDate: true; runId: string } | { upToDate: false; reason: string };

/**
 * Compares a step with the run published at its `out` (resolved as readers resolve it, through
 * {@link openRun}: the published outputs must also still match the manifest). `rewrittenBy`
 * names an earlier step that will publish an input anew (a plan's steps that would run), which
 * counts as a change without hashing what is there now.
 */
export async function freshness(step: JobStep, rewrittenBy?: (file: string) => JobStep | null): Promise<Freshness> {
  if (!step.out) return { upToDate: false, reason: 'writes no --out to compare with' };
  let manifest;
  try {
    manifest = (await openRun(step.out, '--out')).manifest;
  } catch (e) {
    if (e instanceof SegtensorError && e.code === 'FILE_NOT_FOUND') return { upToDate: false, reason: 'no previous run' };
    if (e instanceof SegtensorError && /has no manifest\.json/.test(e.message)) return { upToDate: false, reason: 'no previous run (no manifest.json)' };
    if (e instanceof SegtensorError) return { upToDate: false, reason: 'the previous outputs are missing or changed' };
    throw e;
  }
  if (!Array.isArray(manifest.argv)) return { upToDate: false, reason: 'the previous run recorded no command line' };
  if (manifest.argv.length !== step.argv.length || manifest.argv.some((a, i) => a !== step.argv[i])) return { upToDate: false, reason: 'options changed' };
  // Pseudonyms depend on the key, which the command line does not show: compare fingerprints.
  if (step.argv.includes('--pseudonymize-ids')) {
    if (!manifest.pseudonymKey) return { upToDate: false, reason: 'the previous run recorded no pseudonym key fingerprint' };
    const at = step.argv.indexOf('--pseudonym-key-file');
    const keyFile = at >= 0 ? step.argv[at + 1] : (step.argv.find((a) => a.startsWith('--pseudonym-key-file='))?.slice('--pseudonym-key-file='.length) ?? null);
    let now: string;
    try {
      now = keyFingerprint(pseudonymKey({ keyFile, env: process.env }));
    } catch {
      return { upToDate: false, reason: 'the pseudonym key is not available' };
    }
    if (now !== manifest.pseudonymKey) return { upToDate: false, reason: 'the pseudonym key changed' };
  }
  for (const input of manifest.inputs) {
    const by = rewrittenBy?.(input.resolved);
    if (by) return { upToDate: false, reason: `input ${input.resolved} is written by step ${by.index + 1} (${by.label})` };
    let h: { bytes: number; sha256: string };
    try {
      h = await hashFile(input.resolved);
    } catch {
      return { upToDate: false, reason: `input ${input.resolved} is gone` };
    }
    if (h.bytes !== input.bytes || h.sha256 !== input.sha256) return { upToDate: false, reason: `input ${input.resolved} changed` };
  }
  return { upToDate: true, runId: manifest.runId };
}

/**
 * Whether `file` (an input of a later step) is among what `step` publishes: its `out`, a file
 * inside it, a sidecar beside it (`<out>.meta.json`) or a run in its store. A plan cannot hash
 * what a step has not written yet, so it counts such a later step as one that runs.
 */
export function writes(step: JobStep, file: string): boolean {
  if (!step.out) return false;
  const o = step.out;
  return file === o || file.startsWith(o + path.sep) || file.startsWith(o + '.') || file.startsWith(storeOf(o) + path.sep);
}
