// What the N-API bindings in kernels/cpu share: typed-array argument unpacking with checked
// lengths and number arguments (../common/napi-args.h, shared with the CUDA binding), and the
// thread pool.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../common/napi-args.h"
#include "pool.h"

namespace seg {

/** The process's thread pool (SEGTENSOR_THREADS or all cores; setThreads replaces it). */
Pool& pool();

/** Registers the data helpers of data.cc (preprocessing and profile kernels) on exports. */
void registerDataHelpers(Napi::Env env, Napi::Object exports);

}  // namespace seg
