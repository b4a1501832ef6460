/*
 * The two per-core ceilings that bound one fused Lloyd step on an AVX-512 CPU, measured rather
 * than taken from a datasheet (VMs differ):
 *   1. 512-bit FMA throughput (the distance arithmetic: N·k·d / 16 FMA instructions), with the
 *      centroid value broadcast from memory as the kernel does;
 *   2. 512-bit stores to a small, L1-resident table at random rows (the float64 segment sums:
 *      ceil(d / 8) read-modify-writes per row).
 *
 *   gcc -O2 -march=x86-64-v4 bench/probes/cpu-peaks.c -o /tmp/cpu-peaks && /tmp/cpu-peaks
 *
 * Not part of the build or the tests; bench/RESULTS.md quotes its output.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  /* 1. 16 independent FMA chains, the multiplier broadcast from memory. */
  float p[64];
  for (int i = 0; i < 64; i++) p[i] = 1e-9f * i;
  __m512 acc[16];
  for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps((float)j);
  const __m512 x = _mm512_set1_ps(0.999f);
  const long n = 400000000;
  double t0 = now();
  for (long i = 0; i < n / 16; i++) {
    const float* q = p + (i & 15);
    __asm__ volatile("" : "+r"(q));
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(x, _mm512_set1_ps(q[j]), acc[j]);
  }
  double t = now() - t0;
  float s = 0;
  for (int j = 0; j < 16; j++) s += _mm512_reduce_add_ps(acc[j]);
  printf("512-bit FMA: %.2f G instructions/s per core (%.1f GFLOP/s fp32) [%g]\n", n / t / 1e9, n / t / 1e9 * 32, s);

  /* 2. Per row: four 512-bit read-modify-writes of a float64 row of a 16 x 32 table, the row
   *    chosen at random (labels), the addend converted from float32 (the rows of x). */
  const size_t rows = 1 << 22;
  float* xs = aligned_alloc(64, 1024 * 32 * sizeof(float));
  for (int i = 0; i < 1024 * 32; i++) xs[i] = (float)(i % 97) * 0.01f;
  int* lab = aligned_alloc(64, rows * sizeof(int));
  unsigned r = 1;
  for (size_t i = 0; i < rows; i++) {
    r = r * 1103515245u + 12345u;
    lab[i] = (r >> 16) & 15;
  }
  double* sums = aligned_alloc(64, 16 * 32 * sizeof(double));
  memset(sums, 0, 16 * 32 * sizeof(double));
  t0 = now();
  for (size_t i = 0; i < rows; i++) {
    double* sj = sums + lab[i] * 32;
    const float* xr = xs + (i & 1023) * 32;
#pragma GCC unroll 4
    for (int f = 0; f < 32; f += 8)
      _mm512_store_pd(sj + f, _mm512_add_pd(_mm512_load_pd(sj + f), _mm512_cvtps_pd(_mm256_loadu_ps(xr + f))));
  }
  t = now() - t0;
  double c = 0;
  for (int i = 0; i < 16 * 32; i++) c += sums[i];
  printf("float64 segment sums, d = 32, random labels: %.2f ns per row per core [%g]\n", t / rows * 1e9, c);
  return 0;
}
