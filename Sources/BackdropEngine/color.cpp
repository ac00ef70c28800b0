#include "color.h"

#include "cpu_fused.h"

namespace bd {
namespace {

struct Coefficients {
  double kr, kb;
};

Coefficients coefficients(bd_matrix matrix) {
  switch (matrix) {
    case BD_MATRIX_BT709: return {0.2126, 0.0722};
    case BD_MATRIX_BT2020: return {0.2627, 0.0593};
    default: return {0.299, 0.114};
  }
}

// Scale and offset of luma and chroma code values for the range.
struct Range {
  double y_offset, y_scale, c_scale;
};

Range range(bool full) { return full ? Range{0.0, 255.0, 255.0} : Range{16.0, 219.0, 224.0}; }

}  // namespace

at::Tensor downsample_chroma(const at::Tensor& plane) {
  if (plane.device().is_cpu() && plane.scalar_type() == at::kFloat) return cpu::block_mean(plane, 2);
  return at::avg_pool2d(plane, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true, /*count_include_pad=*/false);
}

at::Tensor upsample_chroma(const at::Tensor& plane, int64_t height, int64_t width) {
  auto up = plane.repeat_interleave(2, 2).repeat_interleave(2, 3);
  return up.narrow(2, 0, height).narrow(3, 0, width);
}

YuvPlanes rgb_to_yuv(const at::Tensor& rgb, const YuvCoding& coding) {
  const auto c = coefficients(coding.matrix);
  const auto r = range(coding.full_range);
  const double kg = 1.0 - c.kr - c.kb;
  auto red = rgb.narrow(1, 0, 1), green = rgb.narrow(1, 1, 1), blue = rgb.narrow(1, 2, 1);
  auto luma = red * c.kr + green * kg + blue * c.kb;
  auto pb = (blue - luma) * (0.5 / (1.0 - c.kb));
  auto pr = (red - luma) * (0.5 / (1.0 - c.kr));
  YuvPlanes out;
  out.y = luma * r.y_scale + r.y_offset;
  out.uv = downsample_chroma(at::cat({pb, pr}, 1)) * r.c_scale + 128.0;
  return out;
}

at::Tensor yuv_to_rgb(const YuvPlanes& yuv, const YuvCoding& coding) {
  const auto c = coefficients(coding.matrix);
  const auto r = range(coding.full_range);
  const double kg = 1.0 - c.kr - c.kb;
  const int64_t height = yuv.y.size(2), width = yuv.y.size(3);
  if (yuv.y.device().is_cpu() && yuv.y.scalar_type() == at::kFloat && yuv.uv.scalar_type() == at::kFloat) {
    // The same float operations as below, in one pass (ATen makes a frame-sized temporary of each).
    const cpu::YuvToRgbConstants k{float(r.y_offset), float(1.0 / r.y_scale), float(1.0 / r.c_scale),
                                   float(2.0 * (1.0 - c.kr)), float(2.0 * (1.0 - c.kb)), float(c.kr), float(c.kb),
                                   float(1.0 / kg)};
    return cpu::yuv_to_rgb(yuv.y, yuv.uv, k);
  }
  auto luma = (yuv.y - r.y_offset) * (1.0 / r.y_scale);
  auto chroma = upsample_chroma((yuv.uv - 128.0) * (1.0 / r.c_scale), height, width);
  auto pb = chroma.narrow(1, 0, 1), pr = chroma.narrow(1, 1, 1);
  auto red = luma + pr * (2.0 * (1.0 - c.kr));
  auto blue = luma + pb * (2.0 * (1.0 - c.kb));
  auto green = (luma - red * c.kr - blue * c.kb) * (1.0 / kg);
  return at::cat({red, green, blue}, 1).clamp_(0.0, 1.0);
}

}  // namespace bd
