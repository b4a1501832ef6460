// The addon's data helpers, each the twin of a JavaScript loop that stays as the fallback when
// the addon is not built (src/preprocess, src/pipeline/profile.ts): the feature-matrix fill,
// the fit statistics of every numeric column, per-label column sums, and an exact median. Each
// does the JavaScript loop's float64 arithmetic in the same order, so both paths give the same
// bits (tested side by side).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "binding.h"

namespace seg {
namespace {

/**
 * Calls f with p as a pointer to the typed array's element type (any numeric type but the 64-bit
 * integers); false, without calling it, for any other type.
 */
template <class F>
bool withElements(napi_typedarray_type t, const void* p, F&& f) {
  switch (t) {
    case napi_float64_array: f((const double*)p); return true;
    case napi_float32_array: f((const float*)p); return true;
    case napi_int32_array: f((const int32_t*)p); return true;
    case napi_uint32_array: f((const uint32_t*)p); return true;
    case napi_int16_array: f((const int16_t*)p); return true;
    case napi_uint16_array: f((const uint16_t*)p); return true;
    case napi_int8_array: f((const int8_t*)p); return true;
    case napi_uint8_array:
    case napi_uint8_clamped_array: f((const uint8_t*)p); return true;
    default: return false;
  }
}

/** Order-preserving unsigned key of a double (no NaN): a < b ⇔ key(a) < key(b), with −0 < +0. */
inline uint64_t orderKey(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return (b >> 63) ? ~b : (b | (uint64_t(1) << 63));
}

/**
 * The (k+1)-th smallest key of v[0..n) by radix selection, 16 bits at a time from the top: one
 * counting pass per level over the values still in the running, which are moved to the front
 * of v (v stays a permutation). Exact; O(n) with a small constant (nth_element's introselect
 * was ~4× slower on 1M values).
 */
uint64_t selectKey(double* v, size_t n, size_t k) {
  static thread_local std::vector<uint32_t> hist(65536);
  uint64_t prefix = 0;
  for (int shift = 48; shift >= 0; shift -= 16) {
    if (n <= 64) {
      std::nth_element(v, v + k, v + n, [](double a, double b) { return orderKey(a) < orderKey(b); });
      return orderKey(v[k]);
    }
    std::fill(hist.begin(), hist.end(), 0u);
    for (size_t i = 0; i < n; ++i) ++hist[(orderKey(v[i]) >> shift) & 0xffff];
    size_t below = 0;
    uint32_t digit = 0;
    for (;; ++digit) {
      if (below + hist[digit] > k) break;
      below += hist[digit];
    }
    prefix |= (uint64_t)digit << shift;
    // The values whose digit matches (they share every higher digit already) swapped to the
    // front: v stays a permutation of its values.
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
      if (((orderKey(v[i]) >> shift) & 0xffff) == digit) std::swap(v[m++], v[i]);
    n = m;
    k -= below;
  }
  return prefix;
}

/** Key back to its double. */
inline double fromKey(uint64_t key) {
  const uint64_t b = (key >> 63) ? (key & ~(uint64_t(1) << 63)) : ~key;
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

/**
 * The middle keys of n values by a sampled bracket: 4,096 evenly strided values (`at(i)`) are
 * sorted, the two sample keys some 6 standard deviations either side of the middle rank bound a
 * range, and one pass (`scan(f)`, f called on every value in any order) counts the keys below
 * it and gathers those inside. When the middle ranks (mid − 1 and mid) fall inside, they are
 * selected among the gathered few: exact, in one pass instead of radix selection's eight.
 * False when the bracket misses or holds too many values (heavy ties, adversarial order); the
 * caller falls back to selectKey. The values are only read.
 */
template <class At, class Scan>
bool bracketMiddleOf(size_t n, At at, Scan scan, uint64_t* lower, uint64_t* upper) {
  // Margin: 6 standard deviations of a sample rank (√(4096 / 4) = 32), so the bracket misses
  // the middle of unordered data with probability ~1e-9 and holds ~9 % of the values.
  constexpr size_t kSample = 4096, kMargin = 192;
  if (n < 8 * kSample) return false;
  const size_t cap = n / 4;
  static thread_local std::vector<uint64_t> sample(kSample), inside;
  const size_t stride = n / kSample;
  for (size_t s = 0; s < kSample; ++s) sample[s] = orderKey(at(s * stride + stride / 2));
  std::sort(sample.begin(), sample.end());
  const size_t mid = n / 2;
  const size_t pos = (size_t)((double)mid / (double)n * kSample);
  const uint64_t lo = sample[pos > kMargin ? pos - kMargin : 0];
  const uint64_t hi = sample[std::min(kSample - 1, pos + kMargin)];
  // Branch-free: every key is stored at the cursor, which advances only for keys inside, and
  // stops at the cap (the slot past it takes the overflow).
  inside.resize(cap + 1);
  uint64_t* in = inside.data();
  size_t below = 0, m = 0;
  scan([&](double x) {
    const uint64_t k = orderKey(x);
    below += k < lo;
    in[m] = k;
    m += (size_t)((k >= lo) & (k <= hi) & (m < cap));
  });
  if (m == cap) return false;
  // Ranks mid − 1 and mid must both lie in [below, below + m), so `up` below has
  // at least one gathered key before it.
  if (below + 1 > mid || below + m <= mid) return false;
  uint64_t* up = in + (mid - below);
  std::nth_element(in, up, in + m);
  *upper = *up;
  *lower = *std::max_element(in, up);
  return true;
}

/** {@link bracketMiddleOf} over v[0..n). */
bool bracketMiddle(const double* v, size_t n, uint64_t* lower, uint64_t* upper) {
  return bracketMiddleOf(
      n, [v](size_t i) { return v[i]; },
      [v, n](auto&& f) {
        for (size_t i = 0; i < n; ++i) f(v[i]);
      },
      lower, upper);
}

/** The median from the bracket's middle keys, as medianOf returns it. */
inline double medianFromKeys(size_t n, uint64_t lowerKey, uint64_t upperKey) {
  const double hi = fromKey(upperKey);
  const double out = n % 2 == 1 ? hi : (fromKey(lowerKey) + hi) / 2;
  return out == 0 ? 0.0 : out;
}

/**
 * Median of v[0..n) (n ≥ 1, no NaN; mean of the two middle values for even n), reordering v:
 * the same value as sorting and taking the middle, with zeros returned as +0.
 */
double medianOf(double* v, size_t n) {
  const size_t mid = n / 2;
  uint64_t lowerKey, upperKey;
  if (bracketMiddle(v, n, &lowerKey, &upperKey)) return medianFromKeys(n, lowerKey, upperKey);
  double hi = fromKey(selectKey(v, n, mid));
  double out;
  if (n % 2 == 1) {
    out = hi;
  } else {
    // The lower middle: the largest value strictly below hi by key, unless hi occurs twice or
    // more at or below the middle. Counted over the whole (reordered) array.
    const uint64_t kh = orderKey(hi);
    size_t less = 0;
    uint64_t best = 0;
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t kk = orderKey(v[i]);
      if (kk < kh) {
        ++less;
        if (!any || kk > best) best = kk, any = true;
      }
    }
    const double lo = less < mid ? hi : fromKey(best);
    out = (lo + hi) / 2;
  }
  return out == 0 ? 0.0 : out;
}

/**
 * medianInPlace(values: Float64Array, n) -> number: the median of values[0..n) (mean of the two
 * middle values for even n), reordering them. No NaN allowed (the caller filters them). Exact,
 * so the result equals the JavaScript quickselect's; nth_element is just ~4x faster.
 */
Napi::Value MedianInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "medianInPlace: 'values' must be a Float64Array");
  Napi::Float64Array a = info[0].As<Napi::Float64Array>();
  const size_t n = (size_t)info[1].As<Napi::Number>().Int64Value();
  if (n == 0 || n > a.ElementLength()) throw Napi::RangeError::New(env, "medianInPlace: 'n' must be in [1, values.length]");
  return Napi::Number::New(env, medianOf(a.Data(), n));
}

/**
 * Column f's values [i0, i1) of one record batch, as doubles, into out[i·d + f] (a strided
 * write). Returns the first row whose value is not a finite float32 (the test the JavaScript
 * loop applies, in float64 before rounding), or SIZE_MAX.
 */
template <class T>
size_t fillColumn(const T* v, const uint8_t* nulls, size_t i0, size_t i1, float* out, size_t d, size_t f, double fill,
                  double center, double scale) {
  size_t bad = SIZE_MAX;
  for (size_t i = i0; i < i1; ++i) {
    double x = (double)v[i];
    if ((nulls && nulls[i]) || x != x) x = fill;
    const double y = (x - center) / scale;
    out[i * d + f] = (float)y;
    if (!(y <= 3.4e38 && y >= -3.4e38) && bad == SIZE_MAX) bad = i;
  }
  return bad;
}

/**
 * fillRows(out, d, cols, nulls, fill, center, scale) -> first bad row or -1: the numeric part
 * of Preprocessor.transform for one record batch. out: the batch's rows of the row-major
 * matrix (nRows × d floats); cols[f]: column f's values (any numeric typed array, nRows long);
 * nulls[f]: a Uint8Array (1 = null) or null; fill, center, scale: Float64Arrays. Each value
 * becomes (x − center) / scale in float64, x = fill where null or NaN, rounded to float32: the
 * JavaScript loop's arithmetic. Returns the first row whose result is not a finite float32
 * (the caller names the column and value), else -1. Rows go in blocks whose output stays in
 * cache while every column writes its stride.
 */
Napi::Value FillRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t d = sizeArg(info, 1, "d", 1);
  if (!info[2].IsArray() || !info[3].IsArray()) throw Napi::TypeError::New(env, "fillRows: cols and nulls must be arrays");
  const Napi::Array cols = info[2].As<Napi::Array>(), nullsArr = info[3].As<Napi::Array>();
  const size_t nCols = cols.Length();
  if (nCols > d || nullsArr.Length() != nCols) throw Napi::RangeError::New(env, "fillRows: need nulls for every column, at most d columns");
  const double* fill = dataOf<double>(info, 4, "fill", nCols, false);
  const double* center = dataOf<double>(info, 5, "center", nCols, false);
  const double* scale = dataOf<double>(info, 6, "scale", nCols, false);
  struct Col {
    napi_typedarray_type type;
    const void* data;
    const uint8_t* nulls;
  };
  std::vector<Col> cs(nCols);
  size_t nRows = SIZE_MAX;
  for (size_t f = 0; f < nCols; ++f) {
    const Napi::Value v = cols[f];
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "fillRows: cols[" + std::to_string(f) + "] must be a typed array");
    const Napi::TypedArray ta = v.As<Napi::TypedArray>();
    nRows = std::min(nRows, ta.ElementLength());
    cs[f] = {ta.TypedArrayType(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), nullptr};
    const Napi::Value nv = nullsArr[f];
    if (!nv.IsNull() && !nv.IsUndefined()) {
      if (!nv.IsTypedArray() || nv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(env, "fillRows: nulls[" + std::to_string(f) + "] must be a Uint8Array or null");
      const Napi::Uint8Array na = nv.As<Napi::Uint8Array>();
      if (na.ElementLength() < ta.ElementLength()) throw Napi::RangeError::New(env, "fillRows: a null mask is shorter than its column");
      cs[f].nulls = na.Data();
    }
  }
  if (nCols == 0) nRows = 0;
  float* out = dataOf<float>(info, 0, "out", nRows * d, false);
  for (size_t f = 0; f < nCols; ++f)
    if (!withElements(cs[f].type, nullptr, [](auto*) {}))
      throw Napi::TypeError::New(env, "fillRows: cols[" + std::to_string(f) + "] has an unsupported element type");
  // Blocks of rows on the pool (each writes its own rows, so the bits do not depend on the
  // thread count); the first bad row is the least over the blocks.
  constexpr size_t kBlock = 2048;
  const int nBlocks = (int)((nRows + kBlock - 1) / kBlock);
  std::vector<size_t> bad((size_t)nBlocks, SIZE_MAX);
  pool().run(nBlocks, [&](int blk, int) {
    const size_t i0 = (size_t)blk * kBlock;
    const size_t i1 = std::min(nRows, i0 + kBlock);
    size_t first = SIZE_MAX;
    for (size_t f = 0; f < nCols; ++f) {
      const Col& c = cs[f];
      const double fl = fill[f], ce = center[f], sc = scale[f];
      size_t b = SIZE_MAX;
      withElements(c.type, c.data, [&](auto* v) { b = fillColumn(v, c.nulls, i0, i1, out, d, f, fl, ce, sc); });
      first = std::min(first, b);
    }
    bad[(size_t)blk] = first;
  });
  for (const size_t b : bad)
    if (b != SIZE_MAX) return Napi::Number::New(env, (double)b);
  return Napi::Number::New(env, -1);
}

/** Present values of one column's chunks gathered into v; returns their count, or sets *bad. */
template <class T>
size_t gatherChunk(const T* x, const uint8_t* nulls, size_t n, double* v, size_t present, size_t row0, int64_t* bad) {
  for (size_t i = 0; i < n; ++i) {
    const double d = (double)x[i];
    if ((nulls && nulls[i]) || d != d) continue;
    if (d - d != 0) {  // ±Inf
      *bad = (int64_t)(row0 + i);
      return present;
    }
    v[present++] = d;
  }
  return present;
}

/** One record batch of a numeric column, as the JavaScript side passes it. */
struct ColumnChunk {
  napi_typedarray_type type;
  const void* data;
  const uint8_t* nulls;  // 1 = null, or null for none
  size_t n;
};

/**
 * cols[c] (an array of one column's record-batch typed arrays, any numeric element type but
 * 64-bit integers) and nulls[c] (the matching Uint8Array masks or nulls), checked and unpacked;
 * *maxRows gets the longest column's length.
 */
std::vector<std::vector<ColumnChunk>> columnChunks(Napi::Env env, const char* fn, const Napi::Array& cols,
                                                   const Napi::Array& nullsArr, size_t* maxRows) {
  const std::string name(fn);
  const size_t nCols = cols.Length();
  if (nullsArr.Length() != nCols) throw Napi::TypeError::New(env, name + ": cols and nulls must have one entry per column");
  std::vector<std::vector<ColumnChunk>> chunks(nCols);
  *maxRows = 0;
  for (size_t c = 0; c < nCols; ++c) {
    const Napi::Value cv = cols[c], nv = nullsArr[c];
    if (!cv.IsArray() || !nv.IsArray() || cv.As<Napi::Array>().Length() != nv.As<Napi::Array>().Length())
      throw Napi::TypeError::New(env, name + ": cols[" + std::to_string(c) + "] and nulls[" + std::to_string(c) + "] must be arrays of one length");
    const Napi::Array ca = cv.As<Napi::Array>(), na = nv.As<Napi::Array>();
    size_t rows = 0;
    for (uint32_t b = 0; b < ca.Length(); ++b) {
      const Napi::Value v = ca[b], m = na[b];
      if (!v.IsTypedArray()) throw Napi::TypeError::New(env, name + ": column chunks must be typed arrays");
      const Napi::TypedArray ta = v.As<Napi::TypedArray>();
      const napi_typedarray_type t = ta.TypedArrayType();
      if (!withElements(t, nullptr, [](auto*) {}))
        throw Napi::TypeError::New(env, name + ": column chunks of 64-bit integers (or any non-numeric type) are not supported");
      ColumnChunk ch{t, static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), nullptr, ta.ElementLength()};
      if (!m.IsNull() && !m.IsUndefined()) {
        if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
            m.As<Napi::TypedArray>().ElementLength() < ch.n)
          throw Napi::TypeError::New(env, name + ": null masks must be Uint8Arrays as long as their chunk");
        ch.nulls = m.As<Napi::Uint8Array>().Data();
      }
      rows += ch.n;
      chunks[c].push_back(ch);
    }
    *maxRows = std::max(*maxRows, rows);
  }
  return chunks;
}

/** Per-label sums and counts of one chunk's present values (rows row0 + i), in row order. */
template <class T>
void labelSumsChunk(const T* x, const uint8_t* nulls, size_t n, const int32_t* labels, size_t row0, double* sum,
                    double* cnt) {
  for (size_t i = 0; i < n; ++i) {
    const double v = (double)x[i];
    if ((nulls && nulls[i]) || v != v) continue;
    const int32_t l = labels[row0 + i];
    sum[l] += v;
    cnt[l] += 1;
  }
}

/**
 * labelSums(cols, nulls, labels, k) -> Float64Array(2k · nCols): per column c, k sums then k
 * counts of its present (non-null, non-NaN) values by label, each label's in row order (the
 * JavaScript loop's additions, so the same bits). Labels must lie in [0, k) and cover every
 * row. Columns run in parallel.
 */
Napi::Value LabelSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "labelSums: cols and nulls must be arrays");
  size_t maxRows = 0;
  const std::vector<std::vector<ColumnChunk>> chunks =
      columnChunks(env, "labelSums", info[0].As<Napi::Array>(), info[1].As<Napi::Array>(), &maxRows);
  const int k = (int)sizeArg(info, 3, "k", 1);
  const int32_t* labels = dataOf<int32_t>(info, 2, "labels", maxRows, false);
  for (size_t i = 0; i < maxRows; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw Napi::RangeError::New(env, "labelSums: labels must be in [0, " + std::to_string(k) + "); got " +
                                           std::to_string(labels[i]) + " at row " + std::to_string(i));
  const size_t nCols = chunks.size();
  Napi::Float64Array outArr = Napi::Float64Array::New(env, 2 * (size_t)k * nCols);
  double* out = outArr.Data();
  pool().run((int)nCols, [&](int c, int) {
    double* sum = out + 2 * (size_t)k * c;
    double* cnt = sum + k;
    size_t row0 = 0;
    for (const ColumnChunk& ch : chunks[c]) {
      // columnChunks let only supported element types through.
      withElements(ch.type, ch.data, [&](auto* v) { labelSumsChunk(v, ch.nulls, ch.n, labels, row0, sum, cnt); });
      row0 += ch.n;
    }
  });
  return outArr;
}

/** f(x) for every value of the chunks, as doubles, in row order. */
template <class F>
void forEachValue(const std::vector<ColumnChunk>& chunks, F&& f) {
  for (const ColumnChunk& ch : chunks)
    withElements(ch.type, ch.data, [&](auto* x) {
      for (size_t i = 0; i < ch.n; ++i) f((double)x[i]);
    });
}

/**
 * numericStats for a column with no null mask, read in place: the moments in row order over
 * the values (the gathering path's additions, so its bits) and the median by the sampled
 * bracket, with no copy of the column. False, with nothing written, when the column has a null
 * mask, a NaN or an infinity, or the bracket misses: the caller then gathers the present values
 * and takes the general path.
 */
bool directStats(const std::vector<ColumnChunk>& chunks, bool wantMedian, double* o) {
  size_t n = 0;
  for (const ColumnChunk& ch : chunks) {
    if (ch.nulls) return false;
    n += ch.n;
  }
  if (n == 0) return false;
  double sum = 0, mn = INFINITY, mx = -INFINITY;
  bool finite = true;
  forEachValue(chunks, [&](double x) {
    finite &= x - x == 0;  // false for NaN and ±Inf
    sum += x;
    mn = x < mn ? x : mn;
    mx = x > mx ? x : mx;
  });
  if (!finite) return false;
  const double mean = sum / (double)n;
  // The squared deviations ride along the median's scan when there is one (a pass fewer over
  // the column; the same additions in row order, so the same bits).
  double ss = 0;
  bool ssDone = false;
  const auto deviations = [&](double x) {
    const double t = x - mean;
    ss += t * t;
  };
  double median = NAN;
  if (wantMedian) {
    // Sample positions rise, so one cursor walks the chunks.
    size_t ci = 0, base = 0;
    auto at = [&](size_t i) {
      while (i >= base + chunks[ci].n) base += chunks[ci++].n;
      double v = 0;
      withElements(chunks[ci].type, chunks[ci].data, [&](auto* x) { v = (double)x[i - base]; });
      return v;
    };
    auto scan = [&](auto&& f) {
      forEachValue(chunks, [&](double x) {
        deviations(x);
        f(x);
      });
      ssDone = true;
    };
    uint64_t lowerKey, upperKey;
    if (!bracketMiddleOf(n, at, scan, &lowerKey, &upperKey)) return false;
    median = medianFromKeys(n, lowerKey, upperKey);
  }
  if (!ssDone) forEachValue(chunks, deviations);
  o[0] = (double)n;
  o[1] = -1;
  o[2] = median;
  o[3] = mean;
  o[4] = std::sqrt(ss / (double)n);
  o[5] = mn;
  o[6] = mx;
  return true;
}

/**
 * numericStats(cols, nulls, median) -> Float64Array(7 · nCols): per column, [present count,
 * first non-finite row or -1, median or NaN, mean, population std, min, max] of its present
 * (non-null, non-NaN) values. cols[c]: column c's record-batch arrays (any numeric typed
 * arrays); nulls[c]: the matching Uint8Array masks (1 = null) or nulls. The columns run in
 * parallel, each on its own scratch copy. The arithmetic is the JavaScript fit's: two-pass
 * moments in row order, then the exact median (medianOf), so the statistics have its bits.
 */
Napi::Value NumericStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "numericStats: cols and nulls must be arrays");
  const Napi::Array cols = info[0].As<Napi::Array>(), nullsArr = info[1].As<Napi::Array>();
  const bool wantMedian = info[2].ToBoolean().Value();
  const size_t nCols = cols.Length();
  size_t maxRows = 0;
  const std::vector<std::vector<ColumnChunk>> chunks = columnChunks(env, "numericStats", cols, nullsArr, &maxRows);
  Napi::Float64Array outArr = Napi::Float64Array::New(env, 7 * nCols);
  double* out = outArr.Data();
  Pool& P = pool();
  // One scratch column per worker, freed on return (a fit calls this once; kept, it would hold
  // 8 bytes per row per thread for the life of the process). Uninitialised, so each worker
  // faults its own pages in as it fills them.
  std::vector<std::unique_ptr<double[]>> scratch(P.threads());
  P.run((int)nCols, [&](int c, int worker) {
    double* o = out + 7 * (size_t)c;
    if (directStats(chunks[c], wantMedian, o)) return;
    if (!scratch[worker]) scratch[worker].reset(new double[maxRows > 0 ? maxRows : 1]);
    double* v = scratch[worker].get();
    size_t present = 0, row0 = 0;
    int64_t bad = -1;
    for (const ColumnChunk& ch : chunks[c]) {
      withElements(ch.type, ch.data, [&](auto* x) { present = gatherChunk(x, ch.nulls, ch.n, v, present, row0, &bad); });
      if (bad >= 0) break;
      row0 += ch.n;
    }
    o[0] = (double)present;
    o[1] = (double)bad;
    o[2] = NAN;
    if (bad >= 0 || present == 0) {
      for (int q = 3; q < 7; ++q) o[q] = NAN;
      return;
    }
    // Moments in row order first: the median's selection reorders v.
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < present; ++i) {
      const double x = v[i];
      sum += x;
      mn = x < mn ? x : mn;
      mx = x > mx ? x : mx;
    }
    const double mean = sum / (double)present;
    double ss = 0;
    for (size_t i = 0; i < present; ++i) {
      const double t = v[i] - mean;
      ss += t * t;
    }
    if (wantMedian) o[2] = medianOf(v, present);
    o[3] = mean;
    o[4] = std::sqrt(ss / (double)present);
    o[5] = mn;
    o[6] = mx;
  });
  return outArr;
}

/**
 * clusterDispersion(x, nRows, d, labels, k) -> Float64Array(k·d + 2k + 1): the cluster means
 * (k × d), sizes (k), mean distances of the rows to their cluster's mean (k) and the
 * within-cluster sum of squares (1) of a row-major float32 matrix, from two passes over the
 * rows: the twin of src/eval/metrics.ts `dispersion`, with its float64 arithmetic in its
 * order (rows in order, features in order), so the same bits. Labels must lie in [0, k).
 */
Napi::Value ClusterDispersion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t n = sizeArg(info, 1, "nRows", 0);
  const size_t d = sizeArg(info, 2, "d", 1);
  const size_t k = sizeArg(info, 4, "k", 1);
  const float* x = dataOf<float>(info, 0, "x", n * d, false);
  const int32_t* labels = dataOf<int32_t>(info, 3, "labels", n, false);
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || (size_t)labels[i] >= k)
      throw Napi::RangeError::New(env, "clusterDispersion: labels must be in [0, " + std::to_string(k) + "); got " +
                                           std::to_string(labels[i]) + " at row " + std::to_string(i));
  Napi::Float64Array outArr = Napi::Float64Array::New(env, k * d + 2 * k + 1);
  double* means = outArr.Data();
  double* sizes = means + k * d;
  double* scatter = sizes + k;
  for (size_t i = 0; i < n; ++i) {
    const size_t l = (size_t)labels[i];
    sizes[l] += 1;
    double* m = means + l * d;
    const float* r = x + i * d;
    for (size_t f = 0; f < d; ++f) m[f] += (double)r[f];
  }
  for (size_t j = 0; j < k; ++j)
    if (sizes[j] > 0)
      for (size_t f = 0; f < d; ++f) means[j * d + f] /= sizes[j];
  double within = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t l = (size_t)labels[i];
    const double* m = means + l * d;
    const float* r = x + i * d;
    double s = 0;
    for (size_t f = 0; f < d; ++f) {
      const double t = (double)r[f] - m[f];
      s += t * t;
    }
    within += s;
    scatter[l] += std::sqrt(s);
  }
  for (size_t j = 0; j < k; ++j)
    if (sizes[j] > 0) scatter[j] /= sizes[j];
  scatter[k] = within;
  return outArr;
}

}  // namespace

void registerDataHelpers(Napi::Env env, Napi::Object exports) {
  exports.Set("medianInPlace", Napi::Function::New(env, MedianInPlace));
  exports.Set("fillRows", Napi::Function::New(env, FillRows));
  exports.Set("numericStats", Napi::Function::New(env, NumericStats));
  exports.Set("labelSums", Napi::Function::New(env, LabelSums));
  exports.Set("clusterDispersion", Napi::Function::New(env, ClusterDispersion));
}

}  // namespace seg
