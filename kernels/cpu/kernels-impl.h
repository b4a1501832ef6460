// The CPU kernels, written once over GCC vector extensions and instantiated per instruction set
// by isa-*.cc, which define SEG_W (float lanes), SEG_MAX_VW (vectors per centroid tile),
// SEG_TABLE (the KernelTable's name) and SEG_ISA (its label) before including this file.
//
// Everything here has internal linkage (anonymous namespace) and uses no standard-library
// templates, so no AVX-512 instance can leak into the baseline build through the linker.
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
// GCC 12's 512-bit unpack and sqrt intrinsics pass _mm512_undefined_ps() as the source of an
// all-ones mask, and -W(maybe-)uninitialized flags every inlined use: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

#ifndef SEG_W
#error "define SEG_W before including kernels-impl.h"
#endif

namespace seg {
namespace {

constexpr int W = SEG_W;
typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef float vf8 __attribute__((vector_size(32)));
typedef double vd8 __attribute__((vector_size(64)));

inline vf loadf(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline vd8 load8d(const float* p) {
  vf8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vd8);
}

/** The shuffle mask l -> l ^ S, as a compile-time constant so GCC can pick an immediate shuffle. */
template <int... L>
struct Lanes {};
/** A compile-time flag for generic lambdas (no <type_traits>: see kernels.h). */
template <bool B>
struct Flag {
  static constexpr bool value = B;
};
template <int S, int... L>
constexpr vi xorMaskOf(Lanes<L...>) {
  return vi{(L ^ S)...};
}
template <int S>
constexpr vi xorMask() {
  return xorMaskOf<S>(Lanes<__integer_pack(W)...>{});
}

/** v with lanes l and l ^ S swapped. */
template <int S>
inline vf swapLanes(vf v) {
  return __builtin_shuffle(v, xorMask<S>());
}
template <int S>
inline vi swapLanes(vi v) {
  return __builtin_shuffle(v, xorMask<S>());
}

inline size_t roundUp(size_t a, size_t b) { return (a + b - 1) / b * b; }

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

size_t smallKScratchBytes(int d);

size_t scratchBytes(int d, int k) {
  const size_t rb = blockRows(d, k);
  const size_t general = rb * d * 4 + rb * 4 + rb * 4 + 128;
  const size_t small = k <= W ? smallKScratchBytes(d) : 0;
  return general > small ? general : small;
}

/** Lanes of a float vector summed pairwise, in float64 for the last steps. */
inline double sumLanes(vf v) {
  if (W >= 16) v += swapLanes<8 % W>(v);
  if (W >= 8) v += swapLanes<4 % W>(v);
  v += swapLanes<2>(v);
  return (double)v[0] + (double)v[1];
}

/** The first n (< W) floats at p, zeros above; never reads past p + n. */
inline vf loadTail(const float* p, int n) {
#if SEG_W == 16 && defined(__AVX512F__)
  return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#elif SEG_W == 8 && defined(__AVX2__)
  const vi lane = {0, 1, 2, 3, 4, 5, 6, 7};
  return (vf)_mm256_maskload_ps(p, (__m256i)(lane < n));
#else
  vf v = {};
  for (int l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

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

/** Smallest lane of v, broadcast to every lane: a butterfly of shuffles and mins. */
template <class V>
inline V broadcastMin(V v) {
  V t;
  if (W >= 16) t = swapLanes<8 % W>(v), v = t < v ? t : v;
  if (W >= 8) t = swapLanes<4 % W>(v), v = t < v ? t : v;
  t = swapLanes<2>(v), v = t < v ? t : v;
  t = swapLanes<1>(v), v = t < v ? t : v;
  return v;
}

/** Bit l set where a[l] == b[l]. */
inline unsigned equalMask(vf a, vf b) {
#if SEG_W == 16 && defined(__AVX512F__)
  return _mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_EQ_OQ);
#elif SEG_W == 8 && defined(__AVX__)
  return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps((__m256)a, (__m256)b, _CMP_EQ_OQ));
#elif SEG_W == 4 && defined(__SSE__)
  return (unsigned)_mm_movemask_ps(_mm_cmpeq_ps((__m128)a, (__m128)b));
#else
  unsigned m = 0;
  for (int l = 0; l < W; ++l) m |= (a[l] == b[l]) << l;
  return m;
#endif
}

/** Lane-wise square root. */
inline vf sqrtLanes(vf v) {
#if SEG_W == 16 && defined(__AVX512F__)
  // Not _mm512_sqrt_ps: GCC 12 expands it through a masked builtin with an undefined source
  // and warns (-Wmaybe-uninitialized) at every use.
  __m512 r;
  __asm__("vsqrtps %1, %0" : "=v"(r) : "v"((__m512)v));
  return (vf)r;
#elif SEG_W == 8 && defined(__AVX__)
  return (vf)_mm256_sqrt_ps((__m256)v);
#elif SEG_W == 4 && defined(__SSE__)
  return (vf)_mm_sqrt_ps((__m128)v);
#else
  for (int l = 0; l < W; ++l) v[l] = __builtin_sqrtf(v[l]);
  return v;
#endif
}

/** Bit l set where lane l of the comparison mask m is true (all ones). */
inline unsigned maskOf(vi m) {
#if SEG_W == 16 && defined(__AVX512F__)
  return _mm512_movepi32_mask((__m512i)m);
#elif SEG_W == 8 && defined(__AVX__)
  return (unsigned)_mm256_movemask_ps((__m256)m);
#elif SEG_W == 4 && defined(__SSE__)
  return (unsigned)_mm_movemask_ps((__m128)m);
#else
  unsigned b = 0;
  for (int l = 0; l < W; ++l) b |= (m[l] != 0) << l;
  return b;
#endif
}

/**
 * The arithmetic of Hamerly's bounds (see AssignJob::lower), a vector of rows at a time: u,
 * γ doubled for d + 8 operations, R ≥ max ‖c − shift‖ (all rounded up), and how far each
 * centroid moved since the bounds were written (lanes past k: 0), with the largest move, its
 * centroid, and the second largest.
 */
struct Hamerly {
  float u, gq, R;
  vf drift;
  int top;
  float first, second;

  static Hamerly of(const AssignJob& job) {
    Hamerly h;
    h.u = 0x1p-24f;
    h.gq = 2.0f * (float)(job.d + 8) * h.u * 1.001f;
    h.drift = vf{};
    h.top = -1;
    h.first = h.second = 0;
    double r2 = 0;
    if (job.lower)
      for (int j = 0; j < job.k; ++j) {
        double q = 0;
        for (int f = 0; f < job.d; ++f) {
          const double t = (double)job.centroids[(size_t)j * job.d + f] - (double)job.shift[f];
          q += t * t;
        }
        r2 = q > r2 ? q : r2;
      }
    if (job.drift)
      for (int j = 0; j < job.k && j < W; ++j) {
        const float m = job.drift[j];
        h.drift[j] = m;
        if (m > h.first) h.second = h.first, h.first = m, h.top = j;
        else if (m > h.second) h.second = m;
      }
    h.R = (float)(__builtin_sqrt(r2) * (1 + 1e-6));
    return h;
  }

  /**
   * A lower bound on ‖x − c_j‖ (exact reals, unshifted) over every j but the winner, from the
   * second-best score s2 and Σx̃² (nx): ‖x̃ − c̃_j‖² = S_j + ‖x̃‖² ≥ s2 + nx less the rounding of
   * the scores (γ_d relative to ‖c̃‖² + 2‖x̃‖‖c̃‖, u on ‖c̃‖²), of nx and of this sum, each
   * doubled; then the shift's rounding (u per coordinate of x̃ and c̃) back to raw space.
   */
  vf lowerBound(vf s2, vf nx) const {
    const vf xn = sqrtLanes(nx);
    const vf a2 = s2 < 0 ? -s2 : s2;
    const vf err = 2.0f * ((gq + u) * (R * R + 2.0f * R * (1.0f + gq) * xn) + gq * nx + 2.0f * u * (a2 + nx));
    const vf l2 = s2 + nx - err;
    return sqrtLanes(l2 > 0 ? l2 : vf{}) * (1.0f - 4.0f * u) - 2.0f * u * (xn + R);
  }

  /** An upper bound on ‖x − c‖ from e, the computed Σ(x − c)² (d + 1 roundings, doubled). */
  vf upperOf(vf e) const { return sqrtLanes(e) * (1.0f + gq); }

  /**
   * Bounds after the centroids moved (triangle inequality), rounded outward: the lower one
   * less the largest move of a centroid but the row's own, the upper one plus its own move.
   */
  vf lowerAged(vf lb, vi label) const {
    const vi own = label == top;
    const vf other = own ? vf{} + second : vf{} + first;
    return (lb - other) * (1.0f - 4.0f * u);
  }
  vf upperAged(vf ub, vi label) const { return (ub + __builtin_shuffle(drift, label)) * (1.0f + 4.0f * u); }

  /**
   * Hamerly's test: lr, a lower bound on every other centroid's distance, exceeds t, an upper
   * bound on the row's distance to its own, by more than the scores' rounding (both carried
   * into the shifted space the scores live in), so every other score is strictly larger and
   * the full argmin would pick the same centroid. NaN never passes.
   */
  vi pass(vf lr, vf t) const {
    const vf m = 2.0f * u * (t + 2.0f * R);
    const vf dh = t + m;
    const vf lx = lr - m;
    const vf lhs = (lx - dh) * (lx + dh);
    const vf rhs = 4.0f * (gq + u) * R * (3.0f * R + 2.0f * dh) + 8.0f * u * lx * lx;
    return (lx > dh) & (lhs > rhs);
  }
};

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
  const int tw = tileWidth(k);
  const int nTiles = (k + tw - 1) / tw;
  for (int t = 0; t < nTiles; ++t) {
    float* p = panel + (size_t)t * tw * d;
    for (int l = 0; l < tw; ++l) {
      const int j = t * tw + l;
      if (j >= k) {
        for (int f = 0; f < d; ++f) p[(size_t)f * tw + l] = 0.0f;
        cc[j] = __builtin_inff();
        continue;
      }
      double s = 0;
      for (int f = 0; f < d; ++f) {
        const float ct = (float)((double)c[(size_t)j * d + f] - (double)shift[f]);
        p[(size_t)f * tw + l] = -2.0f * ct;
        s += (double)ct * ct;
      }
      cc[j] = (float)s;
    }
  }
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

// ---- Small-k fast path (k ≤ W): a tile of W rows at a time, transposed so that each vector
// holds one feature of W rows; each centroid's score is then one vector accumulator (FMA with
// a broadcast panel value), the argmin is lane-wise (compares and blends, no horizontal
// reductions), and the exact recompute gathers the winner's feature with one permute.

template <int S, int... L>
constexpr vi transposeMaskA(Lanes<L...>) {
  return vi{((L & S) ? W + (L ^ S) : L)...};
}
template <int S, int... L>
constexpr vi transposeMaskB(Lanes<L...>) {
  return vi{((L & S) ? W + L : (L ^ S))...};
}

/** One stage of the block transpose: swaps bit S between row index and lane index. */
template <int S>
inline void transposeStage(vf* v) {
  constexpr vi ma = transposeMaskA<S>(Lanes<__integer_pack(W)...>{});
  constexpr vi mb = transposeMaskB<S>(Lanes<__integer_pack(W)...>{});
#pragma GCC unroll 16
  for (int r = 0; r < W; ++r) {
    if (r & S) continue;
    const vf a = v[r], b = v[r | S];
    v[r] = __builtin_shuffle(a, b, ma);
    v[r | S] = __builtin_shuffle(a, b, mb);
  }
}

#if SEG_W == 16 && defined(__AVX512F__)
/**
 * The 16 × 16 tile v transposed into out (feature l of the 16 rows at out + l·16), with
 * in-lane unpacks and 128-bit shuffles only (cheap on every AVX-512 core), not the two-source
 * permutes the generic stages compile to.
 */
inline void transposeStore16(const vf* v, float* out) {
  __m512 a[16], b[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps((__m512)v[2 * i], (__m512)v[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps((__m512)v[2 * i], (__m512)v[2 * i + 1]);
  }
  // b[4i + m], 128-bit lane q: feature 4q + m of rows 4i .. 4i + 3.
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512d a0 = _mm512_castps_pd(a[4 * i]), a1 = _mm512_castps_pd(a[4 * i + 1]);
    const __m512d a2 = _mm512_castps_pd(a[4 * i + 2]), a3 = _mm512_castps_pd(a[4 * i + 3]);
    b[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    const __m512 c0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x88);  // lanes 0, 2 | 0, 2
    const __m512 c1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xdd);  // lanes 1, 3 | 1, 3
    const __m512 d0 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x88);
    const __m512 d1 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xdd);
    _mm512_store_ps(out + (0 + m) * 16, _mm512_shuffle_f32x4(c0, d0, 0x88));
    _mm512_store_ps(out + (8 + m) * 16, _mm512_shuffle_f32x4(c0, d0, 0xdd));
    _mm512_store_ps(out + (4 + m) * 16, _mm512_shuffle_f32x4(c1, d1, 0x88));
    _mm512_store_ps(out + (12 + m) * 16, _mm512_shuffle_f32x4(c1, d1, 0xdd));
  }
}
#endif

/** v[r][l] <- v[l][r] for the W × W tile v. */
inline void transposeTile(vf* v) {
  if constexpr (W >= 16) transposeStage<8 % W>(v);
  if constexpr (W >= 8) transposeStage<4 % W>(v);
  transposeStage<2 % W>(v);
  transposeStage<1>(v);
}

typedef double vdw __attribute__((vector_size(W * 8)));

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

/**
 * Σw·x and Σw of a tile's rows (in row order) into the local sums; D is d when it is a
 * compile-time constant (the loops then unroll), 0 otherwise. Unweighted counts are integers
 * (icnt), exact, added at the end.
 */
template <int D>
__attribute__((always_inline)) inline void sumTile(double* __restrict lsum, size_t ss, double* __restrict lcnt, int64_t* __restrict icnt,
                    const float* __restrict xr, int dRun, const int32_t* lab, int nv, const float* w) {
  const int d = D ? D : dRun;
  if (w) {
    for (int r = 0; r < nv; ++r) {
      const int32_t j = lab[r];
      addRowFast(lsum + (size_t)j * ss, xr + (size_t)r * d, d, w, r);
      lcnt[j] += (double)w[r];
    }
  } else {
    for (int r = 0; r < nv; ++r) {
      const int32_t j = lab[r];
      addRowFast(lsum + (size_t)j * ss, xr + (size_t)r * d, d, nullptr, r);
      ++icnt[j];
    }
  }
}

/**
 * (x − c_bi)² for one feature of a transposed tile (xf: the tile's feature row, cf: the
 * transposed centroids' feature row, permuted to each lane's centroid): the one definition of
 * the terms the small-k path's exact distances sum, wherever they are computed, so that a
 * distance has the same bits whichever path found its row's label.
 */
inline vf sqDiff(const float* __restrict xf, const float* __restrict cf, vi bi) {
  const vf t = loadf(xf) - __builtin_shuffle(loadf(cf), bi);
  return t * t;
}

/** Floats per transposed tile buffer, doubles per row of the local sums. */
inline size_t smallKTileFloats(int d) { return roundUp(d, W) * W; }
inline size_t smallKSumStride(int d) { return roundUp(d, 8); }

/**
 * Rows per sub-block of the bounded small-k path: a multiple of W, at most 1024 and 128 KiB of
 * data, so the list of rows in doubt stays small and the choice between gathering them and
 * scoring the sub-block whole follows the data closely (4096 rows measured the same).
 */
inline size_t pruneSubRows(int d) {
  size_t rows = (128u << 10) / (4 * (size_t)d);
  if (rows > 1024) rows = 1024;
  rows = rows / W * W;
  return rows < (size_t)W ? (size_t)W : rows;
}

size_t smallKScratchBytes(int d) {
  // Three tile buffers (ring), the transposed centroids, the local sums, counts, Σw·dist and
  // rows per label, then the bounded path's list of rows in doubt.
  return (3 * smallKTileFloats(d) + (size_t)d * W) * 4 +
         ((size_t)W * smallKSumStride(d) + 4 * W) * 8 + pruneSubRows(d) * 4 + 256;
}

/** s += w·x in float64; each product of two floats is exact, so contraction cannot change the bits. */
inline void addRowScaled(double* __restrict s, const float* __restrict x, int d, double w) {
  for (int f = 0; f < d; ++f) s[f] += (double)x[f] * w;
}


/**
 * The fast path for k ≤ KW (4, 8 or W centroids scored; the panel's padding centroids score
 * +inf), software-pipelined over tiles of W rows: while tile t's scores are
 * accumulated, the exact distances of tile t − 1 go through the other execution ports (one
 * permute, subtract and FMA per feature), and tile t + 1 is transposed; three tile buffers.
 * Sums go to an aligned local copy (split stores would stall the store-to-load forwarding of
 * consecutive rows with the same label), in the same row order, so the bits do not change.
 */
template <int KW, bool BOUNDED>
void assignRowsSmallK(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                      double* counts, BlockStats* out) {
  const int d = job.d, k = job.k;
  const size_t tf = smallKTileFloats(d);
  const size_t ss = smallKSumStride(d);
  const int d4 = d / 4 * 4;
  char* base = (char*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  float* const ring = (float*)base;         // 3 × tf: raw x of W rows, feature-major
  float* __restrict cT = ring + 3 * tf;     // d × W: raw centroids, cT[f·W + j]
  double* __restrict lsum = (double*)(((uintptr_t)(cT + (size_t)d * W) + 63) & ~(uintptr_t)63);
  double* __restrict lcnt = lsum + (size_t)W * ss;
  int64_t* __restrict icnt = (int64_t*)(lcnt + W);
  double* __restrict lq = (double*)(icnt + W);      // bounded: Σw·dist per label
  int64_t* __restrict imem = (int64_t*)(lq + W);    // bounded: rows of nonzero weight per label
  const float* __restrict x = job.x;
  const float* __restrict shift = job.shift;
  const float* __restrict weights = job.weights;
  const int32_t* __restrict prev = job.prev;
  const float* __restrict panel = job.panel;  // −2c̃: panel[f·W + j] (one tile since k ≤ W)
  const float* __restrict cc = job.cc;
  int32_t* __restrict labels = job.labels;
  float* __restrict distOut = job.dist;
  for (int f = 0; f < d; ++f)
    for (int j = 0; j < W; ++j) cT[(size_t)f * W + j] = j < k ? job.centroids[(size_t)j * d + f] : 0.0f;
  if (sums) {
    for (int j = 0; j < k; ++j) {
      for (int f = 0; f < d; ++f) lsum[(size_t)j * ss + f] = sums[(size_t)j * d + f];
      lcnt[j] = counts[j];
      icnt[j] = 0;
      if constexpr (BOUNDED) lq[j] = counts[k + j], imem[j] = 0;
    }
  }

  vi lane;
  for (int l = 0; l < W; ++l) lane[l] = l;
  vdw inertiaAcc = {};
  vi changedAcc = {};

  // Raw x of rows row(0), …, row(nv − 1) into buf, feature-major (missing rows repeat the last).
  auto transposeRows = [&](auto&& row, int nv, float* __restrict buf) __attribute__((always_inline)) {
    for (int f0 = 0; f0 < d; f0 += W) {
      const int nf = d - f0 < W ? d - f0 : W;
      vf v[W];
      if (nv == W && nf == W) {
#pragma GCC unroll 16
        for (int r = 0; r < W; ++r) v[r] = loadf(x + row(r) * d + f0);
      } else {
        for (int r = 0; r < W; ++r) {
          const float* p = x + row(r < nv ? r : nv - 1) * d + f0;
          v[r] = nf == W ? loadf(p) : loadTail(p, nf);
        }
      }
#if SEG_W == 16 && defined(__AVX512F__)
      transposeStore16(v, buf + (size_t)f0 * W);
#else
      transposeTile(v);
#pragma GCC unroll 16
      for (int l = 0; l < W; ++l) __builtin_memcpy(buf + (size_t)(f0 + l) * W, &v[l], sizeof(vf));
#endif
    }
  };
  auto transposeInto = [&](size_t i0, int nv, float* buf) __attribute__((always_inline)) {
    transposeRows([i0](int r) { return i0 + (size_t)r; }, nv, buf);
  };
#ifndef SEG_PF_TILES
#define SEG_PF_TILES 4
#endif
  // The rows of the tile at i0 (W·d floats, contiguous, clipped at end) into L1, a line at a time.
  auto prefetchTile = [&](size_t i0, size_t end) __attribute__((always_inline)) {
    if (i0 >= end) return;
    const char* pf = (const char*)(x + i0 * d);
    const char* pfEnd = (const char*)(x + (end < i0 + W ? end : i0 + W) * d);
    for (; pf < pfEnd; pf += 64) __builtin_prefetch(pf, 0, 3);
  };

  // Σ(x − c_bi)² of a transposed tile, four partial sums added pairwise (the same operations,
  // so the same bits, as the pipelined recompute below).
  auto exactOf = [&](const float* __restrict pb, vi bi) __attribute__((always_inline)) {
    vf e0 = {}, e1 = {}, e2 = {}, e3 = {};
    int f = 0;
    for (; f < d4; f += 4) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const vf tq = sqDiff(pb + (size_t)(f + q) * W, cT + (size_t)(f + q) * W, bi);
        if (q == 0) e0 += tq;
        if (q == 1) e1 += tq;
        if (q == 2) e2 += tq;
        if (q == 3) e3 += tq;
      }
    }
    for (; f < d; ++f) {
      e0 += sqDiff(pb + (size_t)f * W, cT + (size_t)f * W, bi);
    }
    return (e0 + e1) + (e2 + e3);
  };

  // Inertia, changes and sums of a finished tile (in tile order, so the bits never depend on
  // how its labels were found).
  auto stats = [&](size_t i0, int nv, vi bi, vf dv) __attribute__((always_inline)) {
    const vi valid = lane < nv;
    if (nv < W) dv = valid ? dv : vf{};
    vdw dd = __builtin_convertvector(dv, vdw);
    if (weights) {
      const vf wv = nv == W ? loadf(weights + i0) : loadTail(weights + i0, nv);
      dd *= __builtin_convertvector(wv, vdw);
    }
    inertiaAcc += dd;
    if (prev) {
      vi pv;
      if (nv == W)
        __builtin_memcpy(&pv, prev + i0, sizeof pv);
      else
        for (int r = 0; r < W; ++r) pv[r] = r < nv ? prev[i0 + r] : 0;
      changedAcc -= (pv != bi) & valid;
    }
    if (sums) {
      int32_t lab[W];
      __builtin_memcpy(lab, &bi, sizeof lab);
      if constexpr (BOUNDED)
        for (int r = 0; r < nv; ++r) lq[lab[r]] += dd[r], imem[lab[r]] += weights ? weights[i0 + r] != 0 : 1;
      if (d == 32)
        sumTile<32>(lsum, ss, lcnt, icnt, x + i0 * d, d, lab, nv, weights ? weights + i0 : nullptr);
      else
        sumTile<0>(lsum, ss, lcnt, icnt, x + i0 * d, d, lab, nv, weights ? weights + i0 : nullptr);
    }
  };
  // Labels, distances and statistics of a finished tile.
  auto finish = [&](size_t i0, int nv, vi bi, vf dv) __attribute__((always_inline)) {
    if (nv == W) {
      __builtin_memcpy(labels + i0, &bi, sizeof bi);
      __builtin_memcpy(distOut + i0, &dv, sizeof dv);
    } else {
      for (int r = 0; r < nv; ++r) {
        labels[i0 + r] = bi[r];
        distOut[i0 + r] = dv[r];
      }
    }
    stats(i0, nv, bi, dv);
  };

  float* __restrict lower = job.lower;
  float* __restrict upper = job.upper;
  const Hamerly H = Hamerly::of(job);
  const vf inf = vf{} + __builtin_inff();
  auto lowerBound = [&](vf s2, vf nx) __attribute__((always_inline)) { return H.lowerBound(s2, nx); };

  // Scores nT tiles, software-pipelined: fill(t, buf) transposes tile t into buf (and may
  // prefetch ahead); done(t, bi, dv, lb) takes tile t's winners, exact distances and (when
  // bnd is Flag<true>) lower bounds, in tile order.
  auto pipeline = [&](size_t nT, auto bnd, auto&& fill, auto&& done) __attribute__((always_inline)) {
    constexpr bool B = decltype(bnd)::value;
    // Locals, not the captured references: stores through labels and sums could alias those,
    // and every load would be repeated.
    const float* __restrict const panelL = panel;
    const float* __restrict const ccL = cc;
    const float* __restrict const shiftL = shift;
    const float* __restrict const cTL = cT;
    float* const ringL = ring;
    const int dL = d, d4L = d4;
    if (nT) fill(0, ringL);
    vi biPrev = {};
    vf lbPrev = {};
    const float* bufPrev = nullptr;
    for (size_t t = 0; t <= nT; ++t) {
      const bool have = t < nT;
      const float* __restrict cur = ringL + (t % 3) * tf;
      if (t + 1 < nT) fill(t + 1, ringL + ((t + 1) % 3) * tf);
      // Scores ‖c̃_j‖² − 2x̃·c̃_j, accumulated in the same order as microTile (same bits), and
      // the exact Σ(x − c)² of the previous tile's winners (four partial sums, added pairwise).
      vf acc[KW];
#pragma GCC unroll 16
      for (int j = 0; j < KW; ++j) acc[j] = vf{} + ccL[j];
      vf e0 = {}, e1 = {}, e2 = {}, e3 = {};
      vf nx0 = {}, nx1 = {};
      const float* __restrict pb = bufPrev;
      if (have && pb) {
        int f = 0;
        for (; f < d4L; f += 4) {
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            const vf xv = loadf(cur + (size_t)(f + q) * W) - shiftL[f + q];
            const float* __restrict p = panelL + (size_t)(f + q) * W;
#pragma GCC unroll 16
            for (int j = 0; j < KW; ++j) acc[j] += xv * p[j];
            if constexpr (B) {
              if (q & 1) nx1 += xv * xv;
              else nx0 += xv * xv;
            }
            const vf tq = sqDiff(pb + (size_t)(f + q) * W, cTL + (size_t)(f + q) * W, biPrev);
            if (q == 0) e0 += tq;
            if (q == 1) e1 += tq;
            if (q == 2) e2 += tq;
            if (q == 3) e3 += tq;
          }
        }
        for (; f < dL; ++f) {
          const vf xv = loadf(cur + (size_t)f * W) - shiftL[f];
          const float* __restrict p = panelL + (size_t)f * W;
#pragma GCC unroll 16
          for (int j = 0; j < KW; ++j) acc[j] += xv * p[j];
          if constexpr (B) nx0 += xv * xv;
          e0 += sqDiff(pb + (size_t)f * W, cTL + (size_t)f * W, biPrev);
        }
      } else if (have) {
        for (int f = 0; f < dL; ++f) {
          const vf xv = loadf(cur + (size_t)f * W) - shiftL[f];
          const float* __restrict p = panelL + (size_t)f * W;
#pragma GCC unroll 16
          for (int j = 0; j < KW; ++j) acc[j] += xv * p[j];
          if constexpr (B) {
            if (f & 1) nx1 += xv * xv;
            else nx0 += xv * xv;
          }
        }
      } else if (pb) {
        done(t - 1, biPrev, exactOf(pb, biPrev), lbPrev);
        break;
      }
      if (pb) done(t - 1, biPrev, (e0 + e1) + (e2 + e3), lbPrev);
      if (!have) break;
      vf sc[KW];
      if constexpr (B) {
#pragma GCC unroll 16
        for (int j = 0; j < KW; ++j) sc[j] = acc[j];
      }
      // Lane-wise argmin as a tree of depth log2 W (a chain of W compares would be latency-bound):
      // each step merges two runs of consecutive indices, the right one winning only when
      // strictly smaller, so ties keep the lowest index.
      vi idx[KW];
#pragma GCC unroll 16
      for (int j = 0; j < KW; ++j) idx[j] = vi{} + j;
#pragma GCC unroll 4
      for (int h = 1; h < KW; h *= 2)
#pragma GCC unroll 16
        for (int j = 0; j < KW; j += 2 * h) {
          const vi m = (acc[j + h] < acc[j]) | (acc[j] != acc[j]);  // a NaN score loses
          acc[j] = m ? acc[j + h] : acc[j];
          idx[j] = m ? idx[j + h] : idx[j];
        }
      const vi bi = idx[0];
      if constexpr (B) {
        // The second-best score: the smallest but the winner's (a NaN score makes e NaN too,
        // and a NaN e never passes).
        vf s2 = inf;
#pragma GCC unroll 16
        for (int j = 0; j < KW; ++j) {
          const vf v = (vi{} + j) == bi ? inf : sc[j];
          s2 = v < s2 ? v : s2;
        }
        lbPrev = lowerBound(s2, nx0 + nx1);
      }
      biPrev = bi;
      bufPrev = cur;
    }
  };

  auto rowsIn = [](size_t n0, size_t t) __attribute__((always_inline)) { return (int)(n0 - t * W < (size_t)W ? n0 - t * W : W); };
  auto storeBounds = [&](size_t i0, int nv, vf lb, vf ub) __attribute__((always_inline)) {
    if (nv == W) {
      __builtin_memcpy(lower + i0, &lb, sizeof lb);
      __builtin_memcpy(upper + i0, &ub, sizeof ub);
    } else {
      for (int r = 0; r < nv; ++r) lower[i0 + r] = lb[r], upper[i0 + r] = ub[r];
    }
  };
  // Contiguous rows from s0 to s1, every tile scored and finished in full.
  auto scoreAll = [&](size_t s0, size_t s1) __attribute__((always_inline)) {
    auto fill = [&](size_t t, float* buf) __attribute__((always_inline)) {
      transposeInto(s0 + t * W, rowsIn(s1 - s0, t), buf);
      if (SEG_PF_TILES > 0) prefetchTile(s0 + (t + SEG_PF_TILES - 1) * W, s1);
    };
    if constexpr (BOUNDED)
      pipeline((s1 - s0 + W - 1) / W, Flag<true>{}, fill, [&](size_t t, vi bi, vf dv, vf lb) __attribute__((always_inline)) {
        finish(s0 + t * W, rowsIn(s1 - s0, t), bi, dv);
        storeBounds(s0 + t * W, rowsIn(s1 - s0, t), lb, H.upperOf(dv));
      });
    else
      pipeline((s1 - s0 + W - 1) / W, Flag<false>{}, fill,
               [&](size_t t, vi bi, vf dv, vf) __attribute__((always_inline)) { finish(s0 + t * W, rowsIn(s1 - s0, t), bi, dv); });
  };

  int64_t pruned = 0, moved = 0;
  if (!BOUNDED || !job.drift || !prev) {
    scoreAll(r0, r1);
  } else if constexpr (BOUNDED) {
    // Sub-blocks of rows, each in two passes: (1) the aged bounds alone, no data read; (2) the
    // rows in doubt scored in full, gathered in tiles, which writes both bounds afresh. When
    // most of a sub-block is in doubt after (1) (early steps), it is scored whole instead, as
    // scoreAll would. Rows that change label move their weight, sums and distance between
    // labels, in row order.
    //
    // Hamerly's middle step, the exact distance to the old centroid to tighten the upper bound
    // before scoring, was dropped: with at most W centroids the scores cost little more than
    // that distance, while the row's memory access is the same, and a row that only had its
    // upper bound tightened stays in doubt at the next step (1M × 21 customer features, k = 16:
    // 5.9 against 7.7 ms at step 16, 2.7 against 3.5 ms at step 30, timed step by step as
    // bench/lloyd-chain.ts does).
    int32_t* __restrict doubt = (int32_t*)(imem + W);
    const size_t sub = pruneSubRows(d);
    const float* __restrict cRaw = job.centroids;
    auto validOf = [&](vi pv) __attribute__((always_inline)) { return (pv >= 0) & (pv < k); };
    // Row i leaves label `from` (its distance computed here: float64, like the inertia) for
    // `to`, at distance eTo.
    auto moveRow = [&](size_t i, int32_t from, int32_t to, float eTo) __attribute__((always_inline)) {
      const double w = weights ? (double)weights[i] : 1.0;
      if (w == 0) return;  // moves nothing (imem counts the rows of nonzero weight)
      const float* row = x + i * d;
      addRowScaled(lsum + (size_t)to * ss, row, d, w);
      if (weights) lcnt[to] += w;
      else ++icnt[to];
      ++imem[to];
      lq[to] += w * (double)eTo;
      if (from < 0 || from >= k) return;  // no old label to leave (never in a chain)
      addRowScaled(lsum + (size_t)from * ss, row, d, -w);
      if (weights) lcnt[from] -= w;
      else --icnt[from];
      --imem[from];
      lq[from] -= w * exactSqDist(row, cRaw + (size_t)from * d, d);
    };
    // Scored results of rows idx(0), …, idx(nv − 1): labels, distances, bounds, moves.
    auto scored = [&](auto&& idx, int nv, vi bi, vf dv, vf lb) __attribute__((always_inline)) {
      const vf ub = H.upperOf(dv);
      for (int r = 0; r < nv; ++r) {
        const size_t i = idx(r);
        labels[i] = bi[r];
        distOut[i] = dv[r];
        lower[i] = lb[r];
        upper[i] = ub[r];
        if (bi[r] != prev[i]) {
          ++moved;
          moveRow(i, prev[i], bi[r], dv[r]);
        }
      }
    };
    for (size_t s0 = r0; s0 < r1; s0 += sub) {
      const size_t s1 = r1 - s0 < sub ? r1 : s0 + sub;
      const size_t nT = (s1 - s0 + W - 1) / W;
      size_t n1 = 0;
      for (size_t t = 0; t < nT; ++t) {
        const size_t i0 = s0 + t * W;
        const int nv = rowsIn(s1 - s0, t);
        vi pv = {};
        vf lb = {}, ub = {};
        if (nv == W) {
          __builtin_memcpy(&pv, prev + i0, sizeof pv);
          __builtin_memcpy(&lb, lower + i0, sizeof lb);
          __builtin_memcpy(&ub, upper + i0, sizeof ub);
        } else {
          for (int r = 0; r < nv; ++r) pv[r] = prev[i0 + r], lb[r] = lower[i0 + r], ub[r] = upper[i0 + r];
        }
        const vi ok = validOf(pv);
        const vi safe = ok ? pv : vi{};
        lb = H.lowerAged(lb, safe);
        ub = H.upperAged(ub, safe);
        const vi pass = ok & H.pass(lb, ub);
        if (nv == W)
          __builtin_memcpy(labels + i0, &safe, sizeof safe);
        else
          for (int r = 0; r < nv; ++r) labels[i0 + r] = safe[r];
        storeBounds(i0, nv, lb, ub);
        const unsigned live = nv == 32 ? ~0u : (1u << nv) - 1u;
        pruned += __builtin_popcount(maskOf(pass) & live);
        for (unsigned failBits = ~maskOf(pass) & live; failBits; failBits &= failBits - 1) {
          const int r = __builtin_ctz(failBits);
          doubt[n1++] = (int32_t)(i0 - s0) + r;
        }
      }
      if (2 * n1 > s1 - s0) {
        pruned -= (int64_t)(s1 - s0 - n1);
        pipeline(
            nT, Flag<true>{},
            [&](size_t t, float* buf) __attribute__((always_inline)) {
              transposeInto(s0 + t * W, rowsIn(s1 - s0, t), buf);
              if (SEG_PF_TILES > 0) prefetchTile(s0 + (t + SEG_PF_TILES - 1) * W, s1);
            },
            [&](size_t t, vi bi, vf dv, vf lb) __attribute__((always_inline)) {
              const size_t i0 = s0 + t * W;
              const int nv = rowsIn(s1 - s0, t);
              if (nv < W) return scored([i0](int r) { return i0 + (size_t)r; }, nv, bi, dv, lb);
              __builtin_memcpy(labels + i0, &bi, sizeof bi);
              __builtin_memcpy(distOut + i0, &dv, sizeof dv);
              storeBounds(i0, W, lb, H.upperOf(dv));
              vi pv;
              __builtin_memcpy(&pv, prev + i0, sizeof pv);
              for (unsigned m = maskOf(bi != pv); m; m &= m - 1) {
                const int r = __builtin_ctz(m);
                ++moved;
                moveRow(i0 + r, pv[r], bi[r], dv[r]);
              }
            });
        continue;
      }
      // The rows of gathered tile t into L1, a line at a time.
      auto prefetchGather = [&](size_t t) __attribute__((always_inline)) {
        for (size_t r = t * W; r < n1 && r < (t + 1) * W; ++r) {
          const char* p = (const char*)(x + (s0 + (size_t)doubt[r]) * d);
          for (size_t b = 0; b < (size_t)d * 4; b += 64) __builtin_prefetch(p + b, 0, 3);
        }
      };
      if (SEG_PF_TILES > 1 && n1)
        for (size_t t = 0; t + 1 < SEG_PF_TILES; ++t) prefetchGather(t);
      if (n1)
        pipeline(
            (n1 + W - 1) / W, Flag<true>{},
            [&](size_t t, float* buf) __attribute__((always_inline)) {
              const int32_t* idx = doubt + t * W;
              transposeRows([s0, idx](int r) { return s0 + (size_t)idx[r]; }, rowsIn(n1, t), buf);
              if (SEG_PF_TILES > 0) prefetchGather(t + SEG_PF_TILES - 1);
            },
            [&](size_t t, vi bi, vf dv, vf lb) __attribute__((always_inline)) {
              const int32_t* idx = doubt + t * W;
              scored([s0, idx](int r) { return s0 + (size_t)idx[r]; }, rowsIn(n1, t), bi, dv, lb);
            });
    }
  }
  if (sums) {
    for (int j = 0; j < k; ++j) {
      for (int f = 0; f < d; ++f) sums[(size_t)j * d + f] = lsum[(size_t)j * ss + f];
      // Σ1 in row order from the caller's value is that value plus the count, exactly (integers
      // below 2^53; the caller passes zeros).
      counts[j] = icnt[j] ? lcnt[j] + (double)icnt[j] : lcnt[j];
      if constexpr (BOUNDED) {
        counts[k + j] = lq[j];
        counts[2 * k + j] += (double)imem[j];
      }
    }
  }
  double inertia = 0;
  int64_t changed = 0;
  for (int l = 0; l < W; ++l) {
    inertia += inertiaAcc[l];
    changed += changedAcc[l];
  }
  if (!prev) changed = (int64_t)(r1 - r0);
  if (BOUNDED && job.drift && prev) inertia = 0, changed = moved;
  out->inertia = inertia;
  out->nChanged = changed;
  out->nPruned = pruned;
}

void assignRows(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                double* counts, BlockStats* out) {
  // Small k: only as many centroids are scored as exist, rounded up to 4, 8 or W, not always a
  // whole vector of them.
  if constexpr (W >= 8) {
    if (job.k <= 4)
      return job.lower ? assignRowsSmallK<4, true>(job, r0, r1, scratch, sums, counts, out)
                        : assignRowsSmallK<4, false>(job, r0, r1, scratch, sums, counts, out);
    if (job.k <= 8)
      return job.lower ? assignRowsSmallK<8, true>(job, r0, r1, scratch, sums, counts, out)
                        : assignRowsSmallK<8, false>(job, r0, r1, scratch, sums, counts, out);
  }
  if (job.k <= W)
    return job.lower ? assignRowsSmallK<W, true>(job, r0, r1, scratch, sums, counts, out)
                      : assignRowsSmallK<W, false>(job, r0, r1, scratch, sums, counts, out);
  // No bounds beyond one vector of centroids (the caller never passes them): ones that never pass.
  if (job.lower)
    for (size_t i = r0; i < r1; ++i) job.lower[i] = -__builtin_inff(), job.upper[i] = __builtin_inff();
  switch (vectorsFor(job.k)) {
    case 1:
      return assignRowsT<1, 8>(job, r0, r1, scratch, sums, counts, out);
    case 2:
      return assignRowsT<2, 6>(job, r0, r1, scratch, sums, counts, out);
    case 3:
      if constexpr (SEG_MAX_VW >= 4) return assignRowsT<3, 8>(job, r0, r1, scratch, sums, counts, out);
      [[fallthrough]];
    default:
      return assignRowsT<SEG_MAX_VW, 6>(job, r0, r1, scratch, sums, counts, out);
  }
}

void sumRows(const float* x, int d, const int32_t* labels, const float* weights, size_t r0,
             size_t r1, double* sums, double* counts) {
  for (size_t row = r0; row < r1; ++row) {
    const int32_t j = labels[row];
    addRow(sums + (size_t)j * d, x + row * d, d, weights, row);
    counts[j] += weights ? (double)weights[row] : 1.0;
  }
}

template <int... L>
constexpr vi laneIdsOf(Lanes<L...>) {
  return vi{L...};
}

/** a + (a with lanes l, l ^ H swapped) where lane bit H is 0, the same of b where it is 1. */
template <int H>
inline vf foldPair(vf a, vf b) {
  constexpr vi ids = laneIdsOf(Lanes<__integer_pack(W)...>{});
  return (ids & H) == 0 ? a + swapLanes<H>(a) : b + swapLanes<H>(b);
}

/**
 * Four lane-vectors folded into one whose lane i·W/4 holds the sum of v[i]'s lanes: a few
 * shuffles for four sums instead of a full horizontal reduction each.
 */
inline vf fold4(const vf* v) {
  vf u = foldPair<W / 4>(foldPair<W / 2>(v[0], v[2]), foldPair<W / 2>(v[1], v[3]));
  // Then the W / 4 lanes of each group are summed.
  if constexpr (W >= 16) u += swapLanes<2>(u);
  if constexpr (W >= 8) u += swapLanes<1>(u);
  return u;
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

void potentialRows(const float* x, int d, const float* closest, const float* weights,
                   const float* cands, int m, size_t r0, size_t r1, double* out) {
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
      // One or two candidates left: folding would compute four, so one horizontal sum each.
      if (g < 3) {
        for (size_t row = s0; row < s1; ++row) {
          const float* xr = x + row * d;
          const double cl = closest[row];
          const double w = weights ? (double)weights[row] : 1.0;
          for (int j = 0; j < g; ++j) {
            const double q = exactSqDist(xr, c[j], d);
            acc[j] += w * (q < cl ? q : cl);
          }
        }
      } else
      for (size_t row = s0; row < s1; ++row) {
        const float* xr = x + row * d;
        // Σ(x − c)² directly (no expansion), per lane in float32, for G candidates at once;
        // then the G vectors are folded into one whose lane j·W/G holds candidate j's sum:
        // a few shuffles per row rather than a full horizontal sum per candidate.
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
        const vf u = fold4(v);
        // The min as a vector select: a compare-and-branch on it mispredicts about half the
        // time (measured 3× slower on random data).
        const vf cl = vf{} + closest[row];
        const vf mn = u < cl ? u : cl;
        const double w = weights ? (double)weights[row] : 1.0;
        for (int j = 0; j < g; ++j) acc[j] += w * (double)mn[j * (W / G)];
      }
      for (int j = 0; j < g; ++j) out[j0 + j] += acc[j];
    }
  }
}


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

extern const KernelTable SEG_TABLE = {
    SEG_ISA,      W,       tileWidth, scratchBytes,  packCentroids,
    assignRows,   sumRows, distRows,  potentialRows, clusterSumRows,
};

}  // namespace seg
