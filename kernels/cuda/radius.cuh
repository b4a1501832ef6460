// DBSCAN's eps-neighbourhoods on the device (Backend.radiusNeighbours): each block takes kRows
// query rows, walks every row of the data in tiles (the silhouette's pair tiles: direct
// differences in float32, so a pair's error is relative to its own distance), and decides each
// pair: below eps²(1 − slack) a neighbour, above eps²(1 + slack) not, between them by the float64
// sum Σ(x_f − y_f)² in feature order, the contract's arithmetic. So every decision is the float64
// one, as on native and the host path. Each query's thread adds its neighbours' weights in row
// order (the same bits as the host) and, in the list pass, writes their row numbers in order
// from its offset; the count pass gives the offsets (the host's prefix sums).
//
// Phase functions as in lloyd.cuh, emulated on the CPU against a float64 brute force (emulate.cc,
// `radius` mode).
#pragma once

#include <cstdint>

#include "lloyd.cuh"

namespace segcuda {

struct RadiusParams {
  const float* x;          // every row; queries are rows [q0, q0 + nq), candidates rows [cBegin, n)
  const float* weights;    // or null
  int64_t n;               // the end of the candidate rows
  int d;
  int64_t q0;
  int64_t nq;
  double eps2;
  double lo, hi;           // radiusBounds: decided without the float64 sum outside [lo, hi]
  double* counts;          // out nq: Σ w of each query's neighbours
  int32_t* found;          // out nq (count pass): neighbours per query; null in the list pass
  const int32_t* offsets;  // list pass: nq + 1; null in the count pass
  int32_t* indices;        // list pass: the neighbours' rows, each query's from its offset
  int64_t* rechecked;      // out nq: pairs the float64 sum decided
  int64_t cBegin = 0;      // the first candidate row
};

/**
 * The band around eps² where a float32 direct squared distance may be on the wrong side: the
 * d differences, d squares and d − 1 additions each round with relative error ≤ 2⁻²⁴ on
 * positive terms, so |v − exact| ≤ (d + 2)·2⁻²⁴·exact; twice that, for safety.
 */
SEG_HD void radiusBounds(double eps2, int d, double* lo, double* hi) {
  const double slack = 2.0 * (d + 2) / 16777216.0;
  *lo = eps2 * (1 - slack);
  *hi = eps2 * (1 + slack);
}

/**
 * Phase 3 (each thread, query block·kRows + tid): the tile's columns [c0, c0 + kTileC) in
 * order, acc[jj] their float32 squared distances. count, k and rech are the thread's running
 * weight sum, neighbours found and pairs rechecked.
 */
SEG_HD void radiusTile(const RadiusParams& p, int64_t block, int tid, int64_t c0, const float* acc, double* count,
                       int32_t* k, int64_t* rech) {
  const int64_t q = block * kRows + tid;
  if (q >= p.nq) return;
  const float* xq = p.x + (p.q0 + q) * p.d;
  for (int jj = 0; jj < kTileC; ++jj) {
    const int64_t col = c0 + jj;
    if (col >= p.n) break;
    const double v = acc[jj];
    if (v > p.hi) continue;
    if (!(v < p.lo)) {
      ++*rech;
      if (exactSqDist(p.x + col * p.d, xq, p.d) > p.eps2) continue;
    }
    *count += p.weights ? (double)p.weights[col] : 1.0;
    if (p.indices) p.indices[p.offsets[q] + *k] = (int32_t)col;
    ++*k;
  }
}

/** Phase 4 (each thread): the query's results. */
SEG_HD void radiusFinish(const RadiusParams& p, int64_t block, int tid, double count, int32_t k, int64_t rech) {
  const int64_t q = block * kRows + tid;
  if (q >= p.nq) return;
  p.counts[q] = count;
  if (p.found) p.found[q] = k;
  p.rechecked[q] = rech;
}

}  // namespace segcuda
