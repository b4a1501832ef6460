// N-API binding of the CUDA kernels (api.h). Built by kernels/cuda/build.mjs with g++ and
// linked against kernels.o and cudart_static, so it loads on machines without libcuda and
// reports why CUDA cannot run through probe() instead of failing to load.
//
// Every argument is checked before any device call, as the CPU binding checks its own (the
// shared ../common/napi-args.h): a typed array of the wrong type or too short for the uploaded
// matrix's rows and features (remembered by its handle), k or m, is a one-line TypeError or
// RangeError, never a read past the end of a host array or a device fault.
#include <napi.h>

#include <cstring>
#include <string>

#include "../common/napi-args.h"
#include "api.h"

namespace {

using seg::dataOf;
using seg::sizeArg;

/** Throws err, if any; device out-of-memory errors (api.h) carry `code: 'CUDA_OOM'`. */
void check(Napi::Env env, const char* err) {
  if (!err) return;
  Napi::Error e = Napi::Error::New(env, err);
  if (std::strncmp(err, SEG_CUDA_OOM_PREFIX, sizeof SEG_CUDA_OOM_PREFIX - 1) == 0) e.Value().Set("code", SEG_CUDA_OOM_CODE);
  throw e;
}

/** The handle behind an upload: freed by release(), or when collected if never released. */
struct Handle {
  SegCudaData* data;
  /** The uploaded matrix's rows and features, for the argument checks. */
  size_t n;
  size_t d;
};

Handle* boxOf(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "cuda: the first argument must be a handle from upload()");
  Handle* box = info[i].As<Napi::External<Handle>>().Data();
  if (!box->data) throw Napi::Error::New(info.Env(), "cuda: the matrix was released");
  return box;
}

/** Rows [r0, r1) from arguments i and i + 1, checked against the matrix's n. */
void rowRange(const Napi::CallbackInfo& info, size_t i, size_t n, const char* op, int64_t* r0, int64_t* r1) {
  const size_t a = sizeArg(info, i, "r0", 0), b = sizeArg(info, i + 1, "r1", 0);
  if (a > b || b > n) throw Napi::RangeError::New(info.Env(), std::string(op) + ": need 0 <= r0 <= r1 <= nRows = " + std::to_string(n));
  *r0 = (int64_t)a;
  *r1 = (int64_t)b;
}

/** probe() -> { ok: true, name, freeBytes, totalBytes } | { ok: false, reason } */
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char name[256] = {0};
  size_t freeB = 0, totalB = 0;
  const char* err = seg_cuda_probe(name, sizeof name, &freeB, &totalB);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", err == nullptr);
  if (err) {
    o.Set("reason", err);
  } else {
    o.Set("name", name);
    o.Set("freeBytes", (double)freeB);
    o.Set("totalBytes", (double)totalB);
  }
  return o;
}

/** upload(x, nRows, d, weights|null, shift) -> handle (freed by release or GC) */
Napi::Value Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t n = sizeArg(info, 1, "nRows", 0);
  const size_t d = sizeArg(info, 2, "d", 1);
  const float* x = dataOf<float>(info, 0, "x", n * d, false);
  const float* w = dataOf<float>(info, 3, "weights", n, true);
  const float* shift = dataOf<float>(info, 4, "shift", d, false);
  SegCudaData* h = nullptr;
  check(env, seg_cuda_upload(x, (int64_t)n, (int)d, w, shift, &h));
  return Napi::External<Handle>::New(env, new Handle{h, n, d}, [](Napi::Env, Handle* box) {
    if (box->data) seg_cuda_release(box->data);
    delete box;
  });
}

/** release(h): frees the device memory now; later calls with h throw. Idempotent. */
Napi::Value Release(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "cuda: release() takes a handle from upload()");
  Handle* box = info[0].As<Napi::External<Handle>>().Data();
  if (box->data) seg_cuda_release(box->data);
  box->data = nullptr;
  return info.Env().Undefined();
}

/**
 * assign(h, centroids, k, prevLabels|null, prevGen, outLabels|null, outDist|null[, outSums, outCounts])
 *   -> { inertia, nChanged, gen }; null outputs leave the result on the device (see read).
 *   outSums (k × d) and outCounts (k) get the fused segment sums of the new labels.
 */
Napi::Value Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t k = sizeArg(info, 2, "k", 1);
  const float* c = dataOf<float>(info, 1, "centroids", k * b->d, false);
  const int32_t* prev = dataOf<int32_t>(info, 3, "prevLabels", b->n, true);
  if (!info[4].IsNumber()) throw Napi::TypeError::New(env, "prevGen must be a number");
  int32_t* labels = dataOf<int32_t>(info, 5, "outLabels", b->n, true);
  float* dist = dataOf<float>(info, 6, "outDist", b->n, true);
  double* sums = dataOf<double>(info, 7, "outSums", k * b->d, true);
  double* counts = dataOf<double>(info, 8, "outCounts", k, true);
  if (!sums != !counts) throw Napi::TypeError::New(env, "assign: outSums and outCounts go together");
  double inertia = 0;
  int64_t changed = 0, gen = -1;
  check(env, seg_cuda_assign(b->data, c, (int)k, prev, info[4].As<Napi::Number>().Int64Value(), labels, dist, &inertia,
                             &changed, &gen, sums, counts));
  Napi::Object o = Napi::Object::New(env);
  o.Set("inertia", inertia);
  o.Set("nChanged", (double)changed);
  o.Set("gen", (double)gen);
  return o;
}

/** resident(h, gen) -> whether generation gen is still in a device slot */
Napi::Value Resident(const Napi::CallbackInfo& info) {
  Handle* b = boxOf(info, 0);
  if (!info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "gen must be a number");
  return Napi::Boolean::New(info.Env(), seg_cuda_resident(b->data, info[1].As<Napi::Number>().Int64Value()) != 0);
}

/** read(h, gen, outLabels, outDist): host copies of a resident generation. */
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "gen must be a number");
  int32_t* labels = dataOf<int32_t>(info, 2, "outLabels", b->n, true);
  float* dist = dataOf<float>(info, 3, "outDist", b->n, true);
  check(env, seg_cuda_read(b->data, info[1].As<Napi::Number>().Int64Value(), labels, dist));
  return env.Undefined();
}

/** segmentSum(h, labels|null, gen, k, outSums, outCounts) */
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const int32_t* labels = dataOf<int32_t>(info, 1, "labels", b->n, true);
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "gen must be a number");
  const size_t k = sizeArg(info, 3, "k", 1);
  double* sums = dataOf<double>(info, 4, "outSums", k * b->d, false);
  double* counts = dataOf<double>(info, 5, "outCounts", k, false);
  // Host labels index the device's sums: one outside [0, k) would write past them.
  if (labels)
    for (size_t i = 0; i < b->n; ++i)
      if (labels[i] < 0 || (size_t)labels[i] >= k)
        throw Napi::RangeError::New(env, "segmentSum: labels must be in [0, " + std::to_string(k) + "); got " +
                                             std::to_string(labels[i]) + " at row " + std::to_string(i));
  check(env, seg_cuda_segment_sum(b->data, labels, info[2].As<Napi::Number>().Int64Value(), (int)k, sums, counts));
  return env.Undefined();
}

/** distances(h, centers, m, out) */
Napi::Value Distances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  const float* centers = dataOf<float>(info, 1, "centers", m * b->d, false);
  float* out = dataOf<float>(info, 3, "out", b->n * m, false);
  check(env, seg_cuda_distances(b->data, centers, (int)m, out));
  return env.Undefined();
}

/** potentials(h, closest, candidates, m) -> Float64Array(m) */
Napi::Value Potentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 3, "m", 1);
  const float* closest = dataOf<float>(info, 1, "closest", b->n, false);
  const float* cands = dataOf<float>(info, 2, "candidates", m * b->d, false);
  Napi::Float64Array out = Napi::Float64Array::New(env, m);
  check(env, seg_cuda_potentials(b->data, closest, cands, (int)m, out.Data()));
  return out;
}

/** clusterDistanceSums(h, xHost, labels, k[, r0, r1]) -> Float64Array((r1 − r0)·k); labels must lie in [0, k). */
Napi::Value ClusterDistanceSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t n = b->n;
  const float* xHost = dataOf<float>(info, 1, "xHost", n * b->d, false);
  const int32_t* labelData = dataOf<int32_t>(info, 2, "labels", n, false);
  const Napi::Int32Array labels = info[2].As<Napi::Int32Array>();
  const int k = (int)sizeArg(info, 3, "k", 1);
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw Napi::RangeError::New(env, "clusterDistanceSums: labels must be in [0, " + std::to_string(k) + "); got " +
                                           std::to_string(labels[i]) + " at row " + std::to_string(i));
  const int64_t r0 = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int64Value() : 0;
  const int64_t r1 = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() : (int64_t)n;
  if (r0 < 0 || r0 > r1 || r1 > (int64_t)n) throw Napi::RangeError::New(env, "clusterDistanceSums: need 0 <= r0 <= r1 <= nRows");
  Napi::Float64Array out = Napi::Float64Array::New(env, (size_t)(r1 - r0) * (size_t)k);
  check(env, seg_cuda_cluster_sums(b->data, xHost, labelData, k, r0, r1, out.Data()));
  return out;
}

/** project(h, w, m, r0, r1, out): out ((r1 − r0) × m) = x[r0:r1]·w. */
Napi::Value Project(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  const float* w = dataOf<float>(info, 1, "w", b->d * m, false);
  int64_t r0, r1;
  rowRange(info, 3, b->n, "project", &r0, &r1);
  float* out = dataOf<float>(info, 5, "out", (size_t)(r1 - r0) * m, false);
  check(env, seg_cuda_project(b->data, w, (int)m, r0, r1, out));
  return env.Undefined();
}

/** softSums(h, r, m, r0, r1, outSums, outCounts) */
Napi::Value SoftSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  int64_t r0, r1;
  rowRange(info, 3, b->n, "softSums", &r0, &r1);
  const float* r = dataOf<float>(info, 1, "r", (size_t)(r1 - r0) * m, false);
  double* sums = dataOf<double>(info, 5, "outSums", m * b->d, false);
  double* counts = dataOf<double>(info, 6, "outCounts", m, false);
  check(env, seg_cuda_soft_sums(b->data, r, (int)m, r0, r1, sums, counts));
  return env.Undefined();
}

/** scatter(h, r|null, m, means, r0, r1, out) */
Napi::Value Scatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  int64_t r0, r1;
  rowRange(info, 4, b->n, "scatter", &r0, &r1);
  const float* r = dataOf<float>(info, 1, "r", (size_t)(r1 - r0) * m, true);
  if (!r && m != 1) throw Napi::RangeError::New(env, "scatter: without responsibilities r, m must be 1");
  const double* means = dataOf<double>(info, 3, "means", m * b->d, false);
  double* out = dataOf<double>(info, 6, "out", m * b->d * b->d, false);
  check(env, seg_cuda_scatter(b->data, r, (int)m, means, r0, r1, out));
  return env.Undefined();
}

/** streamed(h) -> whether the rows stream from the host (device k-means++ needs them resident) */
Napi::Value Streamed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), seg_cuda_streamed(boxOf(info, 0)->data) != 0);
}

/** seedStart(h, center, trials) -> φ: device k-means++ from its first center (seed.cuh). */
Napi::Value SeedStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const float* center = dataOf<float>(info, 1, "center", b->d, false);
  const size_t trials = sizeArg(info, 2, "trials", 1);
  double total = 0;
  check(env, seg_cuda_seed_start(b->data, center, (int)trials, &total));
  return Napi::Number::New(env, total);
}

/** seedDraw(h, targets, m) -> Int32Array(m): each threshold's row. */
Napi::Value SeedDraw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  const double* targets = dataOf<double>(info, 1, "targets", m, false);
  Napi::Int32Array rows = Napi::Int32Array::New(env, m);
  check(env, seg_cuda_seed_draw(b->data, targets, (int)m, rows.Data()));
  return rows;
}

/** seedPotentials(h, candidates, m) -> Float64Array(m); the distances are kept for seedTake. */
Napi::Value SeedPotentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t m = sizeArg(info, 2, "m", 1);
  const float* cands = dataOf<float>(info, 1, "candidates", m * b->d, false);
  Napi::Float64Array out = Napi::Float64Array::New(env, m);
  check(env, seg_cuda_seed_potentials(b->data, cands, (int)m, out.Data()));
  return out;
}

/** seedTake(h, j) -> φ after folding candidate j's kept distances into closest. */
Napi::Value SeedTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  const size_t j = sizeArg(info, 1, "j", 0);
  double total = 0;
  check(env, seg_cuda_seed_take(b->data, (int)j, &total));
  return Napi::Number::New(env, total);
}

/**
 * radius(h, q0, q1, eps2, offsets|null, outCounts, outFound|null, outIndices|null[, c0, c1]) -> rechecked:
 * candidates rows [c0, c1) (default every row).
 * Count pass: offsets null, outFound (Int32Array, q1 − q0). List pass: offsets (q1 − q0 + 1)
 * from the count pass, outIndices of offsets[q1 − q0] elements.
 */
Napi::Value Radius(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* b = boxOf(info, 0);
  int64_t q0, q1;
  rowRange(info, 1, b->n, "radius", &q0, &q1);
  if (!info[3].IsNumber()) throw Napi::TypeError::New(env, "eps2 must be a number");
  const double eps2 = info[3].As<Napi::Number>().DoubleValue();
  if (!(eps2 >= 0)) throw Napi::RangeError::New(env, "eps2 must be a number >= 0");
  const size_t nq = (size_t)(q1 - q0);
  const int32_t* offsets = dataOf<int32_t>(info, 4, "offsets", nq + 1, true);
  double* counts = dataOf<double>(info, 5, "outCounts", nq, false);
  int32_t* found = dataOf<int32_t>(info, 6, "outFound", nq, true);
  if (!offsets && !found) throw Napi::TypeError::New(env, "radius: the count pass needs outFound");
  int32_t* indices = nullptr;
  if (offsets) {
    for (size_t q = 0; q < nq; ++q)
      if (offsets[q + 1] < offsets[q] || offsets[0] != 0) throw Napi::RangeError::New(env, "radius: offsets must start at 0 and not decrease");
    indices = dataOf<int32_t>(info, 7, "outIndices", (size_t)offsets[nq], offsets[nq] == 0);
  }
  int64_t c0 = 0, c1 = (int64_t)b->n;
  if (info.Length() > 8 && !info[8].IsUndefined()) rowRange(info, 8, b->n, "radius candidates", &c0, &c1);
  int64_t rechecked = 0;
  check(env, seg_cuda_radius(b->data, q0, q1, c0, c1, eps2, offsets, counts, found, indices, &rechecked));
  return Napi::Number::New(env, (double)rechecked);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("radius", Napi::Function::New(env, Radius));
  exports.Set("streamed", Napi::Function::New(env, Streamed));
  exports.Set("seedStart", Napi::Function::New(env, SeedStart));
  exports.Set("seedDraw", Napi::Function::New(env, SeedDraw));
  exports.Set("seedPotentials", Napi::Function::New(env, SeedPotentials));
  exports.Set("seedTake", Napi::Function::New(env, SeedTake));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("assign", Napi::Function::New(env, Assign));
  exports.Set("resident", Napi::Function::New(env, Resident));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSum));
  exports.Set("distances", Napi::Function::New(env, Distances));
  exports.Set("potentials", Napi::Function::New(env, Potentials));
  exports.Set("clusterDistanceSums", Napi::Function::New(env, ClusterDistanceSums));
  exports.Set("project", Napi::Function::New(env, Project));
  exports.Set("softSums", Napi::Function::New(env, SoftSums));
  exports.Set("scatter", Napi::Function::New(env, Scatter));
  return exports;
}

}  // namespace

NODE_API_MODULE(segtensor_cuda, Init)
