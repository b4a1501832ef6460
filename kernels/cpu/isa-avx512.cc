// AVX-512 instance, built with -march=x86-64-v4: 512-bit vectors, 32 registers, so tiles of
// 4 vectors × 6 rows of accumulators.
#define SEG_W 16
#define SEG_MAX_VW 4
#define SEG_TABLE kAvx512Kernels
#define SEG_ISA "avx512"
#include "kernels-impl.h"
