#include "refine.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_fused.h"

namespace bd {
namespace {

// Window means along one dimension from a running sum: O(1) per element whatever the radius.
// With c the running sum behind a leading zero, the window of element j sums to
// c[min(len, j+r+1)] − c[max(0, j−r)]; padding c with r zeros in front and r copies of its total
// behind turns both into plain slices. `precise` keeps the running sum in double, for the small
// variances the guided filter divides by.
at::Tensor box_mean_along(const at::Tensor& x, int64_t dim, int64_t radius, bool precise) {
  const int64_t length = x.size(dim);
  auto running = precise ? at::cumsum(x, dim, at::kDouble) : at::cumsum(x, dim);
  std::vector<int64_t> shape(running.sizes().begin(), running.sizes().end());
  shape[dim] = radius + 1;
  auto zeros = at::zeros(shape, running.options());
  shape[dim] = radius;
  auto total = running.narrow(dim, length - 1, 1).expand(shape);
  auto padded = at::cat({zeros, running, total}, dim);
  auto sums = padded.narrow(dim, 2 * radius + 1, length) - padded.narrow(dim, 0, length);
  auto index = at::arange(length, x.options().dtype(at::kFloat));
  auto counts = (index + (radius + 1)).clamp_max(length) - (index - radius).clamp_min(0);
  std::vector<int64_t> count_shape(x.dim(), 1);
  count_shape[dim] = length;
  return (sums / counts.to(running.scalar_type()).view(count_shape)).to(x.scalar_type());
}

// Trimap band radius and regularisation of the guided filter, on the probability's grid.
constexpr int64_t kGuidedRadius = 2;
constexpr double kGuidedEpsilon = 1e-3;
constexpr int64_t kGuidedFitSide = 1024;

// One blur-fusion step: local foreground and background means weighted by alpha, then both moved
// so that alpha·F + (1 − alpha)·B reproduces the image.
void fuse(const at::Tensor& image, const at::Tensor& alpha, at::Tensor& foreground, at::Tensor& background,
          int64_t radius) {
  const int64_t channels = image.size(1);
  auto inverse = 1.0 - alpha;
  auto means = box_mean(at::cat({foreground * alpha, background * inverse, alpha}, 1), radius, /*precise=*/false);
  auto alpha_mean = means.narrow(1, 2 * channels, 1);
  auto f = means.narrow(1, 0, channels) / (alpha_mean + 1e-5);
  auto b = means.narrow(1, channels, channels) / ((1.0 - alpha_mean) + 1e-5);
  auto residual = image - alpha * f - inverse * b;
  foreground = f + alpha * residual;
  background = b + inverse * residual;
}

}  // namespace

at::Tensor box_mean(const at::Tensor& x, int64_t radius, bool precise) {
  if (radius <= 0) return x;
  if (x.device().is_cpu() && x.scalar_type() == at::kFloat) return cpu::box_mean(x, radius);  // double sums anyway
  return box_mean_along(box_mean_along(x, 3, radius, precise), 2, radius, precise);
}

at::Tensor uncertain_band(const at::Tensor& probability, int64_t radius, double margin) {
  auto foreground = probability.ge(0.5).to(at::kFloat);
  const int64_t k = 2 * radius + 1;
  auto dilated = at::max_pool2d(foreground, {k, k}, {1, 1}, {radius, radius});
  auto eroded = 1.0 - at::max_pool2d(1.0 - foreground, {k, k}, {1, 1}, {radius, radius});
  auto soft = probability.gt(margin).logical_and(probability.lt(1.0 - margin));
  return dilated.gt(eroded).logical_or(soft).to(at::kFloat);
}

at::Tensor bilinear_resize(const at::Tensor& probability, int64_t height, int64_t width) {
  if (probability.size(2) == height && probability.size(3) == width) return probability;
  return at::upsample_bilinear2d(probability, {height, width}, false);
}

at::Tensor guided_upsample(const at::Tensor& probability, const at::Tensor& guide, const at::Tensor& settled) {
  const int64_t height = guide.size(2), width = guide.size(3);
  // The coefficients are fitted on the probability's grid, but on no more than kGuidedFitSide
  // pixels a side (a cascade may deliver a frame-size grid): the fit is smooth anyway, and the
  // full-size guide puts the detail back. A fit at full 4K size would cost seconds on a CPU.
  const double fit_scale = std::min(1.0, double(kGuidedFitSide) / double(std::max(probability.size(2), probability.size(3))));
  const int64_t h = std::max<int64_t>(1, std::llround(probability.size(2) * fit_scale));
  const int64_t w = std::max<int64_t>(1, std::llround(probability.size(3) * fit_scale));
  const bool refit = h != probability.size(2) || w != probability.size(3);
  auto fit = refit ? at::_upsample_bilinear2d_aa(probability, {h, w}, false) : probability;
  // The guide as the model saw it: shrunk with the same antialiasing as the model's input. Both
  // are centred on 0.5 (the filter does not depend on offsets), which keeps float running sums
  // accurate enough for the variances; double sums cost several times more on the CPU.
  auto small_guide = (h == height && w == width ? guide : at::_upsample_bilinear2d_aa(guide, {h, w}, false)) - 0.5;
  auto centred = fit - 0.5;
  auto means = box_mean(at::cat({small_guide, centred, small_guide * centred, small_guide * small_guide}, 1),
                        kGuidedRadius, /*precise=*/false);
  auto mean_i = means.narrow(1, 0, 1), mean_p = means.narrow(1, 1, 1);
  auto covariance = means.narrow(1, 2, 1) - mean_i * mean_p;
  auto variance = means.narrow(1, 3, 1) - mean_i * mean_i;
  auto a = covariance / (variance + kGuidedEpsilon);
  auto b = mean_p - a * mean_i;
  auto small_coefficients = box_mean(at::cat({a, b}, 1), kGuidedRadius, /*precise=*/false);
  auto small_band = uncertain_band(fit, kGuidedRadius + 1, 0.02);
  if (guide.device().is_cpu() && guide.scalar_type() == at::kFloat) {
    return cpu::guided_blend(small_coefficients, probability, small_band, settled, guide);
  }
  auto coefficients = bilinear_resize(small_coefficients, height, width);
  auto guided = (coefficients.narrow(1, 0, 1) * (guide - 0.5) + coefficients.narrow(1, 1, 1) + 0.5).clamp_(0.0, 1.0);
  auto plain = bilinear_resize(probability, height, width);
  auto band = bilinear_resize(small_band, height, width);
  if (settled.defined()) band = band * (1.0 - bilinear_resize(settled, height, width));
  return (plain + band * (guided - plain)).clamp_(0.0, 1.0);
}

at::Tensor estimate_foreground(const at::Tensor& image, const at::Tensor& alpha, double lowest, double highest) {
  const int64_t height = image.size(2), width = image.size(3);
  const int64_t short_side = std::min(height, width);
  // Radii follow the picture size: about 90 and 6 pixels at 1080p, as blur fusion suggests. Both
  // passes only produce local means, so they run on smaller pictures (a third of the side for
  // the narrow one at 1080p, a twelfth for the wide one; more at 4K), and only the last,
  // per-pixel step, which puts the detail back, runs at full resolution.
  // Rounded, so that 1080p chroma (540 lines) takes the 1.5 step up as 2: its narrow pass at the
  // plane's own size cost more than all of luma's (the colour means are smooth at either grid).
  const int64_t unit = std::max<int64_t>(1, (short_side + 180) / 360);
  const int64_t narrow_factor = unit, wide_factor = 4 * unit;
  const int64_t wide_radius = std::max<int64_t>(2, short_side / 12 / wide_factor);
  const int64_t narrow_radius = std::max<int64_t>(2, short_side / 180 / narrow_factor);
  auto shrink = [](const at::Tensor& x, int64_t factor) {
    if (factor <= 1) return x;
    if (x.device().is_cpu() && x.scalar_type() == at::kFloat) return cpu::block_mean(x, factor);
    return at::avg_pool2d(x, {factor, factor}, {factor, factor}, {0, 0}, true, false);
  };
  auto narrow_image = shrink(image, narrow_factor), narrow_alpha = shrink(alpha, narrow_factor);
  auto wide_image = shrink(narrow_image, wide_factor / narrow_factor);
  auto wide_alpha = shrink(narrow_alpha, wide_factor / narrow_factor);
  at::Tensor foreground = wide_image, background = wide_image;
  fuse(wide_image, wide_alpha, foreground, background, wide_radius);
  auto both = bilinear_resize(at::cat({foreground, background}, 1), narrow_image.size(2), narrow_image.size(3));
  const int64_t channels = image.size(1);
  foreground = both.narrow(1, 0, channels);
  background = both.narrow(1, channels, channels);
  fuse(narrow_image, narrow_alpha, foreground, background, narrow_radius);
  // The last step, which makes alpha·F + (1 − alpha)·B match the image, only where the pixel is
  // partly covered (a thin band): the means are sampled bilinearly at those pixels alone (the
  // same sampling as upsample_bilinear2d), not upsampled over the whole frame.
  auto means = at::cat({foreground, background}, 1);
  if (image.device().is_cpu() && image.scalar_type() == at::kFloat && alpha.scalar_type() == at::kFloat) {
    return cpu::foreground_final(image, alpha, means, lowest, highest);
  }
  auto partial = alpha.gt(0.02).logical_and(alpha.lt(0.98));
  auto result = image.clone(at::MemoryFormat::Contiguous);
  for (int64_t i = 0; i < image.size(0); ++i) {
    auto where = partial[i][0].nonzero();  // [P,2]: y, x
    if (where.size(0) == 0) continue;
    auto ys = where.select(1, 0), xs = where.select(1, 1);
    auto grid = at::stack({(xs.to(at::kFloat) + 0.5) * (2.0 / width) - 1.0, (ys.to(at::kFloat) + 0.5) * (2.0 / height) - 1.0}, 1);
    auto sampled = at::grid_sampler(means.narrow(0, i, 1), grid.view({1, 1, -1, 2}), /*bilinear*/ 0, /*border*/ 1,
                                    /*align_corners=*/false)
                       .view({2 * channels, -1});  // [2c,P]
    auto f = sampled.narrow(0, 0, channels), b = sampled.narrow(0, channels, channels);
    auto flat = ys * width + xs;
    auto pixels = image[i].reshape({channels, -1}).index_select(1, flat);  // [c,P]
    auto a = alpha[i].reshape({1, -1}).index_select(1, flat);              // [1,P]
    auto estimate = (f + a * (pixels - a * f - (1.0 - a) * b)).clamp_(lowest, highest);
    result[i].view({channels, -1}).index_copy_(1, flat, estimate);
  }
  return result;
}

}  // namespace bd
