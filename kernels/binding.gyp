# The native CPU backend: one addon, plus one static library per instruction set so that each
# kernel instance gets its own -march (the addon picks one at load time with cpuid). Never
# -march=native: the binary must run on any x86-64-v2 machine.
{
  'target_defaults': {
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
    'cflags': ['-fPIC', '-O3', '-fno-math-errno', '-Wno-psabi'],
    'cflags_cc': ['-std=c++17', '-fexceptions'],
  },
  'targets': [
    {
      'target_name': 'seg_kernels_base',
      'type': 'static_library',
      'sources': ['cpu/isa-base.cc'],
      'conditions': [['target_arch=="x64"', {'cflags': ['-march=x86-64-v2']}]],
    },
    {
      'target_name': 'segtensor_native',
      'sources': ['cpu/addon.cc', 'cpu/data.cc', 'cpu/pool.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
      'dependencies': ['seg_kernels_base'],
      'conditions': [
        ['target_arch=="x64"', {
          'cflags': ['-march=x86-64-v2'],
          'dependencies': ['seg_kernels_avx2', 'seg_kernels_avx512'],
        }],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'seg_kernels_avx2',
          'type': 'static_library',
          'sources': ['cpu/isa-avx2.cc'],
          'cflags': ['-march=x86-64-v3'],
        },
        {
          'target_name': 'seg_kernels_avx512',
          'type': 'static_library',
          'sources': ['cpu/isa-avx512.cc'],
          'cflags': ['-march=x86-64-v4', '-mprefer-vector-width=512'],
        },
      ],
    }],
  ],
}
