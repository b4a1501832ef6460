// The tensor-core assignment for large k × d: scores from TF32 products (tensor cores, fp32
// accumulation) pick candidates, and the label is decided in float64 among them. Each row keeps
// its kTopK best approximate scores and the best score it dropped; the TF32 error of any score
// is at most E (tcBound, from the row's norm and the largest centroid norm), so when the dropped
// score is more than 2E above the best kept one no dropped centroid can be nearer, and the
// float64 distances of the kept ones decide (ties to the lowest index). Otherwise the row is
// flagged and scanned in float64 over every centroid. Either way the label is the float64
// argmin: more exact than the fp32 kernel, whose expanded scores tie within fp32 rounding.
//
// Phase functions as in lloyd.cuh: the GPU computes the approximate tile with wmma (TF32
// 16 × 16 × 8 fragments, kernels.cu), the CPU emulation with the same TF32 rounding and fp32
// sums in feature order (emulate.cc, `tc` mode); the bound must hold for any summation order,
// and the test checks the labels against a float64 brute force.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "lloyd.cuh"

namespace segcuda {

/** Candidates each row keeps for the float64 decision. */
constexpr int kTopK = 4;

/** v rounded to TF32 (10 explicit mantissa bits), to nearest with ties away from zero: PTX cvt.rna.tf32.f32. */
SEG_HD float tf32Round(float v) {
#ifdef __CUDA_ARCH__
  uint32_t u;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(v));
  return __uint_as_float(u);
#else
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) {  // finite: add half of the dropped 13 bits, truncate
    u += 0x1000u;
    u &= 0xffffe000u;
  }
  float r;
  std::memcpy(&r, &u, 4);
  return r;
#endif
}

/** A row's best kTopK approximate scores (ascending) and the lowest score it dropped. */
struct TopK {
  float s[kTopK];
  int32_t j[kTopK];
  float dropped;
};

SEG_HD void topkInit(TopK* t) {
  for (int i = 0; i < kTopK; ++i) {
    t->s[i] = INFINITY;
    t->j[i] = -1;
  }
  t->dropped = INFINITY;
}

/** Keeps score s of centroid j if it is among the kTopK lowest so far; whatever falls out lowers `dropped`. */
SEG_HD void topkPush(TopK* t, float s, int32_t j) {
  if (!(s < t->s[kTopK - 1])) {
    if (s < t->dropped) t->dropped = s;
    return;
  }
  if (t->s[kTopK - 1] < t->dropped) t->dropped = t->s[kTopK - 1];
  int i = kTopK - 1;
  while (i > 0 && s < t->s[i - 1]) {
    t->s[i] = t->s[i - 1];
    t->j[i] = t->j[i - 1];
    --i;
  }
  t->s[i] = s;
  t->j[i] = j;
}

/**
 * A bound on |approximate score − exact score| for a row with ‖x̃‖ = xNorm and centroids of
 * ‖c̃‖ ≤ cMax (shifted coordinates), d features. The products of TF32 inputs (each rounded with
 * relative error ≤ 2⁻¹¹) are off by at most (2·2⁻¹¹ + 2⁻²²)·|x̃_f·c̃_f|; accumulating d of them in
 * fp32, in any order and even truncating (2u per addition, u = 2⁻²⁴), adds (2d + 4)·u·Σ|x̃_f·c̃_f|;
 * Σ|x̃_f·c̃_f| ≤ ‖x̃‖·‖c̃‖. The score uses −2c̃, doubling that, plus ‖c̃‖² and the final addition in
 * fp32 ((d + 4)·u·cMax² and u·|score|). Twice the total, for safety.
 */
SEG_HD double tcBound(double xNorm, double cMax, int d) {
  const double u = 1.0 / 16777216.0;  // 2⁻²⁴
  const double uT = 1.0 / 2048.0;     // 2⁻¹¹, TF32's unit roundoff
  const double dot = (2 * uT + uT * uT + (2.0 * d + 4) * u) * xNorm * cMax;
  const double rest = (d + 4) * u * cMax * cMax + u * (cMax * cMax + 2 * xNorm * cMax);
  return 2.0 * (2.0 * dot + rest);
}

/**
 * The row's label from its kept candidates: the float64 distances of the kept ones decide (ties
 * to the lowest index), or *flagged when a dropped centroid could be nearer (the caller scans
 * every centroid, tcScanRow).
 */
SEG_HD int32_t tcDecide(const float* xRow, const float* centroids, int d, const TopK& t, double bound, bool* flagged) {
  *flagged = !(t.j[0] >= 0 && (double)t.dropped - (double)t.s[0] > 2 * bound);
  if (*flagged) return -1;
  double best = INFINITY;
  int32_t bestJ = -1;
  for (int i = 0; i < kTopK; ++i) {
    if (t.j[i] < 0) break;
    const double q = exactSqDist(xRow, centroids + (int64_t)t.j[i] * d, d);
    if (q < best || (q == best && t.j[i] < bestJ)) {
      best = q;
      bestJ = t.j[i];
    }
  }
  return bestJ;
}

/** A flagged row: the float64 argmin over all k centroids (ties to the lowest index). */
SEG_HD int32_t tcScanRow(const float* xRow, const float* centroids, int d, int k) {
  double best = INFINITY;
  int32_t bestJ = 0;
  for (int j = 0; j < k; ++j) {
    const double q = exactSqDist(xRow, centroids + (int64_t)j * d, d);
    if (q < best) {
      best = q;
      bestJ = j;
    }
  }
  return bestJ;
}

/** ‖x̃‖ of a row in shifted coordinates, float64. */
SEG_HD double shiftedNorm(const float* xRow, const float* shift, int d) {
  double s = 0;
  for (int f = 0; f < d; ++f) {
    const double t = (double)xRow[f] - (double)shift[f];
    s += t * t;
  }
  return sqrt(s);
}

/** Leading dimension of the shared TF32 tiles (a multiple of 4 floats, as wmma asks). */
constexpr int kTcLd = kTileD + 4;
/** Leading dimension of the shared score tile (rows × kTileC). */
constexpr int kTcScoreLd = kTileC + 4;

/** Features of the row tile staged once when the rows stay on chip: d rounded up to whole chunks. */
SEG_HD int tcPaddedFeatures(int d) { return (d + kTileD - 1) / kTileD * kTileD; }

/**
 * Phase 1a (all threads): features [f0, f1) of the tile's rows, shifted and rounded to TF32, into
 * xs row-major (xs[r·ld + f − f0]); zeros outside the data. The chunked kernel stages one chunk
 * (f1 = f0 + kTileD, ld = kTcLd) per centroid tile; the on-chip one every feature once
 * (f0 = 0, f1 = tcPaddedFeatures(d), ld = f1 + 4) for all centroid tiles.
 */
SEG_HD void tcLoadRows(const AssignParams& p, int64_t block, int tid, int f0, int f1, float* xs, int ld) {
  const int w = f1 - f0;
  for (int64_t e = tid; e < (int64_t)kRows * w; e += kRows) {
    const int r = (int)(e / w), ff = (int)(e % w);
    const int64_t row = block * kRows + r;
    const int f = f0 + ff;
    xs[r * ld + ff] = (row < p.n && f < p.d) ? tf32Round(p.x[row * p.d + f] - p.shift[f]) : 0.0f;
  }
}

/**
 * Phase 1b (all threads): centroids [j0, j0 + kTileC) × features [f0, f0 + kTileD) into cs,
 * centroid-major (wmma's column-major B, ld kTcLd), from the panel (−2c̃, feature-major), rounded
 * to TF32. Zeros outside.
 */
SEG_HD void tcLoadCentroids(const AssignParams& p, int tid, int j0, int f0, float* cs) {
  for (int e = tid; e < kTileC * kTileD; e += kRows) {
    const int ff = e / kTileC, jj = e % kTileC;
    const int j = j0 + jj, f = f0 + ff;
    cs[jj * kTcLd + ff] = (j < p.k && f < p.d) ? tf32Round(p.panel[(int64_t)f * p.k + j]) : 0.0f;
  }
}

/**
 * The emulation's stand-in for the tensor cores (each thread its row): acc[jj] += Σ_ff
 * xs[tid·ld + ff]·cs[jj][ff] over one chunk of kTileD features, in fp32, feature order. The GPU's
 * order and internal precision differ; tcBound covers any.
 */
SEG_HD void tcAccumulateRow(int tid, const float* xs, int ld, const float* cs, float* acc) {
  for (int jj = 0; jj < kTileC; ++jj) {
    float s = 0;
    for (int ff = 0; ff < kTileD; ++ff) s += xs[tid * ld + ff] * cs[jj * kTcLd + ff];
    acc[jj] += s;
  }
}

/** Phase 3 (each thread): the tile's approximate scores ‖c̃‖² − 2x̃·c̃ into the row's TopK. */
SEG_HD void tcUpdateTopK(const AssignParams& p, int j0, const float* acc, TopK* t) {
  for (int jj = 0; jj < kTileC; ++jj) {
    const int j = j0 + jj;
    if (j < p.k) topkPush(t, p.cc[j] + acc[jj], j);
  }
}

}  // namespace segcuda
