// Greedy k-means++ on the device: each row's squared distance to its nearest chosen center
// (closest) stays in GPU memory, and so do the D² sampling's running sums, so a seeding step
// moves only its few candidates' rows up and a few numbers back, where the host path moved two
// nRows arrays across the bus and ran a JavaScript loop over every row (minutes per restart at
// k = 20,000).
//
// A step: the host draws `trials` thresholds u·φ (its own random numbers, as on the CPU); the
// device finds each one's row (seedDraw), scores the candidates (seedPotentialThread: Σ w·min(
// closest, ‖x − c‖²), keeping each row's distance to each candidate), the host keeps the best,
// and the device folds its kept distances into closest and recomputes the sums (seedTakeRow,
// seedBlockSum, seedPrefix). Every sum is in a fixed order, so the centres are the same run after
// run. The sampling's running sum is F(i) = prefix[b − 1] + Σ w·closest over block b's rows up to
// i (blocks of kSeedRows rows, each summed by one thread in row order, then the blocks' prefix in
// block order): the CPU's row-order float64 running sum rounded differently, so a threshold
// within rounding of a row boundary may pick the neighbouring row (a near-tie).
//
// Phase functions as in lloyd.cuh: the same code runs on the GPU and in the CPU emulation
// (emulate.cc, `seed` mode, against a float64 greedy k-means++ with the same draws).
#pragma once

#include <cstdint>

#include "lloyd.cuh"

namespace segcuda {

/** Rows per sampling block (one thread sums a block, in row order). */
constexpr int64_t kSeedRows = 2048;

struct SeedParams {
  const float* x;        // n × d
  const float* weights;  // n or null
  float* closest;        // n: squared distance to the nearest chosen center
  double* blockSum;      // nBlocks: Σ w·closest over each block's rows, in row order
  double* prefix;        // nBlocks: Σ blockSum over blocks [0, b], in block order
  float* keep;           // m × n: each row's distance to candidate j of the last potentials call
  int64_t n;
  int d;
};

SEG_HD int64_t seedBlocks(int64_t n) { return (n + kSeedRows - 1) / kSeedRows; }

/** The distance closest keeps: ‖x − c‖² in float64, rounded to float (the kept and the fresh alike). */
SEG_HD float seedDist(const float* x, const float* c, int d) { return (float)exactSqDist(x, c, d); }

/** Each row (a thread per row): closest = ‖x − center‖² (first: from +inf, i.e. replaced). */
SEG_HD void seedFirstRow(const SeedParams& p, int64_t row, const float* center) {
  if (row < p.n) p.closest[row] = seedDist(p.x + row * p.d, center, p.d);
}

/** Each row: closest = min(closest, kept[row]), kept: the chosen candidate's column of keep. */
SEG_HD void seedTakeRow(const SeedParams& p, int64_t row, const float* kept) {
  if (row < p.n && kept[row] < p.closest[row]) p.closest[row] = kept[row];
}

/** One thread per block b: its rows' Σ w·closest, in row order. */
SEG_HD void seedBlockSum(const SeedParams& p, int64_t b) {
  const int64_t r0 = b * kSeedRows, r1 = r0 + kSeedRows < p.n ? r0 + kSeedRows : p.n;
  double s = 0;
  for (int64_t row = r0; row < r1; ++row) s += (p.weights ? (double)p.weights[row] : 1.0) * (double)p.closest[row];
  p.blockSum[b] = s;
}

/** One thread: prefix[b] = prefix[b − 1] + blockSum[b], in block order. */
SEG_HD void seedPrefix(const SeedParams& p) {
  double s = 0;
  const int64_t nb = seedBlocks(p.n);
  for (int64_t b = 0; b < nb; ++b) p.prefix[b] = s += p.blockSum[b];
}

/**
 * One thread per threshold t: the first row whose running sum F reaches t (numpy's
 * searchsorted side='left' on F), the last row if none does. The block by binary search on
 * prefix, the row by F within the block (a block whose own rows fall short of t by rounding
 * gives its last row).
 */
SEG_HD int64_t seedDraw(const SeedParams& p, double t) {
  const int64_t nb = seedBlocks(p.n);
  if (nb == 0) return 0;
  int64_t lo = 0, hi = nb;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (p.prefix[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo == nb) return p.n - 1;
  const int64_t r0 = lo * kSeedRows, r1 = r0 + kSeedRows < p.n ? r0 + kSeedRows : p.n;
  double s = lo > 0 ? p.prefix[lo - 1] : 0.0;
  for (int64_t row = r0; row < r1; ++row) {
    s += (p.weights ? (double)p.weights[row] : 1.0) * (double)p.closest[row];
    if (s >= t) return row;
  }
  return r1 - 1;
}

/**
 * Candidate potentials, phase 1 (each thread, the potentials kernel's rows: block·kPotRows +
 * s·kPotThreads + tid): acc[j] = Σ w·min(closest, q_j) for candidates j0 … j0 + kPotGroup − 1,
 * q_j = seedDist(x, c_j) kept in keep[j·n + row], so the chosen one's column updates closest
 * without reading the data again, with the bits a fresh distance would have.
 */
SEG_HD void seedPotentialThread(const SeedParams& p, const float* cands, int m, int64_t block, int tid, int j0,
                                double* acc) {
  for (int j = 0; j < kPotGroup; ++j) acc[j] = 0;
  for (int r = 0; r < kPotRowsPerThread; ++r) {
    const int64_t row = block * kPotRows + (int64_t)r * kPotThreads + tid;
    if (row >= p.n) break;
    const float cl = p.closest[row];
    const double w = p.weights ? (double)p.weights[row] : 1.0;
    for (int j = 0; j < kPotGroup; ++j) {
      if (j0 + j >= m) break;
      const float q = seedDist(p.x + row * p.d, cands + (int64_t)(j0 + j) * p.d, p.d);
      p.keep[(int64_t)(j0 + j) * p.n + row] = q;
      acc[j] += w * (double)(q < cl ? q : cl);
    }
  }
}

}  // namespace segcuda
