// The general assignment (any k): rows in blocks, shifted into scratch and scored against tiles
// of VW·W centroids by register-blocked micro-tiles of ‖c̃‖² − 2x̃·c̃, then each winner's exact
// distance and the fused sums; with the tile geometry and centroid packing every path shares.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "../../common/scoring.h"
#include "reductions.h"

namespace seg {
namespace {

/** Vectors per centroid tile: one or two for small k (no wasted lanes), SEG_MAX_VW beyond. */
inline int vectorsFor(int k) {
  // Three vectors where the register file allows (AVX-512): 2W < k ≤ 3W scores 3W centroids
  // per tile rather than 4W.
  return k <= W ? 1 : k <= 2 * W ? 2 : (SEG_MAX_VW >= 4 && k <= 3 * W) ? 3 : SEG_MAX_VW;
}

/** Rows per micro-tile: as many accumulators as the register file holds with the tile's vectors. */
inline int rowsFor(int vw) { return vw == 1 ? 8 : vw == 2 ? 6 : vw == 3 ? 8 : 6; }

int tileWidth(int k) { return vectorsFor(k) * W; }

/**
 * Rows per row block: the shifted copy of the block (rows × d floats) should stay in L1 when
 * the centroid panel is small, and in L2 when it is big, since the whole panel is streamed once
 * per row block.
 */
int blockRows(int d, int k) {
  const int r = rowsFor(vectorsFor(k));
  const size_t panelBytes = (size_t)roundUp(k, tileWidth(k)) * d * 4;
  const size_t target = panelBytes > (256u << 10) ? (256u << 10) : (32u << 10);
  size_t rows = target / (4 * (size_t)d);
  if (rows > 1024) rows = 1024;
  rows = rows / r * r;
  return rows < (size_t)r ? r : (int)rows;
}

/** Lowest index among the lanes holding the minimum (lane = index when there is one vector). */
inline void horizontalArgmin(vf v, float* outV, int32_t* outI) {
  const vf m = broadcastMin(v);
  const unsigned eq = equalMask(v, m);
  *outV = m[0];
  *outI = eq ? __builtin_ctz(eq) : 0;  // no lane equal: NaN scores, keep index 0
}

inline void horizontalArgmin(vf v, vi idx, float* outV, int32_t* outI) {
  const vf m = broadcastMin(v);
  const vi big = idx - idx + 0x7fffffff;
  const vi cand = (v == m) ? idx : big;
  const vi mi = broadcastMin(cand);
  *outV = m[0];
  *outI = mi[0] == 0x7fffffff ? 0 : mi[0];
}

/**
 * One micro-tile: R rows × VW·W centroids. score_j = ‖c̃_j‖² − 2 x̃·c̃_j is ‖x̃ − c̃_j‖² less the
 * row's own ‖x̃‖², which does not change the argmin; the panel already holds −2c̃, so the inner
 * loop is one broadcast FMA per row and vector.
 */
template <int VW, int R>
inline void microTile(const float* __restrict xt, int d, const float* __restrict panel,
                      const float* __restrict cc, int tileBase, float* __restrict bestVal,
                      int32_t* __restrict bestIdx) {
  vf acc[R][VW];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VW; ++v) acc[r][v] = loadf(cc + v * W);
  for (int f = 0; f < d; ++f) {
    vf c[VW];
#pragma GCC unroll 4
    for (int v = 0; v < VW; ++v) c[v] = loadf(panel + ((size_t)f * VW + v) * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float xs = xt[(size_t)r * d + f];
#pragma GCC unroll 4
      for (int v = 0; v < VW; ++v) acc[r][v] += xs * c[v];
    }
  }
  vi lane;
  for (int l = 0; l < W; ++l) lane[l] = l;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float mv;
    int32_t mi;
    if (VW == 1) {
      horizontalArgmin(acc[r][0], &mv, &mi);
    } else {
      vf bv = acc[r][0];
      vi bi = lane;
#pragma GCC unroll 4
      for (int v = 1; v < VW; ++v) {
        // Strict < keeps the lower index of a lane on ties.
        const vi m = acc[r][v] < bv;
        bv = m ? acc[r][v] : bv;
        bi = m ? lane + v * W : bi;
      }
      horizontalArgmin(bv, bi, &mv, &mi);
    }
    // Tiles come in increasing index order, so strict < again keeps the lowest index.
    if (mv < bestVal[r]) {
      bestVal[r] = mv;
      bestIdx[r] = tileBase + mi;
    }
  }
}

void packCentroids(const float* c, int k, int d, const float* shift, float* panel, float* cc) {
  scoring::packCentroidTiles(c, k, d, shift, tileWidth(k), panel, cc);
}

template <int VW, int R>
void assignRowsT(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                 double* counts, BlockStats* out) {
  const int d = job.d, k = job.k;
  const int tw = VW * W;
  const int nTiles = (k + tw - 1) / tw;
  const size_t rb = blockRows(d, k);
  char* base = (char*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  float* xt = (float*)base;
  float* bestVal = xt + rb * d;
  int32_t* bestIdx = (int32_t*)(bestVal + rb);
  const float* __restrict shift = job.shift;
  const float* __restrict x = job.x;
  const float* __restrict weights = job.weights;
  const int32_t* __restrict prev = job.prev;
  const float* __restrict centroids = job.centroids;
  int32_t* __restrict labels = job.labels;
  float* __restrict distOut = job.dist;

  double inertia = 0;
  int64_t changed = 0;
  for (size_t b0 = r0; b0 < r1; b0 += rb) {
    const size_t nr = (r1 - b0) < rb ? (r1 - b0) : rb;
    const size_t nrPad = roundUp(nr, R);
    // Shifting by the data mean keeps ‖x̃‖ and ‖c̃‖ near the spread of the data, so the
    // expansion's rounding error stays relative to the distances themselves.
    for (size_t i = 0; i < nr; ++i) {
      const float* __restrict xr = x + (b0 + i) * d;
      float* __restrict o = xt + i * d;
      for (int f = 0; f < d; ++f) o[f] = xr[f] - shift[f];
    }
    for (size_t i = nr * d; i < nrPad * d; ++i) xt[i] = 0.0f;
    for (size_t i = 0; i < nrPad; ++i) {
      bestVal[i] = __builtin_inff();
      bestIdx[i] = 0;
    }
    // The next block's rows are fetched while this one is scored, a few lines per micro-tile:
    // scoring is compute-bound, and the hardware prefetcher does not run ahead of a stream that
    // is read in bursts (measured: ~8% of the step at 1M x 32, k = 64, went to waiting on x).
    const char* pf = (const char*)(x + (b0 + nr) * d);
    const char* pfEnd = (const char*)(x + (r1 < b0 + nr + rb ? r1 : b0 + nr + rb) * d);
    const size_t nCalls = (size_t)nTiles * (nrPad / R);
    const size_t linesPerCall = pf < pfEnd ? ((size_t)(pfEnd - pf) / 64 + nCalls) / nCalls : 0;
    for (int t = 0; t < nTiles; ++t) {
      const float* p = job.panel + (size_t)t * tw * d;
      const float* cct = job.cc + (size_t)t * tw;
      for (size_t i = 0; i < nrPad; i += R) {
        for (size_t l = 0; l < linesPerCall && pf < pfEnd; ++l, pf += 64) __builtin_prefetch(pf, 0, 3);
        microTile<VW, R>(xt + i * d, d, p, cct, t * tw, bestVal + i, bestIdx + i);
      }
    }
    for (size_t i = 0; i < nr; ++i) {
      const size_t row = b0 + i;
      const int32_t j = bestIdx[i];
      const float* xr = x + row * d;
      const double dist = exactSqDist(xr, centroids + (size_t)j * d, d);
      labels[row] = j;
      distOut[row] = (float)dist;
      const double w = weights ? (double)weights[row] : 1.0;
      inertia += w * dist;
      if (prev && prev[row] != j) ++changed;
      if (sums) {
        addRow(sums + (size_t)j * d, xr, d, weights, row);
        counts[j] += w;
      }
    }
  }
  if (!job.prev) changed = (int64_t)(r1 - r0);
  out->inertia = inertia;
  out->nChanged = changed;
  out->nPruned = 0;
}

}  // namespace
}  // namespace seg
