// CUDA kernels for the `cuda` backend: fused assignment (shared-memory tiles over rows ×
// centroids, argmin fused, exact distance recomputed, and each row added into its label's segment
// sums in the same kernel: fixed-point integer atomics, fixed.cuh, so the sums are the same bits
// in any order and a Lloyd step reads the data once), distances, k-means++
// potentials (per-block float64 partials, added in block order), the silhouette's
// per-cluster distance sums (one thread per row, columns sorted by label, fixed order), and the
// mixture and PCA steps: x·W (the assignment's tiles, float64 across feature tiles), soft sums
// and scatter matrices (one thread per output and block of rows, float64, blocks added in order).
// The per-thread arithmetic is in lloyd.cuh and soft.cuh, shared with the CPU emulation.
//
// Data is uploaded once and stays resident when it fits in free GPU memory; otherwise it stays
// on the host and every pass streams it through two device chunk buffers on two streams, staged
// through two pinned host buffers (the host fills one while the device copies the other), so
// one chunk's copy overlaps the other's kernels (labels, distances and weights stay resident:
// 16–20 bytes a row). Chunks are a power of two of rows (a multiple of every kernel's block of
// rows), so each kernel sees the same blocks, and gives the same bits, as on resident data. A
// Lloyd step on resident data moves
// only k·d floats to the device and a few numbers back: labels and distances stay in one of two
// device slots until the host asks for them (seg_cuda_read), and the per-call buffers are kept
// on the handle, so no step allocates device memory once the first has run.
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "api.h"
#include "fixed.cuh"
#include "lloyd.cuh"
#include "radius.cuh"
#include "seed.cuh"
#include "soft.cuh"
#include "tc.cuh"

using namespace segcuda;

namespace {

thread_local char gMsg[256];

const char* fail(const char* what, cudaError_t e) {
  // Out of memory reads the same wherever it arose (a stream, a copy's staging buffer, a
  // launch), so the binding can tag it and the backend retry smaller or fall back (api.h).
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so later calls do not report it again
    std::snprintf(gMsg, sizeof gMsg, SEG_CUDA_OOM_PREFIX " in %s", what);
    return gMsg;
  }
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
    if (e != cudaSuccess) {
      // Leave the buffer empty, so ensure() allocates again on the next call.
      p = nullptr;
      n = 0;
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t freeB = 0, totalB = 0;
      cudaMemGetInfo(&freeB, &totalB);
      std::snprintf(gMsg, sizeof gMsg, SEG_CUDA_OOM_PREFIX ": need %.1f MiB, %.1f MiB free",
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
 * Budget for the mixture steps' per-block partials (soft sums, scatter), in float64: 1/16 of the
 * device's memory, between 256 MiB and 4 GiB. It sets their blocks of rows (softBlockRows) and
 * depends on the device's total memory, not on what is free, so a device always cuts the same
 * blocks and the sums keep their bits from run to run.
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

/** A labelled tile's rows (finishRow), then its inertia and changes to blockInertia/blockChanged[tile]. */
__device__ void finishTile(const AssignParams& p, int64_t tile, int tid, int32_t bestJ, double* inertiaSlot,
                           int64_t* changedSlot) {
  finishRow(p, tile, tid, bestJ, inertiaSlot, changedSlot);
  __syncthreads();
  for (int stride = kRows / 2; stride >= 1; stride /= 2) {
    reduceStep(tid, stride, inertiaSlot, changedSlot);
    __syncthreads();
  }
  if (tid == 0) {
    p.blockInertia[tile] = inertiaSlot[0];
    p.blockChanged[tile] = changedSlot[0];
  }
}

/**
 * One tile of kRows rows (each thread its row): labels and exact distances written, the tile's
 * inertia and changes to blockInertia/blockChanged[tile]; *label gets the thread's label.
 */
__device__ void assignTile(const AssignParams& p, int64_t tile, int tid, float* xs, float* cs, double* inertiaSlot,
                           int64_t* changedSlot, int32_t* label) {
  float best = __int_as_float(0x7f800000);  // +inf
  int32_t bestJ = 0;
  for (int j0 = 0; j0 < p.k; j0 += kTileC) {
    float acc[kTileC];
#pragma unroll
    for (int jj = 0; jj < kTileC; ++jj) acc[jj] = 0.0f;
    for (int f0 = 0; f0 < p.d; f0 += kTileD) {
      loadTiles(p, tile, tid, j0, f0, xs, cs);
      __syncthreads();
      accumulateTile(tid, xs, cs, acc);
      __syncthreads();
    }
    updateBest(p, j0, acc, &best, &bestJ);
  }
  finishTile(p, tile, tid, bestJ, inertiaSlot, changedSlot);
  *label = bestJ;
}

/** How the assignment kernel treats the segment sums. */
enum SumMode { kNoSums = 0, kSharedSums = 1, kGlobalSums = 2 };

/**
 * The tile loop every sums kernel shares: blocks walk tiles blockIdx.x, + gridDim.x, …; label(tile)
 * (all threads of the block) gives the thread's row its label, and with sums the tile's rows go
 * into their labels' fixed-point words: the block's own in shared memory (kSharedSums, added to
 * the global ones at the end) or the global ones (kGlobalSums).
 */
template <int kMode, class Label>
__device__ void tileLoop(const FixedSumParams& s, int64_t nTiles, Label label) {
  __shared__ int32_t rowLabel[kRows];
  extern __shared__ uint64_t words[];
  const int tid = threadIdx.x;
  const int64_t nWords = (int64_t)s.k * (s.d + 1) * 2;
  if (kMode == kSharedSums) {
    for (int64_t e = tid; e < nWords; e += kRows) words[e] = 0;
    __syncthreads();
  }
  for (int64_t tile = blockIdx.x; tile < nTiles; tile += gridDim.x) {
    const int32_t l = label(tile);
    if (kMode != kNoSums) {
      rowLabel[tid] = l;
      __syncthreads();
      fixedSumTile(s, tile, tid, rowLabel, kMode == kSharedSums ? words : s.acc);
      __syncthreads();
    }
  }
  if (kMode == kSharedSums) fixedFlush(words, s.acc, nWords, tid, kRows);
}

/**
 * The Lloyd step. kNoSums: one block per tile of rows. Fused (kSharedSums, kGlobalSums): blocks
 * walk tiles blockIdx.x, + gridDim.x, …, and right after a tile's labels, add its rows into
 * their labels' fixed-point sums (fixed.cuh) while the rows are still in L2: the step reads the
 * data from memory once (tileLoop). kSharedSums keeps a block's own words in shared memory
 * (k·(d + 1)·16 bytes within dynamicShared, at most kSharedFixedBytes) and adds them to the global
 * ones at the end; kGlobalSums adds each entry to the global words directly (large k·d, where
 * labels rarely collide).
 */
template <int kMode>
__global__ void assignKernel(AssignParams p, FixedSumParams s, int64_t nTiles) {
  __shared__ float xs[kXsFloats];
  __shared__ __align__(16) float cs[kCsFloats];  // read as float4 (accumulateTile)
  __shared__ double inertiaSlot[kRows];
  __shared__ int64_t changedSlot[kRows];
  tileLoop<kMode>(s, nTiles, [&](int64_t tile) {
    int32_t label;
    assignTile(p, tile, threadIdx.x, xs, cs, inertiaSlot, changedSlot, &label);
    return label;
  });
}

/**
 * assignTile on tensor cores (tc.cuh): the tile's approximate scores from TF32 wmma fragments
 * (each of the 4 warps its 32 rows × the kTileC centroids, 16 × 16 × 8 steps over the staged
 * features), each row's TopK from them, then the float64 decision (a flagged row scans every
 * centroid in float64: rare, and slow for its block). kOnChip: the tile's rows are staged once,
 * every feature, in xs (ld = tcPaddedFeatures(d) + 4) and stay there while the centroid tiles
 * stream past; else a chunk of them is staged again for every centroid tile (ld = kTcLd).
 */
template <bool kOnChip>
__device__ void assignTileTc(const AssignParams& p, int64_t tile, int tid, float* xs, int ld, float* cs, float* scores,
                             double* inertiaSlot, int64_t* changedSlot, int32_t* label) {
  using namespace nvcuda;
  static_assert(kRows == 128 && kTileC == 32 && kTileD % 8 == 0, "4 warps of 32 rows, 2 × 16 centroids");
  TopK top;
  topkInit(&top);
  const int warp = tid / 32;
  if (kOnChip) tcLoadRows(p, tile, tid, 0, tcPaddedFeatures(p.d), xs, ld);  // synchronised below
  for (int j0 = 0; j0 < p.k; j0 += kTileC) {
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
      for (int b = 0; b < 2; ++b) wmma::fill_fragment(acc[a][b], 0.0f);
    for (int f0 = 0; f0 < p.d; f0 += kTileD) {
      if (!kOnChip) tcLoadRows(p, tile, tid, f0, f0 + kTileD, xs, ld);
      tcLoadCentroids(p, tid, j0, f0, cs);
      __syncthreads();
      const float* rows = kOnChip ? xs + f0 : xs;
#pragma unroll
      for (int k0 = 0; k0 < kTileD; k0 += 8) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb[2];
#pragma unroll
        for (int a = 0; a < 2; ++a) wmma::load_matrix_sync(fa[a], rows + (warp * 32 + a * 16) * ld + k0, ld);
#pragma unroll
        for (int b = 0; b < 2; ++b) wmma::load_matrix_sync(fb[b], cs + (b * 16) * kTcLd + k0, kTcLd);
#pragma unroll
        for (int a = 0; a < 2; ++a)
#pragma unroll
          for (int b = 0; b < 2; ++b) wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
      for (int b = 0; b < 2; ++b)
        wmma::store_matrix_sync(scores + (warp * 32 + a * 16) * kTcScoreLd + b * 16, acc[a][b], kTcScoreLd, wmma::mem_row_major);
    __syncwarp();  // row tid's scores were written by its own warp
    tcUpdateTopK(p, j0, scores + tid * kTcScoreLd, &top);
    __syncwarp();
  }
  const int64_t row = tile * kRows + tid;
  int32_t bestJ = 0;
  if (row < p.n) {
    const float* xr = p.x + row * p.d;
    bool flagged = false;
    bestJ = tcDecide(xr, p.centroids, p.d, top, tcBound(shiftedNorm(xr, p.shift, p.d), p.cMax, p.d), &flagged);
    if (flagged) bestJ = tcScanRow(xr, p.centroids, p.d, p.k);
  }
  finishTile(p, tile, tid, bestJ, inertiaSlot, changedSlot);
  *label = bestJ;
}

/**
 * assignKernel with assignTileTc (the same modes for the segment sums). kOnChip: the rows' tile
 * lives in the dynamic shared memory (tcOnChipBytes), so the sums cannot keep words there:
 * kNoSums or kGlobalSums only.
 */
template <int kMode, bool kOnChip>
__global__ void assignTcKernel(AssignParams p, FixedSumParams s, int64_t nTiles) {
  static_assert(!(kOnChip && kMode == kSharedSums), "the on-chip rows take the dynamic shared memory");
  __shared__ __align__(32) float xsChunk[kOnChip ? 8 : kRows * kTcLd];
  __shared__ __align__(32) float cs[kTileC * kTcLd];
  __shared__ __align__(32) float scores[kRows * kTcScoreLd];
  __shared__ double inertiaSlot[kRows];
  __shared__ int64_t changedSlot[kRows];
  extern __shared__ __align__(32) float xsOnChip[];
  float* xs = kOnChip ? xsOnChip : xsChunk;
  const int ld = kOnChip ? tcPaddedFeatures(p.d) + 4 : kTcLd;
  tileLoop<kMode>(s, nTiles, [&](int64_t tile) {
    int32_t label;
    assignTileTc<kOnChip>(p, tile, threadIdx.x, xs, ld, cs, scores, inertiaSlot, changedSlot, &label);
    return label;
  });
}

/** Dynamic shared bytes of the on-chip row tile for d features. */
size_t tcOnChipBytes(int d) { return sizeof(float) * kRows * (size_t)(tcPaddedFeatures(d) + 4); }

/** Fixed-point sums for given labels (s.labels), as the fused kernels add them. */
template <int kMode>
__global__ void fixedSumsKernel(FixedSumParams s, int64_t nTiles) {
  tileLoop<kMode>(s, nTiles, [&](int64_t tile) {
    const int64_t row = tile * kRows + threadIdx.x;
    return row < s.n ? s.labels[row] : 0;
  });
}

/** out[e] (k·d sums then k counts) from the accumulated words. */
__global__ void fixedFinishKernel(const uint64_t* acc, const FixedScale* scale, const float* shift, int d, int k,
                                  double* out) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e < (int64_t)k * d + k) out[e] = fixedResult(acc, scale, shift, d, k, e);
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

/**
 * The potentials' block: for each group of kPotGroup candidates, partial(j0, acc) gives the
 * thread's partials, the fixed tree adds them over the block, and thread 0 writes the block's
 * m values to blockOut (nBlocks × m).
 */
template <class Partial>
__device__ void potentialBlock(int m, double* blockOut, Partial partial) {
  __shared__ double slot[kPotGroup][kPotThreads];
  const int tid = threadIdx.x;
  for (int j0 = 0; j0 < m; j0 += kPotGroup) {
    double acc[kPotGroup];
    partial(j0, acc);
#pragma unroll
    for (int j = 0; j < kPotGroup; ++j) slot[j][tid] = acc[j];
    __syncthreads();
    for (int stride = kPotThreads / 2; stride >= 1; stride /= 2) {
#pragma unroll
      for (int j = 0; j < kPotGroup; ++j) reduceDoubleStep(tid, stride, slot[j]);
      __syncthreads();
    }
    if (tid == 0)
      for (int j = 0; j < kPotGroup && j0 + j < m; ++j) blockOut[(int64_t)blockIdx.x * m + j0 + j] = slot[j][0];
    __syncthreads();
  }
}

__global__ void potentialsKernel(PotentialParams p) {
  potentialBlock(p.m, p.blockOut, [&](int j0, double* acc) { potentialThread(p, blockIdx.x, threadIdx.x, j0, acc); });
}

__global__ void seedFirstKernel(SeedParams p, const float* center) {
  seedFirstRow(p, (int64_t)blockIdx.x * blockDim.x + threadIdx.x, center);
}

__global__ void seedTakeKernel(SeedParams p, const float* kept) {
  seedTakeRow(p, (int64_t)blockIdx.x * blockDim.x + threadIdx.x, kept);
}

__global__ void seedBlockSumKernel(SeedParams p) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b < seedBlocks(p.n)) seedBlockSum(p, b);
}

__global__ void seedPrefixKernel(SeedParams p) { seedPrefix(p); }

__global__ void seedDrawKernel(SeedParams p, const double* targets, int m, int32_t* rows) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j < m) rows[j] = (int32_t)seedDraw(p, targets[j]);
}

/** potentialsKernel's blocks and fixed tree, with closest on the device and the distances kept. */
__global__ void seedPotentialsKernel(SeedParams p, const float* cands, int m, double* blockOut) {
  potentialBlock(m, blockOut, [&](int j0, double* acc) { seedPotentialThread(p, cands, m, blockIdx.x, threadIdx.x, j0, acc); });
}

/**
 * acc[jj] = Σ_f (x − col_jj)² in float32 for the block's row tid against columns [c0, c0 + kTileC)
 * of cp, over every chunk of features (the silhouette's and DBSCAN's pair tiles).
 */
__device__ void pairTile(const ClusterSumParams& cp, int64_t block, int tid, int64_t c0, float* xs, float* cs, float* acc) {
#pragma unroll
  for (int jj = 0; jj < kTileC; ++jj) acc[jj] = 0.0f;
  for (int f0 = 0; f0 < cp.d; f0 += kTileD) {
    loadPairTiles(cp, block, tid, c0, f0, xs, cs);
    __syncthreads();
    accumulatePairTile(tid, xs, cs, acc);
    __syncthreads();
  }
}

/** radius.cuh: a block of kRows queries against every row, in tiles of kTileC; count or list pass. */
__global__ void radiusKernel(RadiusParams p, ClusterSumParams cp) {
  __shared__ float xs[kXsFloats];
  __shared__ float cs[kCsFloats];
  const int tid = threadIdx.x;
  double count = 0;
  int32_t k = 0;
  int64_t rech = 0;
  for (int64_t c0 = p.cBegin; c0 < p.n; c0 += kTileC) {
    float acc[kTileC];
    pairTile(cp, blockIdx.x, tid, c0, xs, cs, acc);
    radiusTile(p, blockIdx.x, tid, c0, acc, &count, &k, &rech);
  }
  radiusFinish(p, blockIdx.x, tid, count, k, rech);
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
    pairTile(p, block, tid, c0, xs, cs, acc);
    finishPairTile(p, block, tid, c0, acc, &curL, &run);
  }
  finishPairRow(p, block, tid, curL, run);
}

/** x·W: one block per kRows rows (blockIdx.x) and kTileC columns (blockIdx.y). */
__global__ void projectKernel(ProjectParams p) {
  __shared__ float xs[kXsFloats];
  __shared__ __align__(16) float cs[kCsFloats];  // read as float4 (accumulateTile)
  const int64_t block = blockIdx.x;
  const int tid = threadIdx.x;
  const int j0 = blockIdx.y * kTileC;
  double sum[kTileC];
#pragma unroll
  for (int jj = 0; jj < kTileC; ++jj) sum[jj] = 0;
  for (int f0 = 0; f0 < p.d; f0 += kTileD) {
    float acc[kTileC];
#pragma unroll
    for (int jj = 0; jj < kTileC; ++jj) acc[jj] = 0.0f;
    loadProjectTiles(p, block, tid, j0, f0, xs, cs);
    __syncthreads();
    accumulateTile(tid, xs, cs, acc);
    __syncthreads();
    flushProjectTile(acc, sum);
  }
  finishProjectRow(p, block, tid, j0, sum);
}

/** Soft sums: blockIdx.x is the block of rows; outputs strided over blockIdx.y and the threads. */
__global__ void softSumsKernel(SoftParams p) {
  const int64_t per = softSumOutputs(p.d, p.m);
  for (int64_t e = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; e < per; e += (int64_t)gridDim.y * blockDim.x)
    softSumThread(p, blockIdx.x, e);
}

/** Scatter matrices' upper triangles, as softSumsKernel. */
__global__ void scatterKernel(SoftParams p) {
  const int64_t per = (int64_t)p.m * scatterPairs(p.d);
  for (int64_t e = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; e < per; e += (int64_t)gridDim.y * blockDim.x)
    scatterThread(p, blockIdx.x, e);
}

}  // namespace

struct SegCudaData {
  int64_t n = 0;
  int d = 0;
  DevBuf<float> x, w, shift;
  /** Streamed data: rows per chunk (a power of two ≥ kPotRows), 0 when x is resident. */
  int64_t streamRows = 0;
  /** Streamed data: the caller's host rows, borrowed (the JS matrix keeps them alive). */
  const float* hostX = nullptr;
  DevBuf<float> xChunk[2];
  cudaStream_t streams[2] = {nullptr, nullptr};
  /**
   * Streamed data: two pinned host staging buffers of a chunk each (null when pinned memory was
   * refused: pageable copies then), and events marking when each one's copy to the device is
   * done, so the host refills one while the device copies from the other.
   */
  float* pinned[2] = {nullptr, nullptr};
  cudaEvent_t copied[2] = {nullptr, nullptr};
  ~SegCudaData() {
    for (cudaStream_t st : streams)
      if (st) cudaStreamDestroy(st);
    for (float* p : pinned)
      if (p) cudaFreeHost(p);
    for (cudaEvent_t e : copied)
      if (e) cudaEventDestroy(e);
  }
  /** Two generations of labels and distances: the newest and the one it was counted against. */
  DevBuf<int32_t> labels[2], scratchLabels;
  DevBuf<float> dist[2];
  int64_t slotGen[2] = {-1, -1};
  int64_t nextGen = 0;
  /** Per-call buffers, kept between calls (cudaMalloc and cudaFree each synchronise the device). */
  DevBuf<float> c, panel, cc;
  DevBuf<double> blockInertia, partial, sumOut;
  /** The segment sums' fixed-point units per column (d + 1, fixed.cuh) and accumulator words. */
  DevBuf<FixedScale> scale;
  DevBuf<uint64_t> words;
  DevBuf<int64_t> blockChanged;
  /** k-means++'s buffers (distances and potentials run once per seeding step), kept the same way. */
  DevBuf<float> seedCenters, seedOut[2], seedClosest;
  DevBuf<double> seedBlocks;
  /** Device k-means++ (seed.cuh): block sums and their prefix, kept distances (m × n), draws. */
  DevBuf<double> seedBlockSum, seedPrefix, seedTargets, seedPotOut;
  DevBuf<float> seedKeep;
  DevBuf<int32_t> seedRows;
  /** Candidates of the last seed_potentials (their columns are in seedKeep); 0 before one. */
  int seedM = 0;
  /** Whether seed_start ran (closest and the sums are set), and for how many candidates a step. */
  bool seeded = false;
  int seedCap = 0;
  std::vector<float> hostShift;
  /** The device's total memory (sizes the streamed chunks of the mixture steps). */
  size_t deviceBytes = 0;
};

namespace {

/**
 * Runs fn(dX, r0, rows, stream) over rows [a, b): once over the resident matrix (dX at row a),
 * or chunk by chunk of `chunkRows` (at most streamRows) from row a, each copied into one of two
 * device buffers on its own stream (chunk c + 2 reuses chunk c's buffer on the same stream,
 * after its kernels), then waits for the device. fn launches its kernels on `stream` with every
 * per-row pointer offset by r0 (dX already is).
 */
template <class F>
const char* forEachChunkIn(SegCudaData* h, int64_t a, int64_t b, int64_t chunkRows, F&& fn) {
  const int d = h->d;
  if (!h->streamRows) {
    const char* err = fn((const float*)h->x.p + a * d, a, b - a, (cudaStream_t)0);
    if (err) return err;
    SEG_TRY("kernel", cudaDeviceSynchronize());
    return nullptr;
  }
  int64_t c = 0;
  for (int64_t r0 = a; r0 < b; r0 += chunkRows, ++c) {
    const int64_t rows = b - r0 < chunkRows ? b - r0 : chunkRows;
    const int slot = (int)(c & 1);
    cudaStream_t st = h->streams[slot];
    float* buf = h->xChunk[slot].p;
    const size_t bytes = sizeof(float) * rows * d;
    cudaError_t e = cudaSuccess;
    if (h->pinned[slot]) {
      // Pinned staging: wait until chunk c − 2's copy left this buffer, refill it on the host
      // (overlapping the device's copy and kernels of chunk c − 1 on the other stream), then
      // copy asynchronously and mark when that copy is done.
      if (c >= 2) e = cudaEventSynchronize(h->copied[slot]);
      if (e == cudaSuccess) std::memcpy(h->pinned[slot], h->hostX + r0 * d, bytes);
      if (e == cudaSuccess) e = cudaMemcpyAsync(buf, h->pinned[slot], bytes, cudaMemcpyHostToDevice, st);
      if (e == cudaSuccess) e = cudaEventRecord(h->copied[slot], st);
    } else {
      e = cudaMemcpyAsync(buf, h->hostX + r0 * d, bytes, cudaMemcpyHostToDevice, st);
    }
    const char* err = e == cudaSuccess ? fn((const float*)buf, r0, rows, st) : fail("stream upload", e);
    if (err) {
      cudaDeviceSynchronize();
      return err;
    }
  }
  SEG_TRY("streamed kernel", cudaDeviceSynchronize());
  return nullptr;
}

/** forEachChunkIn over every row, in chunks of streamRows. */
template <class F>
const char* forEachChunk(SegCudaData* h, F&& fn) {
  return forEachChunkIn(h, 0, h->n, h->streamRows, fn);
}

/**
 * Streamed data: rows per chunk for the steps that also move a (rows × m) array per chunk (x·W's
 * output, the responsibilities): streamRows, halved (a power of two still, at least
 * kSoftMinRows) until two such buffers take at most 1/32 of the device, since the chunk buffers
 * for x already fill the memory the data left.
 */
int64_t softStreamRows(const SegCudaData* h, int m) {
  int64_t rows = h->streamRows;
  while (rows > kSoftMinRows && (size_t)(2 * rows) * m * sizeof(float) > h->deviceBytes / 32) rows /= 2;
  return rows;
}

/** The most one streamed chunk holds (also the size of each pinned staging buffer). */
constexpr size_t kStreamChunkBytes = (size_t)256 << 20;

/**
 * Rows per streamed chunk: SEGTENSOR_CUDA_STREAM_ROWS if set (tests), else what two buffers can
 * take, up to kStreamChunkBytes a chunk (a power of two of rows, at least kPotRows).
 */
int64_t streamRowsFor(int d, size_t spareBytes) {
  int64_t rows = kPotRows;
  if (const char* env = std::getenv("SEGTENSOR_CUDA_STREAM_ROWS")) {
    const long long want = std::atoll(env);
    while (rows < want) rows *= 2;
    return rows;
  }
  const size_t per = 2 * sizeof(float) * (size_t)d;  // two chunk buffers
  while ((size_t)(rows * 2) * per <= spareBytes && (size_t)(rows * 2) * per / 2 <= kStreamChunkBytes) rows *= 2;
  return rows;
}

/**
 * The soft sums' and scatter's common pass over rows [r0, r1): `per` outputs per block of rows,
 * one partial per block (kernel `launch(params, blocks, stream)`), added in block order on the
 * device into h->sumOut (per doubles). r ((r1 − r0) × m, host, or null) goes up whole for
 * resident data, chunk by chunk with the rows when streamed.
 */
template <class L>
const char* softPass(SegCudaData* h, const float* r, int m, const double* dMeans, int64_t r0, int64_t r1, int64_t per,
                     L&& launch) {
  const int d = h->d;
  const int64_t n = r1 - r0;
  const int64_t chunk = h->streamRows ? softStreamRows(h, m) : n;
  // Blocks start at r0 and divide a streamed chunk (both powers of two), so streamed data is
  // cut into the blocks resident data would be, as long as the chunk is not the smaller.
  int64_t rows = softBlockRows(n, per, partialBudget());
  if (h->streamRows && rows > chunk) rows = chunk;
  const int64_t nBlocks = (n + rows - 1) / rows;
  const char* err = nullptr;
  if ((err = h->partial.ensure((size_t)nBlocks * per))) return err;
  if ((err = h->sumOut.ensure((size_t)per))) return err;
  DevBuf<float> dR[2];
  if (r)
    for (int b = 0; b < (h->streamRows ? 2 : 1); ++b)
      if ((err = dR[b].alloc((size_t)chunk * m))) return err;
  if (r && !h->streamRows)
    SEG_TRY("responsibilities upload", cudaMemcpy(dR[0].p, r, sizeof(float) * n * m, cudaMemcpyHostToDevice));
  err = forEachChunkIn(h, r0, r1, chunk, [&](const float* dX, int64_t c0, int64_t nr, cudaStream_t st) -> const char* {
    if (nr == 0) return nullptr;
    const float* dRc = nullptr;
    if (r) {
      float* buf = dR[h->streamRows ? ((c0 - r0) / chunk) & 1 : 0].p;
      if (h->streamRows)
        SEG_TRY("responsibilities upload",
                cudaMemcpyAsync(buf, r + (c0 - r0) * m, sizeof(float) * nr * m, cudaMemcpyHostToDevice, st));
      dRc = buf;
    }
    SoftParams p{dX, h->w.p ? h->w.p + c0 : nullptr, dRc, dMeans, h->partial.p + ((c0 - r0) / rows) * per, nr, d, m, rows};
    const int64_t yBlocks = (per + kSoftThreads - 1) / kSoftThreads;
    const dim3 grid((unsigned)((nr + rows - 1) / rows), (unsigned)(yBlocks < 65535 ? yBlocks : 65535));
    launch(p, grid, st);
    SEG_TRY("kernel launch", cudaGetLastError());
    return nullptr;
  });
  if (err) return err;
  reduceChunksKernel<<<(unsigned)((per + 255) / 256), 256>>>(h->partial.p, nBlocks, per, h->sumOut.p);
  SEG_TRY("reduce kernel", cudaGetLastError());
  return nullptr;
}


/** Bytes of a block's own accumulator words for k labels and d features. */
size_t sharedWordBytes(int k, int d) { return (size_t)k * (d + 1) * 2 * sizeof(uint64_t); }

/**
 * Whether an assignment of k centroids in d features runs on tensor cores (tc.cuh): from k ≥ 512
 * and d ≥ 32, where the k·d products dominate (a starting point, not tuned on a GPU yet);
 * SEGTENSOR_CUDA_TF32=1 or 0 forces it on or off. The labels are the float64 argmin either way
 * on the tensor-core path, the fp32 kernel's (ties within fp32 rounding) otherwise.
 */
bool useTensorCores(int k, int d) {
  if (const char* env = std::getenv("SEGTENSOR_CUDA_TF32")) return env[0] == '1';
  return k >= 512 && d >= 32;
}

/**
 * Dynamic shared memory `kernel` may take, at most `cap`: the device's opt-in limit per block
 * less the kernel's static shared memory (99 KiB a block in all on sm_86/sm_89, which run the
 * sm_80 image; more on sm_80 and sm_90). The kernel's limit is raised to it once; cached per
 * kernel.
 */
template <class K>
const char* dynamicShared(K kernel, size_t cap, size_t* out) {
  static std::vector<std::pair<const void*, size_t>> known;
  for (const auto& e : known)
    if (e.first == (const void*)kernel) {
      *out = e.second;
      return nullptr;
    }
  int dev = 0, optin = 0;
  SEG_TRY("cudaGetDevice", cudaGetDevice(&dev));
  SEG_TRY("shared memory limit", cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  cudaFuncAttributes attr;
  SEG_TRY("shared memory limit", cudaFuncGetAttributes(&attr, kernel));
  const size_t room = (size_t)optin > attr.sharedSizeBytes + 1024 ? (size_t)optin - attr.sharedSizeBytes - 1024 : 0;
  const size_t budget = room < cap ? room : cap;
  if (budget > 0) SEG_TRY("shared memory limit", cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)budget));
  known.emplace_back((const void*)kernel, budget);
  *out = budget;
  return nullptr;
}

/** Dynamic shared memory both on-chip tensor-core kernels may take (the rows' tile lives there). */
const char* onChipRoom(size_t* room) {
  size_t a = 0, b = 0;
  const char* err = dynamicShared(assignTcKernel<kGlobalSums, true>, (size_t)-1, &a);
  if (!err) err = dynamicShared(assignTcKernel<kNoSums, true>, (size_t)-1, &b);
  *room = a < b ? a : b;
  return err;
}

/**
 * Zeroes the sums' accumulator words for k labels and picks how `kernel`'s blocks add into them
 * (kernel: the kSharedSums instance that would run): their own copy in shared memory where it
 * fits, else straight into the global words.
 */
template <class K>
const char* startSums(SegCudaData* h, int k, K kernel, int* mode) {
  const size_t nWords = (size_t)k * (h->d + 1) * 2;
  const char* err = h->words.ensure(nWords);
  if (err) return err;
  if ((err = h->sumOut.ensure((size_t)k * h->d + k))) return err;
  SEG_TRY("segment sums", cudaMemset(h->words.p, 0, sizeof(uint64_t) * nWords));
  size_t budget = 0;
  if ((err = dynamicShared(kernel, (size_t)kSharedFixedBytes, &budget))) return err;
  *mode = sharedWordBytes(k, h->d) <= budget ? kSharedSums : kGlobalSums;
  return nullptr;
}

/**
 * Blocks for a fused or sums kernel over nTiles tiles: as many as the device runs at once (each
 * walks tiles), so a block's shared words are added to the global ones once per block, not once
 * per tile. The count does not change the result (integer sums).
 */
template <class K>
unsigned sumGrid(K kernel, size_t sharedBytes, int64_t nTiles) {
  int dev = 0, sms = 1, perSm = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, kRows, sharedBytes);
  const int64_t blocks = (int64_t)sms * (perSm < 1 ? 1 : perSm);
  return (unsigned)(nTiles < blocks ? nTiles : blocks);
}

/** The accumulated words as float64 sums (k·d) and counts (k), through sumOut. */
const char* finishSums(SegCudaData* h, int k, double* sums, double* counts) {
  const int d = h->d;
  const int64_t per = (int64_t)k * d + k;
  fixedFinishKernel<<<(unsigned)((per + 255) / 256), 256>>>(h->words.p, h->scale.p, h->shift.p, d, k, h->sumOut.p);
  SEG_TRY("segment sums kernel", cudaGetLastError());
  SEG_TRY("segment sums", cudaMemcpy(sums, h->sumOut.p, sizeof(double) * k * d, cudaMemcpyDeviceToHost));
  SEG_TRY("segment sums", cudaMemcpy(counts, h->sumOut.p + (int64_t)k * d, sizeof(double) * k, cudaMemcpyDeviceToHost));
  return nullptr;
}

SeedParams seedParams(SegCudaData* h) {
  return SeedParams{h->x.p, h->w.p, h->seedClosest.p, h->seedBlockSum.p, h->seedPrefix.p, h->seedKeep.p, h->n, h->d};
}

/** Block sums and their prefix from closest; *total = the last prefix (φ). */
const char* seedSums(SegCudaData* h, double* total) {
  const SeedParams p = seedParams(h);
  const int64_t nb = seedBlocks(h->n);
  *total = 0;
  if (nb == 0) return nullptr;
  seedBlockSumKernel<<<(unsigned)((nb + 127) / 128), 128>>>(p);
  seedPrefixKernel<<<1, 1>>>(p);
  SEG_TRY("seeding kernel", cudaGetLastError());
  SEG_TRY("seeding", cudaMemcpy(total, h->seedPrefix.p + nb - 1, sizeof(double), cudaMemcpyDeviceToHost));
  return nullptr;
}

}  // namespace

extern "C" {

/** The probe's test launch: a kernel from this module's images runs and writes its answer. */
__global__ void probeKernel(int* out) { *out = 42; }

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
  // A compute capability is not enough: the module must hold an image this GPU runs (SASS for
  // its architecture, or PTX the driver can compile). One launch says so for every kernel here.
  int* answer = nullptr;
  SEG_TRY("cudaMalloc", cudaMalloc(&answer, sizeof(int)));
  probeKernel<<<1, 1>>>(answer);
  cudaError_t le = cudaGetLastError();
  if (le == cudaSuccess) le = cudaDeviceSynchronize();
  int got = 0;
  if (le == cudaSuccess) le = cudaMemcpy(&got, answer, sizeof got, cudaMemcpyDeviceToHost);
  cudaFree(answer);
  if (le != cudaSuccess || got != 42) {
    cudaGetLastError();
    std::snprintf(gMsg, sizeof gMsg,
                  "%s (compute capability %d.%d) cannot run segtensor's kernels (built for sm_80 and sm_90, with compute_90 PTX): %s",
                  prop.name, prop.major, prop.minor, le != cudaSuccess ? cudaGetErrorString(le) : "a test kernel returned a wrong value");
    return gMsg;
  }
  std::snprintf(name, nameLen, "%s", prop.name);
  SEG_TRY("cudaMemGetInfo", cudaMemGetInfo(freeBytes, totalBytes));
  return nullptr;
}

const char* seg_cuda_upload(const float* x, int64_t n, int d, const float* weights, const float* shift,
                            SegCudaData** out) {
  // Owned here until it is handed out, so no early return (a failed cudaMemGetInfo included)
  // leaks it or its device buffers.
  std::unique_ptr<SegCudaData> h(new SegCudaData());
  h->n = n;
  h->d = d;
  // Resident when x, the per-row buffers and a reserve fit in free memory; streamed otherwise,
  // or when SEGTENSOR_CUDA_STREAM_ROWS asks for it. The reserve: the mixture steps' partials
  // (partialBudget: 1/16 of the device, at most 4 GiB) and 256 MiB for the per-call buffers (the
  // segment sums' words are k·(d + 1)·16 bytes). It was 1/8 of the device, 10 GB on an 80 GB
  // card, sized for float64 chunk partials the fixed-point sums no longer need; with it a table
  // streamed when too little was free left two-chunk buffers of the minimum size.
  size_t freeB = 0, totalB = 0;
  SEG_TRY("cudaMemGetInfo", cudaMemGetInfo(&freeB, &totalB));
  const size_t perRow = (weights ? 4 : 0) + 2 * (sizeof(int32_t) + sizeof(float));
  const size_t partials = totalB / 16 < ((size_t)4 << 30) ? totalB / 16 : ((size_t)4 << 30);
  const size_t fixed = (size_t)n * perRow + partials + ((size_t)256 << 20);
  const size_t xBytes = (size_t)n * d * sizeof(float);
  const bool stream = std::getenv("SEGTENSOR_CUDA_STREAM_ROWS") || fixed + xBytes > freeB;
  const char* err = nullptr;
  if (stream) {
    h->streamRows = streamRowsFor(d, freeB > fixed ? freeB - fixed : 0);
    h->hostX = x;
    for (int b = 0; b < 2 && !err; ++b) err = h->xChunk[b].alloc((size_t)h->streamRows * d);
    for (int b = 0; b < 2 && !err; ++b) {
      const cudaError_t e = cudaStreamCreate(&h->streams[b]);
      if (e != cudaSuccess) err = fail("cudaStreamCreate", e);
    }
    // Pinned staging, when the host grants it (else pageable copies: correct, without overlap).
    for (int b = 0; b < 2 && !err; ++b) {
      void* p = nullptr;
      if (cudaHostAlloc(&p, sizeof(float) * (size_t)h->streamRows * d, cudaHostAllocDefault) != cudaSuccess ||
          cudaEventCreateWithFlags(&h->copied[b], cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        if (p) cudaFreeHost(p);
        for (int q = 0; q < 2; ++q) {
          if (h->pinned[q]) cudaFreeHost(h->pinned[q]);
          h->pinned[q] = nullptr;
        }
        break;
      }
      h->pinned[b] = static_cast<float*>(p);
    }
  } else {
    err = h->x.alloc((size_t)n * d);
  }
  if (!err && weights) err = h->w.alloc(n);
  if (!err) err = h->shift.alloc(d);
  if (!err) err = h->scale.alloc((size_t)d + 1);
  if (!err) err = h->dist[0].alloc(n);
  if (!err) err = h->dist[1].alloc(n);
  if (!err) err = h->labels[0].alloc(n);
  if (!err) err = h->labels[1].alloc(n);
  if (err) return err;
  cudaError_t e = stream ? cudaSuccess : cudaMemcpy(h->x.p, x, sizeof(float) * n * d, cudaMemcpyHostToDevice);
  if (e == cudaSuccess && weights) e = cudaMemcpy(h->w.p, weights, sizeof(float) * n, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(h->shift.p, shift, sizeof(float) * d, cudaMemcpyHostToDevice);
  // The sums' units depend only on the data (its largest values and row count): every call,
  // resident or streamed, adds the same integers.
  std::vector<FixedScale> scale((size_t)d + 1);
  fixedScales(x, weights, shift, n, d, scale.data());
  if (e == cudaSuccess) e = cudaMemcpy(h->scale.p, scale.data(), sizeof(FixedScale) * (d + 1), cudaMemcpyHostToDevice);
  if (e != cudaSuccess) return fail("upload", e);
  h->hostShift.assign(shift, shift + d);
  h->deviceBytes = totalB;
  *out = h.release();
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
                            int32_t* labels, float* dist, double* inertia, int64_t* changed, int64_t* gen, double* sums,
                            double* counts) {
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
  // The slot's old generation is gone from here on: if this call fails half-way, its slot must
  // not claim to hold it (seg_cuda_resident would answer for overwritten labels).
  h->slotGen[slot] = -1;
  const bool fused = sums && counts;
  const bool tc = useTensorCores(k, d);
  int mode = kNoSums;
  if (fused && (err = tc ? startSums(h, k, assignTcKernel<kSharedSums, false>, &mode) : startSums(h, k, assignKernel<kSharedSums>, &mode)))
    return err;
  // Tensor cores with the rows' tile kept on chip where the device has the shared memory for it
  // (and the sums do not need it for their own words).
  bool onChip = false;
  if (tc && mode != kSharedSums) {
    size_t room = 0;
    if ((err = onChipRoom(&room))) return err;
    onChip = tcOnChipBytes(d) <= room;
  }
  double cMax = 0;
  if (tc) {
    const float* sh = h->hostShift.data();
    for (int j = 0; j < k; ++j) {
      double q = 0;
      for (int f = 0; f < d; ++f) {
        const double t = (double)centroids[(size_t)j * d + f] - (double)sh[f];
        q += t * t;
      }
      if (q > cMax) cMax = q;
    }
    cMax = std::sqrt(cMax);
  }
  err = forEachChunk(h, [&](const float* dX, int64_t r0, int64_t rows, cudaStream_t st) -> const char* {
    const int64_t nb = (rows + kRows - 1) / kRows;  // r0 is a multiple of kRows
    AssignParams p{dX, h->w.p ? h->w.p + r0 : nullptr, dPrev ? dPrev + r0 : nullptr, h->c.p, h->panel.p, h->cc.p,
                   h->shift.p, h->labels[slot].p + r0, h->dist[slot].p + r0, h->blockInertia.p + r0 / kRows,
                   h->blockChanged.p + r0 / kRows, rows, d, k, cMax};
    FixedSumParams fs{dX, h->w.p ? h->w.p + r0 : nullptr, h->shift.p, nullptr, h->scale.p, h->words.p, rows, d, k};
    if (nb == 0) return nullptr;
    const size_t bytes = sharedWordBytes(k, d);
    if (tc && onChip) {
      const size_t rowBytes = tcOnChipBytes(d);
      if (mode == kGlobalSums)
        assignTcKernel<kGlobalSums, true><<<sumGrid(assignTcKernel<kGlobalSums, true>, rowBytes, nb), kRows, rowBytes, st>>>(p, fs, nb);
      else
        assignTcKernel<kNoSums, true><<<(unsigned)nb, kRows, rowBytes, st>>>(p, fs, nb);
    } else if (tc) {
      if (mode == kSharedSums)
        assignTcKernel<kSharedSums, false><<<sumGrid(assignTcKernel<kSharedSums, false>, bytes, nb), kRows, bytes, st>>>(p, fs, nb);
      else if (mode == kGlobalSums)
        assignTcKernel<kGlobalSums, false><<<sumGrid(assignTcKernel<kGlobalSums, false>, 0, nb), kRows, 0, st>>>(p, fs, nb);
      else
        assignTcKernel<kNoSums, false><<<(unsigned)nb, kRows, 0, st>>>(p, fs, nb);
    } else if (mode == kSharedSums) {
      assignKernel<kSharedSums><<<sumGrid(assignKernel<kSharedSums>, bytes, nb), kRows, bytes, st>>>(p, fs, nb);
    } else if (mode == kGlobalSums) {
      assignKernel<kGlobalSums><<<sumGrid(assignKernel<kGlobalSums>, 0, nb), kRows, 0, st>>>(p, fs, nb);
    } else {
      assignKernel<kNoSums><<<(unsigned)nb, kRows, 0, st>>>(p, fs, nb);
    }
    SEG_TRY("assign kernel", cudaGetLastError());
    return nullptr;
  });
  if (err) return err;
  if (fused && (err = finishSums(h, k, sums, counts))) return err;
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
  const int32_t* dLabels = nullptr;
  const char* err = labelsOnDevice(h, labels, gen, &dLabels);
  if (err) return err;
  if (!dLabels) return "segmentSum: no labels";
  int mode = kGlobalSums;
  if ((err = startSums(h, k, fixedSumsKernel<kSharedSums>, &mode))) return err;
  err = forEachChunk(h, [&](const float* dX, int64_t r0, int64_t rows, cudaStream_t st) -> const char* {
    const int64_t nb = (rows + kRows - 1) / kRows;  // r0 is a multiple of kRows
    FixedSumParams fs{dX, h->w.p ? h->w.p + r0 : nullptr, h->shift.p, dLabels + r0, h->scale.p, h->words.p, rows, d, k};
    if (nb == 0) return nullptr;
    if (mode == kSharedSums)
      {
      const size_t bytes = sharedWordBytes(k, d);
      fixedSumsKernel<kSharedSums><<<sumGrid(fixedSumsKernel<kSharedSums>, bytes, nb), kRows, bytes, st>>>(fs, nb);
    }
    else
      fixedSumsKernel<kGlobalSums><<<sumGrid(fixedSumsKernel<kGlobalSums>, 0, nb), kRows, 0, st>>>(fs, nb);
    SEG_TRY("segmentSum kernel", cudaGetLastError());
    return nullptr;
  });
  if (err) return err;
  return finishSums(h, k, sums, counts);
}

const char* seg_cuda_distances(SegCudaData* h, const float* centers, int m, float* out) {
  // The handle's buffers, grown when needed: no cudaMalloc/cudaFree (each a device-wide
  // synchronisation) per k-means++ step.
  DevBuf<float>& dC = h->seedCenters;
  DevBuf<float>* dOut = h->seedOut;
  const char* err = nullptr;
  const int64_t chunk = h->streamRows ? h->streamRows : h->n;
  if ((err = dC.ensure((size_t)m * h->d))) return err;
  for (int b = 0; b < (h->streamRows ? 2 : 1); ++b)
    if ((err = dOut[b].ensure((size_t)chunk * m))) return err;
  SEG_TRY("distances", cudaMemcpy(dC.p, centers, sizeof(float) * m * h->d, cudaMemcpyHostToDevice));
  return forEachChunk(h, [&](const float* dX, int64_t r0, int64_t rows, cudaStream_t st) -> const char* {
    float* o = dOut[h->streamRows ? (r0 / chunk) & 1 : 0].p;
    if (rows > 0) distancesKernel<<<(unsigned)((rows + 255) / 256), 256, 0, st>>>(dX, rows, h->d, dC.p, m, o);
    SEG_TRY("distances kernel", cudaGetLastError());
    SEG_TRY("distances", cudaMemcpyAsync(out + r0 * m, o, sizeof(float) * rows * m, cudaMemcpyDeviceToHost, st));
    return nullptr;
  });
}

const char* seg_cuda_potentials(SegCudaData* h, const float* closest, const float* cands, int m, double* out) {
  const int64_t n = h->n;
  const int d = h->d;
  const int64_t nBlocks = (n + kPotRows - 1) / kPotRows;
  for (int j = 0; j < m; ++j) out[j] = 0;
  if (nBlocks == 0) return nullptr;
  // The handle's buffers, grown when needed (see seg_cuda_distances).
  DevBuf<float>& dClosest = h->seedClosest;
  DevBuf<float>& dCands = h->seedCenters;
  DevBuf<double>& dBlock = h->seedBlocks;
  const char* err = nullptr;
  if ((err = dClosest.ensure(n))) return err;
  if ((err = dCands.ensure((size_t)m * d))) return err;
  if ((err = dBlock.ensure((size_t)nBlocks * m))) return err;
  SEG_TRY("potentials", cudaMemcpy(dClosest.p, closest, sizeof(float) * n, cudaMemcpyHostToDevice));
  SEG_TRY("potentials", cudaMemcpy(dCands.p, cands, sizeof(float) * m * d, cudaMemcpyHostToDevice));
  err = forEachChunk(h, [&](const float* dX, int64_t r0, int64_t rows, cudaStream_t st) -> const char* {
    const int64_t nb = (rows + kPotRows - 1) / kPotRows;  // r0 is a multiple of kPotRows
    PotentialParams p{dX, h->w.p ? h->w.p + r0 : nullptr, dClosest.p + r0, dCands.p, dBlock.p + (r0 / kPotRows) * m,
                      rows, d, m};
    if (nb > 0) potentialsKernel<<<(unsigned)nb, kPotThreads, 0, st>>>(p);
    SEG_TRY("potentials kernel", cudaGetLastError());
    return nullptr;
  });
  if (err) return err;
  std::vector<double> part((size_t)nBlocks * m);
  SEG_TRY("potentials", cudaMemcpy(part.data(), dBlock.p, sizeof(double) * part.size(), cudaMemcpyDeviceToHost));
  for (int64_t b = 0; b < nBlocks; ++b)  // block order: deterministic
    for (int j = 0; j < m; ++j) out[j] += part[(size_t)b * m + j];
  return nullptr;
}

const char* seg_cuda_cluster_sums(SegCudaData* h, const float* xHost, const int32_t* labels, int k, int64_t r0, int64_t r1,
                                  double* out) {
  const int64_t n = h->n;
  const int d = h->d;
  if (n == 0 || r1 <= r0) return nullptr;
  const int64_t nRows = r1 - r0;
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
  DevBuf<float> dCols, dX;
  DevBuf<int32_t> dLabel;
  DevBuf<double> dOut;
  const char* err = nullptr;
  // Streamed data: the rows themselves go up too (the silhouette runs on a sample).
  const float* rowsOnDevice = h->x.p;
  if (h->streamRows) {
    if ((err = dX.alloc((size_t)n * d))) return err;
    SEG_TRY("clusterDistanceSums", cudaMemcpy(dX.p, xHost, sizeof(float) * n * d, cudaMemcpyHostToDevice));
    rowsOnDevice = dX.p;
  }
  if ((err = dCols.alloc((size_t)n * d))) return err;
  if ((err = dLabel.alloc(n))) return err;
  if ((err = dOut.alloc((size_t)nRows * k))) return err;
  SEG_TRY("clusterDistanceSums", cudaMemcpy(dCols.p, cols.data(), sizeof(float) * n * d, cudaMemcpyHostToDevice));
  SEG_TRY("clusterDistanceSums", cudaMemcpy(dLabel.p, colLabel.data(), sizeof(int32_t) * n, cudaMemcpyHostToDevice));
  SEG_TRY("clusterDistanceSums", cudaMemset(dOut.p, 0, sizeof(double) * nRows * k));
  ClusterSumParams p{rowsOnDevice + r0 * d, dCols.p, dLabel.p, dOut.p, n, d, k, nRows};
  clusterSumsKernel<<<(unsigned)((nRows + kRows - 1) / kRows), kRows>>>(p);
  SEG_TRY("clusterDistanceSums kernel", cudaGetLastError());
  SEG_TRY("clusterDistanceSums", cudaMemcpy(out, dOut.p, sizeof(double) * nRows * k, cudaMemcpyDeviceToHost));
  return nullptr;
}

const char* seg_cuda_project(SegCudaData* h, const float* w, int m, int64_t r0, int64_t r1, float* out) {
  const int d = h->d;
  const int64_t n = r1 - r0;
  if (n <= 0) return nullptr;
  // Resident: one output buffer for the range; streamed: one per chunk buffer, copied back
  // on the chunk's stream.
  const int64_t chunk = h->streamRows ? softStreamRows(h, m) : n;
  DevBuf<float> dW, dOut[2];
  const char* err = nullptr;
  if ((err = dW.alloc((size_t)d * m))) return err;
  for (int b = 0; b < (h->streamRows ? 2 : 1); ++b)
    if ((err = dOut[b].alloc((size_t)chunk * m))) return err;
  SEG_TRY("project", cudaMemcpy(dW.p, w, sizeof(float) * d * m, cudaMemcpyHostToDevice));
  return forEachChunkIn(h, r0, r1, chunk, [&](const float* dX, int64_t c0, int64_t rows, cudaStream_t st) -> const char* {
    if (rows == 0) return nullptr;
    float* o = dOut[h->streamRows ? ((c0 - r0) / chunk) & 1 : 0].p;
    ProjectParams p{dX, dW.p, o, rows, d, m};
    const dim3 grid((unsigned)((rows + kRows - 1) / kRows), (unsigned)((m + kTileC - 1) / kTileC));
    projectKernel<<<grid, kRows, 0, st>>>(p);
    SEG_TRY("project kernel", cudaGetLastError());
    SEG_TRY("project", cudaMemcpyAsync(out + (c0 - r0) * m, o, sizeof(float) * rows * m, cudaMemcpyDeviceToHost, st));
    return nullptr;
  });
}

const char* seg_cuda_soft_sums(SegCudaData* h, const float* r, int m, int64_t r0, int64_t r1, double* sums, double* counts) {
  const int d = h->d;
  const int64_t per = softSumOutputs(d, m);
  const char* err = softPass(h, r, m, nullptr, r0, r1, per, [](const SoftParams& p, dim3 grid, cudaStream_t st) {
    softSumsKernel<<<grid, kSoftThreads, 0, st>>>(p);
  });
  if (err) return err;
  SEG_TRY("softSums", cudaMemcpy(sums, h->sumOut.p, sizeof(double) * m * d, cudaMemcpyDeviceToHost));
  SEG_TRY("softSums", cudaMemcpy(counts, h->sumOut.p + (int64_t)m * d, sizeof(double) * m, cudaMemcpyDeviceToHost));
  return nullptr;
}

const char* seg_cuda_scatter(SegCudaData* h, const float* r, int m, const double* means, int64_t r0, int64_t r1,
                             double* out) {
  const int d = h->d;
  const int64_t pairs = scatterPairs(d);
  const int64_t per = (int64_t)m * pairs;
  DevBuf<double> dMeans;
  const char* err = dMeans.alloc((size_t)m * d);
  if (err) return err;
  SEG_TRY("scatter", cudaMemcpy(dMeans.p, means, sizeof(double) * m * d, cudaMemcpyHostToDevice));
  err = softPass(h, r, m, dMeans.p, r0, r1, per, [](const SoftParams& p, dim3 grid, cudaStream_t st) {
    scatterKernel<<<grid, kSoftThreads, 0, st>>>(p);
  });
  if (err) return err;
  std::vector<double> tri((size_t)per);
  SEG_TRY("scatter", cudaMemcpy(tri.data(), h->sumOut.p, sizeof(double) * per, cudaMemcpyDeviceToHost));
  // Upper triangles, row by row, mirrored: each matrix is exactly symmetric.
  for (int j = 0; j < m; ++j) {
    double* o = out + (size_t)j * d * d;
    const double* t = tri.data() + (size_t)j * pairs;
    for (int a = 0; a < d; ++a)
      for (int b = a; b < d; ++b) o[(size_t)a * d + b] = o[(size_t)b * d + a] = *t++;
  }
  return nullptr;
}

/** 1 when the rows stay on the host and stream through the device (no device k-means++). */
int seg_cuda_streamed(SegCudaData* h) { return h->streamRows != 0; }

const char* seg_cuda_seed_start(SegCudaData* h, const float* center, int trials, double* total) {
  if (h->streamRows) return "seeding on the device needs the rows resident";
  const int64_t n = h->n, nb = seedBlocks(n), nPot = (n + kPotRows - 1) / kPotRows;
  h->seeded = false;
  h->seedM = 0;
  h->seedCap = 0;
  // Every buffer of the seeding, for up to `trials` candidates a step: out of memory here or never.
  const char* err = nullptr;
  if ((err = h->seedClosest.ensure(n))) return err;
  if ((err = h->seedBlockSum.ensure(nb))) return err;
  if ((err = h->seedPrefix.ensure(nb))) return err;
  if ((err = h->seedCenters.ensure((size_t)trials * h->d))) return err;
  if ((err = h->seedKeep.ensure((size_t)trials * n))) return err;
  if ((err = h->seedBlocks.ensure((size_t)(nPot > 0 ? nPot : 1) * trials))) return err;
  if ((err = h->seedPotOut.ensure(trials))) return err;
  if ((err = h->seedTargets.ensure(trials))) return err;
  if ((err = h->seedRows.ensure(trials))) return err;
  SEG_TRY("seeding", cudaMemcpy(h->seedCenters.p, center, sizeof(float) * h->d, cudaMemcpyHostToDevice));
  if (n > 0) seedFirstKernel<<<(unsigned)((n + 255) / 256), 256>>>(seedParams(h), h->seedCenters.p);
  SEG_TRY("seeding kernel", cudaGetLastError());
  h->seedCap = trials;
  h->seeded = true;
  return seedSums(h, total);
}

const char* seg_cuda_seed_draw(SegCudaData* h, const double* targets, int m, int32_t* rows) {
  if (!h->seeded) return "seedDraw: call seedStart first";
  if (m > h->seedCap) return "seedDraw: more targets than seedStart's trials";
  SEG_TRY("seeding", cudaMemcpy(h->seedTargets.p, targets, sizeof(double) * m, cudaMemcpyHostToDevice));
  seedDrawKernel<<<(unsigned)((m + 63) / 64), 64>>>(seedParams(h), h->seedTargets.p, m, h->seedRows.p);
  SEG_TRY("seeding kernel", cudaGetLastError());
  SEG_TRY("seeding", cudaMemcpy(rows, h->seedRows.p, sizeof(int32_t) * m, cudaMemcpyDeviceToHost));
  return nullptr;
}

const char* seg_cuda_seed_potentials(SegCudaData* h, const float* cands, int m, double* out) {
  if (!h->seeded) return "seedPotentials: call seedStart first";
  if (m > h->seedCap) return "seedPotentials: more candidates than seedStart's trials";
  const int64_t n = h->n;
  const int64_t nBlocks = (n + kPotRows - 1) / kPotRows;
  SEG_TRY("seeding", cudaMemcpy(h->seedCenters.p, cands, sizeof(float) * m * h->d, cudaMemcpyHostToDevice));
  h->seedM = 0;  // the kept columns are being overwritten
  if (nBlocks > 0) seedPotentialsKernel<<<(unsigned)nBlocks, kPotThreads>>>(seedParams(h), h->seedCenters.p, m, h->seedBlocks.p);
  SEG_TRY("seeding kernel", cudaGetLastError());
  reduceChunksKernel<<<(unsigned)((m + 255) / 256), 256>>>(h->seedBlocks.p, nBlocks, m, h->seedPotOut.p);
  SEG_TRY("seeding kernel", cudaGetLastError());
  SEG_TRY("seeding", cudaMemcpy(out, h->seedPotOut.p, sizeof(double) * m, cudaMemcpyDeviceToHost));
  h->seedM = m;
  return nullptr;
}

const char* seg_cuda_seed_take(SegCudaData* h, int j, double* total) {
  if (j < 0 || j >= h->seedM) return "seedTake: j must name a candidate of the last seedPotentials call";
  const int64_t n = h->n;
  if (n > 0) seedTakeKernel<<<(unsigned)((n + 255) / 256), 256>>>(seedParams(h), h->seedKeep.p + (int64_t)j * n);
  SEG_TRY("seeding kernel", cudaGetLastError());
  return seedSums(h, total);
}

const char* seg_cuda_radius(SegCudaData* h, int64_t q0, int64_t q1, int64_t c0, int64_t c1, double eps2,
                            const int32_t* offsets, double* counts, int32_t* found, int32_t* indices, int64_t* rechecked) {
  if (h->streamRows) return "radiusNeighbours on the device needs the rows resident";
  const int64_t nq = q1 - q0;
  *rechecked = 0;
  if (nq <= 0) return nullptr;
  const bool list = offsets != nullptr;
  DevBuf<double> dCounts;
  DevBuf<int32_t> dFound, dOffsets, dIndices;
  DevBuf<int64_t> dRech;
  const char* err = nullptr;
  if ((err = dCounts.alloc(nq))) return err;
  if ((err = dRech.alloc(nq))) return err;
  if (list) {
    if ((err = dOffsets.alloc(nq + 1))) return err;
    if (offsets[nq] > 0 && (err = dIndices.alloc(offsets[nq]))) return err;
    SEG_TRY("radius", cudaMemcpy(dOffsets.p, offsets, sizeof(int32_t) * (nq + 1), cudaMemcpyHostToDevice));
  } else if ((err = dFound.alloc(nq))) {
    return err;
  }
  RadiusParams p{h->x.p, h->w.p, c1, h->d, q0, nq, eps2, 0, 0, dCounts.p, list ? nullptr : dFound.p,
                 list ? dOffsets.p : nullptr, list ? dIndices.p : nullptr, dRech.p, c0};
  radiusBounds(eps2, h->d, &p.lo, &p.hi);
  // Columns indexed from row 0, bounded by c1: tiles start at c0.
  ClusterSumParams cp{h->x.p + q0 * h->d, h->x.p, nullptr, nullptr, c1, h->d, 0, nq};
  radiusKernel<<<(unsigned)((nq + kRows - 1) / kRows), kRows>>>(p, cp);
  SEG_TRY("radius kernel", cudaGetLastError());
  SEG_TRY("radius", cudaMemcpy(counts, dCounts.p, sizeof(double) * nq, cudaMemcpyDeviceToHost));
  if (list && offsets[nq] > 0)
    SEG_TRY("radius", cudaMemcpy(indices, dIndices.p, sizeof(int32_t) * offsets[nq], cudaMemcpyDeviceToHost));
  if (!list) SEG_TRY("radius", cudaMemcpy(found, dFound.p, sizeof(int32_t) * nq, cudaMemcpyDeviceToHost));
  std::vector<int64_t> rech(nq);
  SEG_TRY("radius", cudaMemcpy(rech.data(), dRech.p, sizeof(int64_t) * nq, cudaMemcpyDeviceToHost));
  for (int64_t v : rech) *rechecked += v;
  return nullptr;
}

}  // extern "C"

