// Silhouette sums (clusterSumRows): each row's Euclidean distances to every column of a
// label-sorted panel, added per label in a fixed column order.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

/**
 * A cluster's run of uniform tiles is summed per lane in float32 and moved to the float64
 * output every kFlushTiles tiles (and at the run's end), so no float32 sum has more than
 * kFlushTiles terms.
 */
constexpr int kFlushTiles = 64;

/** Rows per register group in clusterSumRows. */
constexpr int kClusterR = 8;

/**
 * Tiles [t0, t1) for the rows [row0, row0 + nr) (nr ≤ kClusterR; missing rows repeat the last
 * one and are not written). `run` holds each row's float32 partial of the current cluster; the
 * run state (curL, cnt) depends only on the column labels, so every group of a task goes
 * through the same states.
 */
void clusterGroup(const ClusterSumsJob& job, size_t row0, int nr, vf* run, int t0, int t1,
                  int* curLio, int* cntIo) {
  constexpr int R = kClusterR;
  const int d = job.d, k = job.k;
  const float* xr[R];
  double* o[R];
  for (int r = 0; r < R; ++r) {
    const size_t row = row0 + (size_t)(r < nr ? r : nr - 1);
    xr[r] = job.x + row * d;
    o[r] = job.out + row * k;
  }
  vf rr[R];
  for (int r = 0; r < R; ++r) rr[r] = run[r];
  int curL = *curLio, cnt = *cntIo;
  for (int t = t0; t < t1; ++t) {
    const float* __restrict p = job.panel + (size_t)t * d * W;
    // Direct differences, not the ‖x‖² − 2x·y + ‖y‖² expansion: twice the arithmetic, but
    // near-duplicate rows give 0 rather than the square root of a rounding error.
    vf acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = vf{};
    for (int f = 0; f < d; ++f) {
      const vf c = loadf(p + (size_t)f * W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const vf u = xr[r][f] - c;
        acc[r] += u * u;
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = sqrtLanes(acc[r]);
    const int32_t* lab = job.colLabel + (size_t)t * W;
    if (job.uniform[t]) {
      const int L = lab[0];
      if (L != curL || cnt == kFlushTiles) {
        if (curL >= 0)
          for (int r = 0; r < nr; ++r) o[r][curL] += sumLanes(rr[r]);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) rr[r] = vf{};
        curL = L;
        cnt = 0;
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) rr[r] += acc[r];
      ++cnt;
    } else {
      if (curL >= 0) {
        for (int r = 0; r < nr; ++r) o[r][curL] += sumLanes(rr[r]);
        for (int r = 0; r < R; ++r) rr[r] = vf{};
      }
      curL = -1;
      cnt = 0;
      for (int r = 0; r < nr; ++r)
        for (int l = 0; l < W; ++l)
          if (lab[l] >= 0) o[r][lab[l]] += (double)acc[r][l];
    }
  }
  for (int r = 0; r < R; ++r) run[r] = rr[r];
  *curLio = curL;
  *cntIo = cnt;
}

void clusterSumRows(const ClusterSumsJob& job, size_t r0, size_t r1, void* scratch) {
  constexpr int R = kClusterR;
  vf* run = (vf*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  const size_t nRowsPad = roundUp(r1 - r0, R);
  for (size_t i = 0; i < nRowsPad; ++i) run[i] = vf{};
  // Column chunks of ~256 KiB of panel, reused by every row group of the task from L2.
  const size_t tileBytes = (size_t)job.d * W * 4;
  int chunk = (int)((256u << 10) / tileBytes);
  if (chunk < 1) chunk = 1;
  int curL = -1, cnt = 0;
  for (int t0 = 0; t0 < job.nTiles; t0 += chunk) {
    const int t1 = t0 + chunk < job.nTiles ? t0 + chunk : job.nTiles;
    int endL = curL, endCnt = cnt;
    for (size_t g = r0; g < r1; g += R) {
      int l = curL, c = cnt;
      const int nr = (int)((r1 - g) < (size_t)R ? (r1 - g) : (size_t)R);
      clusterGroup(job, g, nr, run + (g - r0), t0, t1, &l, &c);
      endL = l;
      endCnt = c;
    }
    curL = endL;
    cnt = endCnt;
  }
  if (curL >= 0)
    for (size_t row = r0; row < r1; ++row) job.out[row * job.k + curL] += sumLanes(run[row - r0]);
}

}  // namespace
}  // namespace seg
