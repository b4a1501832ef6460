// Eps-neighbourhoods for DBSCAN (radiusRows): float32 squared distances of a tile of queries (one
// per lane) to rows of x, screened against float32 thresholds, the pairs near eps decided by the
// float64 sum.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

/** Rows per register group of radiusRows: R accumulators plus the query vector. */
constexpr int kRadiusR = 8;

/**
 * Σ_f (a_f − b_f)² in float64, features in order, each square rounded before it is added: the
 * arithmetic of scikit-learn's KD tree and of the JavaScript loop in src/models/dbscan.ts, bit
 * for bit. The empty asm keeps the compiler from contracting the multiply and add into an FMA
 * (GCC contracts across statements in C++ mode, and the AVX2/AVX-512 builds have FMA).
 */
inline double sqDist64(const float* a, const float* b, int d) {
  double s = 0;
  for (int f = 0; f < d; ++f) {
    const double t = (double)a[f] - (double)b[f];
    double p = t * t;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
    __asm__("" : "+x"(p));
#else
    __asm__ __volatile__("" : "+m"(p));
#endif
    s += p;
  }
  return s;
}

/**
 * One query tile against rows [r0, r1): lanes are queries, each row's features broadcast, so the
 * big matrix is read in its own layout (only the queries are packed) and no lane sums are needed.
 * Per lane the float32 sum runs over the features in order, d + 2 roundings at most (FMA or
 * not), which is what the binding's thresholds allow for.
 */
void radiusRows(const RadiusJob& job, int tile, size_t r0, size_t r1, int slot0, double* counts,
                RadiusHits* hits, size_t* rechecked) {
  constexpr int R = kRadiusR;
  const int d = job.d;
  const float* __restrict qp = job.qpanel + (size_t)tile * d * W;
  const float* x = job.x;
  const vf hi = vf{} + job.hi;
  const float lo = job.lo;
  const size_t qRow0 = job.q0 + (size_t)tile * W;
  size_t nCheck = 0;
  for (size_t i = r0; i < r1; i += R) {
    const int nr = r1 - i < (size_t)R ? (int)(r1 - i) : R;
    const float* xr[R];
    // Missing rows repeat row i; they are computed but never read.
    for (int r = 0; r < R; ++r) xr[r] = x + (i + (size_t)(r < nr ? r : 0)) * d;
    vf acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = vf{};
    for (int f = 0; f < d; ++f) {
      const vf q = loadf(qp + (size_t)f * W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const vf t = q - xr[r][f];
        acc[r] += t * t;
      }
    }
    // Nearly every group has no candidate at all: one test for the R rows.
    vi any = acc[0] <= hi;
#pragma GCC unroll 8
    for (int r = 1; r < R; ++r) any |= acc[r] <= hi;
    if (!maskOf(any)) continue;
    for (int r = 0; r < nr; ++r) {
      unsigned m = maskOf(acc[r] <= hi);
      const size_t row = i + r;
      while (m) {
        const int l = __builtin_ctz(m);
        m &= m - 1;
        if (!(acc[r][l] < lo)) {
          ++nCheck;
          if (!(sqDist64(x + (qRow0 + l) * d, x + row * d, d) <= job.eps2)) continue;
        }
        counts[slot0 + l] += job.weights ? (double)job.weights[row] : 1.0;
        if (hits) {
          if (hits->len == hits->cap) hits->grow(hits);
          hits->pairs[2 * hits->len] = slot0 + l;
          hits->pairs[2 * hits->len + 1] = (int32_t)row;
          ++hits->len;
        }
      }
    }
  }
  *rechecked += nCheck;
}

}  // namespace
}  // namespace seg
