// Hamerly's bounds for the small-k assignment (see AssignJob::lower): their arithmetic, rounded
// outward so that a row the test keeps would keep its label in a full pass.
// Part of one instruction-set instance of the CPU kernels, included through kernels-impl.h (which
// says why everything here has internal linkage and uses no standard-library templates).
#pragma once

#include "simd.h"

namespace seg {
namespace {

/**
 * The arithmetic of Hamerly's bounds (see AssignJob::lower), a vector of rows at a time: u,
 * γ doubled for d + 8 operations, R ≥ max ‖c − shift‖ (all rounded up), and how far each
 * centroid moved since the bounds were written (lanes past k: 0), with the largest move, its
 * centroid, and the second largest.
 */
struct Hamerly {
  float u, gq, R;
  vf drift;
  int top;
  float first, second;

  static Hamerly of(const AssignJob& job) {
    Hamerly h;
    h.u = 0x1p-24f;
    h.gq = 2.0f * (float)(job.d + 8) * h.u * 1.001f;
    h.drift = vf{};
    h.top = -1;
    h.first = h.second = 0;
    double r2 = 0;
    if (job.lower)
      for (int j = 0; j < job.k; ++j) {
        double q = 0;
        for (int f = 0; f < job.d; ++f) {
          const double t = (double)job.centroids[(size_t)j * job.d + f] - (double)job.shift[f];
          q += t * t;
        }
        r2 = q > r2 ? q : r2;
      }
    if (job.drift)
      for (int j = 0; j < job.k && j < W; ++j) {
        const float m = job.drift[j];
        h.drift[j] = m;
        if (m > h.first) h.second = h.first, h.first = m, h.top = j;
        else if (m > h.second) h.second = m;
      }
    h.R = (float)(__builtin_sqrt(r2) * (1 + 1e-6));
    return h;
  }

  /**
   * A lower bound on ‖x − c_j‖ (exact reals, unshifted) over every j but the winner, from the
   * second-best score s2 and Σx̃² (nx): ‖x̃ − c̃_j‖² = S_j + ‖x̃‖² ≥ s2 + nx less the rounding of
   * the scores (γ_d relative to ‖c̃‖² + 2‖x̃‖‖c̃‖, u on ‖c̃‖²), of nx and of this sum, each
   * doubled; then the shift's rounding (u per coordinate of x̃ and c̃) back to raw space.
   */
  vf lowerBound(vf s2, vf nx) const {
    const vf xn = sqrtLanes(nx);
    const vf a2 = s2 < 0 ? -s2 : s2;
    const vf err = 2.0f * ((gq + u) * (R * R + 2.0f * R * (1.0f + gq) * xn) + gq * nx + 2.0f * u * (a2 + nx));
    const vf l2 = s2 + nx - err;
    return sqrtLanes(l2 > 0 ? l2 : vf{}) * (1.0f - 4.0f * u) - 2.0f * u * (xn + R);
  }

  /** An upper bound on ‖x − c‖ from e, the computed Σ(x − c)² (d + 1 roundings, doubled). */
  vf upperOf(vf e) const { return sqrtLanes(e) * (1.0f + gq); }

  /**
   * Bounds after the centroids moved (triangle inequality), rounded outward: the lower one
   * less the largest move of a centroid but the row's own, the upper one plus its own move.
   */
  vf lowerAged(vf lb, vi label) const {
    const vi own = label == top;
    const vf other = own ? vf{} + second : vf{} + first;
    return (lb - other) * (1.0f - 4.0f * u);
  }
  vf upperAged(vf ub, vi label) const { return (ub + __builtin_shuffle(drift, label)) * (1.0f + 4.0f * u); }

  /**
   * Hamerly's test: lr, a lower bound on every other centroid's distance, exceeds t, an upper
   * bound on the row's distance to its own, by more than the scores' rounding (both carried
   * into the shifted space the scores live in), so every other score is strictly larger and
   * the full argmin would pick the same centroid. NaN never passes.
   */
  vi pass(vf lr, vf t) const {
    const vf m = 2.0f * u * (t + 2.0f * R);
    const vf dh = t + m;
    const vf lx = lr - m;
    const vf lhs = (lx - dh) * (lx + dh);
    const vf rhs = 4.0f * (gq + u) * R * (3.0f * R + 2.0f * dh) + 8.0f * u * lx * lx;
    return (lx > dh) & (lhs > rhs);
  }
};

}  // namespace
}  // namespace seg
