// The CPU kernels, written once over GCC vector extensions and instantiated per instruction set
// by isa-*.cc, which define SEG_W (float lanes), SEG_MAX_VW (vectors per centroid tile),
// SEG_TABLE (the KernelTable's name) and SEG_ISA (its label) before including this file. The
// kernels live in impl/, by concern: simd.h (vector types and lane reductions), reductions.h
// (exact distances, per-label sums, k-means++ potentials), hamerly.h (bounds), assign-general.h
// (any k), transpose.h and assign-small-k.h (k ≤ W), silhouette.h, soft.h (x·W, soft sums and
// scatter matrices, for mixtures and PCA), radius.h (eps-neighbourhoods, for DBSCAN); this file
// adds the scratch sizing, the dispatch between the assignment paths and the table.
//
// Everything here has internal linkage (anonymous namespace) and uses no standard-library
// templates, so no AVX-512 instance can leak into the baseline build through the linker.
#include "impl/assign-small-k.h"
#include "impl/silhouette.h"
#include "impl/radius.h"
#include "impl/soft.h"

namespace seg {
namespace {

size_t scratchBytes(int d, int k) {
  const size_t rb = blockRows(d, k);
  const size_t general = rb * d * 4 + rb * 4 + rb * 4 + 128;
  const size_t small = k <= W ? smallKScratchBytes(d) : 0;
  return general > small ? general : small;
}

void assignRows(const AssignJob& job, size_t r0, size_t r1, void* scratch, double* sums,
                double* counts, BlockStats* out) {
  // Small k: only as many centroids are scored as exist, rounded up to 4, 8 or W, not always a
  // whole vector of them.
  if constexpr (W >= 8) {
    if (job.k <= 4)
      return job.lower ? assignRowsSmallK<4, true>(job, r0, r1, scratch, sums, counts, out)
                        : assignRowsSmallK<4, false>(job, r0, r1, scratch, sums, counts, out);
    if (job.k <= 8)
      return job.lower ? assignRowsSmallK<8, true>(job, r0, r1, scratch, sums, counts, out)
                        : assignRowsSmallK<8, false>(job, r0, r1, scratch, sums, counts, out);
  }
  if (job.k <= W)
    return job.lower ? assignRowsSmallK<W, true>(job, r0, r1, scratch, sums, counts, out)
                      : assignRowsSmallK<W, false>(job, r0, r1, scratch, sums, counts, out);
  // No bounds beyond one vector of centroids (the caller never passes them): ones that never pass.
  if (job.lower)
    for (size_t i = r0; i < r1; ++i) job.lower[i] = -__builtin_inff(), job.upper[i] = __builtin_inff();
  switch (vectorsFor(job.k)) {
    case 1:
      return assignRowsT<1, 8>(job, r0, r1, scratch, sums, counts, out);
    case 2:
      return assignRowsT<2, 6>(job, r0, r1, scratch, sums, counts, out);
    case 3:
      if constexpr (SEG_MAX_VW >= 4) return assignRowsT<3, 8>(job, r0, r1, scratch, sums, counts, out);
      [[fallthrough]];
    default:
      return assignRowsT<SEG_MAX_VW, 6>(job, r0, r1, scratch, sums, counts, out);
  }
}

}  // namespace

extern const KernelTable SEG_TABLE = {
    SEG_ISA,      W,       tileWidth, scratchBytes,  packCentroids,
    assignRows,   sumRows, distRows,  potentialRows, clusterSumRows,
    projectRows,  softSumRows, scatterRows,   radiusRows,
};

}  // namespace seg
