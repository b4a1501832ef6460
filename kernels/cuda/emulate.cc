// CPU emulation of the CUDA kernels in kernels.cu: the same phase functions from lloyd.cuh,
// each run for every thread of a block in turn where the GPU would __syncthreads between
// them. Checks them against a float64 brute force and prints one line of results; used by
// test/engine/cuda.test.ts on machines without a GPU.
//
//   g++ -O2 -std=c++17 emulate.cc -o emulate && ./emulate nRows d k seed
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lloyd.cuh"

using namespace segcuda;

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const int64_t n = std::atoll(argv[1]);
  const int d = std::atoi(argv[2]), k = std::atoi(argv[3]);
  uint32_t s = (uint32_t)std::atoi(argv[4]);
  auto rnd = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0f; };
  std::vector<float> x(n * d), w(n), c((size_t)k * d);
  for (auto& v : x) v = 100.0f + (rnd() - 0.5f) * 10.0f;  // offset: exercises the shift
  for (auto& v : w) v = 0.5f + rnd() * 3.0f;
  for (int64_t i = 0; i < (int64_t)k * d; ++i) c[i] = x[i] + (rnd() - 0.5f) * 0.02f;
  std::vector<float> shift(d, 0.0f);
  for (int f = 0; f < d; ++f) {
    double m = 0;
    for (int64_t i = 0; i < n; ++i) m += x[i * d + f];
    shift[f] = (float)(m / n);
  }
  std::vector<float> panel((size_t)k * d), cc(k), dist(n);
  packCentroids(c.data(), k, d, shift.data(), panel.data(), cc.data());
  const int64_t nBlocks = (n + kRows - 1) / kRows;
  std::vector<int32_t> labels(n);
  std::vector<double> blockInertia(nBlocks);
  std::vector<int64_t> blockChanged(nBlocks);
  AssignParams p{x.data(), w.data(), nullptr, c.data(), panel.data(), cc.data(), shift.data(), labels.data(),
                 dist.data(), blockInertia.data(), blockChanged.data(), n, d, k};

  std::vector<float> xs(kXsFloats), cs(kCsFloats);
  std::vector<float> acc((size_t)kRows * kTileC), best(kRows);
  std::vector<int32_t> bestJ(kRows);
  std::vector<double> inertiaSlot(kRows);
  std::vector<int64_t> changedSlot(kRows);
  for (int64_t b = 0; b < nBlocks; ++b) {
    for (int t = 0; t < kRows; ++t) best[t] = INFINITY, bestJ[t] = 0;
    for (int j0 = 0; j0 < k; j0 += kTileC) {
      for (auto& v : acc) v = 0.0f;
      for (int f0 = 0; f0 < d; f0 += kTileD) {
        for (int t = 0; t < kRows; ++t) loadTiles(p, b, t, j0, f0, xs.data(), cs.data());
        for (int t = 0; t < kRows; ++t) accumulateTile(t, xs.data(), cs.data(), &acc[(size_t)t * kTileC]);
      }
      for (int t = 0; t < kRows; ++t) updateBest(p, j0, &acc[(size_t)t * kTileC], &best[t], &bestJ[t]);
    }
    for (int t = 0; t < kRows; ++t) finishRow(p, b, t, bestJ[t], inertiaSlot.data(), changedSlot.data());
    for (int stride = kRows / 2; stride >= 1; stride /= 2)
      for (int t = 0; t < kRows; ++t) reduceStep(t, stride, inertiaSlot.data(), changedSlot.data());
    blockInertia[b] = inertiaSlot[0];
    blockChanged[b] = changedSlot[0];
  }
  double inertia = 0;
  for (double v : blockInertia) inertia += v;

  // Segment sums: pass 1 per (chunk, feature), pass 2 per element in chunk order.
  const int64_t rows = chunkRows(n, k, d, 1 << 16);
  const int64_t nChunks = (n + rows - 1) / rows, per = (int64_t)k * d + k;
  std::vector<double> partial(nChunks * per, 0.0), sums(per);
  for (int64_t ch = 0; ch < nChunks; ++ch)
    for (int f = 0; f <= d; ++f) sumChunkFeature(x.data(), labels.data(), w.data(), n, d, k, rows, ch, f, partial.data());
  for (int64_t e = 0; e < per; ++e) sums[e] = reduceChunks(partial.data(), nChunks, per, e);

  // Float64 brute force.
  int64_t mismatches = 0, ties = 0;
  double refInertia = 0, maxDistErr = 0;
  std::vector<double> refSums(per, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double b1 = INFINITY, b2 = INFINITY;
    int arg = 0;
    for (int j = 0; j < k; ++j) {
      double q = 0;
      for (int f = 0; f < d; ++f) q += ((double)x[i * d + f] - c[(size_t)j * d + f]) * ((double)x[i * d + f] - c[(size_t)j * d + f]);
      if (q < b1) b2 = b1, b1 = q, arg = j;
      else if (q < b2) b2 = q;
    }
    if (std::isfinite(b2) && b2 - b1 <= 1e-4 * b2) ++ties;
    else if (labels[i] != arg) ++mismatches;
    refInertia += w[i] * b1;
    const int j = labels[i];
    double q = 0;
    for (int f = 0; f < d; ++f) q += ((double)x[i * d + f] - c[(size_t)j * d + f]) * ((double)x[i * d + f] - c[(size_t)j * d + f]);
    maxDistErr = std::fmax(maxDistErr, std::fabs(dist[i] - q) / (q + 1e-30));
    for (int f = 0; f < d; ++f) refSums[(size_t)j * d + f] += (double)w[i] * x[i * d + f];
    refSums[(size_t)k * d + j] += w[i];
  }
  double maxSumErr = 0;
  for (int64_t e = 0; e < per; ++e) maxSumErr = std::fmax(maxSumErr, std::fabs(sums[e] - refSums[e]) / (std::fabs(refSums[e]) + 1e-9));
  int64_t changed = 0;
  for (auto v : blockChanged) changed += v;
  std::printf("{\"mismatches\":%lld,\"ties\":%lld,\"inertiaRelErr\":%.3e,\"distRelErr\":%.3e,\"sumsRelErr\":%.3e,\"changed\":%lld,\"chunks\":%lld}\n",
              (long long)mismatches, (long long)ties, std::fabs(inertia - refInertia) / refInertia, maxDistErr, maxSumErr,
              (long long)changed, (long long)nChunks);
  return 0;
}
