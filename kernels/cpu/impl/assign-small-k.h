// The small-k assignment (k ≤ W): a tile of W rows at a time, transposed so that each vector
// holds one feature of W rows; each centroid's score is then one vector accumulator (FMA with a
// broadcast panel value), the argmin is lane-wise (compares and blends, no horizontal
// reductions), and the exact recompute gathers the winner's feature with one permute. With
// Hamerly's bounds (hamerly.h), rows whose bounds clear are neither read nor scored.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "assign-general.h"
#include "hamerly.h"
#include "transpose.h"

namespace seg {
namespace {

typedef double vdw __attribute__((vector_size(W * 8)));

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

/** Rows of tile t (W rows each) among n0 rows: W, or fewer for the last tile. */
__attribute__((always_inline)) inline int rowsIn(size_t n0, size_t t) { return (int)(n0 - t * W < (size_t)W ? n0 - t * W : W); }

/** Raw x of rows row(0), …, row(nv − 1) into buf, feature-major (missing rows repeat the last). */
template <class Row>
__attribute__((always_inline)) inline void transposeRowsOf(const float* __restrict x, int d, Row&& row, int nv,
                                                           float* __restrict buf) {
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
}

#ifndef SEG_PF_TILES
#define SEG_PF_TILES 4
#endif
/** The rows of the tile at i0 (W·d floats, contiguous, clipped at end) into L1, a line at a time. */
__attribute__((always_inline)) inline void prefetchRows(const float* __restrict x, int d, size_t i0, size_t end) {
  if (i0 >= end) return;
  const char* pf = (const char*)(x + i0 * d);
  const char* pfEnd = (const char*)(x + (end < i0 + W ? end : i0 + W) * d);
  for (; pf < pfEnd; pf += 64) __builtin_prefetch(pf, 0, 3);
}

/**
 * Σ(x − c_bi)² of a transposed tile pb against the transposed centroids cT (d4 = d rounded down
 * to 4), four partial sums added pairwise: the same operations, so the same bits, as the
 * recompute the pipeline overlaps with the next tile's scores.
 */
__attribute__((always_inline)) inline vf tileSqDist(const float* __restrict pb, const float* __restrict cT, int d, int d4,
                                                   vi bi) {
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
}

/**
 * The lane-wise argmin of KW score vectors (acc is overwritten), as a tree of depth log2 KW (a
 * chain of compares would be latency-bound): each step merges two runs of consecutive indices,
 * the right one winning only when strictly smaller, so ties keep the lowest index.
 */
template <int KW>
__attribute__((always_inline)) inline vi argminLanes(vf* acc) {
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
  return idx[0];
}

/**
 * The second-best score per lane: the smallest of sc but the winner bi's (a NaN score makes the
 * exact distance NaN too, and a NaN never passes the bounds test).
 */
template <int KW>
__attribute__((always_inline)) inline vf secondBest(const vf* sc, vi bi) {
  const vf inf = vf{} + __builtin_inff();
  vf s2 = inf;
#pragma GCC unroll 16
  for (int j = 0; j < KW; ++j) {
    const vf v = (vi{} + j) == bi ? inf : sc[j];
    s2 = v < s2 ? v : s2;
  }
  return s2;
}

/** lower[i0 + r] = lb[r] and upper[i0 + r] = ub[r] for the tile's nv rows. */
__attribute__((always_inline)) inline void storeTile(float* __restrict lower, float* __restrict upper, size_t i0, int nv,
                                                    vf lb, vf ub) {
  if (nv == W) {
    __builtin_memcpy(lower + i0, &lb, sizeof lb);
    __builtin_memcpy(upper + i0, &ub, sizeof ub);
  } else {
    for (int r = 0; r < nv; ++r) lower[i0 + r] = lb[r], upper[i0 + r] = ub[r];
  }
}

/**
 * Pass (1) of a bounded sub-block [s0, s1): each row's bounds aged by the centroids' moves and
 * tested, no data read. Every row gets its old label and its aged bounds; the rows that fail
 * go to doubt (offsets from s0, in row order), and their number is returned; *pruned counts
 * the others.
 */
__attribute__((always_inline)) inline size_t ageBounds(const Hamerly& H, int k, const int32_t* __restrict prev,
                                                      int32_t* __restrict labels, float* __restrict lower,
                                                      float* __restrict upper, size_t s0, size_t s1,
                                                      int32_t* __restrict doubt, int64_t* pruned) {
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
    const vi ok = (pv >= 0) & (pv < k);
    const vi safe = ok ? pv : vi{};
    lb = H.lowerAged(lb, safe);
    ub = H.upperAged(ub, safe);
    const vi pass = ok & H.pass(lb, ub);
    if (nv == W)
      __builtin_memcpy(labels + i0, &safe, sizeof safe);
    else
      for (int r = 0; r < nv; ++r) labels[i0 + r] = safe[r];
    storeTile(lower, upper, i0, nv, lb, ub);
    const unsigned live = nv == 32 ? ~0u : (1u << nv) - 1u;
    *pruned += __builtin_popcount(maskOf(pass) & live);
    for (unsigned failBits = ~maskOf(pass) & live; failBits; failBits &= failBits - 1) {
      const int r = __builtin_ctz(failBits);
      doubt[n1++] = (int32_t)(i0 - s0) + r;
    }
  }
  return n1;
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

  auto transposeRows = [&](auto&& row, int nv, float* __restrict buf) __attribute__((always_inline)) {
    transposeRowsOf(x, d, row, nv, buf);
  };
  auto transposeInto = [&](size_t i0, int nv, float* buf) __attribute__((always_inline)) {
    transposeRows([i0](int r) { return i0 + (size_t)r; }, nv, buf);
  };
  auto prefetchTile = [&](size_t i0, size_t end) __attribute__((always_inline)) { prefetchRows(x, d, i0, end); };
  auto exactOf = [&](const float* __restrict pb, vi bi) __attribute__((always_inline)) { return tileSqDist(pb, cT, d, d4, bi); };

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
      const vi bi = argminLanes<KW>(acc);
      if constexpr (B) lbPrev = lowerBound(secondBest<KW>(sc, bi), nx0 + nx1);
      biPrev = bi;
      bufPrev = cur;
    }
  };

  auto storeBounds = [&](size_t i0, int nv, vf lb, vf ub) __attribute__((always_inline)) { storeTile(lower, upper, i0, nv, lb, ub); };
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
      const size_t n1 = ageBounds(H, k, prev, labels, lower, upper, s0, s1, doubt, &pruned);
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

}  // namespace
}  // namespace seg
