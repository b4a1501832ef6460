// The CUDA kernels' arithmetic, written as per-thread phase functions so that the same code
// runs on the GPU (kernels.cu, phases separated by __syncthreads) and on the CPU (emulate.cc,
// which runs each phase for every thread of a block in turn). A test compiles the CPU
// emulation with g++ and checks it against a float64 brute force, so the tiling, padding,
// tie-breaking and fixed-order reductions are verified on machines without a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/scoring.h"

#ifdef __CUDACC__
#define SEG_HD __host__ __device__ __forceinline__
#else
#define SEG_HD inline
#endif

namespace segcuda {

/** Threads (= rows) per assignment block. */
constexpr int kRows = 128;
/** Centroids per shared-memory tile: each thread keeps this many dot products in registers. */
constexpr int kTileC = 32;
/** Features per shared-memory chunk; d up to any size is covered by looping over chunks. */
constexpr int kTileD = 32;
/** Shared floats: the row tile (transposed, padded against bank conflicts) and the centroid tile. */
constexpr int kXsFloats = kTileD * (kRows + 1);
constexpr int kCsFloats = kTileC * kTileD;

struct AssignParams {
  const float* x;        // n × d
  const float* weights;  // n or null
  const int32_t* prev;   // n or null
  const float* centroids;  // k × d, original coordinates (exact recompute)
  const float* panel;    // d × k, feature-major: panel[f·k + j] = −2(c_j − shift)_f
  const float* cc;       // k: ‖c − shift‖²
  const float* shift;    // d
  int32_t* labels;       // out n
  float* dist;           // out n
  double* blockInertia;  // out, one per block
  int64_t* blockChanged; // out, one per block
  int64_t n;
  int d;
  int k;
  /** max ‖c − shift‖ over the centroids: the tensor-core path's error bound (tc.cuh). */
  double cMax = 0;
};

/**
 * Phase 1 (all threads): stage rows [block·kRows, +kRows) × features [f0, f0 + kTileD) into xs,
 * shifted and transposed (xs[f][r]), and centroids [j0, j0 + kTileC) × the same features into
 * cs, feature-major (cs[f][j], from the feature-major panel). Consecutive threads read
 * consecutive features of a row, and consecutive centroids of a feature, so global loads
 * coalesce and shared stores do not conflict. Out of range entries are zero.
 */
SEG_HD void loadTiles(const AssignParams& p, int64_t block, int tid, int j0, int f0, float* xs, float* cs) {
  for (int e = tid; e < kRows * kTileD; e += kRows) {
    const int r = e / kTileD, ff = e % kTileD;
    const int64_t row = block * kRows + r;
    const int f = f0 + ff;
    xs[ff * (kRows + 1) + r] = (row < p.n && f < p.d) ? p.x[row * p.d + f] - p.shift[f] : 0.0f;
  }
  for (int e = tid; e < kTileC * kTileD; e += kRows) {
    const int ff = e / kTileC, jj = e % kTileC;
    const int j = j0 + jj, f = f0 + ff;
    cs[e] = (j < p.k && f < p.d) ? p.panel[(int64_t)f * p.k + j] : 0.0f;
  }
}

/**
 * Phase 2 (each thread, its own row): acc[jj] += x̃ · (−2c̃_jj) over the staged features, in
 * feature order. On the GPU four centroids come per shared load (a broadcast float4), so the
 * loop is bound by the FMAs rather than by shared-memory loads.
 */
SEG_HD void accumulateTile(int tid, const float* xs, const float* cs, float* acc) {
  static_assert(kTileC % 4 == 0, "float4 loads");
  for (int ff = 0; ff < kTileD; ++ff) {
    const float xv = xs[ff * (kRows + 1) + tid];
    const float* c = cs + ff * kTileC;
#ifdef __CUDA_ARCH__
#pragma unroll
    for (int jj = 0; jj < kTileC; jj += 4) {
      const float4 c4 = *reinterpret_cast<const float4*>(c + jj);
      acc[jj] += xv * c4.x;
      acc[jj + 1] += xv * c4.y;
      acc[jj + 2] += xv * c4.z;
      acc[jj + 3] += xv * c4.w;
    }
#else
    for (int jj = 0; jj < kTileC; ++jj) acc[jj] += xv * c[jj];
#endif
  }
}

/**
 * Phase 3 (each thread): scores ‖c̃‖² − 2x̃·c̃ for the tile (‖x̃‖² is common to the row and
 * dropped). Tiles come in increasing index order and the comparison is strict, so ties go to
 * the lowest index.
 */
SEG_HD void updateBest(const AssignParams& p, int j0, const float* acc, float* best, int32_t* bestJ) {
  for (int jj = 0; jj < kTileC; ++jj) {
    const int j = j0 + jj;
    if (j < p.k) {
      const float s = p.cc[j] + acc[jj];
      if (s < *best) {
        *best = s;
        *bestJ = j;
      }
    }
  }
}

/** Σ(x − c)², directly and in float64: no cancellation in the reported distance. */
SEG_HD double exactSqDist(const float* x, const float* c, int d) {
  double s = 0;
  for (int f = 0; f < d; ++f) {
    const double t = (double)x[f] - (double)c[f];
    s += t * t;
  }
  return s;
}

/** Phase 4 (each thread): label, exact distance; its inertia and change go to the block's slots. */
SEG_HD void finishRow(const AssignParams& p, int64_t block, int tid, int32_t bestJ, double* inertiaSlot,
                      int64_t* changedSlot) {
  const int64_t row = block * kRows + tid;
  inertiaSlot[tid] = 0;
  changedSlot[tid] = 0;
  if (row >= p.n) return;
  const double dist = exactSqDist(p.x + row * p.d, p.centroids + (int64_t)bestJ * p.d, p.d);
  p.labels[row] = bestJ;
  p.dist[row] = (float)dist;
  inertiaSlot[tid] = (p.weights ? (double)p.weights[row] : 1.0) * dist;
  changedSlot[tid] = p.prev ? (p.prev[row] != bestJ) : 1;
}

/**
 * Phase 5, one step of a fixed tree reduction over the block's slots (stride = kRows/2, …, 1;
 * threads tid < stride add slot tid + stride). Same tree on every device and in the emulation.
 */
SEG_HD void reduceStep(int tid, int stride, double* inertiaSlot, int64_t* changedSlot) {
  if (tid < stride) {
    inertiaSlot[tid] += inertiaSlot[tid + stride];
    changedSlot[tid] += changedSlot[tid + stride];
  }
}

/** Element e of per-block float64 partials (nChunks × per), added in block order (the mixture steps). */
SEG_HD double reduceChunks(const double* partial, int64_t nChunks, int64_t per, int64_t e) {
  double s = 0;
  for (int64_t c = 0; c < nChunks; ++c) s += partial[c * per + e];
  return s;
}

/** Threads per potentials block; each thread covers kPotRowsPerThread rows, strided by the block. */
constexpr int kPotThreads = 256;
constexpr int kPotRowsPerThread = 8;
constexpr int kPotRows = kPotThreads * kPotRowsPerThread;

struct PotentialParams {
  const float* x;        // n × d
  const float* weights;  // n or null
  const float* closest;  // n: squared distance to the nearest center chosen so far
  const float* cands;    // m × d
  double* blockOut;      // out, nBlocks × m: one partial per block and candidate
  int64_t n;
  int d;
  int m;
};

/** Candidates per pass of the potentials kernel: one read of the rows serves all of them. */
constexpr int kPotGroup = 8;

/**
 * Potentials, phase 1 (each thread): acc[j] = Σ w·min(closest, ‖x − c_{j0+j}‖²) for the
 * candidates j0 … j0 + kPotGroup − 1 that exist, over the thread's rows of the block
 * (block·kPotRows + s·kPotThreads + tid, s in order); consecutive threads take consecutive rows.
 */
SEG_HD void potentialThread(const PotentialParams& p, int64_t block, int tid, int j0, double* acc) {
  for (int j = 0; j < kPotGroup; ++j) acc[j] = 0;
  for (int r = 0; r < kPotRowsPerThread; ++r) {
    const int64_t row = block * kPotRows + (int64_t)r * kPotThreads + tid;
    if (row >= p.n) break;
    const double cl = p.closest[row];
    const double w = p.weights ? (double)p.weights[row] : 1.0;
    for (int j = 0; j < kPotGroup; ++j) {
      if (j0 + j >= p.m) break;
      const double q = exactSqDist(p.x + row * p.d, p.cands + (int64_t)(j0 + j) * p.d, p.d);
      acc[j] += w * (q < cl ? q : cl);
    }
  }
}

/** One step of the fixed tree over float64 slots (stride = half the slots, …, 1). */
SEG_HD void reduceDoubleStep(int tid, int stride, double* slot) {
  if (tid < stride) slot[tid] += slot[tid + stride];
}

struct ClusterSumParams {
  const float* x;          // nRows × d, the rows whose sums are computed (a range of the columns' rows)
  const float* cols;       // n × d, all the rows stably sorted by label
  const int32_t* colLabel; // n: label of each sorted column
  double* out;             // out, nRows × k, zeroed: out[i·k + l] = Σ ‖x_i − col‖ over the columns of l
  int64_t n;
  int d;
  int k;
  int64_t nRows;
};

/**
 * Silhouette sums, phase 1 (all threads): rows [block·kRows, +kRows) × features [f0, +kTileD)
 * into xs (transposed, as loadTiles) and columns [c0, c0 + kTileC) × the same features into
 * cs. Out of range entries are zero.
 */
SEG_HD void loadPairTiles(const ClusterSumParams& p, int64_t block, int tid, int64_t c0, int f0, float* xs,
                          float* cs) {
  for (int e = tid; e < kRows * kTileD; e += kRows) {
    const int r = e / kTileD, ff = e % kTileD;
    const int64_t row = block * kRows + r;
    const int f = f0 + ff;
    xs[ff * (kRows + 1) + r] = (row < p.nRows && f < p.d) ? p.x[row * p.d + f] : 0.0f;
  }
  for (int e = tid; e < kTileC * kTileD; e += kRows) {
    const int jj = e / kTileD, ff = e % kTileD;
    const int64_t c = c0 + jj;
    const int f = f0 + ff;
    cs[e] = (c < p.n && f < p.d) ? p.cols[c * p.d + f] : 0.0f;
  }
}

/**
 * Phase 2 (each thread): acc[jj] += (x − col_jj)² over the staged features: direct
 * differences, so equal rows are exactly 0 apart (the row itself included).
 */
SEG_HD void accumulatePairTile(int tid, const float* xs, const float* cs, float* acc) {
  for (int ff = 0; ff < kTileD; ++ff) {
    const float xv = xs[ff * (kRows + 1) + tid];
    for (int jj = 0; jj < kTileC; ++jj) {
      const float t = xv - cs[jj * kTileD + ff];
      acc[jj] += t * t;
    }
  }
}

/**
 * Phase 3 (each thread): the tile's distances added, in column order, to the running sum of
 * the current label; a label's columns are consecutive, so each (row, label) is written once,
 * by its own thread: no atomics, same order on every device.
 */
SEG_HD void finishPairTile(const ClusterSumParams& p, int64_t block, int tid, int64_t c0, const float* acc,
                           int* curL, double* run) {
  const int64_t row = block * kRows + tid;
  for (int jj = 0; jj < kTileC; ++jj) {
    const int64_t c = c0 + jj;
    if (c >= p.n) break;
    const int l = p.colLabel[c];
    if (l != *curL) {
      if (*curL >= 0 && row < p.nRows) p.out[row * p.k + *curL] = *run;
      *curL = l;
      *run = 0;
    }
    *run += sqrt((double)acc[jj]);
  }
}

/** Phase 4 (each thread): the last label's sum. */
SEG_HD void finishPairRow(const ClusterSumParams& p, int64_t block, int tid, int curL, double run) {
  const int64_t row = block * kRows + tid;
  if (curL >= 0 && row < p.nRows) p.out[row * p.k + curL] = run;
}

}  // namespace segcuda

namespace segcuda {

/**
 * Host: panel = −2(c − shift), feature-major (panel[f·k + j], so a tile of centroids is a
 * coalesced read), and cc = ‖c − shift‖²: the CPU kernels' packing with one tile of k centroids.
 */
inline void packCentroids(const float* c, int k, int d, const float* shift, float* panel, float* cc) {
  seg::scoring::packCentroidTiles(c, k, d, shift, k, panel, cc);
}

}  // namespace segcuda
