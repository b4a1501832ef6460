// CPU emulation of the CUDA kernels in kernels.cu (assign with its fused fixed-point segment
// sums, the unfused sums, k-means++ potentials,
// silhouette cluster sums, and the mixture steps x·W, soft sums and scatter): the same phase
// functions from lloyd.cuh and soft.cuh, each run for every thread of a block in turn where the
// GPU would __syncthreads between them. Used on machines without a GPU:
//
//   g++ -O2 -std=c++17 emulate.cc -o emulate
//   ./emulate nRows d k seed   # Lloyd kernels against a float64 brute force: one line of JSON
//                              # (test/engine/cuda.test.ts)
//   ./emulate seed n d k s     # device k-means++ (seed.cuh) against a float64 greedy k-means++
//                              # with the same draws: one line of JSON
//   ./emulate tc n d k s [near]  # the tensor-core assignment (tc.cuh) against a float64 brute
//                              # force; near: centroids in groups of six 1e-5 apart (rows get flagged)
//   ./emulate radius n d s     # eps-neighbourhoods (radius.cuh) against a float64 brute force,
//                              # on an integer lattice (exact ties at eps) and on blobs
//   ./emulate fixed n          # fixed-point sums (fixed.cuh) where the low word matters
//   ./emulate soft < problem   # one mixture step, binary in and out (see softMain): the device
//                              # behind the cuda backend in test/engine/soft-ops.test.ts
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <vector>

#include "fixed.cuh"
#include "lloyd.cuh"
#include "radius.cuh"
#include "seed.cuh"
#include "soft.cuh"
#include "tc.cuh"

using namespace segcuda;

namespace {

/** Partials' budget of the emulated device, in float64 (kernels.cu: partialBudget()). */
constexpr int64_t kEmulatedBudget = 1 << 16;

/** projectKernel over rows [0, n) of p, block by block and column tile by column tile. */
void runProject(const ProjectParams& p) {
  std::vector<float> xs(kXsFloats), cs(kCsFloats), acc((size_t)kRows * kTileC);
  std::vector<double> sum((size_t)kRows * kTileC);
  for (int64_t b = 0; b < (p.n + kRows - 1) / kRows; ++b)
    for (int j0 = 0; j0 < p.m; j0 += kTileC) {
      for (auto& v : sum) v = 0;
      for (int f0 = 0; f0 < p.d; f0 += kTileD) {
        for (auto& v : acc) v = 0;
        for (int t = 0; t < kRows; ++t) loadProjectTiles(p, b, t, j0, f0, xs.data(), cs.data());
        for (int t = 0; t < kRows; ++t) accumulateTile(t, xs.data(), cs.data(), &acc[(size_t)t * kTileC]);
        for (int t = 0; t < kRows; ++t) flushProjectTile(&acc[(size_t)t * kTileC], &sum[(size_t)t * kTileC]);
      }
      for (int t = 0; t < kRows; ++t) finishProjectRow(p, b, t, j0, &sum[(size_t)t * kTileC]);
    }
}

/**
 * kernels.cu's softPass over rows [0, n): blocks of softBlockRows rows (at most `chunk` when
 * streamed, chunk > 0), each chunk's rows and responsibilities at offset pointers, one thread per
 * output, then the block partials added in block order. Returns the rows per block.
 */
int64_t runSoftPass(bool scatter, const float* x, const float* w, const float* r, const double* means, int64_t n, int d,
                    int m, int64_t chunk, std::vector<double>& out) {
  const int64_t per = scatter ? (int64_t)m * scatterPairs(d) : softSumOutputs(d, m);
  int64_t rows = softBlockRows(n, per, kEmulatedBudget);
  if (chunk > 0 && rows > chunk) rows = chunk;
  if (chunk <= 0) chunk = n > 0 ? n : 1;
  const int64_t nBlocks = (n + rows - 1) / rows;
  std::vector<double> partial((size_t)(nBlocks > 0 ? nBlocks : 1) * per);
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t nr = n - c0 < chunk ? n - c0 : chunk;
    SoftParams p{x + c0 * d, w ? w + c0 : nullptr, r ? r + c0 * m : nullptr, means, partial.data() + (c0 / rows) * per,
                 nr, d, m, rows};
    for (int64_t b = 0; b < (nr + rows - 1) / rows; ++b)
      for (int64_t e = 0; e < per; ++e) scatter ? scatterThread(p, b, e) : softSumThread(p, b, e);
  }
  out.assign((size_t)per, 0.0);
  for (int64_t e = 0; e < per; ++e) out[e] = reduceChunks(partial.data(), nBlocks, per, e);
  return rows;
}

template <class T>
const T* take(const std::vector<char>& in, size_t* at, size_t count) {
  const T* p = reinterpret_cast<const T*>(in.data() + *at);
  *at += sizeof(T) * count;
  if (*at > in.size()) {
    std::fprintf(stderr, "emulate soft: input too short\n");
    std::exit(2);
  }
  return p;
}

/**
 * One mixture step on the emulated device. stdin: int32 op (0 project, 1 softSums, 2 scatter),
 * d, m, flags (1: weights, 2: r), int64 nRows, r0, r1, chunk (rows per streamed chunk, a power
 * of two ≥ kSoftMinRows), then float32 x (nRows × d), weights (nRows, flag 1), and for project
 * w (d × m), else r ((r1 − r0) × m, flag 2), and for scatter float64 means (m × d). stdout:
 * int32 streamed (1: the run over chunks of `chunk` rows gave the same bits, 0: it did not, 2:
 * not comparable, its blocks being smaller), then the resident run's result: float32
 * (r1 − r0) × m, or float64 sums (m × d) and counts (m), or float64 m × d × d.
 */
int softMain() {
  std::vector<char> in;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, stdin)) > 0) in.insert(in.end(), buf, buf + got);
  size_t at = 0;
  const int32_t* hdr = take<int32_t>(in, &at, 4);
  const int op = hdr[0], d = hdr[1], m = hdr[2], flags = hdr[3];
  const int64_t* hdr64 = take<int64_t>(in, &at, 4);
  const int64_t nAll = hdr64[0], r0 = hdr64[1], r1 = hdr64[2], chunk = hdr64[3];
  const int64_t n = r1 - r0;
  const float* x = take<float>(in, &at, (size_t)nAll * d) + r0 * d;
  const float* w = flags & 1 ? take<float>(in, &at, nAll) + r0 : nullptr;
  int32_t streamed = 1;
  if (op == 0) {
    const float* wt = take<float>(in, &at, (size_t)d * m);
    std::vector<float> out((size_t)n * m), outS((size_t)n * m);
    runProject(ProjectParams{x, wt, out.data(), n, d, m});
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t nr = n - c0 < chunk ? n - c0 : chunk;
      std::vector<float> xc(x + c0 * d, x + (c0 + nr) * d);  // the chunk's own buffer
      runProject(ProjectParams{xc.data(), wt, outS.data() + c0 * m, nr, d, m});
    }
    streamed = std::memcmp(out.data(), outS.data(), sizeof(float) * out.size()) == 0;
    std::fwrite(&streamed, sizeof streamed, 1, stdout);
    std::fwrite(out.data(), sizeof(float), out.size(), stdout);
    return 0;
  }
  const bool scatter = op == 2;
  const float* r = flags & 2 ? take<float>(in, &at, (size_t)n * m) : nullptr;
  const double* means = scatter ? take<double>(in, &at, (size_t)m * d) : nullptr;
  std::vector<double> out, outS;
  const int64_t rows = runSoftPass(scatter, x, w, r, means, n, d, m, 0, out);
  const int64_t rowsS = runSoftPass(scatter, x, w, r, means, n, d, m, chunk, outS);
  streamed = rows != rowsS ? 2 : std::memcmp(out.data(), outS.data(), sizeof(double) * out.size()) == 0;
  std::fwrite(&streamed, sizeof streamed, 1, stdout);
  if (!scatter) {
    std::fwrite(out.data(), sizeof(double), out.size(), stdout);
    return 0;
  }
  // kernels.cu's seg_cuda_scatter: the upper triangles mirrored.
  const int64_t pairs = scatterPairs(d);
  std::vector<double> full((size_t)m * d * d);
  for (int j = 0; j < m; ++j) {
    const double* t = out.data() + (size_t)j * pairs;
    for (int a = 0; a < d; ++a)
      for (int b = a; b < d; ++b) full[(size_t)j * d * d + (size_t)a * d + b] = full[(size_t)j * d * d + (size_t)b * d + a] = *t++;
  }
  std::fwrite(full.data(), sizeof(double), full.size(), stdout);
  return 0;
}

/**
 * Greedy k-means++ two ways from the same random numbers: the device's (seed.cuh phase
 * functions, blocks and trees as kernels.cu launches them) and the CPU's semantics in float64
 * (closest the same floats, a row-order running sum searched with searchsorted, potentials summed
 * in row order). Prints whether every chosen row agrees, and where not, whether the first
 * difference was a near-tie (two candidates' potentials, or a threshold and a row boundary,
 * within 1e-9 relative).
 */
int seedMain(int64_t n, int d, int k, uint32_t seed) {
  uint32_t s = seed;
  auto rnd = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0; };
  std::vector<float> x((size_t)n * d), w(n);
  for (auto& v : x) v = (float)((rnd() - 0.5) * 10 + (rnd() < 0.1 ? 20 : 0));
  for (auto& v : w) v = (float)(0.5 + rnd() * 3);
  const int trials = 2 + (int)std::log((double)k);
  const int64_t nb = seedBlocks(n), nPot = (n + kPotRows - 1) / kPotRows;
  std::vector<float> closest(n), keep((size_t)trials * n), cands((size_t)trials * d);
  std::vector<double> blockSum(nb), prefix(nb), potBlocks((size_t)nPot * trials), slot((size_t)kPotGroup * kPotThreads);
  SeedParams p{x.data(), w.data(), closest.data(), blockSum.data(), prefix.data(), keep.data(), n, d};
  auto sums = [&] {
    for (int64_t b = 0; b < nb; ++b) seedBlockSum(p, b);
    seedPrefix(p);
    return prefix[nb - 1];
  };
  // The reference's state.
  std::vector<float> rClosest(n);
  std::vector<double> cum(n);
  auto rCum = [&] {
    double a = 0;
    for (int64_t i = 0; i < n; ++i) cum[i] = a += (double)w[i] * rClosest[i];
    return a;
  };
  auto search = [&](double t) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (cum[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo < n ? lo : n - 1;
  };
  const int64_t first = (int64_t)(rnd() * n) % n;
  for (int64_t i = 0; i < n; ++i) seedFirstRow(p, i, x.data() + first * d);
  for (int64_t i = 0; i < n; ++i) rClosest[i] = seedDist(x.data() + i * d, x.data() + first * d, d);
  double pot = sums(), rPot = rCum();
  int agreed = 1, step = -1, nearTie = 0;
  for (int c = 1; c < k; ++c) {
    std::vector<int64_t> ids(trials), rIds(trials);
    for (int t = 0; t < trials; ++t) {
      const double u = rnd();
      ids[t] = seedDraw(p, u * pot);
      rIds[t] = search(u * rPot);
      if (ids[t] != rIds[t] && agreed) {
        const double b = cum[std::min(ids[t], rIds[t])];
        nearTie = std::fabs(b - u * rPot) <= 1e-9 * rPot;
        agreed = 0, step = c;
      }
    }
    if (!agreed) break;
    for (int t = 0; t < trials; ++t) std::memcpy(&cands[(size_t)t * d], &x[(size_t)ids[t] * d], sizeof(float) * d);
    // seedPotentialsKernel: per block, groups of kPotGroup candidates, the fixed tree; then blocks in order.
    for (int64_t b = 0; b < nPot; ++b)
      for (int j0 = 0; j0 < trials; j0 += kPotGroup) {
        double acc[kPotGroup];
        for (int t = 0; t < kPotThreads; ++t) {
          seedPotentialThread(p, cands.data(), trials, b, t, j0, acc);
          for (int j = 0; j < kPotGroup; ++j) slot[(size_t)j * kPotThreads + t] = acc[j];
        }
        for (int stride = kPotThreads / 2; stride >= 1; stride /= 2)
          for (int t = 0; t < kPotThreads; ++t)
            for (int j = 0; j < kPotGroup; ++j) reduceDoubleStep(t, stride, &slot[(size_t)j * kPotThreads]);
        for (int j = 0; j < kPotGroup && j0 + j < trials; ++j) potBlocks[(size_t)b * trials + j0 + j] = slot[(size_t)j * kPotThreads];
      }
    std::vector<double> pots(trials), rPots(trials, 0.0);
    for (int j = 0; j < trials; ++j) pots[j] = reduceChunks(potBlocks.data(), nPot, trials, j);
    for (int j = 0; j < trials; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const float q = seedDist(x.data() + i * d, cands.data() + (size_t)j * d, d);
        rPots[j] += (double)w[i] * (q < rClosest[i] ? q : rClosest[i]);
      }
    int best = 0, rBest = 0;
    for (int j = 1; j < trials; ++j) {
      if (pots[j] < pots[best]) best = j;
      if (rPots[j] < rPots[rBest]) rBest = j;
    }
    if (best != rBest) {
      nearTie = std::fabs(rPots[best] - rPots[rBest]) <= 1e-9 * rPots[rBest];
      agreed = 0, step = c;
      break;
    }
    pot = pots[best];
    rPot = rPots[rBest];
    if (c == k - 1) break;
    for (int64_t i = 0; i < n; ++i) seedTakeRow(p, i, keep.data() + (size_t)best * n);
    sums();
    for (int64_t i = 0; i < n; ++i) {
      const float q = seedDist(x.data() + i * d, cands.data() + (size_t)rBest * d, d);
      if (q < rClosest[i]) rClosest[i] = q;
    }
    rCum();
  }
  bool closestEqual = true;
  for (int64_t i = 0; i < n; ++i) closestEqual = closestEqual && closest[i] == rClosest[i];
  std::printf("{\"agreed\":%s,\"step\":%d,\"nearTie\":%s,\"closestEqual\":%s,\"potRelDiff\":%.3e,\"blocks\":%lld}\n",
              agreed ? "true" : "false", step, nearTie ? "true" : "false", closestEqual ? "true" : "false",
              std::fabs(pot - rPot) / rPot, (long long)nb);
  return 0;
}

/**
 * The tensor-core assignment as kernels.cu runs it (tc.cuh: TF32 tiles, fp32 sums standing in
 * for the MMA, TopK, the float64 decision, flagged rows scanned), against the float64 argmin
 * (ties to the lowest index). Prints the mismatches (rows whose best and second float64
 * distances differ by more than 1e-12 relative and whose label differs), the flagged rows, and
 * the near-ties.
 */
int tcMain(int64_t n, int d, int k, uint32_t seed, bool near) {
  uint32_t s = seed;
  auto rnd = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0f; };
  std::vector<float> x((size_t)n * d), c((size_t)k * d);
  for (auto& v : x) v = 100.0f + (rnd() - 0.5f) * 10.0f;  // far from the origin: the shift matters
  for (int j = 0; j < k; ++j)
    for (int f = 0; f < d; ++f) {
      const int src = near ? j / 6 : j;  // near: groups of six nearly equal centroids (more than kTopK)
      c[(size_t)j * d + f] = x[(size_t)src * d + f] + (rnd() - 0.5f) * (near && j % 6 ? 1e-5f : 0.5f);
    }
  std::vector<float> shift(d, 0.0f);
  for (int f = 0; f < d; ++f) {
    double m = 0;
    for (int64_t i = 0; i < n; ++i) m += x[i * d + f];
    shift[f] = (float)(m / n);
  }
  std::vector<float> panel((size_t)k * d), cc(k);
  packCentroids(c.data(), k, d, shift.data(), panel.data(), cc.data());
  double cMax = 0;
  for (int j = 0; j < k; ++j) {
    double q = 0;
    for (int f = 0; f < d; ++f) q += ((double)c[(size_t)j * d + f] - shift[f]) * ((double)c[(size_t)j * d + f] - shift[f]);
    cMax = std::fmax(cMax, std::sqrt(q));
  }
  std::vector<int32_t> labels(n);
  std::vector<float> dist(n);
  AssignParams p{x.data(), nullptr, nullptr, c.data(), panel.data(), cc.data(), shift.data(), labels.data(), dist.data(),
                 nullptr, nullptr, n, d, k};
  // Both stagings kernels.cu has: a chunk of the rows per centroid tile, or every feature of
  // the rows once (on chip across the centroid tiles). Same inputs to the products: same labels.
  const int dPad = tcPaddedFeatures(d), ldAll = dPad + 4;
  std::vector<float> xs((size_t)kRows * kTcLd), xsAll((size_t)kRows * ldAll), cs((size_t)kTileC * kTcLd),
      acc((size_t)kRows * kTileC);
  std::vector<TopK> top(kRows);
  int64_t flagged = 0;
  bool onChipEqual = true;
  for (int onChip = 0; onChip < 2; ++onChip)
    for (int64_t b = 0; b < (n + kRows - 1) / kRows; ++b) {
      for (auto& t : top) topkInit(&t);
      if (onChip)
        for (int t = 0; t < kRows; ++t) tcLoadRows(p, b, t, 0, dPad, xsAll.data(), ldAll);
      for (int j0 = 0; j0 < k; j0 += kTileC) {
        for (auto& v : acc) v = 0.0f;
        for (int f0 = 0; f0 < d; f0 += kTileD) {
          if (!onChip)
            for (int t = 0; t < kRows; ++t) tcLoadRows(p, b, t, f0, f0 + kTileD, xs.data(), kTcLd);
          for (int t = 0; t < kRows; ++t) tcLoadCentroids(p, t, j0, f0, cs.data());
          for (int t = 0; t < kRows; ++t)
            onChip ? tcAccumulateRow(t, xsAll.data() + f0, ldAll, cs.data(), &acc[(size_t)t * kTileC])
                   : tcAccumulateRow(t, xs.data(), kTcLd, cs.data(), &acc[(size_t)t * kTileC]);
        }
        for (int t = 0; t < kRows; ++t) tcUpdateTopK(p, j0, &acc[(size_t)t * kTileC], &top[t]);
      }
      for (int t = 0; t < kRows; ++t) {
        const int64_t row = b * kRows + t;
        if (row >= n) break;
        const float* xr = x.data() + row * d;
        bool fl = false;
        int32_t l = tcDecide(xr, c.data(), d, top[t], tcBound(shiftedNorm(xr, shift.data(), d), cMax, d), &fl);
        if (fl) {
          flagged += !onChip;
          l = tcScanRow(xr, c.data(), d, k);
        }
        if (onChip) onChipEqual = onChipEqual && l == labels[row];
        else labels[row] = l;
      }
    }
  int64_t mismatches = 0, ties = 0;
  for (int64_t i = 0; i < n; ++i) {
    double b1 = INFINITY, b2 = INFINITY;
    int arg = 0;
    for (int j = 0; j < k; ++j) {
      const double q = exactSqDist(x.data() + i * d, c.data() + (size_t)j * d, d);
      if (q < b1) b2 = b1, b1 = q, arg = j;
      else if (q < b2) b2 = q;
    }
    if (std::isfinite(b2) && b2 - b1 <= 1e-12 * b2) ++ties;
    else if (labels[i] != arg) ++mismatches;
  }
  std::printf("{\"mismatches\":%lld,\"flagged\":%lld,\"ties\":%lld,\"onChipEqual\":%s}\n", (long long)mismatches, (long long)flagged,
              (long long)ties, onChipEqual ? "true" : "false");
  return 0;
}

/**
 * radius.cuh as kernels.cu runs it (count pass, host prefix sums, list pass) over queries
 * [q0, n) for several eps, against the float64 brute force Σ(x_f − y_f)² ≤ eps² in feature order.
 * Data: points of an integer lattice (squared distances are whole numbers: exact ties at eps = 2,
 * 3, √5), blobs far from the origin, and continuous values with eps at actual pairs' float64
 * distances (where float32 alone would decide some pairs wrongly), with weights. Prints whether every count (bits), every
 * list and every decision agreed, and the rechecked pairs.
 */
int radiusMain(int64_t n, int d, uint32_t seed) {
  uint32_t s = seed;
  auto rnd = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0; };
  bool ok = true;
  int64_t rechecked = 0, pairs = 0;
  auto sq64 = [&](const std::vector<float>& x, int64_t a, int64_t b) {
    double t2 = 0;
    for (int f = 0; f < d; ++f) {
      const double t = (double)x[a * d + f] - (double)x[b * d + f];
      t2 += t * t;
    }
    return t2;
  };
  // 0: blobs far from the origin; 1: an integer lattice; 2: continuous values with eps at the
  // float64 distance of actual pairs (float32 lands on either side of it: the band decides).
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<float> x((size_t)n * d), w(n);
    for (auto& v : x) v = kind == 1 ? (float)(int)(rnd() * 5) : kind == 0 ? (float)(1000 + rnd() * 3) : (float)(rnd() * 10 - 3);
    for (auto& v : w) v = (float)(0.5 + rnd());
    const int64_t q0 = n / 3;
    const double epsList[] = {kind == 1 ? 2.0 : kind == 0 ? 0.5 : std::sqrt(sq64(x, q0, q0 + 1)),
                              kind == 1 ? 3.0 : kind == 0 ? 1.0 : std::sqrt(sq64(x, q0 + 2, 5)),
                              kind == 1 ? std::sqrt(5.0) : kind == 0 ? 0.8 : std::sqrt(sq64(x, n - 1, 7)), 0.0};
    const int64_t nq = n - q0;
    for (const double& eps : epsList) {
      const double eps2 = eps * eps;
      std::vector<double> counts(nq), counts2(nq);
      std::vector<int32_t> found(nq), offsets(nq + 1, 0);
      std::vector<int64_t> rech(nq);
      std::vector<float> xs(kXsFloats), cs(kCsFloats), acc((size_t)kRows * kTileC);
      // Candidates: every row, or (odd eps index) rows [n/5, 4n/5).
      const bool window = (&eps - epsList) % 2 == 1;
      const int64_t cBegin = window ? n / 5 : 0, cEnd = window ? 4 * n / 5 : n;
      RadiusParams p{x.data(), w.data(), cEnd, d, q0, nq, eps2, 0, 0, counts.data(), found.data(), nullptr, nullptr, rech.data(), cBegin};
      radiusBounds(eps2, d, &p.lo, &p.hi);
      ClusterSumParams cp{x.data() + q0 * d, x.data(), nullptr, nullptr, cEnd, d, 0, nq};
      std::vector<int32_t> indices;
      auto pass = [&](RadiusParams& rp) {
        for (int64_t b = 0; b < (nq + kRows - 1) / kRows; ++b) {
          std::vector<double> cnt(kRows, 0.0);
          std::vector<int32_t> k(kRows, 0);
          std::vector<int64_t> rc(kRows, 0);
          for (int64_t c0 = cBegin; c0 < cEnd; c0 += kTileC) {
            for (auto& v : acc) v = 0.0f;
            for (int f0 = 0; f0 < d; f0 += kTileD) {
              for (int t = 0; t < kRows; ++t) loadPairTiles(cp, b, t, c0, f0, xs.data(), cs.data());
              for (int t = 0; t < kRows; ++t) accumulatePairTile(t, xs.data(), cs.data(), &acc[(size_t)t * kTileC]);
            }
            for (int t = 0; t < kRows; ++t) radiusTile(rp, b, t, c0, &acc[(size_t)t * kTileC], &cnt[t], &k[t], &rc[t]);
          }
          for (int t = 0; t < kRows; ++t) radiusFinish(rp, b, t, cnt[t], k[t], rc[t]);
        }
      };
      pass(p);
      for (int64_t q = 0; q < nq; ++q) offsets[q + 1] = offsets[q] + found[q];
      indices.assign(offsets[nq], -1);
      RadiusParams p2 = p;
      p2.counts = counts2.data();
      p2.found = nullptr;
      p2.offsets = offsets.data();
      p2.indices = indices.data();
      pass(p2);
      for (int64_t q = 0; q < nq; ++q) {
        double want = 0;
        std::vector<int32_t> list;
        for (int64_t i = cBegin; i < cEnd; ++i) {
          double t2 = 0;
          for (int f = 0; f < d; ++f) {
            const double t = (double)x[i * d + f] - (double)x[(q0 + q) * d + f];
            t2 += t * t;
          }
          if (t2 <= eps2) {
            want += (double)w[i];
            list.push_back((int32_t)i);
          }
        }
        pairs += cEnd - cBegin;
        ok = ok && counts[q] == want && counts2[q] == want && (int64_t)list.size() == found[q] &&
             std::equal(list.begin(), list.end(), indices.begin() + offsets[q]);
        rechecked += rech[q];
      }
    }
  }
  std::printf("{\"agreed\":%s,\"rechecked\":%lld,\"pairs\":%lld}\n", ok ? "true" : "false", (long long)rechecked, (long long)pairs);
  return 0;
}

/**
 * fixed.cuh's split on values where the low word matters: n values, pairs of ±1e6 that cancel
 * and small ones in [0, 1e-3), whose sum the high word alone gets wrong by ~uHi·√n (uHi ≈ 1e6·n
 * ·2⁻⁶²). Prints the error of the two-word sum and of the high word alone against a long double
 * sum, and whether adding in reverse order gives the same words.
 */
int fixedMain(int64_t n) {
  uint32_t s = 12345u;
  auto rnd = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0; };
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[i] = i % 4 == 0 ? 1e6 * (1 + rnd()) : i % 4 == 1 ? -v[i - 1] : 1e-3 * rnd();
  double maxAbs = 0;
  for (double t : v) maxAbs = std::fmax(maxAbs, std::fabs(t));
  const FixedScale sc = fixedScaleFor(n, maxAbs);
  uint64_t hi = 0, lo = 0, hiR = 0, loR = 0;
  long double ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h, l;
    fixedSplit(v[i], sc, &h, &l);
    addWord(&hi, h);
    addWord(&lo, l);
    if (i % 4 >= 2) ref += (long double)v[i];  // the ±1e6 pairs cancel exactly: the sum is the small values'
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    uint64_t h, l;
    fixedSplit(v[i], sc, &h, &l);
    addWord(&hiR, h);
    addWord(&loR, l);
  }
  const double got = fixedValue(hi, lo, sc);
  const double hiOnly = fixedValue(hi, 0, sc);
  std::printf("{\"err\":%.3e,\"hiOnlyErr\":%.3e,\"sum\":%.17g,\"orderEqual\":%s}\n", (double)std::fabs((long double)got - ref),
              (double)std::fabs((long double)hiOnly - ref), got, hi == hiR && lo == loR ? "true" : "false");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "soft") == 0) return softMain();
  if (argc >= 3 && std::strcmp(argv[1], "fixed") == 0) return fixedMain(std::atoll(argv[2]));
  if (argc >= 5 && std::strcmp(argv[1], "radius") == 0)
    return radiusMain(std::atoll(argv[2]), std::atoi(argv[3]), (uint32_t)std::atoi(argv[4]));
  if (argc >= 6 && std::strcmp(argv[1], "tc") == 0)
    return tcMain(std::atoll(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), (uint32_t)std::atoi(argv[5]),
                  argc >= 7 && std::strcmp(argv[6], "near") == 0);
  if (argc >= 6 && std::strcmp(argv[1], "seed") == 0)
    return seedMain(std::atoll(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), (uint32_t)std::atoi(argv[5]));
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
  // Fixed-point units (fixed.cuh), as seg_cuda_upload computes them, and the accumulator words.
  std::vector<FixedScale> scale((size_t)d + 1);
  fixedScales(x.data(), w.data(), shift.data(), n, d, scale.data());
  const int64_t nWords = (int64_t)k * (d + 1) * 2;
  std::vector<uint64_t> words(nWords, 0);
  std::vector<int32_t> rowLabel(kRows);
  // assignKernel over nb blocks of p (p.n rows); fused (sumsInto non-null): after each tile's
  // labels, fixedSumTile per thread into sumsInto, as the kernel's kGlobalSums mode.
  auto runAssign = [&](const AssignParams& p, int64_t nb, uint64_t* sumsInto = nullptr) {
  for (int64_t b = 0; b < nb; ++b) {
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
    p.blockInertia[b] = inertiaSlot[0];
    p.blockChanged[b] = changedSlot[0];
    if (sumsInto) {
      FixedSumParams fs{p.x, p.weights, shift.data(), nullptr, scale.data(), sumsInto, p.n, d, k};
      for (int t = 0; t < kRows; ++t) rowLabel[t] = bestJ[t];
      for (int t = 0; t < kRows; ++t) fixedSumTile(fs, b, t, rowLabel.data(), sumsInto);
    }
  }
  };
  runAssign(p, nBlocks, words.data());
  double inertia = 0;
  for (double v : blockInertia) inertia += v;

  // The fused sums as float64 (fixedFinishKernel).
  const int64_t per = (int64_t)k * d + k;
  std::vector<double> sums(per);
  for (int64_t e = 0; e < per; ++e) sums[e] = fixedResult(words.data(), scale.data(), shift.data(), d, k, e);
  // The same integers in other orders must give the same words: the unfused kernel's blocks
  // (fixedSumsKernel, kSharedSums: G blocks each walking tiles b, b + G, … into its own words,
  // flushed at the end) with tiles in reverse and threads backwards. On the GPU atomics add in
  // an order nobody controls; here the orders are chosen to differ from the fused pass.
  bool sumsOrderEqual = true;
  {
    std::vector<uint64_t> global(nWords, 0), local(nWords);
    const int G = 3;
    for (int g = G - 1; g >= 0; --g) {
      for (auto& v : local) v = 0;
      FixedSumParams fs{x.data(), w.data(), shift.data(), labels.data(), scale.data(), global.data(), n, d, k};
      for (int64_t b = nBlocks - 1 - ((nBlocks - 1 - g) % G + G) % G; b >= 0; b -= G) {
        if (b % G != g) continue;
        for (int t = 0; t < kRows; ++t) rowLabel[t] = b * kRows + t < n ? labels[b * kRows + t] : 0;
        for (int t = kRows - 1; t >= 0; --t) fixedSumTile(fs, b, t, rowLabel.data(), local.data());
      }
      for (int t = kRows - 1; t >= 0; --t) fixedFlush(local.data(), global.data(), nWords, t, kRows);
    }
    sumsOrderEqual = global == words;
  }

  // Potentials: per-thread partials over each block's rows, the block's fixed tree, then blocks
  // in order. Candidates: the first m centroids (m up to 10, so two candidate groups); closest: 1.5 × each row's distance, so both
  // sides of the min are taken.
  const int m = k < 10 ? k : 10;  // up to 10: more than one group of kPotGroup
  std::vector<float> closest(n);
  for (int64_t i = 0; i < n; ++i) closest[i] = 1.5f * dist[i];
  const int64_t nPotBlocks = (n + kPotRows - 1) / kPotRows;
  std::vector<double> potBlocks(nPotBlocks * m), pots(m, 0.0), slot((size_t)kPotGroup * kPotThreads);
  PotentialParams pp{x.data(), w.data(), closest.data(), c.data(), potBlocks.data(), n, d, m};
  auto runPotentials = [&](const PotentialParams& pp, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b)
    for (int j0 = 0; j0 < m; j0 += kPotGroup) {
      double acc[kPotGroup];
      for (int t = 0; t < kPotThreads; ++t) {
        potentialThread(pp, b, t, j0, acc);
        for (int j = 0; j < kPotGroup; ++j) slot[(size_t)j * kPotThreads + t] = acc[j];
      }
      for (int stride = kPotThreads / 2; stride >= 1; stride /= 2)
        for (int t = 0; t < kPotThreads; ++t)
          for (int j = 0; j < kPotGroup; ++j) reduceDoubleStep(t, stride, &slot[(size_t)j * kPotThreads]);
      for (int j = 0; j < kPotGroup && j0 + j < m; ++j) pp.blockOut[b * m + j0 + j] = slot[(size_t)j * kPotThreads];
    }
  };
  runPotentials(pp, nPotBlocks);
  for (int64_t b = 0; b < nPotBlocks; ++b)
    for (int j = 0; j < m; ++j) pots[j] += potBlocks[b * m + j];

  // Streamed data (kernels.cu, forEachChunk): chunks of a power of two of rows, each kernel run
  // with every per-row pointer offset by the chunk's first row (the rows copied to a chunk
  // buffer). Each must give the resident run's bits.
  bool streamedEqual = true;
  {
    const int64_t streamRows = kPotRows;  // the smallest chunk kernels.cu uses
    std::vector<int32_t> sLabels(n);
    std::vector<float> sDist(n), chunkX((size_t)streamRows * d);
    std::vector<double> sInertia(nBlocks), sPot(nPotBlocks * m);
    std::vector<int64_t> sChanged(nBlocks);
    std::vector<uint64_t> sWords(nWords, 0);
    for (int64_t r0 = 0; r0 < n; r0 += streamRows) {
      const int64_t nr = n - r0 < streamRows ? n - r0 : streamRows;
      for (int64_t e = 0; e < nr * d; ++e) chunkX[e] = x[r0 * d + e];
      AssignParams q{chunkX.data(), w.data() + r0, nullptr, c.data(), panel.data(), cc.data(), shift.data(),
                     sLabels.data() + r0, sDist.data() + r0, sInertia.data() + r0 / kRows, sChanged.data() + r0 / kRows, nr, d, k};
      runAssign(q, (nr + kRows - 1) / kRows, sWords.data());
      PotentialParams qp{chunkX.data(), w.data() + r0, closest.data() + r0, c.data(), sPot.data() + (r0 / kPotRows) * m, nr, d, m};
      runPotentials(qp, (nr + kPotRows - 1) / kPotRows);
    }
    for (int64_t i = 0; i < n; ++i) streamedEqual = streamedEqual && sLabels[i] == labels[i] && sDist[i] == dist[i];
    for (int64_t b = 0; b < nBlocks; ++b) streamedEqual = streamedEqual && sInertia[b] == blockInertia[b] && sChanged[b] == blockChanged[b];
    for (size_t e = 0; e < sPot.size(); ++e) streamedEqual = streamedEqual && sPot[e] == potBlocks[e];
    streamedEqual = streamedEqual && sWords == words;  // integer sums: any chunking, the same words
  }

  // Silhouette sums on the first ns rows, with the assignment's labels: columns sorted by label
  // (stable), then per block the tile phases as the GPU runs them.
  const int64_t ns = n < 1500 ? n : 1500;
  std::vector<int64_t> next(k + 1, 0);
  for (int64_t i = 0; i < ns; ++i) ++next[labels[i] + 1];
  for (int l = 0; l < k; ++l) next[l + 1] += next[l];
  std::vector<float> cols(ns * d);
  std::vector<int32_t> colLabel(ns);
  for (int64_t i = 0; i < ns; ++i) {
    const int64_t col = next[labels[i]]++;
    for (int f = 0; f < d; ++f) cols[col * d + f] = x[i * d + f];
    colLabel[col] = labels[i];
  }
  std::vector<double> cds(ns * k, 0.0);
  ClusterSumParams cp{x.data(), cols.data(), colLabel.data(), cds.data(), ns, d, k, ns};
  std::vector<int> curL(kRows);
  std::vector<double> run(kRows);
  for (int64_t b = 0; b < (ns + kRows - 1) / kRows; ++b) {
    for (int t = 0; t < kRows; ++t) curL[t] = -1, run[t] = 0;
    for (int64_t c0 = 0; c0 < ns; c0 += kTileC) {
      for (auto& v : acc) v = 0.0f;
      for (int f0 = 0; f0 < d; f0 += kTileD) {
        for (int t = 0; t < kRows; ++t) loadPairTiles(cp, b, t, c0, f0, xs.data(), cs.data());
        for (int t = 0; t < kRows; ++t) accumulatePairTile(t, xs.data(), cs.data(), &acc[(size_t)t * kTileC]);
      }
      for (int t = 0; t < kRows; ++t) finishPairTile(cp, b, t, c0, &acc[(size_t)t * kTileC], &curL[t], &run[t]);
    }
    for (int t = 0; t < kRows; ++t) finishPairRow(cp, b, t, curL[t], run[t]);
  }

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
  double maxPotErr = 0;
  for (int j = 0; j < m; ++j) {
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      double q = 0;
      for (int f = 0; f < d; ++f) q += ((double)x[i * d + f] - c[(size_t)j * d + f]) * ((double)x[i * d + f] - c[(size_t)j * d + f]);
      ref += (double)w[i] * std::fmin((double)closest[i], q);
    }
    maxPotErr = std::fmax(maxPotErr, std::fabs(pots[j] - ref) / ref);
  }
  double maxCdsErr = 0;
  bool selfZero = true;
  for (int64_t i = 0; i < ns; ++i) {
    std::vector<double> ref(k, 0.0);
    for (int64_t j = 0; j < ns; ++j) {
      double q = 0;
      for (int f = 0; f < d; ++f) q += ((double)x[i * d + f] - x[j * d + f]) * ((double)x[i * d + f] - x[j * d + f]);
      ref[labels[j]] += std::sqrt(q);
    }
    for (int l = 0; l < k; ++l) maxCdsErr = std::fmax(maxCdsErr, std::fabs(cds[i * k + l] - ref[l]) / (ref[l] + 1e-300));
    // A row alone in its cluster (within the sample) must get exactly 0: its self-distance.
    if (ref[labels[i]] == 0 && cds[i * k + labels[i]] != 0) selfZero = false;
  }
  int64_t changed = 0;
  for (auto v : blockChanged) changed += v;
  std::printf("{\"mismatches\":%lld,\"ties\":%lld,\"inertiaRelErr\":%.3e,\"distRelErr\":%.3e,\"sumsRelErr\":%.3e,\"changed\":%lld,"
              "\"potentialsRelErr\":%.3e,\"potentialBlocks\":%lld,\"clusterSumsRelErr\":%.3e,\"selfZero\":%s,\"sumsOrderEqual\":%s,"
              "\"streamedEqual\":%s}\n",
              (long long)mismatches, (long long)ties, std::fabs(inertia - refInertia) / refInertia, maxDistErr, maxSumErr,
              (long long)changed, maxPotErr, (long long)nPotBlocks, maxCdsErr, selfZero ? "true" : "false",
              sumsOrderEqual ? "true" : "false", streamedEqual ? "true" : "false");
  return 0;
}
