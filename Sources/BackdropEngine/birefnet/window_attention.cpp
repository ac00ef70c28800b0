// Swin window attention on the CPU in one pass: softmax(scale * q k^T + bias (+ mask)) v for each
// window and head, reading q, k and v through the window index straight from the qkv projection
// of the real tokens, and writing each real token's output to its own row.
//
// Why: a window has only 49 (Swin-T) or 144 (Swin-L) tokens of 32 channels per head, so the
// batched GEMMs behind baddbmm/bmm run thousands of tiny products at 12-15 GFLOP/s on this kind of
// CPU, and the scores make three round trips through memory (baddbmm, softmax, bmm). Here one
// window-head's keys and values sit in L1 while all its queries are handled, and the score row
// never leaves it. Reading through the index also spares the window partition copies, and the
// padding tokens (which the maps get up to a multiple of the window) only take part as keys and
// values: their projection is the qkv bias, and their outputs, which Swin crops, are not computed.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_kernels.h"
#include "net.h"

namespace bd {
namespace birefnet {

namespace {

// One window-head in the layout both kernels use: the real queries packed (padded with zero rows
// to a multiple of 4), keys transposed [d, np] and values [np, d] of all N positions, zero beyond
// N (np = N rounded up to 8), and where each real query sits in the window and in the output.
struct HeadTile {
  int64_t np = 0, nq = 0;        // padded key count; real queries in this window
  std::vector<float> q, kt, v, s;  // [nq4, d], [d, np], [np, d], scores [nq4, np]
  std::vector<int64_t> q_pos, q_row;  // window position and token row of each real query
  explicit HeadTile(const WindowAttentionArgs& a)
      : np((a.n + 7) / 8 * 8), q(size_t((a.n + 3) / 4 * 4 * a.d), 0.0f), kt(size_t(a.d * np), 0.0f),
        v(size_t(np * a.d), 0.0f), s(size_t((a.n + 3) / 4 * 4 * np)), q_pos(size_t(a.n)), q_row(size_t(a.n)) {}
};

// Fills the tile for window `win`, head `head`. Padding positions read pad_qkv (the projection
// of a zero token) as keys and values and are left out of the queries.
void pack_head(const WindowAttentionArgs& a, int64_t win, int64_t head, HeadTile& t) {
  const int64_t n = a.n, d = a.d, c = a.heads * d, np = t.np;
  const int64_t* token = a.token + win * n;
  t.nq = 0;
  for (int64_t j = 0; j < n; ++j) {
    const bool pad = token[j] == a.tokens;
    const float* qj = (pad ? a.pad_qkv : a.qkv + token[j] * 3 * c) + head * d;
    const float* kj = qj + c;
    const float* vj = qj + 2 * c;
    for (int64_t e = 0; e < d; ++e) {
      t.kt[size_t(e * np + j)] = kj[e];
      t.v[size_t(j * d + e)] = vj[e];
    }
    if (pad) continue;
    std::copy(qj, qj + d, t.q.begin() + t.nq * d);
    t.q_pos[size_t(t.nq)] = j;
    t.q_row[size_t(t.nq)] = token[j];
    ++t.nq;
  }
  // Rows past nq up to the multiple of 4 are scored by the blocked kernel: keep them finite.
  std::fill(t.q.begin() + t.nq * d, t.q.end(), 0.0f);
}

float* output_row(const WindowAttentionArgs& a, const HeadTile& t, int64_t i, int64_t head) {
  return a.out + (t.q_row[size_t(i)] * a.heads + head) * a.d;
}

// Plain loops: for CPUs without AVX2 and head widths that are not a multiple of 8.
void window_heads_generic(const WindowAttentionArgs& a, int64_t begin, int64_t end) {
  HeadTile t(a);
  const int64_t n = a.n, d = a.d, np = t.np;
  std::vector<float> o(static_cast<size_t>(d), 0.0f);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t win = task / a.heads, head = task % a.heads;
    pack_head(a, win, head, t);
    const float* bias = a.bias + head * n * n;
    const float* mask = a.mask ? a.mask + (win % a.mask_windows) * n * n : nullptr;
    float* s = t.s.data();
    for (int64_t i = 0; i < t.nq; ++i) {
      const float* qi = t.q.data() + i * d;
      // Scores: accumulate over channels with the keys transposed, so every inner loop runs over
      // the n keys (vectorisable, no horizontal sums).
      std::fill(s, s + n, 0.0f);
      for (int64_t e = 0; e < d; ++e) {
        const float qe = qi[e];
        const float* ke = t.kt.data() + e * np;
        for (int64_t j = 0; j < n; ++j) s[j] += qe * ke[j];
      }
      const int64_t pos = t.q_pos[size_t(i)];
      const float* bi = bias + pos * n;
      const float* mi = mask ? mask + pos * n : nullptr;
      float top = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        s[j] = a.scale * s[j] + bi[j] + (mi ? mi[j] : 0.0f);
        top = std::max(top, s[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        s[j] = std::exp(s[j] - top);
        sum += s[j];
      }
      const float inv = 1.0f / sum;
      std::fill(o.begin(), o.end(), 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float p = s[j] * inv;
        const float* vj = t.v.data() + j * d;
        for (int64_t e = 0; e < d; ++e) o[size_t(e)] += p * vj[e];
      }
      std::copy(o.begin(), o.end(), output_row(a, t, i, head));
    }
  }
}

#if defined(__x86_64__)
BD_TARGET_AVX2 inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

BD_TARGET_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// e^x for x <= 0 (scores minus their row maximum), 8 at a time: x = n ln2 + r with |r| <= ln2/2,
// e^r by Cephes' degree-6 polynomial (about 1 ulp), 2^n through the exponent bits. Below -87 (and
// for -inf, the masked and padded keys) the result is 0, where e^x would be a denormal at most.
BD_TARGET_AVX2 inline __m256 exp_nonpositive(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(bits)), keep);
}

// The same with AVX2 register blocking, for any N and d a multiple of 8: scores for 4 queries x 8
// keys per step, outputs for 2 queries x 16 channels. Plain loops leave this at a few GFLOP/s:
// N = 49 has awkward tails and every short loop pays its set-up again.
BD_TARGET_AVX2 void window_heads_avx2(const WindowAttentionArgs& a, int64_t begin, int64_t end) {
  HeadTile t(a);
  const int64_t n = a.n, d = a.d, np = t.np;
  const int64_t tail = n % 8;
  const __m256i tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(tail)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 scale = _mm256_set1_ps(a.scale), minus_inf = _mm256_set1_ps(-INFINITY);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t win = task / a.heads, head = task % a.heads;
    pack_head(a, win, head, t);
    const float* bias = a.bias + head * n * n;
    const float* mask = a.mask ? a.mask + (win % a.mask_windows) * n * n : nullptr;
    // Scores s[i][j] = q_i . k_j (the zero rows and keys past the real ones are never read).
    for (int64_t i = 0; i < t.nq; i += 4) {
      const float* q0 = t.q.data() + i * d;
      for (int64_t j = 0; j < np; j += 8) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float* kc = t.kt.data() + j;
        for (int64_t e = 0; e < d; ++e) {
          const __m256 k = _mm256_loadu_ps(kc + e * np);
          s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(q0 + e), k, s0);
          s1 = _mm256_fmadd_ps(_mm256_broadcast_ss(q0 + d + e), k, s1);
          s2 = _mm256_fmadd_ps(_mm256_broadcast_ss(q0 + 2 * d + e), k, s2);
          s3 = _mm256_fmadd_ps(_mm256_broadcast_ss(q0 + 3 * d + e), k, s3);
        }
        float* sr = t.s.data() + i * np + j;
        _mm256_storeu_ps(sr, s0);
        _mm256_storeu_ps(sr + np, s1);
        _mm256_storeu_ps(sr + 2 * np, s2);
        _mm256_storeu_ps(sr + 3 * np, s3);
      }
    }
    // Softmax per query row over the n keys; keys past n get probability 0.
    for (int64_t i = 0; i < t.nq; ++i) {
      float* si = t.s.data() + i * np;
      const int64_t pos = t.q_pos[size_t(i)];
      const float* bi = bias + pos * n;
      const float* mi = mask ? mask + pos * n : nullptr;
      __m256 top = minus_inf;
      for (int64_t j = 0; j < np; j += 8) {
        const bool part = j + 8 > n;
        __m256 x = _mm256_fmadd_ps(_mm256_loadu_ps(si + j), scale,
                                   part ? _mm256_maskload_ps(bi + j, tail_mask) : _mm256_loadu_ps(bi + j));
        if (mi) x = _mm256_add_ps(x, part ? _mm256_maskload_ps(mi + j, tail_mask) : _mm256_loadu_ps(mi + j));
        if (part) x = _mm256_blendv_ps(minus_inf, x, _mm256_castsi256_ps(tail_mask));
        _mm256_storeu_ps(si + j, x);
        top = _mm256_max_ps(top, x);
      }
      const __m256 row_max = _mm256_set1_ps(horizontal_max(top));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t j = 0; j < np; j += 8) {
        const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(si + j), row_max));
        _mm256_storeu_ps(si + j, e);
        sum = _mm256_add_ps(sum, e);
      }
      const __m256 inv = _mm256_set1_ps(1.0f / horizontal_sum(sum));
      for (int64_t j = 0; j < np; j += 8) _mm256_storeu_ps(si + j, _mm256_mul_ps(_mm256_loadu_ps(si + j), inv));
    }
    // Outputs: 2 queries x 8 channels per accumulator pair, over all keys.
    for (int64_t i = 0; i < t.nq; i += 2) {
      const bool pair = i + 1 < t.nq;
      const float* p0 = t.s.data() + i * np;
      const float* p1 = pair ? p0 + np : p0;
      float* o0 = output_row(a, t, i, head);
      float* o1 = pair ? output_row(a, t, i + 1, head) : nullptr;
      for (int64_t e = 0; e < d; e += 16) {
        const bool two = e + 8 < d;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        for (int64_t j = 0; j < n; ++j) {
          const __m256 x0 = _mm256_loadu_ps(t.v.data() + j * d + e);
          const __m256 x1 = two ? _mm256_loadu_ps(t.v.data() + j * d + e + 8) : x0;
          const __m256 w0 = _mm256_broadcast_ss(p0 + j), w1 = _mm256_broadcast_ss(p1 + j);
          a0 = _mm256_fmadd_ps(w0, x0, a0);
          a1 = _mm256_fmadd_ps(w0, x1, a1);
          b0 = _mm256_fmadd_ps(w1, x0, b0);
          b1 = _mm256_fmadd_ps(w1, x1, b1);
        }
        _mm256_storeu_ps(o0 + e, a0);
        if (two) _mm256_storeu_ps(o0 + e + 8, a1);
        if (pair) {
          _mm256_storeu_ps(o1 + e, b0);
          if (two) _mm256_storeu_ps(o1 + e + 8, b1);
        }
      }
    }
  }
}
#endif

}  // namespace

void window_attention(const WindowAttentionArgs& a) {
  using Fn = void (*)(const WindowAttentionArgs&, int64_t, int64_t);
  Fn fn = window_heads_generic;
#if defined(__x86_64__)
  if (cpu_has_avx2_fma() && a.d % 8 == 0) fn = window_heads_avx2;
#endif
  cpu_parallel_for(a.windows * a.heads, 4, [&](int64_t begin, int64_t end) { fn(a, begin, end); });
}

}  // namespace birefnet
}  // namespace bd
