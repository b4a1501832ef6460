#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run segtensor's GPU checks (it has nvcc, PyTorch and
# scikit-learn but no Node) into .gpu/, which .git/info/exclude keeps out of git: an
# xz-compressed copy of this machine's Node (and its headers), vitest and the packages it loads,
# the runtime packages the shared backend, K-Means and metrics suites import (not DuckDB, tfjs,
# vega or parquet-wasm: those suites do not load them, and they would not fit the device tool's
# 64 MiB), the CUDA addon built here (cudart linked statically: it needs only the driver there)
# and the native CPU addon (the suites compare every backend with it). Then, with the device
# tool, one call runs the GPU tests and the GPU benchmark and returns their logs:
#
#   bash scripts/gpu-pack.sh
#   run(command="bash scripts/gpu-run.sh", carry=[".gpu", "dist"], timeout_s=600)
#
# dist/ (the compiled TypeScript) travels too: the GPU benchmark runs from it.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=.git/info/exclude
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
npm run build >/dev/null
node kernels/cuda/build.mjs
rm -rf .gpu && mkdir .gpu
# Node with its headers (the CUDA build test compiles the addon there), as <prefix>/bin/node and
# <prefix>/include/node, where kernels/cuda/build.mjs looks for them.
prefix=$(dirname "$(dirname "$(command -v node)")")
XZ_OPT='-T0 -6' tar -cJf .gpu/node.tar.xz -C "$prefix" bin/node include/node
# vitest and everything it loads, and node-addon-api's headers, from this install's node_modules.
node -e '
  const fs = require("fs"), path = require("path");
  const seen = new Set();
  const visit = (name) => {
    const dir = path.join("node_modules", name);
    if (seen.has(name) || !fs.existsSync(dir)) return;
    seen.add(name);
    const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) visit(d);
  };
  visit("vitest");
  visit("node-addon-api");
  const skip = /^(@duckdb\/|@tensorflow\/|vega|parquet-wasm$|node-gyp$)/;
  for (const d of Object.keys(require("./package.json").dependencies)) if (!skip.test(d)) visit(d);
  console.log([...seen].map((n) => "node_modules/" + n).join("\n"));
' >.gpu/modules.txt
tar -cJf .gpu/modules.tar.xz -T .gpu/modules.txt
cp kernels/build/Release/segtensor_cuda.node kernels/build/Release/segtensor_native.node .gpu/
du -sh .gpu dist
