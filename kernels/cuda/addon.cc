// N-API binding of the CUDA kernels (api.h). Built by kernels/cuda/build.mjs with g++ and
// linked against kernels.o and cudart_static, so it loads on machines without libcuda and
// reports why CUDA cannot run through probe() instead of failing to load.
#include <napi.h>

#include <cstring>
#include <string>

#include "api.h"

namespace {

template <class T>
T* dataOf(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  const Napi::TypedArray ta = v.As<Napi::TypedArray>();
  return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

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
};

SegCudaData* handleOf(const Napi::Value& v) {
  SegCudaData* h = v.As<Napi::External<Handle>>().Data()->data;
  if (!h) throw Napi::Error::New(v.Env(), "cuda: the matrix was released");
  return h;
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
  const int64_t n = info[1].As<Napi::Number>().Int64Value();
  const int d = info[2].As<Napi::Number>().Int32Value();
  SegCudaData* h = nullptr;
  check(env, seg_cuda_upload(dataOf<float>(info[0]), n, d, dataOf<float>(info[3]), dataOf<float>(info[4]), &h));
  return Napi::External<Handle>::New(env, new Handle{h}, [](Napi::Env, Handle* box) {
    if (box->data) seg_cuda_release(box->data);
    delete box;
  });
}

/** release(h): frees the device memory now; later calls with h throw. Idempotent. */
Napi::Value Release(const Napi::CallbackInfo& info) {
  Handle* box = info[0].As<Napi::External<Handle>>().Data();
  if (box->data) seg_cuda_release(box->data);
  box->data = nullptr;
  return info.Env().Undefined();
}

/**
 * assign(h, centroids, k, prevLabels|null, prevGen, outLabels|null, outDist|null)
 *   -> { inertia, nChanged, gen }; null outputs leave the result on the device (see read).
 */
Napi::Value Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double inertia = 0;
  int64_t changed = 0, gen = -1;
  check(env, seg_cuda_assign(handleOf(info[0]), dataOf<float>(info[1]), info[2].As<Napi::Number>().Int32Value(),
                             dataOf<int32_t>(info[3]), info[4].As<Napi::Number>().Int64Value(),
                             dataOf<int32_t>(info[5]), dataOf<float>(info[6]), &inertia, &changed, &gen));
  Napi::Object o = Napi::Object::New(env);
  o.Set("inertia", inertia);
  o.Set("nChanged", (double)changed);
  o.Set("gen", (double)gen);
  return o;
}

/** resident(h, gen) -> whether generation gen is still in a device slot */
Napi::Value Resident(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), seg_cuda_resident(handleOf(info[0]), info[1].As<Napi::Number>().Int64Value()) != 0);
}

/** read(h, gen, outLabels, outDist): host copies of a resident generation. */
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_read(handleOf(info[0]), info[1].As<Napi::Number>().Int64Value(), dataOf<int32_t>(info[2]),
                           dataOf<float>(info[3])));
  return env.Undefined();
}

/** segmentSum(h, labels|null, gen, k, outSums, outCounts) */
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_segment_sum(handleOf(info[0]), dataOf<int32_t>(info[1]), info[2].As<Napi::Number>().Int64Value(),
                                  info[3].As<Napi::Number>().Int32Value(), dataOf<double>(info[4]),
                                  dataOf<double>(info[5])));
  return env.Undefined();
}

/** distances(h, centers, m, out) */
Napi::Value Distances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_distances(handleOf(info[0]), dataOf<float>(info[1]), info[2].As<Napi::Number>().Int32Value(),
                                dataOf<float>(info[3])));
  return env.Undefined();
}

/** potentials(h, closest, candidates, m) -> Float64Array(m) */
Napi::Value Potentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int m = info[3].As<Napi::Number>().Int32Value();
  Napi::Float64Array out = Napi::Float64Array::New(env, m);
  check(env, seg_cuda_potentials(handleOf(info[0]), dataOf<float>(info[1]), dataOf<float>(info[2]), m, out.Data()));
  return out;
}

/** clusterDistanceSums(h, xHost, labels, k[, r0, r1]) -> Float64Array((r1 − r0)·k); labels must lie in [0, k). */
Napi::Value ClusterDistanceSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Int32Array labels = info[2].As<Napi::Int32Array>();
  const int k = info[3].As<Napi::Number>().Int32Value();
  const size_t n = labels.ElementLength();
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw Napi::RangeError::New(env, "clusterDistanceSums: labels must be in [0, " + std::to_string(k) + "); got " +
                                           std::to_string(labels[i]) + " at row " + std::to_string(i));
  const int64_t r0 = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int64Value() : 0;
  const int64_t r1 = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() : (int64_t)n;
  if (r0 < 0 || r0 > r1 || r1 > (int64_t)n) throw Napi::RangeError::New(env, "clusterDistanceSums: need 0 <= r0 <= r1 <= nRows");
  Napi::Float64Array out = Napi::Float64Array::New(env, (size_t)(r1 - r0) * (size_t)k);
  check(env, seg_cuda_cluster_sums(handleOf(info[0]), dataOf<float>(info[1]), labels.Data(), k, r0, r1, out.Data()));
  return out;
}

/** project(h, w, m, r0, r1, out): out ((r1 − r0) × m) = x[r0:r1]·w. */
Napi::Value Project(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_project(handleOf(info[0]), dataOf<float>(info[1]), info[2].As<Napi::Number>().Int32Value(),
                              info[3].As<Napi::Number>().Int64Value(), info[4].As<Napi::Number>().Int64Value(),
                              dataOf<float>(info[5])));
  return env.Undefined();
}

/** softSums(h, r, m, r0, r1, outSums, outCounts) */
Napi::Value SoftSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_soft_sums(handleOf(info[0]), dataOf<float>(info[1]), info[2].As<Napi::Number>().Int32Value(),
                                info[3].As<Napi::Number>().Int64Value(), info[4].As<Napi::Number>().Int64Value(),
                                dataOf<double>(info[5]), dataOf<double>(info[6])));
  return env.Undefined();
}

/** scatter(h, r|null, m, means, r0, r1, out) */
Napi::Value Scatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env, seg_cuda_scatter(handleOf(info[0]), dataOf<float>(info[1]), info[2].As<Napi::Number>().Int32Value(),
                              dataOf<double>(info[3]), info[4].As<Napi::Number>().Int64Value(),
                              info[5].As<Napi::Number>().Int64Value(), dataOf<double>(info[6])));
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
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
