// The CPU im2col of the modulated deformable convolution: for every output pixel and tap, one
// bilinear sample of all input channels at once from a channels-last frame.
//
// Why not at::grid_sampler (the GPU path): its CPU kernel gathers each channel from a separate
// plane, four scattered loads per channel and sample, and parallelises over batch entries only.
// Channels-last, the four corners of a sample are four contiguous channel vectors, so the inner
// loop is a plain vectorisable multiply-add, and the pixels are spread over all threads whatever
// the batch. The result, [pixels, taps * channels], is the left operand of one GEMM with the
// tap-major weight.
#include <algorithm>
#include <cmath>

#include "cpu_kernels.h"
#include "net.h"

namespace bd {
namespace birefnet {

namespace {

// One row of the im2col matrix: pixel (py, px), all taps. Inlined into the ISA-specific
// wrappers below so that the channel loop is compiled for each.
inline __attribute__((always_inline)) void gather_pixel(const DeformGatherArgs& a, int64_t py, int64_t px,
                                                        float* row) {
  const int64_t k = a.k, kk = k * k, c = a.c, h = a.h, w = a.w, pad = k / 2;
  const float* om = a.offset_mask + (py * w + px) * 3 * kk;  // [dy0, dx0, dy1, dx1, ..., m0, m1, ...]
  for (int64_t t = 0; t < kk; ++t) {
    float* dst = row + t * c;
    const float m = 2.0f / (1.0f + std::exp(-om[2 * kk + t]));  // 2 * sigmoid, as BiRefNet's modulator
    const float sy = float(py - pad + t / k) + om[2 * t];
    const float sx = float(px - pad + t % k) + om[2 * t + 1];
    // torchvision's rule: a sample at or beyond one pixel outside the map is zero (written so that
    // a NaN position lands here too; a NaN modulator still yields NaN, as the reference does).
    if (!(sy > -1.0f && sy < float(h) && sx > -1.0f && sx < float(w))) {
      for (int64_t i = 0; i < c; ++i) dst[i] = 0.0f * m;
      continue;
    }
    const float fy = std::floor(sy), fx = std::floor(sx);
    const int64_t y0 = int64_t(fy), x0 = int64_t(fx), y1 = y0 + 1, x1 = x0 + 1;
    const float ly = sy - fy, lx = sx - fx, hy = 1.0f - ly, hx = 1.0f - lx;
    // Corners outside the map count as zero: their weight is zeroed and their index clamped, so
    // the channel loop has no branches.
    const bool top = y0 >= 0, bottom = y1 < h, left = x0 >= 0, right = x1 < w;
    const float w00 = top && left ? hy * hx * m : 0.0f, w01 = top && right ? hy * lx * m : 0.0f;
    const float w10 = bottom && left ? ly * hx * m : 0.0f, w11 = bottom && right ? ly * lx * m : 0.0f;
    const int64_t cy0 = std::max<int64_t>(y0, 0), cy1 = std::min(y1, h - 1);
    const int64_t cx0 = std::max<int64_t>(x0, 0), cx1 = std::min(x1, w - 1);
    const float* p00 = a.input + (cy0 * w + cx0) * c;
    const float* p01 = a.input + (cy0 * w + cx1) * c;
    const float* p10 = a.input + (cy1 * w + cx0) * c;
    const float* p11 = a.input + (cy1 * w + cx1) * c;
    for (int64_t i = 0; i < c; ++i) dst[i] = w00 * p00[i] + w01 * p01[i] + w10 * p10[i] + w11 * p11[i];
  }
}

inline __attribute__((always_inline)) void gather_range(const DeformGatherArgs& a, int64_t begin, int64_t end,
                                                        float* cols) {
  const int64_t row_len = a.k * a.k * a.c;
  for (int64_t p = begin; p < end; ++p)
    gather_pixel(a, p / a.w, p % a.w, cols + (p - a.first_pixel) * row_len);
}

#if defined(__x86_64__)
BD_TARGET_AVX2 void gather_range_avx2(const DeformGatherArgs& a, int64_t begin, int64_t end,
                                                           float* cols) {
  gather_range(a, begin, end, cols);
}
#endif

void gather_range_generic(const DeformGatherArgs& a, int64_t begin, int64_t end, float* cols) {
  gather_range(a, begin, end, cols);
}

}  // namespace

void deform_gather(const DeformGatherArgs& a, float* cols) {
  using Fn = void (*)(const DeformGatherArgs&, int64_t, int64_t, float*);
  Fn fn = gather_range_generic;
#if defined(__x86_64__)
  if (cpu_has_avx2_fma()) fn = gather_range_avx2;
#endif
  // About 16k multiply-adds per task: small enough to balance, large enough to amortise.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.k * a.k * a.c));
  cpu_parallel_for(a.pixels, grain, [&](int64_t begin, int64_t end) {
    fn(a, a.first_pixel + begin, a.first_pixel + end, cols);
  });
}

}  // namespace birefnet
}  // namespace bd
