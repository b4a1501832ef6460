/**
 * tfjs backends (`cpu`, `wasm`, `tensorflow`): the hot steps as batched tensor ops over row chunks.
 *
 * Each chunk of rows is uploaded once as X̃ = [x, 1] (nRows × (d+1)). Then
 * - assign: X̃ · B with B = [−2Cᵀ; ‖c‖²] gives ‖c‖² − 2x·c per row and centroid in ONE matmul with a
 *   pre-transposed operand (wasm's matMul with transposeB is ~9× slower, and broadcasting adds are
 *   slow on every tfjs backend); argMin over it is the nearest centroid, since ‖x‖² is constant per row.
 * - segmentSum: Wᵀ · X̃ with W the (weighted) one-hot labels gives Σw·x and, in the last column, Σw,
 *   in one matmul (unsortedSegmentSum is missing on wasm and very slow on cpu).
 * - project: X̃ · [W; 0], one matmul per run of rows in range.
 * softSums and scatter run on the host in float64 (the comment above them says why).
 * radiusNeighbours is the shared host scan over `distances` blocks (host.ts), float64 near eps.
 * The winning distance is recomputed on the host as Σ(x − c)² in float64, so inertia carries no
 * cancellation error from the expansion.
 *
 * @internal
 */
import type * as TF from '@tensorflow/tfjs-core';
import {
  BackendUnavailableError,
  type Assignment,
  type Backend,
  type BackendName,
  type DeviceMatrix,
  type RowRange,
  type Matrix,
  type RadiusNeighbours,
  type SegmentSums,
} from '../backend.js';
import { clusterDistanceSumsImpl, exactDistances, potentialsFromDistances, radiusNeighboursHost, scatterHost, scratchFor, softSumsHost } from './host.js';
import { totalWeight } from '../scoring.js';

/** Rows per chunk: bounded so that one chunk's k-wide intermediate stays near 16 MiB. */
function chunkRows(k: number): number {
  return Math.max(1024, Math.min(65536, Math.floor((4 << 20) / Math.max(k, 1))));
}

interface TfMatrix extends DeviceMatrix {
  readonly host: Matrix;
  /** One [x, 1] tensor per chunk of `rowsPerChunk` rows. */
  readonly chunks: TF.Tensor2D[];
  readonly rowsPerChunk: number;
  /** ‖x‖² per row, for full distances. */
  readonly norms: Float32Array;
}

class TfAssignment implements Assignment {
  constructor(
    readonly labels: Int32Array,
    readonly dist: Float32Array,
    readonly inertia: number,
    readonly nChanged: number,
  ) {}
  async read() {
    return { labels: this.labels, distances: this.dist };
  }
}

class TfBackend implements Backend {
  constructor(
    readonly name: BackendName,
    readonly description: string,
    private readonly tf: typeof TF,
  ) {}

  upload(x: Matrix, weights: Float32Array | null = null): TfMatrix {
    const { tf } = this;
    const d = x.nFeatures;
    const rowsPerChunk = 65536;
    const chunks: TF.Tensor2D[] = [];
    for (let start = 0; start < x.nRows; start += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, x.nRows - start);
      const buf = new Float32Array(rows * (d + 1));
      for (let i = 0; i < rows; i++) {
        buf.set(x.data.subarray((start + i) * d, (start + i + 1) * d), i * (d + 1));
        buf[i * (d + 1) + d] = 1;
      }
      chunks.push(tf.tensor2d(buf, [rows, d + 1]));
    }
    const norms = new Float32Array(x.nRows);
    for (let i = 0; i < x.nRows; i++) {
      let s = 0;
      for (let f = 0; f < d; f++) s += x.data[i * d + f] * x.data[i * d + f];
      norms[i] = s;
    }
    return { nRows: x.nRows, nFeatures: d, weights, totalWeight: totalWeight(x.nRows, weights), host: x, chunks, rowsPerChunk, norms };
  }

  release(x: DeviceMatrix): void {
    for (const t of (x as TfMatrix).chunks) t.dispose();
  }

  async assign(xd: DeviceMatrix, centroids: Float32Array, k: number, previous?: Assignment): Promise<Assignment> {
    const { tf } = this;
    const x = xd as TfMatrix;
    const d = x.nFeatures;
    const bT = tf.tensor2d(expansionOperand(centroids, d, k), [d + 1, k]);
    const labels = new Int32Array(x.nRows);
    try {
      for (const { rowsOf, base } of this.subChunks(x, k)) {
        const arg = tf.tidy(() => tf.argMin(tf.matMul(rowsOf(), bT), 1));
        labels.set((await arg.data()) as Int32Array, base);
        arg.dispose();
      }
    } finally {
      bT.dispose();
    }
    const dist = new Float32Array(x.nRows);
    const inertia = exactDistances(x.host, centroids, labels, x.weights, dist);
    let nChanged = x.nRows;
    if (previous) {
      const prev = previous instanceof TfAssignment ? previous.labels : (await previous.read()).labels;
      nChanged = 0;
      for (let i = 0; i < labels.length; i++) if (labels[i] !== prev[i]) nChanged++;
    }
    return new TfAssignment(labels, dist, inertia, nChanged);
  }

  async segmentSum(xd: DeviceMatrix, a: Assignment, k: number): Promise<SegmentSums> {
    const { tf } = this;
    const x = xd as TfMatrix;
    const d = x.nFeatures;
    const labels = (a as TfAssignment).labels;
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    for (const { rowsOf, base, n } of this.subChunks(x, k)) {
      // Wᵀ built directly transposed (k × n), so the matmul needs no transpose flag.
      const wt = new Float32Array(k * n);
      for (let i = 0; i < n; i++) wt[labels[base + i] * n + i] = x.weights ? x.weights[base + i] : 1;
      const part = tf.tidy(() => tf.matMul(tf.tensor2d(wt, [k, n]), rowsOf()));
      const v = (await part.data()) as Float32Array;
      part.dispose();
      for (let j = 0; j < k; j++) {
        for (let f = 0; f < d; f++) sums[j * d + f] += v[j * (d + 1) + f];
        counts[j] += v[j * (d + 1) + d];
      }
    }
    return { sums, counts };
  }

  /**
   * The uploaded chunks cut into runs of at most chunkRows(k) rows, so a (rows × k)
   * intermediate stays bounded for large k. `rowsOf()` gives the run's [x, 1] rows (call it
   * inside tf.tidy); `base` is its first row.
   */
  private *subChunks(x: TfMatrix, k: number): Generator<{ rowsOf: () => TF.Tensor2D; base: number; n: number }> {
    const { tf } = this;
    const sub = chunkRows(k);
    for (let c = 0; c < x.chunks.length; c++) {
      const chunk = x.chunks[c];
      const rows = chunk.shape[0];
      for (let s = 0; s < rows; s += sub) {
        const n = Math.min(sub, rows - s);
        yield { rowsOf: () => (n === rows ? chunk : tf.slice(chunk, [s, 0], [n, x.nFeatures + 1])), base: c * x.rowsPerChunk + s, n };
      }
    }
  }

  async distances(xd: DeviceMatrix, centers: Float32Array, m: number, out: Float32Array = new Float32Array(xd.nRows * m)): Promise<Float32Array> {
    return this.distanceRows(xd, centers, m, 0, xd.nRows, out);
  }

  /** {@link distances} for rows [r0, r1) only ((r1 − r0) × m): the chunks' overlapping rows, sliced. */
  async distanceRows(xd: DeviceMatrix, centers: Float32Array, m: number, r0: number, r1: number, out: Float32Array): Promise<Float32Array> {
    const { tf } = this;
    const x = xd as TfMatrix;
    const bT = tf.tensor2d(expansionOperand(centers, x.nFeatures, m), [x.nFeatures + 1, m]);
    try {
      for (let c = 0; c < x.chunks.length; c++) {
        const base = c * x.rowsPerChunk;
        const rows = x.chunks[c].shape[0];
        const a = Math.max(r0, base);
        const b = Math.min(r1, base + rows);
        if (a >= b) continue;
        const part = tf.tidy(() => tf.matMul(a === base && b === base + rows ? x.chunks[c] : tf.slice(x.chunks[c], [a - base, 0], [b - a, -1]), bT));
        const v = (await part.data()) as Float32Array;
        part.dispose();
        for (let i = a; i < b; i++) {
          const n2 = x.norms[i];
          for (let j = 0; j < m; j++) {
            const s = v[(i - a) * m + j] + n2;
            out[(i - r0) * m + j] = s > 0 ? s : 0;
          }
        }
      }
    } finally {
      bT.dispose();
    }
    return out;
  }

  async potentials(xd: DeviceMatrix, closest: Float32Array, candidates: Float32Array, m: number): Promise<Float64Array> {
    const dc = await this.distances(xd, candidates, m, scratchFor(xd, xd.nRows * m));
    return potentialsFromDistances(dc, closest, xd.weights, m);
  }

  clusterDistanceSums(xd: DeviceMatrix, labels: Int32Array, k: number, rows?: RowRange): Promise<Float64Array> {
    return clusterDistanceSumsImpl(this, xd, (xd as TfMatrix).host.data, labels, k, rows);
  }

  /**
   * x·w as one matMul per run of rows in range: the chunks hold [x, 1], so w gets a zero last row
   * ((d+1) × m) and the ones column adds nothing. Runs are at most chunkRows(m) rows, bounding
   * the (rows × m) result. tfjs sums in float32, within the contract's float32 rounding of the
   * terms for the feature counts segmentation uses (the error grows with d, not with nRows).
   */
  async project(xd: DeviceMatrix, w: Float32Array, m: number, rows?: RowRange, out?: Float32Array): Promise<Float32Array> {
    const { tf } = this;
    const x = xd as TfMatrix;
    const d = x.nFeatures;
    const r0 = rows?.start ?? 0;
    const r1 = rows?.end ?? x.nRows;
    const res = out ?? new Float32Array((r1 - r0) * m);
    if (r1 === r0) return res;
    const padded = new Float32Array((d + 1) * m);
    padded.set(w.subarray(0, d * m));
    const wt = tf.tensor2d(padded, [d + 1, m]);
    try {
      const sub = chunkRows(m);
      for (let c = Math.floor(r0 / x.rowsPerChunk); c < x.chunks.length && c * x.rowsPerChunk < r1; c++) {
        const chunk = x.chunks[c];
        const base = c * x.rowsPerChunk;
        const lo = Math.max(r0, base) - base;
        const hi = Math.min(r1, base + chunk.shape[0]) - base;
        for (let s = lo; s < hi; s += sub) {
          const n = Math.min(sub, hi - s);
          const part = tf.tidy(() => tf.matMul(n === chunk.shape[0] ? chunk : tf.slice(chunk, [s, 0], [n, d + 1]), wt));
          const v = (await part.data()) as Float32Array;
          part.dispose();
          res.set(v, (base + s - r0) * m);
        }
      }
    } finally {
      wt.dispose();
    }
    return res;
  }

  // softSums and scatter stay on the host (host.ts, float64 in row order): the contract asks for
  // float64 accumulation, and tfjs sums in float32. A matMul Rᵀ·X̃ would cost ~1e-7 of each sum,
  // and a scatter built from float32 second moments loses the covariance of data far from the
  // origin to cancellation (‖μ‖² ≫ σ²), so a mixture's M-step would drift from the other backends.
  async softSums(xd: DeviceMatrix, r: Float32Array, m: number, rows?: RowRange): Promise<SegmentSums> {
    return softSumsHost((xd as TfMatrix).host, xd.weights, r, m, rows);
  }

  async scatter(xd: DeviceMatrix, r: Float32Array | null, m: number, means: Float64Array, rows?: RowRange): Promise<Float64Array> {
    return scatterHost((xd as TfMatrix).host, xd.weights, r, m, means, rows);
  }

  // Neighbourhoods from `distances` blocks and a host scan (host.ts): a fused tfjs kernel would
  // still bring every distance to the host, since tfjs has no float64 to decide ties at eps.
  radiusNeighbours(xd: DeviceMatrix, queries: RowRange, eps: number, mode: 'count' | 'list', candidates?: RowRange): Promise<RadiusNeighbours> {
    return radiusNeighboursHost(this, xd, (xd as TfMatrix).host.data, queries, eps, mode, candidates, (centers, m, r0, r1, out) => this.distanceRows(xd, centers, m, r0, r1, out));
  }
}

/** B = [−2Cᵀ; ‖c‖²], (d+1) × k, so that [x, 1]·B = ‖c‖² − 2x·c. */
function expansionOperand(centroids: Float32Array, d: number, k: number): Float32Array {
  const b = new Float32Array((d + 1) * k);
  for (let j = 0; j < k; j++) {
    let n2 = 0;
    for (let f = 0; f < d; f++) {
      const c = centroids[j * d + f];
      b[f * k + j] = -2 * c;
      n2 += c * c;
    }
    b[d * k + j] = n2;
  }
  return b;
}

let tfCore: Promise<typeof TF> | null = null;

/** tfjs-core, once; tfjs-node (if installed) must share this instance to register `tensorflow`. */
async function core(): Promise<typeof TF> {
  tfCore ??= import('@tensorflow/tfjs-core').then((tf) => {
    // Kernels log nothing; the CLI owns the terminal.
    tf.env().set('PROD', true);
    return tf;
  });
  return tfCore;
}

async function activate(tf: typeof TF, name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendUnavailableError(name, `tfjs could not initialise the '${name}' backend`);
  await tf.ready();
}

/**
 * tfjs keeps one active backend per process; every op here runs on `tf.getBackend()`, so each
 * method re-activates its own backend first. Switching is cheap (it only changes a pointer).
 */
function pinned(be: TfBackend, tf: typeof TF, tfName: string): Backend {
  const use = async <T>(f: () => Promise<T>): Promise<T> => {
    if (tf.getBackend() !== tfName) await activate(tf, tfName);
    return f();
  };
  return {
    name: be.name,
    description: be.description,
    upload: (x, w) => {
      if (tf.getBackend() !== tfName) tf.setBackend(tfName);
      return be.upload(x, w);
    },
    release: (x) => be.release(x),
    assign: (x, c, k, p) => use(() => be.assign(x, c, k, p)),
    segmentSum: (x, a, k) => use(() => be.segmentSum(x, a, k)),
    distances: (x, c, m, out) => use(() => be.distances(x, c, m, out)),
    potentials: (x, cl, c, m) => use(() => be.potentials(x, cl, c, m)),
    clusterDistanceSums: (x, l, k, rows) => use(() => be.clusterDistanceSums(x, l, k, rows)),
    project: (x, w, m, rows, out) => use(() => be.project(x, w, m, rows, out)),
    softSums: (x, r, m, rows) => use(() => be.softSums(x, r, m, rows)),
    scatter: (x, r, m, means, rows) => use(() => be.scatter(x, r, m, means, rows)),
    radiusNeighbours: (x, q, eps, mode, candidates) => use(() => be.radiusNeighbours(x, q, eps, mode, candidates)),
  };
}

/** tfjs pure-JS `cpu` backend: always available, slow. */
export async function createTfCpuBackend(): Promise<Backend> {
  const tf = await core();
  await import('@tensorflow/tfjs-backend-cpu');
  await activate(tf, 'cpu');
  return pinned(new TfBackend('cpu', 'tfjs cpu (pure JavaScript kernels)', tf), tf, 'cpu');
}

/** tfjs `wasm` backend (XNNPACK, SIMD; single-threaded under Node). */
export async function createTfWasmBackend(): Promise<Backend> {
  const tf = await core();
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasm.setWasmPaths(dir + path.sep);
  await activate(tf, 'wasm');
  return pinned(new TfBackend('wasm', 'tfjs wasm (XNNPACK SIMD, single thread)', tf), tf, 'wasm');
}

/** tfjs `tensorflow` backend from @tensorflow/tfjs-node-gpu or -node, when installed. */
export async function createTfNodeBackend(): Promise<Backend> {
  const tf = await core();
  let which = '';
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      which = pkg;
      break;
    } catch {
      // not installed (they download libtensorflow at install time): try the next one
    }
  }
  if (!which) throw new BackendUnavailableError('tensorflow', '@tensorflow/tfjs-node(-gpu) is not installed');
  await activate(tf, 'tensorflow');
  return pinned(new TfBackend('tensorflow', `tfjs tensorflow (${which})`, tf), tf, 'tensorflow');
}

/**
 * The shared tfjs-core with tfjs backend `name` active, for models built on tfjs layers (the churn
 * MLP), so they run on the very instance and backend initialised above. Load `name` through the
 * registry first (`getBackend`), which does the initialisation (wasm paths, tfjs-node import).
 */
export async function activeTfjs(name: 'cpu' | 'wasm' | 'tensorflow'): Promise<typeof TF> {
  const tf = await core();
  if (tf.getBackend() !== name) await activate(tf, name);
  return tf;
}
