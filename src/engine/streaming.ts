/**
 * A backend over chunked data (issue 17, out-of-core): the ops of {@link Backend} for a
 * {@link ChunkedMatrix}, run block by block on an inner backend. Each block is uploaded, used
 * and released before the next is read, so the data itself never needs to be in memory at once
 * (a block read from a cache file, src/io/matrix-cache.ts) and no typed array holds it all.
 * Per-row results (labels, distances, k-means++ distances) are host arrays of nRows.
 *
 * Accumulations over rows are float64 sums of the blocks' float64 partials, in block order: the
 * same arithmetic as a resident fit but for the grouping of the sums, so centroids agree with a
 * resident fit to float32 rounding (test/models/kmeans-chunked.test.ts).
 *
 * Only the ops K-Means needs (assign, segmentSum, distances, potentials, updateClosest) stream;
 * the others are for methods that do not take chunked data yet and say so.
 *
 * @example
 * const sb = streamingBackend(await getBackend('native'));
 * const dx = sb.upload(openMatrixCache(file));
 * const a = await sb.assign(dx, centroids, k);
 */
import { chunkedMatrix, chunkRange, isChunked, type ChunkedMatrix, type HostMatrix } from '../core/matrix.js';
import { SegtensorError } from '../errors.js';
import type { Assignment, Backend, DeviceMatrix, SegmentSums } from './backend.js';
import { totalWeight } from './scoring.js';

/** Chunked data "uploaded" to a {@link streamingBackend}: the source and its weights. */
export interface StreamMatrix extends DeviceMatrix {
  readonly source: ChunkedMatrix;
}

/**
 * Labels held on the host, standing in as an assignment: a backend given it as `previous` counts
 * changes against the labels and keeps no chain of its own (K-Means' checkpoint points, blocks).
 */
export function hostAssignment(labels: Int32Array): Assignment {
  return { inertia: NaN, nChanged: labels.length, read: async () => ({ labels, distances: new Float32Array(0) }) };
}

class StreamAssignment implements Assignment {
  constructor(
    readonly inertia: number,
    readonly nChanged: number,
    readonly labels: Int32Array,
    readonly distances: Float32Array,
    /** The per-cluster sums taken in the same pass (from the inner backend's fused sums where it has them). */
    readonly sums: SegmentSums,
    readonly k: number,
  ) {}
  async read() {
    return { labels: this.labels, distances: this.distances };
  }
}

function unsupported(op: string): never {
  throw new SegtensorError('BAD_OPTION', `${op} does not run on data read in blocks (out-of-core) yet; fit it in memory (without --memory-limit)`);
}

/** `inner`'s ops over the blocks of chunked data (see the module comment). */
export function streamingBackend(inner: Backend): Backend & { upload(x: HostMatrix, weights?: Float32Array | null): StreamMatrix } {
  const asStream = (x: DeviceMatrix): StreamMatrix => {
    if (!(x as StreamMatrix).source) throw new TypeError('streaming backend: the matrix was not uploaded by this backend');
    return x as StreamMatrix;
  };
  /** Runs fn on block c uploaded to the inner backend, and releases it. */
  async function onBlock<T>(x: StreamMatrix, c: number, fn: (dm: DeviceMatrix, start: number, end: number) => Promise<T>): Promise<T> {
    const { start, end } = chunkRange(x.source, c);
    const dm = inner.upload({ data: x.source.chunk(c), nRows: end - start, nFeatures: x.nFeatures }, x.weights ? x.weights.subarray(start, end) : null);
    try {
      return await fn(dm, start, end);
    } finally {
      inner.release(dm);
    }
  }

  const be: Backend & { upload(x: HostMatrix, weights?: Float32Array | null): StreamMatrix } = {
    name: inner.name,
    description: `${inner.description}, over blocks of rows`,

    /** Chunked data, or a small matrix in one block (k-means‖'s candidates). */
    upload(xm: HostMatrix, weights: Float32Array | null = null): StreamMatrix {
      const x = isChunked(xm) ? xm : chunkedMatrix([xm.data], xm.nFeatures);
      return { nRows: x.nRows, nFeatures: x.nFeatures, weights, totalWeight: totalWeight(x.nRows, weights), source: x };
    },

    release() {
      // Nothing resident: each block was released after use.
    },

    async assign(xd, centroids, k, previous) {
      const x = asStream(xd);
      const prev = previous ? (await previous.read()).labels : null;
      const labels = new Int32Array(x.nRows);
      const distances = new Float32Array(x.nRows);
      const sums = new Float64Array(k * x.nFeatures);
      const counts = new Float64Array(k);
      let inertia = 0;
      let nChanged = 0;
      for (let c = 0; c < x.source.nChunks; c++) {
        await onBlock(x, c, async (dm, start, end) => {
          // Host labels, not the inner backend's chain: a block's bounds would not survive the next block.
          const a = await inner.assign(dm, centroids, k, prev ? hostAssignment(prev.subarray(start, end)) : undefined);
          const r = await a.read();
          labels.set(r.labels, start);
          distances.set(r.distances, start);
          inertia += a.inertia;
          nChanged += a.nChanged;
          const s = await inner.segmentSum(dm, a, k);
          for (let i = 0; i < sums.length; i++) sums[i] += s.sums[i];
          for (let j = 0; j < k; j++) counts[j] += s.counts[j];
        });
      }
      return new StreamAssignment(inertia, nChanged, labels, distances, { sums, counts }, k);
    },

    async segmentSum(xd, a, k) {
      const x = asStream(xd);
      if (a instanceof StreamAssignment && a.k === k) return { sums: a.sums.sums.slice(), counts: a.sums.counts.slice() };
      const { labels } = await a.read();
      const sums = new Float64Array(k * x.nFeatures);
      const counts = new Float64Array(k);
      for (let c = 0; c < x.source.nChunks; c++) {
        await onBlock(x, c, async (dm, start, end) => {
          const s = await inner.segmentSum(dm, hostAssignment(labels.subarray(start, end)), k);
          for (let i = 0; i < sums.length; i++) sums[i] += s.sums[i];
          for (let j = 0; j < k; j++) counts[j] += s.counts[j];
        });
      }
      return { sums, counts };
    },

    async distances(xd, centers, m, out = new Float32Array(xd.nRows * m)) {
      const x = asStream(xd);
      for (let c = 0; c < x.source.nChunks; c++) {
        await onBlock(x, c, async (dm, start, end) => {
          await inner.distances(dm, centers, m, out.subarray(start * m, end * m));
        });
      }
      return out;
    },

    async potentials(xd, closest, candidates, m) {
      const x = asStream(xd);
      const total = new Float64Array(m);
      for (let c = 0; c < x.source.nChunks; c++) {
        await onBlock(x, c, async (dm, start, end) => {
          const p = await inner.potentials(dm, closest.subarray(start, end), candidates, m);
          for (let j = 0; j < m; j++) total[j] += p[j];
        });
      }
      return total;
    },

    ...(inner.updateClosest
      ? {
          async updateClosest(xd: DeviceMatrix, center: Float32Array, closest: Float32Array, cum: Float64Array) {
            const x = asStream(xd);
            let offset = 0;
            for (let c = 0; c < x.source.nChunks; c++) {
              await onBlock(x, c, async (dm, start, end) => {
                const part = cum.subarray(start, end);
                await inner.updateClosest!(dm, center, closest.subarray(start, end), part);
                // The running sum goes on across blocks.
                if (offset !== 0) for (let i = 0; i < part.length; i++) part[i] += offset;
                offset = part[part.length - 1];
              });
            }
          },
        }
      : {}),

    clusterDistanceSums: () => unsupported('clusterDistanceSums'),
    project: () => unsupported('project'),
    softSums: () => unsupported('softSums'),
    scatter: () => unsupported('scatter'),
    radiusNeighbours: () => unsupported('radiusNeighbours'),
  };
  return be;
}
