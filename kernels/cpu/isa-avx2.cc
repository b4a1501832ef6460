// AVX2 + FMA instance, built with -march=x86-64-v3: 256-bit vectors, 16 registers.
#define SEG_W 8
#define SEG_MAX_VW 2
#define SEG_TABLE kAvx2Kernels
#define SEG_ISA "avx2"
#include "kernels-impl.h"
