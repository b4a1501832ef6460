// C interface between the CUDA translation unit (kernels.cu, built by nvcc) and the N-API
// binding (addon.cc, built by g++). Every function returns null on success or a one-line error.
#pragma once

#include <cstddef>
#include <cstdint>

/**
 * Every error caused by the device running out of memory (cudaErrorMemoryAllocation, from
 * cudaMalloc or any other call) starts with this text; the binding gives those errors the code
 * SEG_CUDA_OOM_CODE, and the backend retries them in smaller pieces or falls back to the CPU.
 */
#define SEG_CUDA_OOM_PREFIX "out of GPU memory"
#define SEG_CUDA_OOM_CODE "CUDA_OOM"

extern "C" {

struct SegCudaData;

/** Device 0's name and free memory, or why CUDA cannot run (no device, old driver, ...). */
const char* seg_cuda_probe(char* name, int nameLen, size_t* freeBytes, size_t* totalBytes);
/** Copies x (n × d), weights (or null) and shift (d) to the device; the handle owns them. */
const char* seg_cuda_upload(const float* x, int64_t n, int d, const float* weights, const float* shift,
                            SegCudaData** out);
void seg_cuda_release(SegCudaData* h);
/**
 * Assignment into the next of two device slots (labels and distances), the slot generation in
 * *gen. prev: host labels to count changes against (or null); prevGen: the generation that
 * produced them, used instead of prev while still on the device. labels and dist: host copies
 * of the result, or null to leave it on the device only (seg_cuda_read fetches it later).
 * sums (k × d) and counts (k), when both given: Σw·x and Σw per new label, added by the same
 * kernel as each row is labelled (fused: the data is read once), in fixed point (fixed.cuh).
 */
const char* seg_cuda_assign(SegCudaData* h, const float* centroids, int k, const int32_t* prev, int64_t prevGen,
                            int32_t* labels, float* dist, double* inertia, int64_t* changed, int64_t* gen, double* sums,
                            double* counts);
/** 1 while generation gen's labels and distances are still in a device slot. */
int seg_cuda_resident(SegCudaData* h, int64_t gen);
/** Host copies of generation gen's labels and distances; an error once its slot was reused. */
const char* seg_cuda_read(SegCudaData* h, int64_t gen, int32_t* labels, float* dist);
/**
 * Σw·x and Σw per label: the device labels of generation gen if still resident, else `labels`.
 * Fixed point (fixed.cuh): the fused assignment's bits for the same labels, whatever the order.
 */
const char* seg_cuda_segment_sum(SegCudaData* h, const int32_t* labels, int64_t gen, int k, double* sums,
                                 double* counts);
const char* seg_cuda_distances(SegCudaData* h, const float* centers, int m, float* out);
/** out[j] = Σ w·min(closest, ‖x − c_j‖²) for the m candidates (host arrays), in fixed block order. */
const char* seg_cuda_potentials(SegCudaData* h, const float* closest, const float* cands, int m, double* out);
/**
 * out (n × k, host) [i·k + l] = Σ ‖x_i − x_j‖ over the rows j with labels[j] = l (labels in
 * [0, k), checked by the caller). xHost: the host copy of the uploaded rows.
 */
/** Rows [r0, r1) of the silhouette sums: out holds (r1 − r0) × k. */
const char* seg_cuda_cluster_sums(SegCudaData* h, const float* xHost, const int32_t* labels, int k, int64_t r0, int64_t r1,
                                  double* out);
/** out (host, (r1 − r0) × m) = rows [r0, r1) of x times w (host, d × m row-major). */
const char* seg_cuda_project(SegCudaData* h, const float* w, int m, int64_t r0, int64_t r1, float* out);
/**
 * Over rows [r0, r1), r (host, (r1 − r0) × m): sums (m × d) = Σ w·r[·, j]·x and counts (m) =
 * Σ w·r[·, j], float64, per-block partials added in block order.
 */
const char* seg_cuda_soft_sums(SegCudaData* h, const float* r, int m, int64_t r0, int64_t r1, double* sums,
                               double* counts);
/**
 * out (host, m × d × d) = Σ w·r[·, j]·(x − μ_j)(x − μ_j)ᵀ over rows [r0, r1), μ = means (host,
 * m × d); r null: m = 1, all ones. Float64, per-block partials added in block order.
 */
const char* seg_cuda_scatter(SegCudaData* h, const float* r, int m, const double* means, int64_t r0, int64_t r1,
                             double* out);
/** 1 when the rows stay on the host and stream through the device (device k-means++ needs them resident). */
int seg_cuda_streamed(SegCudaData* h);
/**
 * Device k-means++ (seed.cuh), resident rows only. seed_start: each row's closest distance from
 * the first center, and *total = φ = Σ w·closest; allocates every buffer of the seeding for up
 * to `trials` candidates a step (the later calls allocate nothing).
 */
const char* seg_cuda_seed_start(SegCudaData* h, const float* center, int trials, double* total);
/** rows[j] (j < m): the first row whose running Σ w·closest reaches targets[j] (the last row if none). */
const char* seg_cuda_seed_draw(SegCudaData* h, const double* targets, int m, int32_t* rows);
/** out[j] = Σ w·min(closest, ‖x − c_j‖²) for the m candidates; their distances are kept for seed_take. */
const char* seg_cuda_seed_potentials(SegCudaData* h, const float* cands, int m, double* out);
/** closest = min(closest, candidate j's kept distances) (j of the last seed_potentials); *total = the new φ. */
const char* seg_cuda_seed_take(SegCudaData* h, int j, double* total);
/**
 * DBSCAN's eps-neighbourhoods of rows [q0, q1) among rows [c0, c1) (radius.cuh), resident rows only;
 * decisions are the float64 sum's. Count pass (offsets null): counts (Σ w of the neighbours) and
 * found (how many) per query. List pass (offsets: q1 − q0 + 1 CSR offsets from the count pass):
 * counts again and indices[offsets[q] …] the neighbours' rows, ascending. *rechecked: pairs the
 * float64 sum decided.
 */
const char* seg_cuda_radius(SegCudaData* h, int64_t q0, int64_t q1, int64_t c0, int64_t c1, double eps2,
                            const int32_t* offsets, double* counts, int32_t* found, int32_t* indices, int64_t* rechecked);
}
