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
};

/** Per-block results, reduced by the caller in block order. */
struct BlockStats {
  double inertia;
  int64_t nChanged;
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
   * is non-null Σw·x and Σw per new label added to sums (k × d) and counts (k) in row order.
   */
  void (*assignRows)(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                     double* counts, BlockStats* out);
  /** Σw·x and Σw per label over rows [r0, r1), added in row order. */
  void (*sumRows)(const float* x, int d, const int32_t* labels, const float* weights, size_t r0,
                  size_t r1, double* sums, double* counts);
  /** out[i·m + j] = Σ(x_i − c_j)² for rows [r0, r1), computed directly in float64. */
  void (*distRows)(const float* x, int d, const float* centers, int m, size_t r0, size_t r1,
                   float* out);
};

extern const KernelTable kBaseKernels;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
#endif

}  // namespace seg
