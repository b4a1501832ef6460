// N-API binding of the CPU kernels: the thread pool, fixed-size row blocks and their in-order
// reduction, memory mapping and prefaulted allocation. The arithmetic lives in kernels-impl.h (impl/*.h),
// the shared argument unpacking in binding.h, the preprocessing and profile helpers in data.cc.
//
// Every reduction over rows (inertia, changed count, segment sums, soft sums, scatter matrices,
// column sums) is done per block of sumBlockRows(nRows, k) rows, a size that does not depend on
// the thread count, and the block results are added in block order; the results are therefore
// bit-identical for any number of threads.
#include <napi.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cmath>
#include <algorithm>
#include <thread>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "binding.h"
#include "kernels.h"
#include "pool.h"

namespace seg {
namespace {

const KernelTable* gKernels = &kBaseKernels;
std::unique_ptr<Pool> gPool;
int defaultThreads();

}  // namespace

Pool& pool() {
  if (!gPool) gPool = std::make_unique<Pool>(defaultThreads());
  return *gPool;
}

namespace {

const KernelTable* bestKernels() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return &kAvx512Kernels;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2"))
    return &kAvx2Kernels;
#endif
  return &kBaseKernels;
}

int defaultThreads() {
  if (const char* env = std::getenv("SEGTENSOR_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? (int)hw : 1;
}


/**
 * Rows per reduction block: about 64 blocks for load balance, at least 1024 rows (and 2k, so
 * merging a k × d partial stays small next to the block's own work), at most 65536.
 */
size_t sumBlockRows(size_t nRows, int k) {
  size_t b = (nRows + 63) / 64;
  b = (b + 1023) / 1024 * 1024;
  if (b > 65536) b = 65536;
  const size_t minRows = ((size_t)2 * k + 1023) / 1024 * 1024;
  if (b < minRows) b = minRows;
  return b;
}

/**
 * Per-block partial sums (k·d sums then k counts per block), added into the totals in block
 * order. Small partials get one slot per block, all added after the parallel run, so no block
 * waits for its predecessor; big ones (more than kSlotDoubles in all) get one slot per worker,
 * added as each block ends, in block order (OrderedMerge). Slots of up to kSlotDoubles are kept
 * between calls: on VMs whose fresh memory costs ~4 ms per MiB to touch, new ones every Lloyd
 * step would cost more than the step. Calls come from the JavaScript thread only, so one set is
 * enough.
 */
class BlockSums {
 public:
  static constexpr size_t kSlotDoubles = (size_t)2 << 20;  // 16 MiB

  BlockSums(int nBlocks, size_t len, int nWorkers)
      : len_(len), nBlocks_((size_t)nBlocks), perBlock_(nBlocks_ * len <= kSlotDoubles) {
    const size_t need = len * (perBlock_ ? (size_t)nBlocks : (size_t)nWorkers);
    if (need <= kSlotDoubles) {
      if (kept().size() < need) kept().resize(need);
      base_ = kept().data();
    } else {
      // Too big to keep for the life of the process (k·d partials of a large k): this call's own.
      own_.reset(new double[need]);
      base_ = own_.get();
    }
  }

  /** The zeroed slot block b (run by `worker`) adds into. */
  double* begin(int b, int worker) {
    double* p = base_ + len_ * (size_t)(perBlock_ ? b : worker);
    std::memset(p, 0, sizeof(double) * len_);
    return p;
  }

  /** After block b: with one slot per worker, adds it into the totals in block order. */
  void end(int b, int worker, double* sums, size_t nSums, double* counts, size_t nCounts) {
    if (perBlock_) return;
    const double* p = base_ + len_ * (size_t)worker;
    order_.merge(b, [&] { add(p, sums, nSums, counts, nCounts); });
  }

  /** After the run: with one slot per block, adds them all into the totals in block order. */
  void finish(double* sums, size_t nSums, double* counts, size_t nCounts) {
    if (!perBlock_) return;
    for (size_t b = 0; b < nBlocks_; ++b) add(base_ + len_ * b, sums, nSums, counts, nCounts);
  }

 private:
  static void add(const double* p, double* sums, size_t nSums, double* counts, size_t nCounts) {
    for (size_t i = 0; i < nSums; ++i) sums[i] += p[i];
    for (size_t j = 0; j < nCounts; ++j) counts[j] += p[nSums + j];
  }
  /** Slots of at most kSlotDoubles, kept between calls. */
  static std::vector<double>& kept() {
    static std::vector<double> v;
    return v;
  }

  std::unique_ptr<double[]> own_;
  double* base_ = nullptr;
  size_t len_;
  size_t nBlocks_;
  bool perBlock_;
  OrderedMerge order_;
};

struct AlignedFloats {
  explicit AlignedFloats(size_t n) : raw(new float[n + 16]) {
    ptr = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(raw.get()) + 63) & ~uintptr_t(63));
  }
  std::unique_ptr<float[]> raw;
  float* ptr;
};

/**
 * assign(x, nRows, d, centroids, k, weights|null, prevLabels|null, outLabels, outDist,
 *        shift|null, outSums|null, outCounts|null, bounds|null, drift|null)
 *   -> { inertia, nChanged, nPruned }
 * With outSums/outCounts, also Σw·x and Σw per new label (the fused Lloyd step). With bounds
 * (Float32Array(2·nRows): Hamerly's lower bounds, then the upper ones; see AssignJob::lower),
 * outSums is required and outCounts has 3k doubles (Σw, Σw·dist, rows of nonzero weight). Without drift they are
 * written for every row; with drift (Float64Array(k): how far each centroid moved since, at
 * most) and prevLabels (the labels they belong to), rows whose bounds clear are not scored,
 * and the outputs are the changes from prevLabels' sums (inertia 0).
 */
Napi::Value Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int k = (int)sizeArg(info, 4, "k", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* c = dataOf<float>(info, 3, "centroids", (size_t)k * d, false);
  const float* w = dataOf<float>(info, 5, "weights", nRows, true);
  const int32_t* prev = dataOf<int32_t>(info, 6, "prevLabels", nRows, true);
  int32_t* labels = dataOf<int32_t>(info, 7, "outLabels", nRows, false);
  float* dist = dataOf<float>(info, 8, "outDist", nRows, false);
  const float* shiftIn = info.Length() > 9 ? dataOf<float>(info, 9, "shift", d, true) : nullptr;
  float* bounds = info.Length() > 12 ? dataOf<float>(info, 12, "bounds", 2 * nRows, true) : nullptr;
  const size_t nCounts = bounds ? 3 * (size_t)k : (size_t)k;
  double* sums = info.Length() > 10 ? dataOf<double>(info, 10, "outSums", (size_t)k * d, true) : nullptr;
  double* counts = info.Length() > 11 ? dataOf<double>(info, 11, "outCounts", nCounts, true) : nullptr;
  if ((sums == nullptr) != (counts == nullptr))
    throw Napi::TypeError::New(env, "outSums and outCounts must be given together");
  if (bounds && !sums) throw Napi::TypeError::New(env, "bounds need outSums and outCounts");
  const double* driftIn = info.Length() > 13 && bounds ? dataOf<double>(info, 13, "drift", k, true) : nullptr;
  if (driftIn && !prev) throw Napi::TypeError::New(env, "drift needs prevLabels, the labels the bounds belong to");
  std::vector<float> drift;
  if (driftIn) {
    drift.resize(k);
    for (int j = 0; j < k; ++j) {
      const double m = driftIn[j];
      if (!(m >= 0) || m == __builtin_inf()) throw Napi::RangeError::New(env, "drift must be finite and >= 0");
      // Rounded up, so the kernels' bounds stay bounds.
      drift[j] = (float)m;
      if ((double)drift[j] < m) drift[j] = std::nextafter(drift[j], __builtin_inff());
    }
  }

  const KernelTable& K = *gKernels;
  std::vector<float> zeroShift;
  if (!shiftIn) zeroShift.assign(d, 0.0f);
  const float* shift = shiftIn ? shiftIn : zeroShift.data();
  const int tw = K.tileWidth(k);
  const size_t kPad = (size_t)(k + tw - 1) / tw * tw;
  AlignedFloats panel(kPad * d), cc(kPad);
  K.packCentroids(c, k, d, shift, panel.ptr, cc.ptr);

  AssignJob job{x, w, prev, c, panel.ptr, cc.ptr, shift, labels, dist, d, k};
  if (bounds) {
    job.lower = bounds;
    job.upper = bounds + nRows;
    job.drift = driftIn ? drift.data() : nullptr;
  }
  const size_t blockRows = sumBlockRows(nRows, k);
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  Pool& P = pool();
  const int nThreads = P.threads();
  const size_t scratchBytes = K.scratchBytes(d, k);
  std::vector<std::unique_ptr<char[]>> scratch(nThreads);
  const size_t partialLen = sums ? (size_t)k * d + nCounts : 0;
  std::vector<BlockStats> stats(nBlocks);
  BlockSums partials(nBlocks, partialLen, nThreads);
  if (sums) {
    std::memset(sums, 0, sizeof(double) * k * d);
    std::memset(counts, 0, sizeof(double) * nCounts);
  }
  P.run(nBlocks, [&](int b, int worker) {
    if (!scratch[worker]) scratch[worker].reset(new char[scratchBytes]);
    const size_t r0 = (size_t)b * blockRows;
    const size_t r1 = r0 + blockRows < nRows ? r0 + blockRows : nRows;
    double* ps = sums ? partials.begin(b, worker) : nullptr;
    K.assignRows(job, r0, r1, scratch[worker].get(), ps, ps ? ps + (size_t)k * d : nullptr, &stats[b]);
    if (sums) partials.end(b, worker, sums, (size_t)k * d, counts, nCounts);
  });
  if (sums) partials.finish(sums, (size_t)k * d, counts, nCounts);
  double inertia = 0;
  int64_t changed = 0, pruned = 0;
  for (const BlockStats& s : stats) {
    inertia += s.inertia;
    changed += s.nChanged;
    pruned += s.nPruned;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("inertia", Napi::Number::New(env, inertia));
  out.Set("nChanged", Napi::Number::New(env, (double)changed));
  out.Set("nPruned", Napi::Number::New(env, (double)pruned));
  return out;
}

/** segmentSum(x, nRows, d, labels, k, weights|null) -> { sums: Float64Array(k·d), counts: Float64Array(k) } */
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int k = (int)sizeArg(info, 4, "k", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const int32_t* labels = dataOf<int32_t>(info, 3, "labels", nRows, false);
  const float* w = dataOf<float>(info, 5, "weights", nRows, true);
  Napi::Float64Array sumsArr = Napi::Float64Array::New(env, (size_t)k * d);
  Napi::Float64Array countsArr = Napi::Float64Array::New(env, k);
  double* sums = sumsArr.Data();
  double* counts = countsArr.Data();

  const KernelTable& K = *gKernels;
  const size_t blockRows = sumBlockRows(nRows, k);
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  Pool& P = pool();
  const size_t partialLen = (size_t)k * d + k;
  BlockSums partials(nBlocks, partialLen, P.threads());
  P.run(nBlocks, [&](int b, int worker) {
    double* ps = partials.begin(b, worker);
    const size_t r0 = (size_t)b * blockRows;
    const size_t r1 = r0 + blockRows < nRows ? r0 + blockRows : nRows;
    K.sumRows(x, d, labels, w, r0, r1, ps, ps + (size_t)k * d);
    partials.end(b, worker, sums, (size_t)k * d, counts, k);
  });
  partials.finish(sums, (size_t)k * d, counts, k);
  Napi::Object out = Napi::Object::New(env);
  out.Set("sums", sumsArr);
  out.Set("counts", countsArr);
  return out;
}

/**
 * distances(x, nRows, d, centers, m, out?) -> Float32Array(nRows·m) of squared distances,
 * written into `out` when given (no fresh pages: k-means++ calls this once per step).
 */
Napi::Value Distances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int m = (int)sizeArg(info, 4, "m", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* centers = dataOf<float>(info, 3, "centers", (size_t)m * d, false);
  float* out = info.Length() > 5 ? dataOf<float>(info, 5, "out", nRows * m, true) : nullptr;
  Napi::Value result;
  if (out) {
    result = info[5];
  } else {
    Napi::Float32Array outArr = Napi::Float32Array::New(env, nRows * m);
    out = outArr.Data();
    result = outArr;
  }
  const KernelTable& K = *gKernels;
  const size_t blockRows = 4096;
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  pool().run(nBlocks, [&](int b, int) {
    const size_t r0 = (size_t)b * blockRows;
    const size_t r1 = r0 + blockRows < nRows ? r0 + blockRows : nRows;
    K.distRows(x, d, centers, m, r0, r1, out);
  });
  return result;
}

/** cum[i] = Σ_{r ≤ i} w_r · closest[r] in float64, one running sum in row order (the host loop's bits). */
void runningSums(const float* closest, const float* w, double* cum, size_t nRows) {
  double acc = 0;
  if (w)
    for (size_t i = 0; i < nRows; ++i) cum[i] = acc += (double)w[i] * (double)closest[i];
  else
    for (size_t i = 0; i < nRows; ++i) cum[i] = acc += (double)closest[i];
}

/**
 * updateClosest(x, nRows, d, center, closest, weights|null, cum): the k-means++ step after a
 * center is chosen. closest[i] = min(closest[i], ‖x_i − center‖²) in place, the distance
 * computed as distances() computes it, in parallel blocks; then cum[i] = Σ_{r ≤ i} w_r ·
 * closest[r] in float64, one running sum in row order (the host loop's arithmetic, so the
 * same bits), which the next draw searches.
 */
Napi::Value UpdateClosest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* center = dataOf<float>(info, 3, "center", d, false);
  float* closest = dataOf<float>(info, 4, "closest", nRows, false);
  const float* w = dataOf<float>(info, 5, "weights", nRows, true);
  double* cum = dataOf<double>(info, 6, "cum", nRows, false);
  const KernelTable& K = *gKernels;
  constexpr size_t blockRows = 4096;
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  Pool& P = pool();
  std::vector<std::unique_ptr<float[]>> tmp(P.threads());
  P.run(nBlocks, [&](int b, int worker) {
    if (!tmp[worker]) tmp[worker].reset(new float[blockRows]);
    float* t = tmp[worker].get();
    const size_t r0 = (size_t)b * blockRows;
    const size_t n = r0 + blockRows < nRows ? blockRows : nRows - r0;
    K.distRows(x + r0 * d, d, center, 1, 0, n, t);
    for (size_t i = 0; i < n; ++i) closest[r0 + i] = t[i] < closest[r0 + i] ? t[i] : closest[r0 + i];
  });
  runningSums(closest, w, cum, nRows);
  return env.Undefined();
}

/**
 * closestFrom(dist, closest, weights|null, cum): updateClosest from distances already
 * computed (a candidate's column kept by potentials): closest[i] = min(closest[i], dist[i])
 * in parallel blocks, then cum the running Σ w·closest in float64, row order: the same bits.
 */
Napi::Value ClosestFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "closestFrom: dist must be a Float32Array");
  const size_t nRows = info[0].As<Napi::TypedArray>().ElementLength();
  const float* dist = dataOf<float>(info, 0, "dist", nRows, false);
  float* closest = dataOf<float>(info, 1, "closest", nRows, false);
  const float* w = dataOf<float>(info, 2, "weights", nRows, true);
  double* cum = dataOf<double>(info, 3, "cum", nRows, false);
  constexpr size_t blockRows = 65536;
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  pool().run(nBlocks, [&](int b, int) {
    const size_t r0 = (size_t)b * blockRows;
    const size_t r1 = r0 + blockRows < nRows ? r0 + blockRows : nRows;
    for (size_t i = r0; i < r1; ++i) closest[i] = dist[i] < closest[i] ? dist[i] : closest[i];
  });
  runningSums(closest, w, cum, nRows);
  return env.Undefined();
}

/**
 * potentials(x, nRows, d, closest, candidates, m, weights|null[, keep]) -> Float64Array(m):
 * Σ w·min(closest, ‖x − c_j‖²) per candidate. Partials per block of kPotentialBlockRows rows
 * (independent of the thread count), added in block order: deterministic. With `keep` (a
 * Float32Array of m·nRows), keep[j·nRows + i] gets ‖x_i − c_j‖² with the bits updateClosest
 * computes for row i (distRows: folded for rows in a group of four, one horizontal sum for
 * the last nRows mod 4), so k-means++ updates its closest distances from the chosen
 * candidate's column instead of reading x again (scikit-learn's greedy step does the same).
 */
Napi::Value Potentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int m = (int)sizeArg(info, 5, "m", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* closest = dataOf<float>(info, 3, "closest", nRows, false);
  const float* cands = dataOf<float>(info, 4, "candidates", (size_t)m * d, false);
  const float* w = dataOf<float>(info, 6, "weights", nRows, true);
  float* keep = info.Length() > 7 ? dataOf<float>(info, 7, "keep", nRows * (size_t)m, true) : nullptr;
  const KernelTable& K = *gKernels;
  // 16384 rows: 64 blocks for a million rows (load balance), each 2 MiB at d = 32.
  constexpr size_t kPotentialBlockRows = 16384;
  const int nBlocks = (int)((nRows + kPotentialBlockRows - 1) / kPotentialBlockRows);
  std::vector<double> partial((size_t)nBlocks * m, 0.0);
  pool().run(nBlocks, [&](int b, int) {
    const size_t r0 = (size_t)b * kPotentialBlockRows;
    const size_t r1 = r0 + kPotentialBlockRows < nRows ? r0 + kPotentialBlockRows : nRows;
    K.potentialRows(x, d, closest, w, cands, m, r0, r1, partial.data() + (size_t)b * m, keep, nRows);
  });
  // updateClosest's distRows groups rows in fours from 0 (its blocks are multiples of 4 rows):
  // the last nRows mod 4 rows take distRows' single-row arithmetic.
  if (keep)
    for (size_t row = nRows / 4 * 4; row < nRows; ++row)
      for (int j = 0; j < m; ++j) K.distRows(x, d, cands + (size_t)j * d, 1, row, row + 1, keep + (size_t)j * nRows);
  Napi::Float64Array out = Napi::Float64Array::New(env, m);
  for (int j = 0; j < m; ++j) {
    double s = 0;
    for (int b = 0; b < nBlocks; ++b) s += partial[(size_t)b * m + j];
    out[j] = s;
  }
  return out;
}

/**
 * clusterDistanceSums(x, nRows, d, labels, k[, r0, r1]) -> Float64Array((r1 − r0)·k):
 * out[(i − r0)·k + l] = Σ ‖x_i − x_j‖ over the rows j labelled l (self 0), for the rows i in
 * [r0, r1) (default all). Quadratic: meant for a sample; the row range lets the caller bound the
 * output (rows × k float64) at large k.
 *
 * The columns are the rows stably sorted by label, so each cluster is a run of whole tiles
 * summed with vector adds; each output row is computed by one task in column order, so the
 * result does not depend on the thread count or the range.
 */
Napi::Value ClusterDistanceSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int k = (int)sizeArg(info, 4, "k", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const int32_t* labels = dataOf<int32_t>(info, 3, "labels", nRows, false);
  const size_t r0 = info.Length() > 5 && !info[5].IsUndefined() ? sizeArg(info, 5, "r0", 0) : 0;
  const size_t r1 = info.Length() > 6 && !info[6].IsUndefined() ? sizeArg(info, 6, "r1", 0) : nRows;
  if (r0 > r1 || r1 > nRows) throw Napi::RangeError::New(env, "clusterDistanceSums: need 0 <= r0 <= r1 <= nRows");
  std::vector<size_t> start((size_t)k + 1, 0);
  for (size_t i = 0; i < nRows; ++i) {
    const int32_t l = labels[i];
    if (l < 0 || l >= k)
      throw Napi::RangeError::New(env, "clusterDistanceSums: labels must be in [0, " + std::to_string(k) +
                                           "); got " + std::to_string(l) + " at row " + std::to_string(i));
    ++start[(size_t)l + 1];
  }
  for (int l = 0; l < k; ++l) start[(size_t)l + 1] += start[l];
  Napi::Float64Array outArr = Napi::Float64Array::New(env, (r1 - r0) * (size_t)k);
  if (r1 == r0) return outArr;

  const KernelTable& K = *gKernels;
  const int W = K.lanes;
  const size_t nTiles = (nRows + W - 1) / W;
  std::vector<int32_t> perm(nRows);
  {
    std::vector<size_t> next(start.begin(), start.end() - 1);
    for (size_t i = 0; i < nRows; ++i) perm[next[labels[i]]++] = (int32_t)i;
  }
  AlignedFloats panel(nTiles * W * d);
  std::vector<int32_t> colLabel(nTiles * W, -1);
  std::vector<uint8_t> uniform(nTiles, 0);
  for (size_t t = 0; t < nTiles; ++t) {
    float* p = panel.ptr + t * W * d;
    for (int l = 0; l < W; ++l) {
      const size_t c = t * W + l;
      if (c < nRows) {
        const float* xr = x + (size_t)perm[c] * d;
        for (int f = 0; f < d; ++f) p[(size_t)f * W + l] = xr[f];
        colLabel[c] = labels[perm[c]];
      } else {
        for (int f = 0; f < d; ++f) p[(size_t)f * W + l] = 0.0f;
      }
    }
    uniform[t] = colLabel[t * W] >= 0 && colLabel[t * W] == colLabel[t * W + W - 1];
  }
  // The job's rows are x's rows [r0, r1): row i of the job is x's row r0 + i.
  ClusterSumsJob job{x + r0 * d, panel.ptr, colLabel.data(), uniform.data(), outArr.Data(), (int)nTiles, d, k};
  Pool& P = pool();
  std::vector<std::unique_ptr<char[]>> scratch(P.threads());
  const size_t rows = r1 - r0;
  const int nTasks = (int)((rows + kClusterTaskRows - 1) / kClusterTaskRows);
  P.run(nTasks, [&](int b, int worker) {
    if (!scratch[worker]) scratch[worker].reset(new char[kClusterScratchBytes]);
    const size_t t0 = (size_t)b * kClusterTaskRows;
    const size_t t1 = t0 + kClusterTaskRows < rows ? t0 + kClusterTaskRows : rows;
    K.clusterSumRows(job, t0, t1, scratch[worker].get());
  });
  return outArr;
}

/** Rows [r0, r1) from arguments i and i + 1 (undefined: 0 and nRows), checked against nRows. */
void rowRange(const Napi::CallbackInfo& info, size_t i, size_t nRows, const char* op, size_t* r0, size_t* r1) {
  *r0 = info.Length() > i && !info[i].IsUndefined() ? sizeArg(info, i, "r0", 0) : 0;
  *r1 = info.Length() > i + 1 && !info[i + 1].IsUndefined() ? sizeArg(info, i + 1, "r1", 0) : nRows;
  if (*r0 > *r1 || *r1 > nRows)
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": need 0 <= r0 <= r1 <= nRows = " + std::to_string(nRows) +
                                                "; got [" + std::to_string(*r0) + ", " + std::to_string(*r1) + ")");
}

/**
 * project(x, nRows, d, w, m, r0, r1, out|null) -> Float32Array((r1 − r0)·m): x·w for rows
 * [r0, r1), w d × m row-major, accumulated in float64; written into `out` when given. Rows are
 * independent, so blocks of any size give the same bits.
 */
Napi::Value Project(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int m = (int)sizeArg(info, 4, "m", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* w = dataOf<float>(info, 3, "w", (size_t)d * m, false);
  size_t r0, r1;
  rowRange(info, 5, nRows, "project", &r0, &r1);
  const size_t rows = r1 - r0;
  // A given `out` is returned even when empty (its data pointer may then be null).
  const bool given = info.Length() > 7 && !info[7].IsNull() && !info[7].IsUndefined();
  float* out = given ? dataOf<float>(info, 7, "out", rows * m, false) : nullptr;
  Napi::Value result;
  if (given) {
    result = info[7];
  } else {
    Napi::Float32Array outArr = Napi::Float32Array::New(env, rows * m);
    out = outArr.Data();
    result = outArr;
  }
  // W in float64, columns padded to a multiple of 8 (every instruction set's float64 vector).
  const int mPad = (m + 7) / 8 * 8;
  std::vector<double> wp((size_t)d * mPad, 0.0);
  for (int f = 0; f < d; ++f)
    for (int j = 0; j < m; ++j) wp[(size_t)f * mPad + j] = (double)w[(size_t)f * m + j];
  const KernelTable& K = *gKernels;
  constexpr size_t blockRows = 2048;
  const int nBlocks = (int)((rows + blockRows - 1) / blockRows);
  const float* xr = x + r0 * d;
  pool().run(nBlocks, [&](int b, int) {
    const size_t i0 = (size_t)b * blockRows;
    const size_t i1 = i0 + blockRows < rows ? i0 + blockRows : rows;
    K.projectRows(xr, d, wp.data(), mPad, m, i0, i1, out);
  });
  return result;
}

/**
 * softSums(x, nRows, d, r, m, weights|null, r0, r1) -> { sums: Float64Array(m·d), counts:
 * Float64Array(m) }: Σ w·r[i, j]·x_i and Σ w·r[i, j] over rows [r0, r1), r holding (r1 − r0) × m.
 * Per block of sumBlockRows(rows, m) rows, added in block order: the same bits for any thread
 * count.
 */
Napi::Value SoftSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int m = (int)sizeArg(info, 4, "m", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* w = dataOf<float>(info, 5, "weights", nRows, true);
  size_t r0, r1;
  rowRange(info, 6, nRows, "softSums", &r0, &r1);
  const size_t rows = r1 - r0;
  const float* r = dataOf<float>(info, 3, "r", rows * m, false);
  Napi::Float64Array sumsArr = Napi::Float64Array::New(env, (size_t)m * d);
  Napi::Float64Array countsArr = Napi::Float64Array::New(env, m);
  double* sums = sumsArr.Data();
  double* counts = countsArr.Data();
  const KernelTable& K = *gKernels;
  const size_t blockRows = sumBlockRows(rows, m);
  const int nBlocks = (int)((rows + blockRows - 1) / blockRows);
  Pool& P = pool();
  const size_t nSums = (size_t)m * d;
  BlockSums partials(nBlocks, nSums + m, P.threads());
  const float* xr = x + r0 * d;
  const float* wr = w ? w + r0 : nullptr;
  P.run(nBlocks, [&](int b, int worker) {
    double* ps = partials.begin(b, worker);
    const size_t i0 = (size_t)b * blockRows;
    const size_t i1 = i0 + blockRows < rows ? i0 + blockRows : rows;
    K.softSumRows(xr, d, wr, r, m, i0, i1, ps, ps + nSums);
    partials.end(b, worker, sums, nSums, counts, m);
  });
  partials.finish(sums, nSums, counts, m);
  Napi::Object out = Napi::Object::New(env);
  out.Set("sums", sumsArr);
  out.Set("counts", countsArr);
  return out;
}

/**
 * scatter(x, nRows, d, r|null, m, means, weights|null, r0, r1) -> Float64Array(m·d·d): per
 * column j of r (null: m = 1, all ones), Σ w·r[i, j]·(x_i − μ_j)(x_i − μ_j)ᵀ over rows [r0, r1),
 * μ = means (m × d). The kernels add the upper triangle (per block, in block order: the same
 * bits for any thread count); it is mirrored here, so the result is exactly symmetric.
 */
Napi::Value Scatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const int m = (int)sizeArg(info, 4, "m", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const double* means = dataOf<double>(info, 5, "means", (size_t)m * d, false);
  const float* w = dataOf<float>(info, 6, "weights", nRows, true);
  size_t r0, r1;
  rowRange(info, 7, nRows, "scatter", &r0, &r1);
  const size_t rows = r1 - r0;
  // Null r, not an empty one (whose data pointer may be null too), means one column of ones.
  const bool hasR = !info[3].IsNull() && !info[3].IsUndefined();
  const float* r = dataOf<float>(info, 3, "r", rows * m, true);
  if (!hasR && m != 1) throw Napi::RangeError::New(env, "scatter: without r, m must be 1; got " + std::to_string(m));
  const size_t len = (size_t)m * d * d;
  Napi::Float64Array outArr = Napi::Float64Array::New(env, len);
  double* out = outArr.Data();
  const KernelTable& K = *gKernels;
  const size_t blockRows = sumBlockRows(rows, m);
  const int nBlocks = (int)((rows + blockRows - 1) / blockRows);
  Pool& P = pool();
  BlockSums partials(nBlocks, len, P.threads());
  std::vector<std::unique_ptr<double[]>> scratch(P.threads());
  const float* xr = x + r0 * d;
  const float* wr = w ? w + r0 : nullptr;
  P.run(nBlocks, [&](int b, int worker) {
    if (!scratch[worker]) scratch[worker].reset(new double[kSoftScratchRows * d]);
    double* ps = partials.begin(b, worker);
    const size_t i0 = (size_t)b * blockRows;
    const size_t i1 = i0 + blockRows < rows ? i0 + blockRows : rows;
    K.scatterRows(xr, d, wr, r, m, means, i0, i1, ps, scratch[worker].get());
    partials.end(b, worker, out, len, nullptr, 0);
  });
  partials.finish(out, len, nullptr, 0);
  for (int j = 0; j < m; ++j) {
    double* o = out + (size_t)j * d * d;
    for (int a = 0; a < d; ++a)
      for (int b = a + 1; b < d; ++b) o[(size_t)b * d + a] = o[(size_t)a * d + b];
  }
  return outArr;
}

/** Queries per group of a radius search: whole tiles for every instruction set (4, 8, 16 lanes). */
constexpr int kRadiusGroup = 128;
/** Rows per sub-block of a radius task: the rows stay in L1 while each query tile of the group passes over them. */
constexpr size_t kRadiusSubRows = 256;

/** A task's neighbour pairs, in a vector the kernels grow through RadiusHits::grow. */
struct TaskHits {
  std::vector<int32_t> buf;
  RadiusHits h{nullptr, 0, 0, nullptr, nullptr};
};

void growHits(RadiusHits* h) {
  auto* v = static_cast<std::vector<int32_t>*>(h->owner);
  const size_t cap = h->cap < 512 ? 1024 : 2 * h->cap;
  v->resize(2 * cap);
  h->pairs = v->data();
  h->cap = cap;
}

/**
 * radiusNeighbours(x, nRows, d, weights|null, q0, q1, eps2, list[, c0, c1]) -> { counts:
 * Float64Array(q1 − q0), offsets: Int32Array(q1 − q0 + 1)|null, indices: Int32Array|null,
 * rechecked }: for each query row q in [q0, q1), the rows i in [c0, c1) (default every row) with
 * Σ_f (x_if − x_qf)² <= eps2 in float64, features in order (q itself included when in range);
 * counts are their summed weights, and with `list` the rows themselves, CSR, each list ascending.
 *
 * The kernels screen in float32 (radiusRows): with u = 2⁻²⁴, the float32 sum of d squared
 * differences of floats is within γ_{d+2} = (d + 2)u/(1 − (d + 2)u) of the exact one, relative
 * (every term is ≥ 0), and the float64 sum within (d + 2)·2⁻⁵³; underflow adds at most 2⁻¹²⁶ a
 * term. So s32 > hi = eps2·(1 + c) + a is out and s32 < lo = eps2·(1 − c) − a is in, for the
 * float64 sum too, with c = (2d + 8)u > the two relative errors together and a = (d + 2)·2⁻¹²⁶; hi
 * is rounded up and lo down to float32. Pairs in between (a band of relative width ~2c around
 * eps2) are decided by the float64 sum, so every decision is the float64 one.
 *
 * Work is split into tasks of kRadiusGroup queries × one block of rows, block sizes set by nRows
 * and the number of queries only (about 64 tasks in all when there are few queries); each
 * task's weights are summed in row order and the blocks' sums added in block order, and each
 * list is the tasks' pairs in block order: the same bits for any thread count.
 */
Napi::Value RadiusNeighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  const float* w = dataOf<float>(info, 3, "weights", nRows, true);
  size_t q0, q1;
  rowRange(info, 4, nRows, "radiusNeighbours", &q0, &q1);
  if (!info[6].IsNumber()) throw Napi::TypeError::New(env, "radiusNeighbours: eps2 must be a number");
  const double eps2 = info[6].As<Napi::Number>().DoubleValue();
  if (!(eps2 >= 0)) throw Napi::RangeError::New(env, "radiusNeighbours: eps2 must be >= 0");
  const bool list = info.Length() > 7 && info[7].ToBoolean().Value();
  size_t c0 = 0, c1 = nRows;
  if (info.Length() > 8 && !info[8].IsUndefined()) rowRange(info, 8, nRows, "radiusNeighbours candidates", &c0, &c1);
  const size_t nCand = c1 - c0;
  const size_t nq = q1 - q0;
  Napi::Float64Array countsArr = Napi::Float64Array::New(env, nq);
  Napi::Object out = Napi::Object::New(env);
  out.Set("counts", countsArr);
  out.Set("offsets", env.Null());
  out.Set("indices", env.Null());
  out.Set("rechecked", Napi::Number::New(env, 0));
  if (nq == 0) {
    if (list) {
      out.Set("offsets", Napi::Int32Array::New(env, 1));
      out.Set("indices", Napi::Int32Array::New(env, 0));
    }
    return out;
  }

  const KernelTable& K = *gKernels;
  const int W = K.lanes;
  const size_t nTiles = (nq + W - 1) / W;
  AlignedFloats qpanel(nTiles * d * W);
  for (size_t t = 0; t < nTiles; ++t)
    for (int l = 0; l < W; ++l) {
      const size_t q = t * W + l;
      float* p = qpanel.ptr + t * d * W + l;
      for (int f = 0; f < d; ++f) p[(size_t)f * W] = q < nq ? x[(q0 + q) * d + f] : __builtin_nanf("");
    }
  RadiusJob job{x, w, qpanel.ptr, q0, d, eps2, 0.0f, 0.0f};
  if (eps2 == __builtin_inf()) {
    job.lo = job.hi = __builtin_inff();
  } else {
    const double c = (2.0 * d + 8) * 0x1p-24;
    const double a = (d + 2.0) * 0x1p-126;
    const double hi = eps2 + eps2 * c + a;
    const double lo = eps2 - eps2 * c - a;
    job.hi = (float)hi;
    if ((double)job.hi < hi) job.hi = std::nextafter(job.hi, __builtin_inff());
    job.lo = (float)lo;
    if ((double)job.lo > lo) job.lo = std::nextafter(job.lo, -__builtin_inff());
  }

  const size_t nGroups = (nq + kRadiusGroup - 1) / kRadiusGroup;
  const size_t tilesPerGroup = (size_t)kRadiusGroup / W;
  // Enough tasks to balance any pool (about 64), in blocks of at least 1024 candidate rows.
  size_t nBlocks = (64 + nGroups - 1) / nGroups;
  const size_t maxBlocks = (nCand + 1023) / 1024;
  if (nBlocks > maxBlocks) nBlocks = maxBlocks;
  if (nBlocks < 1) nBlocks = 1;
  const size_t blockRows = ((nCand + nBlocks - 1) / nBlocks + kRadiusSubRows - 1) / kRadiusSubRows * kRadiusSubRows;
  nBlocks = nCand > 0 ? (nCand + blockRows - 1) / blockRows : 1;
  const size_t nTasks = nGroups * nBlocks;
  std::vector<double> partial(nTasks * kRadiusGroup, 0.0);
  std::vector<size_t> rechecked(nTasks, 0);
  std::vector<TaskHits> hits(list ? nTasks : 0);
  for (TaskHits& t : hits) {
    t.h.owner = &t.buf;
    t.h.grow = growHits;
  }
  pool().run((int)nTasks, [&](int task, int) {
    const size_t g = (size_t)task / nBlocks;
    const size_t b = (size_t)task % nBlocks;
    const size_t r0 = c0 + b * blockRows;
    const size_t r1 = r0 + blockRows < c1 ? r0 + blockRows : c1;
    const size_t t0 = g * tilesPerGroup;
    const size_t t1 = t0 + tilesPerGroup < nTiles ? t0 + tilesPerGroup : nTiles;
    double* pc = partial.data() + (size_t)task * kRadiusGroup;
    RadiusHits* h = list ? &hits[task].h : nullptr;
    for (size_t s0 = r0; s0 < r1; s0 += kRadiusSubRows) {
      const size_t s1 = s0 + kRadiusSubRows < r1 ? s0 + kRadiusSubRows : r1;
      for (size_t t = t0; t < t1; ++t) K.radiusRows(job, (int)t, s0, s1, (int)((t - t0) * W), pc, h, &rechecked[task]);
    }
  });

  double* counts = countsArr.Data();
  for (size_t q = 0; q < nq; ++q) {
    const size_t g = q / kRadiusGroup, j = q % kRadiusGroup;
    double s = 0;
    for (size_t b = 0; b < nBlocks; ++b) s += partial[(g * nBlocks + b) * kRadiusGroup + j];
    counts[q] = s;
  }
  size_t nChecked = 0;
  for (size_t r : rechecked) nChecked += r;
  out.Set("rechecked", Napi::Number::New(env, (double)nChecked));
  if (!list) return out;

  // Each list is its tasks' pairs in block order: per (task, slot) counts, then each task's
  // first position per slot, then every task copies its pairs in parallel.
  std::vector<size_t> at(nTasks * kRadiusGroup, 0);
  for (size_t task = 0; task < nTasks; ++task) {
    const RadiusHits& h = hits[task].h;
    size_t* a = at.data() + task * kRadiusGroup;
    for (size_t p = 0; p < h.len; ++p) ++a[h.pairs[2 * p]];
  }
  Napi::Int32Array offsetsArr = Napi::Int32Array::New(env, nq + 1);
  int32_t* offsets = offsetsArr.Data();
  size_t total = 0;
  for (size_t q = 0; q < nq; ++q) {
    const size_t g = q / kRadiusGroup, j = q % kRadiusGroup;
    offsets[q] = (int32_t)total;
    for (size_t b = 0; b < nBlocks; ++b) {
      size_t& a = at[(g * nBlocks + b) * kRadiusGroup + j];
      const size_t len = a;
      a = total;
      total += len;
    }
    if (total > 0x7fffffff)
      throw Napi::RangeError::New(env, "radiusNeighbours: more than 2^31 - 1 neighbour pairs in one call; query fewer rows at a time");
  }
  offsets[nq] = (int32_t)total;
  Napi::Int32Array indicesArr = Napi::Int32Array::New(env, total);
  int32_t* indices = indicesArr.Data();
  pool().run((int)nTasks, [&](int task, int) {
    const RadiusHits& h = hits[task].h;
    size_t* a = at.data() + (size_t)task * kRadiusGroup;
    for (size_t p = 0; p < h.len; ++p) indices[a[h.pairs[2 * p]]++] = h.pairs[2 * p + 1];
    std::vector<int32_t>().swap(hits[task].buf);
  });
  out.Set("offsets", offsetsArr);
  out.Set("indices", indicesArr);
  return out;
}

/** columnMeans(x, nRows, d) -> Float32Array(d): float64 means rounded to float32, in block order. */
Napi::Value ColumnMeans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t nRows = sizeArg(info, 1, "nRows", 0);
  const int d = (int)sizeArg(info, 2, "d", 1);
  const float* x = dataOf<float>(info, 0, "x", nRows * d, false);
  std::vector<double> total(d, 0.0);
  const size_t blockRows = sumBlockRows(nRows, 1);
  const int nBlocks = (int)((nRows + blockRows - 1) / blockRows);
  Pool& P = pool();
  std::vector<std::vector<double>> partial(P.threads(), std::vector<double>(d));
  OrderedMerge order;
  P.run(nBlocks, [&](int b, int worker) {
    std::vector<double>& p = partial[worker];
    std::fill(p.begin(), p.end(), 0.0);
    const size_t r0 = (size_t)b * blockRows;
    const size_t r1 = r0 + blockRows < nRows ? r0 + blockRows : nRows;
    for (size_t r = r0; r < r1; ++r)
      for (int f = 0; f < d; ++f) p[f] += (double)x[r * d + f];
    order.merge(b, [&] {
      for (int f = 0; f < d; ++f) total[f] += p[f];
    });
  });
  Napi::Float32Array out = Napi::Float32Array::New(env, d);
  for (int f = 0; f < d; ++f) out[f] = nRows ? (float)(total[f] / (double)nRows) : 0.0f;
  return out;
}

/**
 * streamRead(x) -> number: a plain multithreaded sum of x, the memory floor for benchmarks.
 * It reads every element (the value is x's sum) and is not compute-bound: on a 2-core Zen 5 VM
 * it runs at the rate of a 2 GiB buffer, far past any cache (~50-58 GB/s with both cores, ~25-30
 * GB/s with one), so ~2.2 ms for 128 MB is the real floor there, not an artefact.
 */
Napi::Value StreamRead(const Napi::CallbackInfo& info) {
  const float* x = dataOf<float>(info, 0, "x", 0, false);
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  const size_t blockLen = 1 << 20;
  const int nBlocks = (int)((n + blockLen - 1) / blockLen);
  std::vector<double> part(nBlocks > 0 ? nBlocks : 1, 0.0);
  pool().run(nBlocks, [&](int b, int) {
    const size_t i0 = (size_t)b * blockLen;
    const size_t i1 = i0 + blockLen < n ? i0 + blockLen : n;
    float acc[16] = {0};
    size_t i = i0;
    for (; i + 16 <= i1; i += 16)
      for (int l = 0; l < 16; ++l) acc[l] += x[i + l];
    double s = 0;
    for (; i < i1; ++i) s += x[i];
    for (int l = 0; l < 16; ++l) s += acc[l];
    part[b] = s;
  });
  double s = 0;
  for (double p : part) s += p;
  return Napi::Number::New(info.Env(), s);
}

/** setThreads(n): n ≥ 1 worker threads (the caller included) for every later call. */
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int n = (int)sizeArg(info, 0, "threads", 1);
  gPool = std::make_unique<Pool>(n);
  return info.Env().Undefined();
}

/** setIsa(name): forces 'baseline', 'avx2' or 'avx512' (for tests); refuses one the CPU lacks. */
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string want = info[0].As<Napi::String>().Utf8Value();
  const KernelTable* best = bestKernels();
  std::vector<const KernelTable*> usable{&kBaseKernels};
#if defined(__x86_64__) || defined(_M_X64)
  if (best == &kAvx2Kernels || best == &kAvx512Kernels) usable.push_back(&kAvx2Kernels);
  if (best == &kAvx512Kernels) usable.push_back(&kAvx512Kernels);
#endif
  if (want == "auto") {
    gKernels = best;
    return env.Undefined();
  }
  for (const KernelTable* t : usable)
    if (want == t->isa) {
      gKernels = t;
      return env.Undefined();
    }
  throw Napi::Error::New(env, "setIsa: '" + want + "' is not supported on this CPU");
}

/** info() -> { isa, lanes, threads, isas: the instruction sets this CPU can run } */
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", gKernels->isa);
  o.Set("lanes", gKernels->lanes);
  o.Set("threads", pool().threads());
  Napi::Array isas = Napi::Array::New(env);
  uint32_t n = 0;
  isas.Set(n++, kBaseKernels.isa);
#if defined(__x86_64__) || defined(_M_X64)
  const KernelTable* best = bestKernels();
  if (best != &kBaseKernels) isas.Set(n++, kAvx2Kernels.isa);
  if (best == &kAvx512Kernels) isas.Set(n++, kAvx512Kernels.isa);
#endif
  o.Set("isas", isas);
  return o;
}

/**
 * mapFile(path) -> ArrayBuffer over a read-only private mapping of the whole file.
 *
 * Input tables are read through the page cache without a copy: on VMs whose fresh memory costs
 * ~4 ms per MiB to touch, a readFileSync of a 130 MB Arrow file spends half a second faulting in
 * the buffer, while mapping pages the kernel already caches costs only page-table entries.
 * The mapping is released when the ArrayBuffer is collected. A file truncated by another
 * process while mapped would fault (SIGBUS): inputs are expected to be immutable during a run.
 */
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "mapFile: 'path' must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    const int e = errno;
    close(fd);
    throw Napi::Error::New(env, "mapFile: cannot map " + path + (st.st_size <= 0 ? ": empty file" : std::string(": ") + std::strerror(e)));
  }
  const size_t size = (size_t)st.st_size;
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw Napi::Error::New(env, "mapFile: mmap failed for " + path + ": " + std::strerror(errno));
  madvise(p, size, MADV_SEQUENTIAL);
  return Napi::ArrayBuffer::New(env, p, size, [](Napi::Env, void* data, size_t* len) { munmap(data, *len); delete len; }, new size_t(size));
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/** Whether transparent huge pages are on for MADV_HUGEPAGE regions (`always` or `madvise`). */
bool hugePagesOn() {
  static const bool on = [] {
    const int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[128] = {};
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    return std::strstr(buf, "[always]") != nullptr || std::strstr(buf, "[madvise]") != nullptr;
  }();
  return on;
}

struct Populated {
  void* map;  // the mapping (data rounded down to a huge page, when aligned)
  size_t mapSize;
  std::thread filler;
};

/**
 * allocPopulated(bytes) -> zero-filled ArrayBuffer whose pages a background thread faults in
 * (MADV_POPULATE_WRITE, which maps pages without writing to them, so it cannot race with the
 * caller's own writes). On these VMs the first touch of fresh memory costs ~4 ms per MiB; the
 * caller overlaps that with other work (the preprocessing statistics) instead of paying it in
 * its first write loop. On kernels without MADV_POPULATE_WRITE the pages fault in as usual.
 * Buffers of 2 MiB or more start on a 2 MiB boundary and, where transparent huge pages are
 * enabled (`always` or `madvise`), ask for them instead: one fault per 2 MiB instead of 512
 * (8 MiB written in 0.6 ms against 28-29 ms here; with the background thread as well, the
 * pages took 6-7 ms, so it is left out then).
 */
Napi::Value AllocPopulated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "allocPopulated: 'bytes' must be a number");
  const double req = info[0].As<Napi::Number>().DoubleValue();
  if (!(req >= 1) || req > 1e15) throw Napi::RangeError::New(env, "allocPopulated: 'bytes' must be >= 1");
  const size_t size = (size_t)req;
  constexpr size_t kHuge = (size_t)2 << 20;
  const size_t mapSize = size >= kHuge ? size + kHuge : size;
  void* map = mmap(nullptr, mapSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) throw Napi::Error::New(env, std::string("allocPopulated: out of memory: ") + std::strerror(errno));
  char* p = (char*)map;
  bool huge = false;
  if (size >= kHuge) {
    p = (char*)(((uintptr_t)map + kHuge - 1) & ~(uintptr_t)(kHuge - 1));
    huge = hugePagesOn() && madvise(p, size, MADV_HUGEPAGE) == 0;
  }
  auto* h = new Populated{map, mapSize, std::thread()};
  if (!huge) h->filler = std::thread([p, size] { madvise(p, size, MADV_POPULATE_WRITE); });
  return Napi::ArrayBuffer::New(
      env, p, size,
      [](Napi::Env, void*, Populated* hint) {
        if (hint->filler.joinable()) hint->filler.join();
        munmap(hint->map, hint->mapSize);
        delete hint;
      },
      h);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  gKernels = bestKernels();
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("allocPopulated", Napi::Function::New(env, AllocPopulated));
  registerDataHelpers(env, exports);
  exports.Set("assign", Napi::Function::New(env, Assign));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSum));
  exports.Set("distances", Napi::Function::New(env, Distances));
  exports.Set("potentials", Napi::Function::New(env, Potentials));
  exports.Set("updateClosest", Napi::Function::New(env, UpdateClosest));
  exports.Set("closestFrom", Napi::Function::New(env, ClosestFrom));
  exports.Set("clusterDistanceSums", Napi::Function::New(env, ClusterDistanceSums));
  exports.Set("project", Napi::Function::New(env, Project));
  exports.Set("softSums", Napi::Function::New(env, SoftSums));
  exports.Set("scatter", Napi::Function::New(env, Scatter));
  exports.Set("radiusNeighbours", Napi::Function::New(env, RadiusNeighbours));
  exports.Set("columnMeans", Napi::Function::New(env, ColumnMeans));
  exports.Set("streamRead", Napi::Function::New(env, StreamRead));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace
}  // namespace seg

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return seg::Init(env, exports); }

NODE_API_MODULE(segtensor_native, InitAddon)
