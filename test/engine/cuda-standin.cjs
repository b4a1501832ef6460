/**
 * A stand-in for the CUDA addon (kernels/cuda/addon.cc) with a pretend device memory, for the
 * out-of-memory retries and the fallback to native (cuda-fallback.test.ts) on machines without a
 * GPU. It keeps the addon's contract (two device slots of labels and distances, generations,
 * resident/read) and computes in float64 on the host, and it counts device bytes roughly as
 * kernels.cu allocates them: the upload's resident buffers (x, weights, shift, two slots of
 * labels and distances) until release; assign's and segmentSum's buffers kept on the handle
 * (grown, never shrunk); every other op's buffers for the call only. An allocation beyond the
 * budget throws the addon's own error: "out of GPU memory: need X MiB, Y MiB free", code
 * CUDA_OOM. Streaming data larger than the device (kernels.cu's fallback inside upload) is not
 * modelled: an upload that does not fit here is one the real addon could not stream either.
 *
 * Settings (an object, for `create`, or JSON in SEGTENSOR_TEST_CUDA_STANDIN, read on each
 * upload, for the copy the registry loads through SEGTENSOR_CUDA_ADDON):
 *   budgetBytes  device bytes for segtensor's buffers (default 16 GiB)
 *   maxPiece     { op: n }: a call of op over more than n of the dimension its buffers grow
 *                with (centers for distances, candidates for potentials, rows for the others)
 *                runs out of memory, as a device with just that much room would
 * and at run time `failNext(op, count = 1)`: the next `count` calls of op run out of memory.
 * `stats` records every call, every piece size and every out-of-memory error.
 */
'use strict';

const MiB = 1024 * 1024;
/** kernels.cu's blocks: rows per assign block, per potentials block. */
const K_ROWS = 128;
const K_POT_ROWS = 2048;
function oomError(needBytes, freeBytes) {
  const e = new Error(`out of GPU memory: need ${(needBytes / MiB).toFixed(1)} MiB, ${(Math.max(0, freeBytes) / MiB).toFixed(1)} MiB free`);
  e.code = 'CUDA_OOM';
  return e;
}

function sqDist(x, i, d, c, j) {
  let s = 0;
  for (let f = 0; f < d; f++) {
    const t = x[i * d + f] - c[j * d + f];
    s += t * t;
  }
  return s;
}

/** Σw·x and Σw per label, float64 in row order (the device's fixed-point sums agree to ~1e-16). */
function sumRows(h, lab, k, sums, counts) {
  sums.fill(0);
  counts.fill(0);
  for (let i = 0; i < h.n; i++) {
    const wi = h.w ? h.w[i] : 1;
    const l = lab[i];
    counts[l] += wi;
    for (let f = 0; f < h.d; f++) sums[l * h.d + f] += wi * h.x[i * h.d + f];
  }
}

function create(settings) {
  const fixed = settings || null;
  const config = () => fixed || JSON.parse(process.env.SEGTENSOR_TEST_CUDA_STANDIN || '{}');
  const stats = { calls: {}, pieces: {}, ooms: [], used: 0, peak: 0 };
  const pending = {};
  let budget = config().budgetBytes ?? 2 ** 34;

  const note = (op, piece) => {
    stats.calls[op] = (stats.calls[op] || 0) + 1;
    if (piece !== undefined) (stats.pieces[op] = stats.pieces[op] || []).push(piece);
  };
  const fail = (op, need) => {
    const e = oomError(need, budget - stats.used);
    stats.ooms.push({ op, need, free: budget - stats.used });
    return e;
  };
  /** Throws for an injected failure or a piece over maxPiece. */
  const gate = (op, piece, need) => {
    if (pending[op] > 0) {
      pending[op]--;
      throw fail(op, need);
    }
    const cap = (config().maxPiece || {})[op];
    if (cap !== undefined && piece > cap) throw fail(op, need);
  };
  /** Buffers for one call: all of them or none. */
  const temp = (op, bytes) => {
    if (stats.used + bytes > budget) throw fail(op, bytes);
    stats.peak = Math.max(stats.peak, stats.used + bytes);
  };
  /** A buffer kept on the handle under `name`, grown to `bytes` (kernels.cu's DevBuf::ensure). */
  const ensure = (op, h, name, bytes) => {
    const had = h.kept[name] || 0;
    if (bytes <= had) return;
    stats.used -= had;
    delete h.kept[name];
    if (stats.used + bytes > budget) throw fail(op, bytes);
    stats.used += bytes;
    h.kept[name] = bytes;
    stats.peak = Math.max(stats.peak, stats.used);
  };
  const live = (h) => {
    if (h.released) throw new Error('cuda: the matrix was released');
    return h;
  };
  const slotOf = (h, gen) => (gen >= 0 ? h.slots.find((s) => s.gen === gen) : undefined);

  function assignRows(h, centroids, k) {
    const labels = new Int32Array(h.n);
    const dist = new Float32Array(h.n);
    let inertia = 0;
    for (let i = 0; i < h.n; i++) {
      let best = Infinity;
      let arg = 0;
      for (let j = 0; j < k; j++) {
        const s = sqDist(h.x, i, h.d, centroids, j);
        if (s < best) {
          best = s;
          arg = j;
        }
      }
      labels[i] = arg;
      dist[i] = best;
      inertia += (h.w ? h.w[i] : 1) * best;
    }
    return { labels, dist, inertia };
  }

  const addon = {
    stats,
    failNext(op, count = 1) {
      pending[op] = (pending[op] || 0) + count;
    },
    probe: () => ({ ok: true, name: 'stand-in GPU (test/engine/cuda-standin.cjs)', freeBytes: Math.max(0, budget - stats.used), totalBytes: budget }),
    upload(x, nRows, d, weights) {
      budget = config().budgetBytes ?? 2 ** 34;
      note('upload');
      const bytes = 4 * nRows * d + (weights ? 4 * nRows : 0) + 4 * d + 2 * 8 * nRows;
      gate('upload', nRows, bytes);
      if (stats.used + bytes > budget) throw fail('upload', bytes);
      stats.used += bytes;
      stats.peak = Math.max(stats.peak, stats.used);
      return {
        x: Float64Array.from(x.subarray(0, nRows * d)),
        n: nRows,
        d,
        w: weights ? Float64Array.from(weights) : null,
        bytes,
        kept: {},
        slots: [0, 1].map(() => ({ gen: -1, labels: null, dist: null })),
        nextGen: 0,
        released: false,
      };
    },
    release(h) {
      if (h.released) return;
      h.released = true;
      stats.used -= h.bytes;
      for (const b of Object.values(h.kept)) stats.used -= b;
      h.kept = {};
    },
    assign(h, centroids, k, prev, prevGen, outLabels, outDist, outSums, outCounts) {
      live(h);
      note('assign');
      const nb = Math.ceil(h.n / K_ROWS);
      gate('assign', h.n, 8 * k * h.d);
      ensure('assign', h, 'c', 4 * k * h.d);
      ensure('assign', h, 'panel', 4 * k * h.d);
      ensure('assign', h, 'cc', 4 * k);
      ensure('assign', h, 'blocks', 16 * nb);
      // The fused sums' accumulator words and their float64 result (kernels.cu: startSums).
      if (outSums) ensure('assign', h, 'words', 16 * k * (h.d + 1));
      if (outSums) ensure('assign', h, 'sumOut', 8 * (k * h.d + k));
      const onDevice = slotOf(h, prevGen);
      if (!onDevice && prev) ensure('assign', h, 'scratchLabels', 4 * h.n);
      const against = onDevice ? onDevice.labels : prev;
      let s = h.slots[0].gen <= h.slots[1].gen ? 0 : 1;
      if (onDevice === h.slots[s]) s ^= 1;
      const r = assignRows(h, centroids, k);
      let changed = 0;
      if (against) for (let i = 0; i < h.n; i++) if (against[i] !== r.labels[i]) changed++;
      h.slots[s] = { gen: h.nextGen, labels: r.labels, dist: r.dist };
      if (outSums && outCounts) sumRows(h, r.labels, k, outSums, outCounts);
      if (outLabels) outLabels.set(r.labels);
      if (outDist) outDist.set(r.dist);
      return { inertia: r.inertia, nChanged: against ? changed : h.n, gen: h.nextGen++ };
    },
    resident: (h, gen) => slotOf(live(h), gen) !== undefined,
    read(h, gen, outLabels, outDist) {
      const slot = slotOf(live(h), gen);
      if (!slot) throw new Error("read: that assignment's labels are no longer on the device");
      note('read');
      outLabels.set(slot.labels);
      outDist.set(slot.dist);
    },
    segmentSum(h, labels, gen, k, sums, counts) {
      live(h);
      note('segmentSum');
      const slot = slotOf(h, gen);
      const per = k * h.d + k;
      gate('segmentSum', h.n, 8 * per);
      if (!slot && labels) ensure('segmentSum', h, 'scratchLabels', 4 * h.n);
      if (!slot && !labels) throw new Error('segmentSum: no labels');
      ensure('segmentSum', h, 'words', 16 * k * (h.d + 1));
      ensure('segmentSum', h, 'sumOut', 8 * per);
      sumRows(h, slot ? slot.labels : labels, k, sums, counts);
    },
    distances(h, centers, m, out) {
      live(h);
      note('distances', m);
      const need = 4 * m * h.d + 4 * h.n * m;
      gate('distances', m, need);
      temp('distances', need);
      for (let i = 0; i < h.n; i++) for (let j = 0; j < m; j++) out[i * m + j] = sqDist(h.x, i, h.d, centers, j);
    },
    // Device k-means++ (seed.cuh) is not modelled: the stand-in answers as the addon does for rows
    // streamed from the host, so kmeansPlusPlus uses distances and potentials, whose
    // out-of-memory retries these tests check.
    streamed: () => true,
    seedStart() {
      throw new Error('seeding on the device needs the rows resident');
    },
    potentials(h, closest, candidates, m) {
      live(h);
      note('potentials', m);
      const need = 4 * h.n + 4 * m * h.d + 8 * Math.ceil(h.n / K_POT_ROWS) * m;
      gate('potentials', m, need);
      temp('potentials', need);
      const out = new Float64Array(m);
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let i = 0; i < h.n; i++) s += (h.w ? h.w[i] : 1) * Math.min(closest[i], sqDist(h.x, i, h.d, candidates, j));
        out[j] = s;
      }
      return out;
    },
    clusterDistanceSums(h, host, labels, k, r0, r1) {
      live(h);
      note('clusterDistanceSums', r1 - r0);
      const need = 4 * h.n * h.d + 4 * h.n + 8 * (r1 - r0) * k;
      gate('clusterDistanceSums', r1 - r0, need);
      temp('clusterDistanceSums', need);
      const out = new Float64Array((r1 - r0) * k);
      for (let i = r0; i < r1; i++)
        for (let j = 0; j < h.n; j++) if (j !== i) out[(i - r0) * k + labels[j]] += Math.sqrt(sqDist(h.x, i, h.d, h.x, j));
      return out;
    },
    project(h, w, m, r0, r1, out) {
      live(h);
      note('project', r1 - r0);
      const need = 4 * h.d * m + 4 * (r1 - r0) * m;
      gate('project', r1 - r0, need);
      temp('project', need);
      for (let i = r0; i < r1; i++)
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let f = 0; f < h.d; f++) s += h.x[i * h.d + f] * w[f * m + j];
          out[(i - r0) * m + j] = s;
        }
    },
    softSums(h, r, m, r0, r1, sums, counts) {
      live(h);
      note('softSums', r1 - r0);
      const per = m * h.d + m;
      const need = 4 * (r1 - r0) * m + 8 * per * Math.ceil((r1 - r0) / 256);
      gate('softSums', r1 - r0, need);
      temp('softSums', need);
      sums.fill(0);
      counts.fill(0);
      for (let i = r0; i < r1; i++) {
        const wi = h.w ? h.w[i] : 1;
        for (let j = 0; j < m; j++) {
          const q = wi * r[(i - r0) * m + j];
          counts[j] += q;
          for (let f = 0; f < h.d; f++) sums[j * h.d + f] += q * h.x[i * h.d + f];
        }
      }
    },
    scatter(h, r, m, means, r0, r1, out) {
      live(h);
      note('scatter', r1 - r0);
      const d = h.d;
      const need = 8 * m * d + (r ? 4 * (r1 - r0) * m : 0) + 8 * m * d * d * Math.ceil((r1 - r0) / 256);
      gate('scatter', r1 - r0, need);
      temp('scatter', need);
      out.fill(0);
      for (let i = r0; i < r1; i++) {
        const wi = h.w ? h.w[i] : 1;
        for (let j = 0; j < m; j++) {
          const q = wi * (r ? r[(i - r0) * m + j] : 1);
          for (let a = 0; a < d; a++)
            for (let b = 0; b < d; b++) out[j * d * d + a * d + b] += q * (h.x[i * d + a] - means[j * d + a]) * (h.x[i * d + b] - means[j * d + b]);
        }
      }
    },
  };
  return addon;
}

const addon = create(null);
addon.create = create;
module.exports = addon;
