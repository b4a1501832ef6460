/**
 * Issue 17: a K-Means fit resumed from any state it saved (after seeding, every 16 Lloyd
 * iterations, after each restart) ends with the same model, bit for bit, as the uninterrupted
 * fit; and saving states does not change the fit. On every backend here.
 */
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_EVERY, KMeans, type KMeansCheckpoints, type KMeansResult, type KMeansState } from '../../src/models/kmeans.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/pipeline/checkpoint.js';
import { Random } from '../../src/util/random.js';
import { ALWAYS, usableBackends } from '../helpers/backends.js';

const backends = await usableBackends();

/** Overlapping blobs in d dimensions: Lloyd needs well over 16 iterations to settle. */
function blobs(n: number, seed: number, d = 6) {
  const r = new Random(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 7;
    for (let f = 0; f < d; f++) data[i * d + f] = (c * (f + 1)) % 5 + 2.2 * r.gauss();
  }
  const weights = new Float32Array(n);
  for (let i = 0; i < n; i++) weights[i] = 0.5 + r.next();
  return { x: { data, nRows: n, nFeatures: d }, weights };
}

/** Records every state offered (due always), each through the file encoding. */
function recorder(): KMeansCheckpoints & { states: KMeansState[] } {
  const states: KMeansState[] = [];
  return {
    states,
    restore: () => null,
    due: () => true,
    save: (s) => void states.push(decodeCheckpoint(Buffer.concat(encodeCheckpoint('k', s))).state),
  };
}

function resumeFrom(state: KMeansState): KMeansCheckpoints {
  return { restore: () => state, due: () => false, save: () => {} };
}

function same(a: KMeansResult, b: KMeansResult, what: string) {
  expect(Buffer.from(b.centroids.buffer).equals(Buffer.from(a.centroids.buffer)), `${what}: centroids`).toBe(true);
  expect(Buffer.from(b.labels.buffer).equals(Buffer.from(a.labels.buffer)), `${what}: labels`).toBe(true);
  expect(Buffer.from(b.distances.buffer).equals(Buffer.from(a.distances.buffer)), `${what}: distances`).toBe(true);
  expect(b.inertia, `${what}: inertia`).toBe(a.inertia);
  expect(b.nIter, `${what}: nIter`).toBe(a.nIter);
  expect(b.converged, `${what}: converged`).toBe(a.converged);
  expect(b.runs, `${what}: runs`).toEqual(a.runs);
  expect(b.history.map((h) => [h.inertia, h.changed, h.shift]), `${what}: history`).toEqual(a.history.map((h) => [h.inertia, h.changed, h.shift]));
}

describe('K-Means checkpoints (issue 17)', () => {
  it('runs on the backends every machine has', () => {
    for (const name of ALWAYS) expect(backends.map((b) => b.name)).toContain(name);
  });

  const cases = [
    { name: 'k = 5, 3 restarts, weighted, k-means++', n: 3000, d: 6, k: 5, init: 'k-means++' as const, weighted: true, tol: 0 },
    { name: 'k = 40, 2 restarts, k-means||, tol', n: 4000, d: 6, k: 40, init: 'k-means||' as const, weighted: false, tol: 1e-7 },
    // k·d large enough that native keeps Hamerly bounds along the chain (boundsPay): the case
    // where a resumed step could differ from the chain's in the last bits.
    { name: 'k = 8, d = 32, 2 restarts, weighted (native: bounded chain)', n: 3000, d: 32, k: 8, init: 'k-means++' as const, weighted: true, tol: 0 },
  ];

  for (const be of backends) {
    for (const c of cases) {
      it(`${be.name}: ${c.name}: every saved state resumes to the same model`, async () => {
        const { x, weights } = blobs(c.n, 3, c.d);
        const w = c.weighted ? weights : null;
        const o = { k: c.k, nInit: c.name.includes('3 restarts') ? 3 : 2, maxIter: 80, tol: c.tol, seed: 11, init: c.init };
        const plain = await new KMeans(o).fit(be, x, w);
        const rec = recorder();
        const saving = await new KMeans({ ...o, checkpoints: rec }).fit(be, x, w);
        same(plain, saving, 'saving states');
        // States from every kind of point: after seeding, inside Lloyd, between restarts.
        const mid = rec.states.filter((s) => s.current && s.current.iteration > 0);
        expect(mid.length, 'states inside a Lloyd run').toBeGreaterThan(0);
        expect(mid.every((s) => s.current!.iteration % CHECKPOINT_EVERY === 0)).toBe(true);
        expect(rec.states.some((s) => s.current === null), 'states between restarts').toBe(true);
        expect(rec.states.some((s) => s.current?.iteration === 0), 'states after seeding').toBe(true);
        for (const [i, s] of rec.states.entries()) {
          const resumed = await new KMeans({ ...o, checkpoints: resumeFrom(s) }).fit(be, x, w);
          same(plain, resumed, `state ${i} (restart ${s.run + 1}, iteration ${s.current?.iteration ?? 'end'})`);
        }
      }, 120_000);
    }
  }

  it('a checkpoint file round-trips its arrays and numbers exactly', () => {
    const s: KMeansState = {
      run: 1,
      rng: new Random(5).state(),
      runs: [{ inertia: 1 / 3, nIter: 7, converged: true }],
      best: { centroids: Float32Array.of(1.5, -0, 3e-39), inertia: 0.1 + 0.2, nIter: 7, converged: true, history: [{ inertia: 2 / 3, shift: 1e-300, changed: 4, emptyClusters: 0, ms: 1.25 }], labels: Int32Array.of(0, 2, -1), distances: Float32Array.of(0.25, 7, 1e-7) },
      current: { iteration: 16, centroids: Float32Array.of(9, 8, 7, 6, 5), labels: Int32Array.of(1), history: [] },
    };
    const back = decodeCheckpoint(Buffer.concat(encodeCheckpoint('key', s)));
    expect(back.key).toBe('key');
    expect(back.state).toEqual(s);
    expect(back.state.best!.centroids).toBeInstanceOf(Float32Array);
    expect(Object.is(back.state.best!.centroids[1], -0)).toBe(true);
  });

  it('a truncated or foreign file is refused, not half-read', () => {
    const bytes = Buffer.concat(encodeCheckpoint('key', { run: 0, rng: [1, 2, 3, 4], runs: [], best: null, current: { iteration: 0, centroids: new Float32Array(64), labels: null, history: [] } }));
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 8))).toThrow(/truncated/);
    expect(() => decodeCheckpoint(Buffer.from('PAR1 not a checkpoint'))).toThrow(/not a segtensor checkpoint/);
  });
});
