// Segment sums in fixed point: Σw·x per label, exact in integers, so they are the same bits
// whatever order the rows are added in. That is what lets the assignment kernel add each row
// into its label's sums as soon as it has the label (a Lloyd step reads the data once), with
// atomics from any number of blocks and streams, and still give bit-identical results from run
// to run, on resident and streamed data alike. Float64 sums in a fixed chunk order, the previous
// design, needed a second pass over the data and per-chunk partials.
//
// Each value v = w·(x − shift) (the column past the last feature holds w, for the counts) is
// split into two integers: hi = rint(v / uHi) and lo = rint((v − hi·uHi) / uLo), with uHi and
// uLo powers of two per column chosen from the column's largest |v| and the number of rows
// (fixedScaleFor) so that neither word's sum over all rows can overflow 63 bits. The sum is
// Σhi·uHi + Σlo·uLo: its error is at most nRows·uLo/2 ≈ nRows³·max|v|·2⁻¹²⁶ (2⁻⁶⁶·max|v| at a
// million rows), far below float64 summation's own. Two's-complement addition of the words as
// unsigned 64-bit integers wraps consistently, so partial sums may pass through any value.
//
// Phase functions as in lloyd.cuh: the same code runs on the GPU (atomics) and in the CPU
// emulation (emulate.cc, plain adds in any order), and a test checks both against float64.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "lloyd.cuh"

namespace segcuda {

/** One column's fixed-point units: v ≈ hi·unitHi + lo·unitLo. All powers of two. */
struct FixedScale {
  double invHi, unitHi, invLo, unitLo;
};

/**
 * Units for a column whose values satisfy |v| ≤ maxAbs over n rows: bits L = ⌈log₂(n + 1)⌉,
 * maxAbs < 2^e, uHi = 2^(L + e − 62) (so Σ|hi| ≤ n·2^(62 − L) + n/2 < 2^63) and
 * uLo = 2^(L − 63)·uHi (|v − hi·uHi| ≤ uHi/2, so Σ|lo| obeys the same bound).
 */
inline FixedScale fixedScaleFor(int64_t n, double maxAbs) {
  int L = 1;
  while (L < 62 && ((int64_t)1 << L) <= n) ++L;
  int e = 0;
  if (maxAbs > 0 && std::isfinite(maxAbs)) std::frexp(maxAbs, &e);  // maxAbs < 2^e
  const int eHi = L + e - 62;
  const int eLo = eHi + L - 63;
  return FixedScale{std::ldexp(1.0, -eHi), std::ldexp(1.0, eHi), std::ldexp(1.0, -eLo), std::ldexp(1.0, eLo)};
}

/**
 * Host: the d + 1 columns' units for x (n × d, row-major), its weights (or null) and shift:
 * column f < d from max |w·(x_f − shift_f)|, column d from max w (1 unweighted).
 */
inline void fixedScales(const float* x, const float* w, const float* shift, int64_t n, int d, FixedScale* out) {
  double maxW = 0;
  std::vector<double> m((size_t)d, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w ? (double)w[i] : 1.0;
    if (wi > maxW) maxW = wi;
    const float* r = x + i * d;
    for (int f = 0; f < d; ++f) {
      const double v = std::fabs(wi * ((double)r[f] - (double)shift[f]));
      if (v > m[f]) m[f] = v;
    }
  }
  for (int f = 0; f < d; ++f) out[f] = fixedScaleFor(n, m[f]);
  out[d] = fixedScaleFor(n, maxW);
}

SEG_HD uint64_t fixedWord(double v) { return (uint64_t)(int64_t)v; }

/** The two words of v (v finite, within its column's bound). Exact scalings by powers of two. */
SEG_HD void fixedSplit(double v, const FixedScale& s, uint64_t* hi, uint64_t* lo) {
  const double h = rint(v * s.invHi);
  *hi = fixedWord(h);
  *lo = fixedWord(rint((v - h * s.unitHi) * s.invLo));
}

/** A column's sum from its two accumulated words. */
SEG_HD double fixedValue(uint64_t hi, uint64_t lo, const FixedScale& s) {
  return (double)(int64_t)hi * s.unitHi + (double)(int64_t)lo * s.unitLo;
}

/** a += v: an atomic on the GPU (shared or global memory), a plain add in the emulation. */
SEG_HD void addWord(uint64_t* a, uint64_t v) {
#ifdef __CUDA_ARCH__
  atomicAdd(reinterpret_cast<unsigned long long*>(a), (unsigned long long)v);
#else
  *a += v;
#endif
}

struct FixedSumParams {
  const float* x;         // n × d
  const float* weights;   // n or null
  const float* shift;     // d
  const int32_t* labels;  // n: the labels to sum by (the unfused kernel), or null (fused: the block's own)
  const FixedScale* scale;  // d + 1
  uint64_t* acc;          // k × (d + 1) × 2 words (global), zeroed before the pass
  int64_t n;
  int d;
  int k;
};

/** Accumulator words: label j, column col (col = d: the weight), hi then lo. */
SEG_HD int64_t fixedSlot(int d, int32_t j, int col) { return ((int64_t)j * (d + 1) + col) * 2; }

/**
 * One phase (each thread tid of kRows): the entries tid, tid + kRows, … of rows
 * [tile·kRows, +kRows) × columns [0, d], row-major, so consecutive threads read consecutive
 * features of a row (coalesced). rowLabel[r] is row r's label within the tile. acc: the words
 * to add into (shared memory for a block's own copy, or p.acc).
 */
SEG_HD void fixedSumTile(const FixedSumParams& p, int64_t tile, int tid, const int32_t* rowLabel, uint64_t* acc) {
  const int cols = p.d + 1;
  const int64_t entries = (int64_t)kRows * cols;
  for (int64_t e = tid; e < entries; e += kRows) {
    const int r = (int)(e / cols), col = (int)(e % cols);
    const int64_t row = tile * kRows + r;
    if (row >= p.n) break;  // rows only grow with e
    const double w = p.weights ? (double)p.weights[row] : 1.0;
    const double v = col < p.d ? w * ((double)p.x[row * p.d + col] - (double)p.shift[col]) : w;
    uint64_t hi, lo;
    fixedSplit(v, p.scale[col], &hi, &lo);
    uint64_t* a = acc + fixedSlot(p.d, rowLabel[r], col);
    addWord(a, hi);
    addWord(a + 1, lo);
  }
}

/** A block's own words (count of them: `words`) added into the global ones; zeros skipped. */
SEG_HD void fixedFlush(const uint64_t* local, uint64_t* global, int64_t words, int tid, int threads) {
  for (int64_t e = tid; e < words; e += threads)
    if (local[e]) addWord(global + e, local[e]);
}

/**
 * Element e of the result (k·d sums then k counts, float64): sums in the original coordinates,
 * Σw·(x − shift) + shift·Σw.
 */
SEG_HD double fixedResult(const uint64_t* acc, const FixedScale* scale, const float* shift, int d, int k, int64_t e) {
  if (e >= (int64_t)k * d) {
    const int j = (int)(e - (int64_t)k * d);
    return fixedValue(acc[fixedSlot(d, j, d)], acc[fixedSlot(d, j, d) + 1], scale[d]);
  }
  const int j = (int)(e / d), f = (int)(e % d);
  const int64_t s = fixedSlot(d, j, f), c = fixedSlot(d, j, d);
  return fixedValue(acc[s], acc[s + 1], scale[f]) + (double)shift[f] * fixedValue(acc[c], acc[c + 1], scale[d]);
}

/** Words that fit a block's dynamic shared memory (kernels.cu asks for this much). */
constexpr int64_t kSharedFixedBytes = 96 * 1024;

}  // namespace segcuda
