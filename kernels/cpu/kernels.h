// The CPU kernel table: one instance per instruction set (baseline x86-64-v2, AVX2+FMA,
// AVX-512), chosen once at load time. Each instance is compiled in its own translation unit
// with its own -march, so nothing in these files may use an inline template from the standard
// library: the linker would keep one copy of it, possibly the AVX-512 one, for every caller.
//
// Kernels trust their inputs; shapes are checked in src/engine/ops and the binding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace seg {

/** Everything one assignment pass reads and writes. Pointers are borrowed. */
struct AssignJob {
  const float* x;        // nRows × d, row-major
  const float* weights;  // nRows or null (all ones)
  const int32_t* prev;   // nRows or null: labels to count changes against
  const float* centroids;  // k × d, original (unshifted) coordinates for the exact recompute
  const float* panel;    // packCentroids output: −2(c − shift), tiles of tileWidth(k) centroids
  const float* cc;       // packCentroids output: ‖c − shift‖², +inf for padding
  const float* shift;    // d: subtracted from x and c before the expansion (cancellation)
  int32_t* labels;       // out, nRows
  float* dist;           // out, nRows: exact Σ(x − c)² to the winner
  int d;
  int k;
  /**
   * Hamerly's bounds, nRows each, in and out, or null: `lower` bounds ‖x − c_j‖ over every
   * centroid j but the row's label, `upper` bounds ‖x − c_label‖ (unshifted coordinates, exact
   * reals). Only the small-k kernels (k ≤ lanes) take them, and they need `sums`.
   *  - Without `drift` (a chain's first step) every row is scored and both bounds are written;
   *    `counts` then holds 3k doubles: Σw, Σw·dist and the rows of nonzero weight per label.
   *  - With `drift`, the bounds belong to `prev`'s labels and each centroid j moved at most
   *    drift[j] since they were written. A row whose aged bounds clear each other by more than
   *    the scores' rounding keeps its label without its data being read; the others get their
   *    exact distance to the old centroid, and those still in doubt are scored in full. Labels
   *    are the same as without bounds, bit for bit. `sums` and the 3k `counts` then receive the
   *    changes only (rows that moved, out of the old label and into the new), `dist` is exact
   *    only for rows whose data was read, and the inertia is not computed (0).
   */
  float* lower = nullptr;
  float* upper = nullptr;
  /** k, rounded up, or null: see `lower`. */
  const float* drift = nullptr;
};

/**
 * Everything one silhouette pass reads and writes (see clusterSumRows). The columns are the
 * rows of x sorted by label (stable), packed in tiles of `lanes` columns, transposed, so that
 * each cluster is one run of consecutive columns. Pointers are borrowed.
 */
struct ClusterSumsJob {
  const float* x;          // nRows × d, row-major (the rows whose sums are computed)
  const float* panel;      // nTiles × d × lanes: panel[(t·d + f)·lanes + l] = feature f of column t·lanes + l
  const int32_t* colLabel; // nTiles × lanes: each column's label, −1 for padding
  const uint8_t* uniform;  // nTiles: 1 when every lane of the tile is a real column of one label
  double* out;             // nRows × k, zeroed by the caller: out[i·k + l] += Σ ‖x_i − x_j‖
  int nTiles;
  int d;
  int k;
};

/** Rows per clusterSumRows call at most (its scratch holds one vector per row). */
constexpr int kClusterTaskRows = 64;

/**
 * Neighbour pairs found by radiusRows, appended in the order found: (query slot, row) pairs.
 * The buffer belongs to the binding, which grows it through `grow` (the kernels use no
 * standard-library templates, see above).
 */
struct RadiusHits {
  int32_t* pairs;  // 2·cap ints: slot, row, slot, row, ...
  size_t len;      // pairs used
  size_t cap;      // pairs allocated
  void (*grow)(RadiusHits* self);  // at least one more pair; updates pairs and cap
  void* owner;
};

/** Everything a radius search reads. Pointers are borrowed. */
struct RadiusJob {
  const float* x;        // nRows × d, row-major
  const float* weights;  // nRows or null (all ones)
  /**
   * The queries in tiles of `lanes`, feature-major: qpanel[(t·d + f)·lanes + l] = x[q0 + t·lanes
   * + l, f], NaN past the last query (NaN compares false, so a padding lane never matches).
   */
  const float* qpanel;
  size_t q0;    // the row of query 0
  int d;
  double eps2;  // the float64 test: Σ_f (x_if − x_qf)² <= eps2
  /**
   * The float32 screen: a float32 squared distance s above `hi` is out and one below `lo` is in;
   * from lo to hi the float64 sum decides. Set by the binding from the float32 rounding bound.
   */
  float lo;
  float hi;
};

/** Per-block results, reduced by the caller in block order. */
struct BlockStats {
  double inertia;
  int64_t nChanged;
  int64_t nPruned;  // rows that kept their label by the bounds test, their data not read
};

struct KernelTable {
  const char* isa;
  int lanes;  // float32 lanes per vector
  /** Centroids per tile for this k (a multiple of lanes). */
  int (*tileWidth)(int k);
  /** Bytes of scratch one worker needs for assignRows. */
  size_t (*scratchBytes)(int d, int k);
  /** Packs centroids: panel has ceil(k / tw) · tw · d floats, cc has ceil(k / tw) · tw. */
  void (*packCentroids)(const float* c, int k, int d, const float* shift, float* panel, float* cc);
  /**
   * Rows [r0, r1): labels, exact distances, weighted inertia and changed count, and if `sums`
   * is non-null Σw·x and Σw per new label added to sums (k × d) and counts (k) in row order
   * (with Hamerly bounds, see AssignJob::lower for what they receive instead).
   */
  void (*assignRows)(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                     double* counts, BlockStats* out);
  /** Σw·x and Σw per label over rows [r0, r1), added in row order. */
  void (*sumRows)(const float* x, int d, const int32_t* labels, const float* weights, size_t r0,
                  size_t r1, double* sums, double* counts);
  /** out[i·m + j] = Σ(x_i − c_j)² for rows [r0, r1), computed directly in float64. */
  void (*distRows)(const float* x, int d, const float* centers, int m, size_t r0, size_t r1,
                   float* out);
  /**
   * k-means++ potentials over rows [r0, r1): out[j] += w·min(closest, Σ(x − c_j)²) for the m
   * candidates, each distance computed directly (no expansion), added in row order. With
   * `keep`, each row's squared distance to candidate j also goes to keep[j·keepStride + row],
   * as distRows computes it for a row in a group of four (fold4), so the chosen candidate's
   * column updates the closest distances without another pass over x.
   */
  void (*potentialRows)(const float* x, int d, const float* closest, const float* weights,
                        const float* cands, int m, size_t r0, size_t r1, double* out, float* keep,
                        size_t keepStride);
  /**
   * Silhouette sums for rows [r0, r1) (at most kClusterTaskRows): each row's Euclidean
   * distances to every column, in column order, added into out per label. Each row's order
   * of additions depends only on the labels, never on the thread that runs it.
   */
  void (*clusterSumRows)(const ClusterSumsJob& job, size_t r0, size_t r1, void* scratch);
  /**
   * x·W for rows [r0, r1): out[i·m + j] = Σ_f x[i·d + f]·W[f, j] accumulated in float64 (the
   * products of two floats are exact, so these are the bits of a plain float64 loop). `w` is W
   * in float64, d × mPad row-major, mPad a multiple of 8, zero past column m.
   */
  void (*projectRows)(const float* x, int d, const double* w, int mPad, int m, size_t r0, size_t r1, float* out);
  /**
   * Soft sums over rows [r0, r1): sums[j·d + f] += w_i·r[i·m + j]·x[i·d + f] and counts[j] +=
   * w_i·r[i·m + j] (weights null: 1), float64, added in row order.
   */
  void (*softSumRows)(const float* x, int d, const float* weights, const float* r, int m, size_t r0, size_t r1,
                      double* sums, double* counts);
  /**
   * Centred scatter over rows [r0, r1): out[j·d·d + a·d + b] += w_i·r[i·m + j]·(x_ia − μ_ja)·(x_ib
   * − μ_jb) (r null: m = 1 and r = 1), float64, in row order, for b ≥ a rounded down to a vector
   * boundary only: the caller mirrors the upper triangle. `scratch` holds kSoftScratchRows·d
   * doubles.
   */
  void (*scatterRows)(const float* x, int d, const float* weights, const float* r, int m, const double* means,
                      size_t r0, size_t r1, double* out, double* scratch);
  /**
   * Radius search of one query tile (`lanes` queries) over rows [r0, r1) of x: the float32
   * squared distances Σ(q − x)² (direct differences, features in order per lane), screened by
   * job.lo and job.hi, those in between decided by the float64 sum in feature order (no FMA).
   * Each neighbour adds its weight to counts[slot0 + lane] in float64 and, if `hits`, appends
   * (slot0 + lane, row), rows ascending for each lane; `rechecked` gets the float64 decisions.
   */
  void (*radiusRows)(const RadiusJob& job, int tile, size_t r0, size_t r1, int slot0, double* counts,
                     RadiusHits* hits, size_t* rechecked);
};

/** Rows of d doubles of scratch scatterRows needs (any instruction set). */
constexpr size_t kSoftScratchRows = 4;

/** Bytes of scratch clusterSumRows needs (any instruction set). */
constexpr size_t kClusterScratchBytes = (size_t)kClusterTaskRows * 64 + 128;

extern const KernelTable kBaseKernels;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
#endif

}  // namespace seg
