#!/usr/bin/env bash
# Runs on a lent GPU machine, from what scripts/gpu-pack.sh put in .gpu/ (see there): unpacks
# Node, vitest and the addons, then runs the CUDA test files (the "cuda backend on a GPU" suite
# included) and the shared suites every backend runs (backends, K-Means, seeding, chunked data,
# metrics: cuda among them when a device answers), then bench/gpu.ts (Lloyd steps against
# PyTorch fp32 and TF32 and FAISS-GPU, whole fits twice, labels, streaming; see there),
# leaving every log and result in $OUT.
# QUICK=1 runs the benchmark on 100,000 rows instead of 1,000,000 (k = 2,000 for 20,000).
# STAGE=tests or STAGE=bench runs only that half (two device calls, each under the tool's 600 s
# limit); BENCH_ARGS passes more options to bench/gpu.ts (e.g. --skip-stream).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/segtensor-gpu}
mkdir -p "$out" /tmp/segtensor-node
tar -xJf .gpu/node.tar.xz -C /tmp/segtensor-node
export PATH=/tmp/segtensor-node/bin:$PATH
tar -xJf .gpu/modules.tar.xz
mkdir -p kernels/build/Release && cp .gpu/segtensor_cuda.node .gpu/segtensor_native.node kernels/build/Release/
{
  nvidia-smi -L 2>&1
  echo "node $(node --version)"
  node -e 'const a = require("./kernels/build/Release/segtensor_cuda.node"); console.log("cuda probe:", JSON.stringify(a.probe()))'
} 2>&1 | tee "$out/device.txt"
status=0
# The pack carries no tfjs and no DuckDB: the suites skip (visibly) or work around what needs them.
export SEGTENSOR_GPU_PACK=1
stage=${STAGE:-all}
if [ "$stage" != bench ]; then
node node_modules/vitest/vitest.mjs run test/engine/cuda.test.ts test/engine/cuda-host.test.ts \
  test/engine/backends.test.ts test/models/kmeans.test.ts test/models/kmeans-init.test.ts test/models/kmeans-chunked.test.ts \
  test/eval/metrics.test.ts test/eval/metrics-large-k.test.ts 2>&1 | tee "$out/gpu-tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ "$stage" != tests ]; then
# shellcheck disable=SC2086
node dist/bench/gpu.js ${QUICK:+--quick} ${BENCH_ARGS:-} --out "$out" 2>&1 | tee "$out/gpu-bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
exit "$status"
