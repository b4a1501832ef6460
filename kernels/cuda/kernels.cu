// CUDA kernels for the `cuda` backend: fused assignment (shared-memory tiles over rows ×
// centroids, argmin fused, exact distance recomputed), segment sums with per-chunk partials
// reduced in chunk order (no float atomics: results are deterministic), distances, k-means++
// potentials (per-block float64 partials, added in block order) and the silhouette's
// per-cluster distance sums (one thread per row, columns sorted by label, fixed order).
// The per-thread arithmetic is in lloyd.cuh, shared with the CPU emulation.
//
// Data is uploaded once and stays resident; data larger than free GPU memory is refused with
// an 'out of GPU memory' error (streaming in chunks is not implemented yet). A Lloyd step moves
// only k·d floats to the device and a few numbers back: labels and distances stay in one of two
// device slots until the host asks for them (seg_cuda_read), and the per-call buffers are kept
// on the handle, so no step allocates device memory once the first has run.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "api.h"
#include "lloyd.cuh"

using namespace segcuda;

namespace {

thread_local char gMsg[256];

const char* fail(const char* what, cudaError_t e) {
  std::snprintf(gMsg, sizeof gMsg, "%s: %s", what, cudaGetErrorString(e));
  return gMsg;
}

#define SEG_TRY(what, call)                  \
  do {                                       \
    const cudaError_t e_ = (call);           \
    if (e_ != cudaSuccess) return fail(what, e_); \
  } while (0)

/** Device memory freed on scope exit unless released to an owner. */
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  ~DevBuf() { if (p) cudaFree(p); }
  const char* alloc(size_t count) {
    if (p) cudaFree(p);
    p = nullptr;
    n = count;
    if (count == 0) return nullptr;
    const cudaError_t e = cudaMalloc(&p, count * sizeof(T));
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t freeB = 0, totalB = 0;
      cudaMemGetInfo(&freeB, &totalB);
      std::snprintf(gMsg, sizeof gMsg, "out of GPU memory: need %.1f MiB, %.1f MiB free",
                    count * sizeof(T) / 1048576.0, freeB / 1048576.0);
      return gMsg;
    }
    if (e != cudaSuccess) return fail("cudaMalloc", e);
    return nullptr;
  }
  /** At least `count` elements, reallocating only to grow (contents are not kept). */
  const char* ensure(size_t count) { return count <= n && (p || count == 0) ? nullptr : alloc(count); }
};

/**
 * Budget for the segment-sum chunk partials, in float64: 1/16 of the device's memory, between
 * 256 MiB and 4 GiB. The budget sets the chunk length (chunkRows), and each chunk's rows are
 * walked by one thread per feature, so at large k·d a small budget means few, long chunks: at
 * 1M × 256, k = 20,000 a 256 MiB budget gives 4 chunks of 262,144 rows each (most of the
 * 0.3 s goal spent on dependent read-modify-writes), 4 GiB gives 62 of 16,384. It depends on
 * the device's total memory, not on what is free, so a device always cuts the same chunks and
 * the sums keep their bits from run to run.
 */
int64_t partialBudget() {
  static int64_t budget = 0;
  if (!budget) {
    size_t freeB = 0, totalB = 0;
    cudaMemGetInfo(&freeB, &totalB);
    const int64_t lo = (int64_t)32 << 20, hi = (int64_t)512 << 20;  // 256 MiB, 4 GiB of doubles
    const int64_t t = (int64_t)(totalB / 16 / sizeof(double));
    budget = t < lo ? lo : t > hi ? hi : t;
  }
  return budget;
}

__global__ void assignKernel(AssignParams p) {
  __shared__ float xs[kXsFloats];
  __shared__ __align__(16) float cs[kCsFloats];  // read as float4 (accumulateTile)
  __shared__ double inertiaSlot[kRows];
  __shared__ int64_t changedSlot[kRows];
  const int64_t block = blockIdx.x;
  const int tid = threadIdx.x;
  float best = __int_as_float(0x7f800000);  // +inf
  int32_t bestJ = 0;
  for (int j0 = 0; j0 < p.k; j0 += kTileC) {
    float acc[kTileC];
#pragma unroll
    for (int jj = 0; jj < kTileC; ++jj) acc[jj] = 0.0f;
    for (int f0 = 0; f0 < p.d; f0 += kTileD) {
      loadTiles(p, block, tid, j0, f0, xs, cs);
      __syncthreads();
      accumulateTile(tid, xs, cs, acc);
      __syncthreads();
    }
    updateBest(p, j0, acc, &best, &bestJ);
  }
  finishRow(p, block, tid, bestJ, inertiaSlot, changedSlot);
  __syncthreads();
  for (int stride = kRows / 2; stride >= 1; stride /= 2) {
    reduceStep(tid, stride, inertiaSlot, changedSlot);
    __syncthreads();
  }
  if (tid == 0) {
    p.blockInertia[block] = inertiaSlot[0];
    p.blockChanged[block] = changedSlot[0];
  }
}

__global__ void sumChunksKernel(const float* x, const int32_t* labels, const float* w, int64_t n, int d, int k,
                                int64_t rowsPerChunk, double* partial) {
  for (int f = threadIdx.x; f <= d; f += blockDim.x)
    sumChunkFeature(x, labels, w, n, d, k, rowsPerChunk, blockIdx.x, f, partial);
}

/**
 * sumChunksKernel for partials that fit in shared memory (k·d + k ≤ kSharedPartialDoubles):
 * the read-modify-writes of each row hit shared memory instead of going through L2. Same
 * additions in the same order, so the same bits.
 */
__global__ void sumChunksSharedKernel(const float* x, const int32_t* labels, const float* w, int64_t n, int d, int k,
                                      int64_t rowsPerChunk, double* partial) {
  extern __shared__ double part[];
  const int64_t per = (int64_t)k * d + k;
  for (int64_t e = threadIdx.x; e < per; e += blockDim.x) part[e] = 0;
  __syncthreads();
  for (int f = threadIdx.x; f <= d; f += blockDim.x)
    sumChunkFeatureInto(x, labels, w, n, d, k, rowsPerChunk, blockIdx.x, f, part);
  __syncthreads();
  double* out = partial + (int64_t)blockIdx.x * per;
  for (int64_t e = threadIdx.x; e < per; e += blockDim.x) out[e] = part[e];
}

__global__ void reduceChunksKernel(const double* partial, int64_t nChunks, int64_t per, double* out) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e < per) out[e] = reduceChunks(partial, nChunks, per, e);
}

__global__ void distancesKernel(const float* x, int64_t n, int d, const float* centers, int m, float* out) {
  const int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= n) return;
  for (int j = 0; j < m; ++j) out[row * m + j] = (float)exactSqDist(x + row * d, centers + (int64_t)j * d, d);
}

__global__ void potentialsKernel(PotentialParams p) {
  __shared__ double slot[kPotGroup][kPotThreads];
  const int tid = threadIdx.x;
  for (int j0 = 0; j0 < p.m; j0 += kPotGroup) {
    double acc[kPotGroup];
    potentialThread(p, blockIdx.x, tid, j0, acc);
#pragma unroll
    for (int j = 0; j < kPotGroup; ++j) slot[j][tid] = acc[j];
    __syncthreads();
    for (int stride = kPotThreads / 2; stride >= 1; stride /= 2) {
#pragma unroll
      for (int j = 0; j < kPotGroup; ++j) reduceDoubleStep(tid, stride, slot[j]);
      __syncthreads();
    }
    if (tid == 0)
      for (int j = 0; j < kPotGroup && j0 + j < p.m; ++j) p.blockOut[(int64_t)blockIdx.x * p.m + j0 + j] = slot[j][0];
    __syncthreads();
  }
}

__global__ void clusterSumsKernel(ClusterSumParams p) {
  __shared__ float xs[kXsFloats];
  __shared__ float cs[kCsFloats];
  const int64_t block = blockIdx.x;
  const int tid = threadIdx.x;
  int curL = -1;
  double run = 0;
  for (int64_t c0 = 0; c0 < p.n; c0 += kTileC) {
    float acc[kTileC];
#pragma unroll
    for (int jj = 0; jj < kTileC; ++jj) acc[jj] = 0.0f;
    for (int f0 = 0; f0 < p.d; f0 += kTileD) {
      loadPairTiles(p, block, tid, c0, f0, xs, cs);
      __syncthreads();
      accumulatePairTile(tid, xs, cs, acc);
      __syncthreads();
    }
    finishPairTile(p, block, tid, c0, acc, &curL, &run);
  }
  finishPairRow(p, block, tid, curL, run);
}

}  // namespace

struct SegCudaData {
  int64_t n = 0;
  int d = 0;
  DevBuf<float> x, w, shift;
  /** Two generations of labels and distances: the newest and the one it was counted against. */
  DevBuf<int32_t> labels[2], scratchLabels;
  DevBuf<float> dist[2];
  int64_t slotGen[2] = {-1, -1};
  int64_t nextGen = 0;
  /** Per-call buffers, kept between calls (cudaMalloc and cudaFree each synchronise the device). */
  DevBuf<float> c, panel, cc;
  DevBuf<double> blockInertia, partial, sumOut;
  DevBuf<int64_t> blockChanged;
  std::vector<float> hostShift;
};

extern "C" {

const char* seg_cuda_probe(char* name, int nameLen, size_t* freeBytes, size_t* totalBytes) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(e);
  }
  if (count == 0) return "no CUDA device found";
  cudaDeviceProp prop;
  SEG_TRY("cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8) {
    std::snprintf(gMsg, sizeof gMsg, "%s has compute capability %d.%d; segtensor's kernels need 8.0 or newer",
                  prop.name, prop.major, prop.minor);
    return gMsg;
  }
  std::snprintf(name, nameLen, "%s", prop.name);
  SEG_TRY("cudaMemGetInfo", cudaMemGetInfo(freeBytes, totalBytes));
  return nullptr;
}

const char* seg_cuda_upload(const float* x, int64_t n, int d, const float* weights, const float* shift,
                            SegCudaData** out) {
  auto h = new SegCudaData();
  h->n = n;
  h->d = d;
  const char* err = nullptr;
  if (!err) err = h->x.alloc((size_t)n * d);
  if (!err && weights) err = h->w.alloc(n);
  if (!err) err = h->shift.alloc(d);
  if (!err) err = h->dist[0].alloc(n);
  if (!err) err = h->dist[1].alloc(n);
  if (!err) err = h->labels[0].alloc(n);
  if (!err) err = h->labels[1].alloc(n);
  if (err) {
    delete h;
    return err;
  }
  cudaError_t e = cudaMemcpy(h->x.p, x, sizeof(float) * n * d, cudaMemcpyHostToDevice);
  if (e == cudaSuccess && weights) e = cudaMemcpy(h->w.p, weights, sizeof(float) * n, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(h->shift.p, shift, sizeof(float) * d, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) {
    delete h;
    return fail("upload", e);
  }
  h->hostShift.assign(shift, shift + d);
  *out = h;
  return nullptr;
}

void seg_cuda_release(SegCudaData* h) { delete h; }

/** Device labels of generation gen, else `host` copied into the scratch buffer, else null. */
static const char* labelsOnDevice(SegCudaData* h, const int32_t* host, int64_t gen, const int32_t** out) {
  *out = nullptr;
  for (int s = 0; s < 2; ++s)
    if (gen >= 0 && h->slotGen[s] == gen) {
      *out = h->labels[s].p;
      return nullptr;
    }
  if (!host) return nullptr;
  if (!h->scratchLabels.p) {
    const char* err = h->scratchLabels.alloc(h->n);
    if (err) return err;
  }
  SEG_TRY("labels upload", cudaMemcpy(h->scratchLabels.p, host, sizeof(int32_t) * h->n, cudaMemcpyHostToDevice));
  *out = h->scratchLabels.p;
  return nullptr;
}

const char* seg_cuda_assign(SegCudaData* h, const float* centroids, int k, const int32_t* prev, int64_t prevGen,
                            int32_t* labels, float* dist, double* inertia, int64_t* changed, int64_t* gen) {
  const int d = h->d;
  const int64_t n = h->n;
  const int64_t nBlocks = (n + kRows - 1) / kRows;
  std::vector<float> panel((size_t)k * d), cc(k);
  packCentroids(centroids, k, d, h->hostShift.data(), panel.data(), cc.data());
  const char* err = nullptr;
  if (!err) err = h->c.ensure((size_t)k * d);
  if (!err) err = h->panel.ensure((size_t)k * d);
  if (!err) err = h->cc.ensure(k);
  if (!err) err = h->blockInertia.ensure(nBlocks);
  if (!err) err = h->blockChanged.ensure(nBlocks);
  if (err) return err;
  SEG_TRY("centroids upload", cudaMemcpy(h->c.p, centroids, sizeof(float) * k * d, cudaMemcpyHostToDevice));
  SEG_TRY("centroids upload", cudaMemcpy(h->panel.p, panel.data(), sizeof(float) * k * d, cudaMemcpyHostToDevice));
  SEG_TRY("centroids upload", cudaMemcpy(h->cc.p, cc.data(), sizeof(float) * k, cudaMemcpyHostToDevice));
  const int32_t* dPrev = nullptr;
  if (prev || prevGen >= 0) {
    err = labelsOnDevice(h, prev, prevGen, &dPrev);
    if (err) return err;
  }
  // Write into the slot not holding prev, so prev stays readable during the kernel.
  int slot = (h->slotGen[0] <= h->slotGen[1]) ? 0 : 1;
  if (dPrev == h->labels[slot].p) slot ^= 1;
  AssignParams p{h->x.p, h->w.p, dPrev, h->c.p, h->panel.p, h->cc.p, h->shift.p, h->labels[slot].p, h->dist[slot].p,
                 h->blockInertia.p, h->blockChanged.p, n, d, k};
  if (nBlocks > 0) assignKernel<<<(unsigned)nBlocks, kRows>>>(p);
  SEG_TRY("assign kernel", cudaGetLastError());
  std::vector<double> bi(nBlocks);
  std::vector<int64_t> bc(nBlocks);
  SEG_TRY("assign", cudaMemcpy(bi.data(), h->blockInertia.p, sizeof(double) * nBlocks, cudaMemcpyDeviceToHost));
  SEG_TRY("assign", cudaMemcpy(bc.data(), h->blockChanged.p, sizeof(int64_t) * nBlocks, cudaMemcpyDeviceToHost));
  if (labels)
    SEG_TRY("labels download", cudaMemcpy(labels, h->labels[slot].p, sizeof(int32_t) * n, cudaMemcpyDeviceToHost));
  if (dist)
    SEG_TRY("distances download", cudaMemcpy(dist, h->dist[slot].p, sizeof(float) * n, cudaMemcpyDeviceToHost));
  double s = 0;
  int64_t c = 0;
  for (int64_t b = 0; b < nBlocks; ++b) {  // block order: deterministic
    s += bi[b];
    c += bc[b];
  }
  *inertia = s;
  *changed = dPrev ? c : n;
  h->slotGen[slot] = h->nextGen;
  *gen = h->nextGen++;
  return nullptr;
}

int seg_cuda_resident(SegCudaData* h, int64_t gen) {
  return gen >= 0 && (h->slotGen[0] == gen || h->slotGen[1] == gen);
}

const char* seg_cuda_read(SegCudaData* h, int64_t gen, int32_t* labels, float* dist) {
  for (int s = 0; s < 2; ++s)
    if (gen >= 0 && h->slotGen[s] == gen) {
      SEG_TRY("labels download", cudaMemcpy(labels, h->labels[s].p, sizeof(int32_t) * h->n, cudaMemcpyDeviceToHost));
      SEG_TRY("distances download", cudaMemcpy(dist, h->dist[s].p, sizeof(float) * h->n, cudaMemcpyDeviceToHost));
      return nullptr;
    }
  return "read: that assignment's labels are no longer on the device";
}

const char* seg_cuda_segment_sum(SegCudaData* h, const int32_t* labels, int64_t gen, int k, double* sums,
                                 double* counts) {
  const int d = h->d;
  const int64_t n = h->n;
  const int32_t* dLabels = nullptr;
  const char* err = labelsOnDevice(h, labels, gen, &dLabels);
  if (err) return err;
  if (!dLabels) return "segmentSum: no labels";
  const int64_t rows = chunkRows(n, k, d, partialBudget());
  const int64_t nChunks = (n + rows - 1) / rows;
  const int64_t per = (int64_t)k * d + k;
  DevBuf<double>& partial = h->partial;
  DevBuf<double>& out = h->sumOut;
  const size_t partialLen = (size_t)(nChunks > 0 ? nChunks : 1) * per;
  if ((err = partial.ensure(partialLen))) return err;
  if ((err = out.ensure(per))) return err;
  SEG_TRY("segmentSum", cudaMemset(partial.p, 0, sizeof(double) * partialLen));
  if (nChunks > 0) {
    const int threads = d + 1 < kSumThreads ? ((d + 1 + 31) / 32) * 32 : kSumThreads;
    if (per <= kSharedPartialDoubles)
      sumChunksSharedKernel<<<(unsigned)nChunks, threads, sizeof(double) * per>>>(h->x.p, dLabels, h->w.p, n, d, k,
                                                                                  rows, partial.p);
    else
      sumChunksKernel<<<(unsigned)nChunks, threads>>>(h->x.p, dLabels, h->w.p, n, d, k, rows, partial.p);
    SEG_TRY("segmentSum kernel", cudaGetLastError());
  }
  reduceChunksKernel<<<(unsigned)((per + 255) / 256), 256>>>(partial.p, nChunks, per, out.p);
  SEG_TRY("segmentSum reduce kernel", cudaGetLastError());
  SEG_TRY("segmentSum", cudaMemcpy(sums, out.p, sizeof(double) * k * d, cudaMemcpyDeviceToHost));
  SEG_TRY("segmentSum", cudaMemcpy(counts, out.p + (int64_t)k * d, sizeof(double) * k, cudaMemcpyDeviceToHost));
  return nullptr;
}

const char* seg_cuda_distances(SegCudaData* h, const float* centers, int m, float* out) {
  DevBuf<float> dC, dOut;
  const char* err = nullptr;
  if ((err = dC.alloc((size_t)m * h->d))) return err;
  if ((err = dOut.alloc((size_t)h->n * m))) return err;
  SEG_TRY("distances", cudaMemcpy(dC.p, centers, sizeof(float) * m * h->d, cudaMemcpyHostToDevice));
  if (h->n > 0) distancesKernel<<<(unsigned)((h->n + 255) / 256), 256>>>(h->x.p, h->n, h->d, dC.p, m, dOut.p);
  SEG_TRY("distances kernel", cudaGetLastError());
  SEG_TRY("distances", cudaMemcpy(out, dOut.p, sizeof(float) * h->n * m, cudaMemcpyDeviceToHost));
  return nullptr;
}

const char* seg_cuda_potentials(SegCudaData* h, const float* closest, const float* cands, int m, double* out) {
  const int64_t n = h->n;
  const int d = h->d;
  const int64_t nBlocks = (n + kPotRows - 1) / kPotRows;
  for (int j = 0; j < m; ++j) out[j] = 0;
  if (nBlocks == 0) return nullptr;
  DevBuf<float> dClosest, dCands;
  DevBuf<double> dBlock;
  const char* err = nullptr;
  if ((err = dClosest.alloc(n))) return err;
  if ((err = dCands.alloc((size_t)m * d))) return err;
  if ((err = dBlock.alloc((size_t)nBlocks * m))) return err;
  SEG_TRY("potentials", cudaMemcpy(dClosest.p, closest, sizeof(float) * n, cudaMemcpyHostToDevice));
  SEG_TRY("potentials", cudaMemcpy(dCands.p, cands, sizeof(float) * m * d, cudaMemcpyHostToDevice));
  PotentialParams p{h->x.p, h->w.p, dClosest.p, dCands.p, dBlock.p, n, d, m};
  potentialsKernel<<<(unsigned)nBlocks, kPotThreads>>>(p);
  SEG_TRY("potentials kernel", cudaGetLastError());
  std::vector<double> part((size_t)nBlocks * m);
  SEG_TRY("potentials", cudaMemcpy(part.data(), dBlock.p, sizeof(double) * part.size(), cudaMemcpyDeviceToHost));
  for (int64_t b = 0; b < nBlocks; ++b)  // block order: deterministic
    for (int j = 0; j < m; ++j) out[j] += part[(size_t)b * m + j];
  return nullptr;
}

const char* seg_cuda_cluster_sums(SegCudaData* h, const float* xHost, const int32_t* labels, int k, double* out) {
  const int64_t n = h->n;
  const int d = h->d;
  if (n == 0) return nullptr;
  // Columns: the rows stably sorted by label (a counting sort on the host), so each cluster is
  // one run of consecutive columns.
  std::vector<int64_t> next((size_t)k + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++next[(size_t)labels[i] + 1];
  for (int l = 0; l < k; ++l) next[(size_t)l + 1] += next[l];
  std::vector<float> cols((size_t)n * d);
  std::vector<int32_t> colLabel(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = next[labels[i]]++;
    std::memcpy(&cols[(size_t)c * d], xHost + i * d, sizeof(float) * d);
    colLabel[c] = labels[i];
  }
  DevBuf<float> dCols;
  DevBuf<int32_t> dLabel;
  DevBuf<double> dOut;
  const char* err = nullptr;
  if ((err = dCols.alloc((size_t)n * d))) return err;
  if ((err = dLabel.alloc(n))) return err;
  if ((err = dOut.alloc((size_t)n * k))) return err;
  SEG_TRY("clusterDistanceSums", cudaMemcpy(dCols.p, cols.data(), sizeof(float) * n * d, cudaMemcpyHostToDevice));
  SEG_TRY("clusterDistanceSums", cudaMemcpy(dLabel.p, colLabel.data(), sizeof(int32_t) * n, cudaMemcpyHostToDevice));
  SEG_TRY("clusterDistanceSums", cudaMemset(dOut.p, 0, sizeof(double) * n * k));
  ClusterSumParams p{h->x.p, dCols.p, dLabel.p, dOut.p, n, d, k};
  clusterSumsKernel<<<(unsigned)((n + kRows - 1) / kRows), kRows>>>(p);
  SEG_TRY("clusterDistanceSums kernel", cudaGetLastError());
  SEG_TRY("clusterDistanceSums", cudaMemcpy(out, dOut.p, sizeof(double) * n * k, cudaMemcpyDeviceToHost));
  return nullptr;
}

}  // extern "C"
