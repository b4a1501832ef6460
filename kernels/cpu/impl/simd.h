// Vector types and lane operations over GCC vector extensions, for W = SEG_W float lanes: loads,
// lane shuffles and the horizontal reductions (sums, minima, masks, folds) the kernels share.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "../kernels.h"
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

}  // namespace
}  // namespace seg
