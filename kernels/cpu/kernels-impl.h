// The CPU kernels, written once over GCC vector extensions and instantiated per instruction set
// by isa-*.cc, which define SEG_W (float lanes), SEG_MAX_VW (vectors per centroid tile),
// SEG_TABLE (the KernelTable's name) and SEG_ISA (its label) before including this file.
//
// Everything here has internal linkage (anonymous namespace) and uses no standard-library
// templates, so no AVX-512 instance can leak into the baseline build through the linker.
#include "kernels.h"

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

inline size_t roundUp(size_t a, size_t b) { return (a + b - 1) / b * b; }

/** Vectors per centroid tile: one or two for small k (no wasted lanes), SEG_MAX_VW beyond. */
inline int vectorsFor(int k) { return k <= W ? 1 : k <= 2 * W ? 2 : SEG_MAX_VW; }

/** Rows per micro-tile: as many accumulators as the register file holds with the tile's vectors. */
inline int rowsFor(int vw) { return vw == 1 ? 8 : vw == 2 ? 6 : 6; }

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

size_t scratchBytes(int d, int k) {
  const size_t rb = blockRows(d, k);
  return rb * d * 4 + rb * 4 + rb * 4 + 128;
}

/** Exact Σ(x − c)²: float32 inputs widened to float64 before the subtraction, fixed lane order. */
inline double exactSqDist(const float* __restrict x, const float* __restrict c, int d) {
  vd8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  int f = 0;
  for (; f + 8 <= d; f += 8) {
    const vd8 t = load8d(x + f) - load8d(c + f);
    acc += t * t;
  }
  double tail = 0;
  for (; f < d; ++f) {
    const double t = (double)x[f] - (double)c[f];
    tail += t * t;
  }
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
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

/** Lane-wise min with lowest index on ties, folded to lane 0 by a butterfly of shuffles. */
inline void horizontalArgmin(vf v, vi idx, float* outV, int32_t* outI) {
#pragma GCC unroll 8
  for (int step = W / 2; step >= 1; step /= 2) {
    vi mask;
    for (int l = 0; l < W; ++l) mask[l] = l ^ step;
    const vf v2 = __builtin_shuffle(v, mask);
    const vi i2 = __builtin_shuffle(idx, mask);
    const vi take = (v2 < v) | ((v2 == v) & (i2 < idx));
    v = take ? v2 : v;
    idx = take ? i2 : idx;
  }
  *outV = v[0];
  *outI = idx[0];
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
    vf bv = acc[r][0];
    vi bi = lane;
#pragma GCC unroll 4
    for (int v = 1; v < VW; ++v) {
      // Strict < keeps the lower index of a lane on ties.
      const vi m = acc[r][v] < bv;
      bv = m ? acc[r][v] : bv;
      bi = m ? lane + v * W : bi;
    }
    float mv;
    int32_t mi;
    horizontalArgmin(bv, bi, &mv, &mi);
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

  double inertia = 0;
  int64_t changed = 0;
  for (size_t b0 = r0; b0 < r1; b0 += rb) {
    const size_t nr = (r1 - b0) < rb ? (r1 - b0) : rb;
    const size_t nrPad = roundUp(nr, R);
    // Shifting by the data mean keeps ‖x̃‖ and ‖c̃‖ near the spread of the data, so the
    // expansion's rounding error stays relative to the distances themselves.
    for (size_t i = 0; i < nr; ++i) {
      const float* __restrict xr = job.x + (b0 + i) * d;
      float* __restrict o = xt + i * d;
      for (int f = 0; f < d; ++f) o[f] = xr[f] - shift[f];
    }
    for (size_t i = nr * d; i < nrPad * d; ++i) xt[i] = 0.0f;
    for (size_t i = 0; i < nrPad; ++i) {
      bestVal[i] = __builtin_inff();
      bestIdx[i] = 0;
    }
    for (int t = 0; t < nTiles; ++t) {
      const float* p = job.panel + (size_t)t * tw * d;
      const float* cct = job.cc + (size_t)t * tw;
      for (size_t i = 0; i < nrPad; i += R)
        microTile<VW, R>(xt + i * d, d, p, cct, t * tw, bestVal + i, bestIdx + i);
    }
    for (size_t i = 0; i < nr; ++i) {
      const size_t row = b0 + i;
      const int32_t j = bestIdx[i];
      const float* xr = job.x + row * d;
      const double dist = exactSqDist(xr, job.centroids + (size_t)j * d, d);
      job.labels[row] = j;
      job.dist[row] = (float)dist;
      const double w = job.weights ? (double)job.weights[row] : 1.0;
      inertia += w * dist;
      if (job.prev && job.prev[row] != j) ++changed;
      if (sums) {
        addRow(sums + (size_t)j * d, xr, d, job.weights, row);
        counts[j] += w;
      }
    }
  }
  if (!job.prev) changed = (int64_t)(r1 - r0);
  out->inertia = inertia;
  out->nChanged = changed;
}

void assignRows(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                double* counts, BlockStats* out) {
  switch (vectorsFor(job.k)) {
    case 1:
      return assignRowsT<1, 8>(job, r0, r1, scratch, sums, counts, out);
    case 2:
      return assignRowsT<2, 6>(job, r0, r1, scratch, sums, counts, out);
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

void distRows(const float* x, int d, const float* centers, int m, size_t r0, size_t r1,
              float* out) {
  for (size_t row = r0; row < r1; ++row)
    for (int j = 0; j < m; ++j)
      out[row * m + j] = (float)exactSqDist(x + row * d, centers + (size_t)j * d, d);
}

}  // namespace

extern const KernelTable SEG_TABLE = {
    SEG_ISA, W, tileWidth, scratchBytes, packCentroids, assignRows, sumRows, distRows,
};

}  // namespace seg
