// Scoring helpers shared by the CPU kernels (kernels/cpu) and the CUDA host code (kernels/cuda):
// the one definition of how centroids are packed for the expanded score
// ‖x̃ − c̃‖² = ‖x̃‖² − 2x̃·c̃ + ‖c̃‖² (x̃ = x − shift, c̃ = c − shift; the shift, the data's column
// means, keeps the expansion's cancellation relative to the spread of the data).
//
// Plain C++ with no standard-library templates and internal linkage (anonymous namespace): the
// CPU kernels include it once per instruction set, each instance with its own -march, and the
// linker must not keep one of them for every caller (see kernels/cpu/kernels.h).
#pragma once

#include <cstddef>

namespace seg {
namespace scoring {
namespace {

/**
 * panel = −2c̃ and cc = ‖c̃‖² (the shifted float values squared in float64), for tiles of `tw`
 * centroids: tile t holds centroids [t·tw, (t + 1)·tw), feature-major within the tile
 * (panel[(t·tw·d) + f·tw + l], so a tile's centroids for one feature are contiguous). Padding
 * centroids past k score +inf (panel 0, cc +inf). panel has ceil(k / tw)·tw·d floats, cc
 * ceil(k / tw)·tw; with tw = k, one feature-major tile (panel[f·k + j]) and no padding.
 */
inline void packCentroidTiles(const float* c, int k, int d, const float* shift, int tw, float* panel, float* cc) {
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

}  // namespace
}  // namespace scoring
}  // namespace seg
