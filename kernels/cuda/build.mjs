#!/usr/bin/env node
/**
 * Builds the CUDA addon: nvcc compiles kernels.cu for sm_80 and sm_90 (with compute_90 PTX for
 * newer GPUs), g++ compiles the N-API
 * binding, and both are linked against cudart_static (no link-time libcuda or cuBLAS), so the
 * addon loads anywhere and reports at run time why CUDA cannot be used.
 *
 *   node kernels/cuda/build.mjs [--nvcc=/path/to/nvcc] [--out=DIR]   (default DIR: kernels/build/Release)
 *   node kernels/cuda/build.mjs --images   (prints the GPU images nvcc would embed, builds nothing)
 *
 * Exits non-zero with the failing step's first error line; scripts/build-native.mjs turns that
 * into a one-line notice.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return null;
}

function die(msg) {
  console.error(`error: ${msg}`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').filter((l) => l.trim());
    die(`${cmd.split('/').pop()}: ${(lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit ${r.status}`).trim()}`);
  }
}

const nvcc = arg('nvcc') ?? process.env.NVCC ?? which('nvcc');
if (!nvcc) die('nvcc not found');
// nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc): also try CUDA_PATH and the usual prefix.
const cudaRoot = [process.env.CUDA_PATH, process.env.CUDA_HOME, dirname(dirname(realpathSync(nvcc))), '/usr/local/cuda'].find(
  (r) => r && existsSync(join(r, 'include', 'cuda_runtime.h')),
);
if (!cudaRoot) die('CUDA headers (cuda_runtime.h) not found; set CUDA_PATH');
const cudaLib = ['lib64', 'lib', 'targets/x86_64-linux/lib'].map((l) => join(cudaRoot, l)).find((l) => existsSync(join(l, 'libcudart_static.a')));
if (!cudaLib) die(`libcudart_static.a not found under ${cudaRoot}`);
const nodeInclude = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
if (!nodeInclude) die('Node headers (node_api.h) not found');
const napiInclude = createRequire(import.meta.url)('node-addon-api').include_dir;

const out = arg('out') ?? join(here, '..', 'build', 'Release');
const objDir = join(out, 'obj.cuda');
mkdirSync(objDir, { recursive: true });
const obj = join(objDir, 'kernels.o');

const nvccArgs = [
  '-std=c++17', '-O3', '-Xcompiler', '-fPIC',
  '-gencode', 'arch=compute_80,code=sm_80',
  '-gencode', 'arch=compute_90,code=sm_90',
  // PTX too, so a GPU newer than sm_90 compiles the kernels at load (the driver's JIT) instead
  // of having no image for them; the probe launches one to be sure (kernels.cu).
  '-gencode', 'arch=compute_90,code=compute_90',
  '-c', join(here, 'kernels.cu'), '-o', obj,
];
if (process.argv.includes('--images')) {
  // nvcc's plan, not a build: the fatbinary step lists each embedded image (kind and sm).
  const r = spawnSync(nvcc, ['--dryrun', ...nvccArgs], { encoding: 'utf8' });
  const images = [...`${r.stderr}${r.stdout}`.matchAll(/--image3=kind=(\w+),sm=(\d+)/g)].map((m) => `${m[1]} sm_${m[2]}`);
  console.log(images.join('\n'));
  process.exit(images.length ? 0 : 1);
}
run(nvcc, nvccArgs);
run(process.env.CXX ?? 'g++', [
  '-std=c++17', '-O2', '-fPIC', '-shared', '-fexceptions',
  '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS',
  `-I${nodeInclude}`, `-I${napiInclude}`, `-I${join(cudaRoot, 'include')}`,
  join(here, 'addon.cc'), obj,
  `-L${cudaLib}`, '-lcudart_static', '-ldl', '-lpthread', '-lrt',
  '-o', join(out, 'segtensor_cuda.node'),
]);
