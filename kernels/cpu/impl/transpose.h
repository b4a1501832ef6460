// W × W block transposes for the small-k path, whose vectors each hold one feature of W rows.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

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

}  // namespace
}  // namespace seg
