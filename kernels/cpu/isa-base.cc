// Baseline instance (x86-64-v2 or any other target): 128-bit vectors.
#define SEG_W 4
#define SEG_MAX_VW 2
#define SEG_TABLE kBaseKernels
#define SEG_ISA "baseline"
#include "kernels-impl.h"
