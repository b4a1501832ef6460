// Products with a small matrix and soft (weighted-by-column) reductions, for Gaussian mixtures
// and PCA: x·W (projectRows), Σ w·r·x and Σ w·r per column of r (softSumRows), and centred
// weighted scatter matrices (scatterRows), all accumulated in float64.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

/** float64 lanes per vector. */
constexpr int WD = W / 2;
typedef double vd __attribute__((vector_size(W * 4)));
typedef float vfh __attribute__((vector_size(W * 2)));

inline vd loadd(const double* p) {
  vd v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void stored(double* p, vd v) { __builtin_memcpy(p, &v, sizeof v); }

/** WD floats at p, widened to float64. */
inline vd loadfd(const float* p) {
  vfh v;
  __builtin_memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vd);
}

/** Rows per register group of projectRows, softSumRows and scatterRows. */
constexpr int kSoftR = 4;

/**
 * kSoftR rows × V vectors of columns [j0, j0 + V·WD) of x·W, rows [i, i + nr) (nr ≤ kSoftR;
 * missing rows repeat row i and are not written). Each product of two floats is exact in
 * float64, so the sums (features in order) are those of a plain float64 loop, whether or not
 * the compiler contracts them into FMAs.
 */
template <int V>
inline void projectGroup(const float* __restrict x, int d, const double* __restrict wp, int mPad, int m, int j0,
                         size_t i, int nr, float* __restrict out) {
  constexpr int R = kSoftR;
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + (i + (size_t)(r < nr ? r : 0)) * d;
  vd acc[R][V];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = vd{};
  for (int f = 0; f < d; ++f) {
    vd wv[V];
    const double* wf = wp + (size_t)f * mPad + j0;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = loadd(wf + v * WD);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const vd xb = vd{} + (double)xr[r][f];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] += xb * wv[v];
    }
  }
  const int nc = m - j0 < V * WD ? m - j0 : V * WD;
  for (int r = 0; r < nr; ++r) {
    float* o = out + (i + r) * (size_t)m + j0;
    for (int c = 0; c < nc; ++c) o[c] = (float)acc[r][c / WD][c % WD];
  }
}

/**
 * out[i·m + j] = Σ_f x[i·d + f]·W[f, j] for rows [i0, i1), W given as `wp`, float64, d × mPad
 * (mPad a multiple of 8, zero past m). Register groups of kSoftR rows × up to SEG_MAX_VW
 * vectors of columns, the rows' features broadcast: no horizontal sums for any m.
 */
void projectRows(const float* x, int d, const double* wp, int mPad, int m, size_t i0, size_t i1, float* out) {
  for (size_t i = i0; i < i1; i += kSoftR) {
    const int nr = i1 - i < (size_t)kSoftR ? (int)(i1 - i) : kSoftR;
    for (int j0 = 0; j0 < m; j0 += SEG_MAX_VW * WD) {
      const int vecs = (m - j0 + WD - 1) / WD;
      switch (vecs < SEG_MAX_VW ? vecs : SEG_MAX_VW) {
        case 1:
          projectGroup<1>(x, d, wp, mPad, m, j0, i, nr, out);
          break;
        case 2:
          projectGroup<2>(x, d, wp, mPad, m, j0, i, nr, out);
          break;
        case 3:
          if constexpr (SEG_MAX_VW >= 3) projectGroup<3>(x, d, wp, mPad, m, j0, i, nr, out);
          break;
        default:
          if constexpr (SEG_MAX_VW >= 4) projectGroup<SEG_MAX_VW>(x, d, wp, mPad, m, j0, i, nr, out);
          break;
      }
    }
  }
}

/**
 * s[f] += c[0]·x[0][f], then c[1]·x[1][f], … for the nr (≤ kSoftR) rows, in that order for every
 * f: the additions of a row-by-row loop, with one load and store of s per group of rows.
 */
inline void addRowsScaled(double* __restrict s, const float* const* xr, const double* c, int nr, int f0, int d) {
  int f = f0;
  if (nr == kSoftR) {
    for (; f + WD <= d; f += WD) {
      vd acc = loadd(s + f);
#pragma GCC unroll 4
      for (int r = 0; r < kSoftR; ++r) acc += c[r] * loadfd(xr[r] + f);
      stored(s + f, acc);
    }
  }
  for (; f < d; ++f) {
    double acc = s[f];
    for (int r = 0; r < nr; ++r) acc += c[r] * (double)xr[r][f];
    s[f] = acc;
  }
}

/**
 * Rows [i0, i1) of x (nRows × d; weights and r indexed by the same rows, r with m columns):
 * sums[j·d + f] += w·r[i, j]·x[i, f] and counts[j] += w·r[i, j], added in row order. A zero
 * w·r adds nothing (and changes no bit), so its row is skipped for that column.
 */
void softSumRows(const float* x, int d, const float* weights, const float* r, int m, size_t i0, size_t i1,
                 double* sums, double* counts) {
  for (size_t i = i0; i < i1; i += kSoftR) {
    const int nr = i1 - i < (size_t)kSoftR ? (int)(i1 - i) : kSoftR;
    const float* xr[kSoftR];
    double w[kSoftR];
    for (int q = 0; q < kSoftR; ++q) {
      const size_t row = i + (size_t)(q < nr ? q : 0);
      xr[q] = x + row * d;
      w[q] = weights ? (double)weights[row] : 1.0;
    }
    for (int j = 0; j < m; ++j) {
      double c[kSoftR];
      bool any = false;
      for (int q = 0; q < kSoftR; ++q) {
        c[q] = q < nr ? w[q] * (double)r[(i + q) * (size_t)m + j] : 0.0;
        any |= c[q] != 0;
      }
      if (!any) continue;
      double cnt = counts[j];
      for (int q = 0; q < nr; ++q) cnt += c[q];
      counts[j] = cnt;
      addRowsScaled(sums + (size_t)j * d, xr, c, nr, 0, d);
    }
  }
}

static_assert(kSoftScratchRows == kSoftR, "scatterRows' scratch holds one centred row per register row");

/**
 * Rows [i0, i1) (as softSumRows; r null: one column of ones): for each column j, out[j·d·d +
 * a·d + b] += w·r[i, j]·(x[i, a] − μ_ja)·(x[i, b] − μ_jb), μ = means (m × d), in row order. Only
 * b ≥ a − a mod WD is written (the upper triangle and a few entries below it, whole vectors):
 * the caller mirrors the upper triangle once the block partials are added. `scratch` holds
 * kSoftScratchRows·d doubles.
 */
void scatterRows(const float* x, int d, const float* weights, const float* r, int m, const double* means,
                 size_t i0, size_t i1, double* out, double* scratch) {
  for (size_t i = i0; i < i1; i += kSoftR) {
    const int nr = i1 - i < (size_t)kSoftR ? (int)(i1 - i) : kSoftR;
    double w[kSoftR];
    for (int q = 0; q < kSoftR; ++q) w[q] = q < nr ? (weights ? (double)weights[i + q] : 1.0) : 0.0;
    for (int j = 0; j < m; ++j) {
      double c[kSoftR];
      bool any = false;
      for (int q = 0; q < kSoftR; ++q) {
        c[q] = q < nr ? w[q] * (r ? (double)r[(i + q) * (size_t)m + j] : 1.0) : 0.0;
        any |= c[q] != 0;
      }
      if (!any) continue;
      // Centred rows (float64 differences); missing rows repeat the first, with c = 0.
      const double* mu = means + (size_t)j * d;
      const double* diff[kSoftR];
      for (int q = 0; q < kSoftR; ++q) {
        double* dq = scratch + (size_t)q * d;
        const float* xq = x + (i + (size_t)(q < nr ? q : 0)) * d;
        for (int f = 0; f < d; ++f) dq[f] = (double)xq[f] - mu[f];
        diff[q] = dq;
      }
      double* oj = out + (size_t)j * d * d;
      for (int a = 0; a < d; ++a) {
        double ca[kSoftR];
        for (int q = 0; q < kSoftR; ++q) ca[q] = c[q] * diff[q][a];
        double* o = oj + (size_t)a * d;
        int b = a - a % WD;
        if (nr == kSoftR) {
          for (; b + WD <= d; b += WD) {
            vd acc = loadd(o + b);
#pragma GCC unroll 4
            for (int q = 0; q < kSoftR; ++q) acc += ca[q] * loadd(diff[q] + b);
            stored(o + b, acc);
          }
        }
        for (; b < d; ++b) {
          double acc = o[b];
          for (int q = 0; q < nr; ++q) acc += ca[q] * diff[q][b];
          o[b] = acc;
        }
      }
    }
  }
}

}  // namespace
}  // namespace seg
