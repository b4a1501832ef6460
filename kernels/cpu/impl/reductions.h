// Row reductions in float64 over float32 data: the exact squared distance Σ(x − c)², the
// per-label sums Σw·x (sumRows, and the additions the assignment kernels fuse), and the k-means++
// kernels built on direct distances (distRows, potentialRows).
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

/**
 * Σ(x − c)² computed directly (no expansion, so no cancellation): float32 differences, squares
 * accumulated per lane over d / W terms (the last d mod W through a masked load, so small d
 * stays vectorised), lanes summed pairwise. Every term is positive, so the relative error stays
 * within a few float32 ulps.
 */
inline double exactSqDist(const float* __restrict x, const float* __restrict c, int d) {
  vf acc = {};
  int f = 0;
  for (; f + W <= d; f += W) {
    const vf t = loadf(x + f) - loadf(c + f);
    acc += t * t;
  }
  if (f < d) {
    const vf t = loadTail(x + f, d - f) - loadTail(c + f, d - f);
    acc += t * t;
  }
  return sumLanes(acc);
}

/** sums += w · x, in float64, one independent chain per feature (so order = row order). */
inline void addRow(double* __restrict sums, const float* __restrict x, int d, const float* weights,
                   size_t row) {
  int f = 0;
  if (weights) {
    const double w = weights[row];
    for (; f + 8 <= d; f += 8) {
      vd8 s;
      __builtin_memcpy(&s, sums + f, sizeof s);
      s += load8d(x + f) * w;
      __builtin_memcpy(sums + f, &s, sizeof s);
    }
    for (; f < d; ++f) sums[f] += (double)x[f] * w;
  } else {
    for (; f + 8 <= d; f += 8) {
      vd8 s;
      __builtin_memcpy(&s, sums + f, sizeof s);
      s += load8d(x + f);
      __builtin_memcpy(sums + f, &s, sizeof s);
    }
    for (; f < d; ++f) sums[f] += (double)x[f];
  }
}

/**
 * addRow for the fast path: the same additions (one chain per feature, row order, so the same
 * bits as sumRows), written with intrinsics, since GCC's lowering of the generic converts
 * costs more than the additions themselves.
 */
inline void addRowFast(double* __restrict sums, const float* __restrict x, int d, const float* weights,
                       size_t row) {
#if defined(__AVX512F__)
  int f = 0;
  if (weights) {
    const __m512d w = _mm512_set1_pd((double)weights[row]);
    for (; f + 8 <= d; f += 8)
      _mm512_store_pd(sums + f, _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + f)), w, _mm512_load_pd(sums + f)));
  } else {
    for (; f + 8 <= d; f += 8)
      _mm512_store_pd(sums + f, _mm512_add_pd(_mm512_load_pd(sums + f), _mm512_cvtps_pd(_mm256_loadu_ps(x + f))));
  }
  if (f < d) addRow(sums + f, x + f, d - f, weights, row);
#elif defined(__AVX2__)
  int f = 0;
  if (weights) {
    const __m256d w = _mm256_set1_pd((double)weights[row]);
    for (; f + 4 <= d; f += 4)
      _mm256_store_pd(sums + f, _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + f)), w, _mm256_load_pd(sums + f)));
  } else {
    for (; f + 4 <= d; f += 4)
      _mm256_store_pd(sums + f, _mm256_add_pd(_mm256_load_pd(sums + f), _mm256_cvtps_pd(_mm_loadu_ps(x + f))));
  }
  if (f < d) addRow(sums + f, x + f, d - f, weights, row);
#else
  addRow(sums, x, d, weights, row);
#endif
}

/** s += w·x in float64; each product of two floats is exact, so contraction cannot change the bits. */
inline void addRowScaled(double* __restrict s, const float* __restrict x, int d, double w) {
  for (int f = 0; f < d; ++f) s[f] += (double)x[f] * w;
}

void sumRows(const float* x, int d, const int32_t* labels, const float* weights, size_t r0,
             size_t r1, double* sums, double* counts) {
  for (size_t row = r0; row < r1; ++row) {
    const int32_t j = labels[row];
    addRow(sums + (size_t)j * d, x + row * d, d, weights, row);
    counts[j] += weights ? (double)weights[row] : 1.0;
  }
}

void distRows(const float* x, int d, const float* centers, int m, size_t r0, size_t r1,
              float* out) {
  const int dv = d / W * W;
  size_t row = r0;
  // Four rows at a time, folded (fold4): k-means++ calls this with m = 1 on every row.
  for (; row + 4 <= r1; row += 4)
    for (int j = 0; j < m; ++j) {
      const float* c = centers + (size_t)j * d;
      vf v[4] = {};
      int f = 0;
      for (; f < dv; f += W) {
        const vf cv = loadf(c + f);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          const vf t = loadf(x + (row + r) * d + f) - cv;
          v[r] += t * t;
        }
      }
      if (f < d) {
        const vf cv = loadTail(c + f, d - f);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          const vf t = loadTail(x + (row + r) * d + f, d - f) - cv;
          v[r] += t * t;
        }
      }
      const vf u = fold4(v);
      for (int r = 0; r < 4; ++r) out[(row + r) * m + j] = u[r * (W / 4)];
    }
  for (; row < r1; ++row)
    for (int j = 0; j < m; ++j)
      out[row * m + j] = (float)exactSqDist(x + row * d, centers + (size_t)j * d, d);
}

/** Candidates per pass of potentialRows: four lane-vectors folded into one. */
constexpr int kPotGroup = 4;

/**
 * The squared distances of row xr to G candidates, folded (fold4) into one vector whose lane
 * j·W/G holds candidate j's: the arithmetic of distRows for a row in a group of four.
 */
inline vf foldedDistances(const float* xr, const float* const* c, int d, int dv) {
  constexpr int G = kPotGroup;
  vf v[G] = {};
  int f = 0;
  for (; f < dv; f += W) {
    const vf xv = loadf(xr + f);
#pragma GCC unroll 4
    for (int j = 0; j < G; ++j) {
      const vf t = xv - loadf(c[j] + f);
      v[j] += t * t;
    }
  }
  if (f < d) {
    const vf xv = loadTail(xr + f, d - f);
#pragma GCC unroll 4
    for (int j = 0; j < G; ++j) {
      const vf t = xv - loadTail(c[j] + f, d - f);
      v[j] += t * t;
    }
  }
  static_assert(G == 4, "fold4 folds four vectors");
  return fold4(v);
}

void potentialRows(const float* x, int d, const float* closest, const float* weights,
                   const float* cands, int m, size_t r0, size_t r1, double* out, float* keep,
                   size_t keepStride) {
  constexpr int G = kPotGroup;
  // Sums live in registers and reach `out` once per sub-block: blocks of neighbouring threads
  // write neighbouring partials, and a store per row would bounce that cache line between cores.
  // Sub-blocks of 256 rows stay in L1 while each group of candidates passes over them.
  constexpr size_t kSub = 256;
  const int dv = d / W * W;
  for (size_t s0 = r0; s0 < r1; s0 += kSub) {
    const size_t s1 = s0 + kSub < r1 ? s0 + kSub : r1;
    for (int j0 = 0; j0 < m; j0 += G) {
      const int g = m - j0 < G ? m - j0 : G;
      const float* c[G];
      for (int j = 0; j < G; ++j) c[j] = cands + (size_t)(j0 + (j < g ? j : 0)) * d;  // padding: a repeat, unused
      double acc[G] = {0, 0, 0, 0};
      // One or two candidates left: folding would compute four, so one horizontal sum each
      // (and, to keep distances, the folded ones beside: the sums keep their arithmetic).
      if (g < 3) {
        for (size_t row = s0; row < s1; ++row) {
          const float* xr = x + row * d;
          const double cl = closest[row];
          const double w = weights ? (double)weights[row] : 1.0;
          for (int j = 0; j < g; ++j) {
            const double q = exactSqDist(xr, c[j], d);
            acc[j] += w * (q < cl ? q : cl);
          }
          if (keep) {
            const vf u = foldedDistances(xr, c, d, dv);
            for (int j = 0; j < g; ++j) keep[(size_t)(j0 + j) * keepStride + row] = u[j * (W / G)];
          }
        }
      } else
      for (size_t row = s0; row < s1; ++row) {
        // Σ(x − c)² directly (no expansion), per lane in float32, for G candidates at once;
        // then the G vectors are folded into one whose lane j·W/G holds candidate j's sum:
        // a few shuffles per row rather than a full horizontal sum per candidate.
        const vf u = foldedDistances(x + row * d, c, d, dv);
        // The min as a vector select: a compare-and-branch on it mispredicts about half the
        // time (measured 3× slower on random data).
        const vf cl = vf{} + closest[row];
        const vf mn = u < cl ? u : cl;
        const double w = weights ? (double)weights[row] : 1.0;
        for (int j = 0; j < g; ++j) acc[j] += w * (double)mn[j * (W / G)];
        if (keep)
          for (int j = 0; j < g; ++j) keep[(size_t)(j0 + j) * keepStride + row] = u[j * (W / G)];
      }
      for (int j = 0; j < g; ++j) out[j0 + j] += acc[j];
    }
  }
}

}  // namespace
}  // namespace seg
