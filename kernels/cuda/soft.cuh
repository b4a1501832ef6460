// The per-thread arithmetic of the mixture and PCA kernels (x·W, soft sums, scatter matrices),
// shared by the GPU (kernels.cu) and the CPU emulation (emulate.cc) as lloyd.cuh is for the
// Lloyd kernels. Reductions over rows are per block of rows, in row order, written to one
// partial per block and then added in block order: no float atomics, the same bits on every run.
#pragma once

#include "lloyd.cuh"

namespace segcuda {

struct ProjectParams {
  const float* x;  // n × d: the rows of the range (or of a streamed chunk of it)
  const float* w;  // d × m row-major
  float* out;      // out, n × m
  int64_t n;
  int d;
  int m;
};

/**
 * x·W, phase 1 (all threads): rows [block·kRows, +kRows) × features [f0, f0 + kTileD) into xs,
 * transposed as loadTiles stages them (no shift: a product, not a distance), and W's rows
 * [f0, +kTileD) × columns [j0, j0 + kTileC) into cs, feature-major (W is already). Out of range
 * entries are zero.
 */
SEG_HD void loadProjectTiles(const ProjectParams& p, int64_t block, int tid, int j0, int f0, float* xs, float* cs) {
  for (int e = tid; e < kRows * kTileD; e += kRows) {
    const int r = e / kTileD, ff = e % kTileD;
    const int64_t row = block * kRows + r;
    const int f = f0 + ff;
    xs[ff * (kRows + 1) + r] = (row < p.n && f < p.d) ? p.x[row * p.d + f] : 0.0f;
  }
  for (int e = tid; e < kTileC * kTileD; e += kRows) {
    const int ff = e / kTileC, jj = e % kTileC;
    const int j = j0 + jj, f = f0 + ff;
    cs[e] = (j < p.m && f < p.d) ? p.w[(int64_t)f * p.m + j] : 0.0f;
  }
}

// Phase 2 is accumulateTile (lloyd.cuh): acc[jj] += x·W[·, j0 + jj] over the staged features.

/**
 * Phase 3 (each thread): the tile's float32 sums, kTileD terms at most, added to the row's
 * float64 sums, so the float32 error does not grow with d.
 */
SEG_HD void flushProjectTile(const float* acc, double* sum) {
  for (int jj = 0; jj < kTileC; ++jj) sum[jj] += (double)acc[jj];
}

/** Phase 4 (each thread): its row's columns [j0, j0 + kTileC) of the product. */
SEG_HD void finishProjectRow(const ProjectParams& p, int64_t block, int tid, int j0, const double* sum) {
  const int64_t row = block * kRows + tid;
  if (row >= p.n) return;
  for (int jj = 0; jj < kTileC; ++jj)
    if (j0 + jj < p.m) p.out[row * p.m + j0 + jj] = (float)sum[jj];
}

/** Threads per soft-sum and scatter block: each thread owns one output of one block of rows. */
constexpr int kSoftThreads = 256;
/** Rows per soft-sum and scatter block, at least: a power of two, so blocks tile streamed chunks. */
constexpr int64_t kSoftMinRows = 256;

/**
 * Rows per soft-sum or scatter block: kSoftMinRows, doubled while the partials (one `per`-long
 * partial per block, float64) exceed `budgetDoubles`. Depends only on n, per and the budget.
 */
SEG_HD int64_t softBlockRows(int64_t n, int64_t per, int64_t budgetDoubles) {
  int64_t rows = kSoftMinRows;
  while (((n + rows - 1) / rows) * per > budgetDoubles) rows *= 2;
  return rows;
}

struct SoftParams {
  const float* x;        // n × d
  const float* weights;  // n or null (all ones)
  const float* r;        // n × m, or null (scatter only: one column of ones)
  const double* means;   // m × d (scatter)
  double* partial;       // out, one `per`-long partial per block of rowsPerBlock rows
  int64_t n;
  int d;
  int m;
  int64_t rowsPerBlock;
};

/** Outputs of one soft-sum partial: m·d sums, then m counts. */
SEG_HD int64_t softSumOutputs(int d, int m) { return (int64_t)m * d + m; }

/**
 * Soft sums (each thread: output e of block `block`): e < m·d is sums[j·d + f] = Σ w·r[·, j]·x[·, f],
 * e ≥ m·d is counts[e − m·d] = Σ w·r[·, e − m·d], over the block's rows in order, in float64.
 * Consecutive threads take consecutive features of one column: coalesced reads of each row.
 */
SEG_HD void softSumThread(const SoftParams& p, int64_t block, int64_t e) {
  const int64_t md = (int64_t)p.m * p.d;
  if (e >= md + p.m) return;
  const bool count = e >= md;
  const int j = count ? (int)(e - md) : (int)(e / p.d);
  const int f = count ? 0 : (int)(e % p.d);
  const int64_t r0 = block * p.rowsPerBlock;
  const int64_t r1 = r0 + p.rowsPerBlock < p.n ? r0 + p.rowsPerBlock : p.n;
  double s = 0;
  for (int64_t row = r0; row < r1; ++row) {
    const double c = (p.weights ? (double)p.weights[row] : 1.0) * (double)p.r[row * p.m + j];
    s += count ? c : c * (double)p.x[row * p.d + f];
  }
  p.partial[block * softSumOutputs(p.d, p.m) + e] = s;
}

/** Feature pairs a ≤ b of one scatter matrix (its upper triangle). */
SEG_HD int64_t scatterPairs(int d) { return (int64_t)d * (d + 1) / 2; }

/** The t-th pair of the upper triangle, row by row: (0, 0), (0, 1), …, (0, d − 1), (1, 1), … */
SEG_HD void pairOf(int64_t t, int d, int* a, int* b) {
  int aa = 0;
  while (t >= d - aa) {
    t -= d - aa;
    ++aa;
  }
  *a = aa;
  *b = aa + (int)t;
}

/**
 * Scatter (each thread: output e of block `block`, e = j·pairs + t): Σ w·r[·, j]·(x_a − μ_ja)·(x_b
 * − μ_jb) for the t-th pair (a, b) of column j, over the block's rows in order, in float64.
 * Only the upper triangle is computed; the host mirrors it.
 */
SEG_HD void scatterThread(const SoftParams& p, int64_t block, int64_t e) {
  const int64_t pairs = scatterPairs(p.d);
  if (e >= (int64_t)p.m * pairs) return;
  const int j = (int)(e / pairs);
  int a, b;
  pairOf(e % pairs, p.d, &a, &b);
  const double ma = p.means[(int64_t)j * p.d + a], mb = p.means[(int64_t)j * p.d + b];
  const int64_t r0 = block * p.rowsPerBlock;
  const int64_t r1 = r0 + p.rowsPerBlock < p.n ? r0 + p.rowsPerBlock : p.n;
  double s = 0;
  for (int64_t row = r0; row < r1; ++row) {
    const double c = (p.weights ? (double)p.weights[row] : 1.0) * (p.r ? (double)p.r[row * p.m + j] : 1.0);
    const double da = (double)p.x[row * p.d + a] - ma, db = (double)p.x[row * p.d + b] - mb;
    s += c * da * db;
  }
  p.partial[block * (int64_t)p.m * pairs + e] = s;
}

}  // namespace segcuda
