// Typed-array and number arguments of the N-API bindings, checked: the element type, a
// minimum length, nullability; one-line TypeError/RangeError naming the argument. Shared by the
// CPU binding (kernels/cpu) and the CUDA one (kernels/cuda/addon.cc).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace seg {

template <class T>
struct TypeOf;
template <>
struct TypeOf<float> {
  static constexpr napi_typedarray_type value = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypeOf<double> {
  static constexpr napi_typedarray_type value = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct TypeOf<int32_t> {
  static constexpr napi_typedarray_type value = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};

template <class T>
inline T* dataOf(const Napi::CallbackInfo& info, size_t i, const char* name, size_t minLength,
          bool nullable) {
  const Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a typed array");
  const Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != TypeOf<T>::value)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a " + TypeOf<T>::name);
  if (ta.ElementLength() < minLength)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is too short: need " + std::to_string(minLength) +
                                                " elements, got " + std::to_string(ta.ElementLength()));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

inline size_t sizeArg(const Napi::CallbackInfo& info, size_t i, const char* name, double min) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= min) || v != (double)(size_t)v) throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer >= " + std::to_string((int)min));
  return (size_t)v;
}

}  // namespace seg
