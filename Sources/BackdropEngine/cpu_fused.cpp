#include "cpu_fused.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "birefnet/cpu_kernels.h"  // cpu_parallel_for: at::parallel_for is serial in this build

namespace bd::cpu {

BilinearAxis bilinear_axis(int64_t in, int64_t out) {
  BilinearAxis axis;
  axis.first.resize(static_cast<size_t>(out));
  axis.second.resize(static_cast<size_t>(out));
  axis.first_weight.resize(static_cast<size_t>(out));
  axis.second_weight.resize(static_cast<size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    const float source = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.0f);
    const auto first = static_cast<int64_t>(source);
    const float lambda = std::min(std::max(source - static_cast<float>(first), 0.0f), 1.0f);
    const auto k = static_cast<size_t>(i);
    axis.first[k] = first;
    axis.second[k] = first + (first < in - 1 ? 1 : 0);
    axis.first_weight[k] = 1.0f - lambda;
    axis.second_weight[k] = lambda;
  }
  return axis;
}

namespace {

// Each row of an h×w plane resized to `width` columns (the horizontal half of a bilinear resize):
// the frame's rows then blend two of these, in the order ATen's kernel sums (columns, then rows).
std::vector<float> widen_rows(const float* plane, int64_t h, int64_t w, const BilinearAxis& cols, int64_t width) {
  std::vector<float> wide(static_cast<size_t>(h * width));
  birefnet::cpu_parallel_for(h, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = plane + r * w;
      float* out = wide.data() + r * width;
      for (int64_t x = 0; x < width; ++x) {
        const auto k = static_cast<size_t>(x);
        out[x] = cols.first_weight[k] * row[cols.first[k]] + cols.second_weight[k] * row[cols.second[k]];
      }
    }
  });
  return wide;
}

// A plane [h,w] bilinearly resized to height×width row by row: the columns once per source row
// (widen_rows), the rows per output row; `row(y)` is output row y.
class ResizedPlane {
 public:
  ResizedPlane(const float* plane, int64_t h, int64_t w, int64_t height, int64_t width)
      : same_(h == height && w == width), plane_(plane), width_(width), rows_(bilinear_axis(h, height)) {
    if (!same_) wide_ = widen_rows(plane, h, w, bilinear_axis(w, width), width);
  }
  // Output row y into `out` (width values); a plane already at the size is read in place.
  const float* row(int64_t y, float* out) const {
    if (same_) return plane_ + y * width_;
    const auto k = static_cast<size_t>(y);
    const float upper = rows_.first_weight[k], lower = rows_.second_weight[k];
    const float* a = wide_.data() + rows_.first[k] * width_;
    const float* b = wide_.data() + rows_.second[k] * width_;
    for (int64_t x = 0; x < width_; ++x) out[x] = upper * a[x] + lower * b[x];
    return out;
  }

 private:
  bool same_;
  const float* plane_;
  int64_t width_;
  BilinearAxis rows_;
  std::vector<float> wide_;
};

}  // namespace

at::Tensor still_history_blend(const at::Tensor& prob, const at::Tensor& history, const at::Tensor& displacement,
                               const at::Tensor& weight) {
  const int64_t height = prob.size(1), width = prob.size(2);
  const int64_t h = displacement.size(1), w = displacement.size(2);
  auto p = prob.contiguous(), hist = history.contiguous(), d = displacement.contiguous(), wt = weight.contiguous();
  auto out = at::empty_like(p);
  const float* pp = p.data_ptr<float>();
  const float* hp = hist.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // A grid of another size is in its own pixels: scaled to the frame's as it is resized.
  const bool resized = h != height || w != width;
  const float scale_x = resized ? static_cast<float>(width) / static_cast<float>(w) : 1.0f;
  const float scale_y = resized ? static_cast<float>(height) / static_cast<float>(h) : 1.0f;
  const ResizedPlane plane_x(d.data_ptr<float>(), h, w, height, width);
  const ResizedPlane plane_y(d.data_ptr<float>() + h * w, h, w, height, width);
  const ResizedPlane plane_weight(wt.data_ptr<float>(), h, w, height, width);
  const float max_x = static_cast<float>(width - 1), max_y = static_cast<float>(height - 1);
  birefnet::cpu_parallel_for(height, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> buffer(static_cast<size_t>(3 * width));
    for (int64_t y = begin; y < end; ++y) {
      const float* row_x = plane_x.row(y, buffer.data());
      const float* row_y = plane_y.row(y, buffer.data() + width);
      const float* row_weight = plane_weight.row(y, buffer.data() + 2 * width);
      const float* here_row = pp + y * width;
      float* out_row = op + y * width;
      for (int64_t x = 0; x < width; ++x) {
        const float mx = row_x[x] * scale_x;
        const float my = row_y[x] * scale_y;
        const float fxs = std::min(std::max(static_cast<float>(x) + mx, 0.0f), max_x);
        const float fys = std::min(std::max(static_cast<float>(y) + my, 0.0f), max_y);
        // Both are clamped to 0 or more, where truncation is floor (std::floor is a libm call
        // on the x86-64 baseline, which has no rounding instruction).
        const auto x0i = static_cast<int64_t>(fxs), y0i = static_cast<int64_t>(fys);
        const float fx = fxs - static_cast<float>(x0i), fy = fys - static_cast<float>(y0i);
        const int64_t x1i = std::min(x0i + 1, width - 1), y1i = std::min(y0i + 1, height - 1);
        const float* r0 = hp + y0i * width;
        const float* r1 = hp + y1i * width;
        const float top = r0[x0i] * (1 - fx) + r0[x1i] * fx;
        const float bottom = r1[x0i] * (1 - fx) + r1[x1i] * fx;
        const float warped = top * (1 - fy) + bottom * fy;
        // exp of under −87 is below float's normal range (0 to the result), and libm's underflow
        // path is slow: the gate is 0 there outright.
        const float gate = (mx * mx + my * my) / 0.25f;
        const float still = gate < 87.0f ? std::exp(-gate) : 0.0f;
        const float here = here_row[x];
        out_row[x] = here + row_weight[x] * still * (warped - here);
      }
    }
  });
  return out;
}


at::Tensor guided_blend(const at::Tensor& coefficients, const at::Tensor& probability, const at::Tensor& band,
                        const at::Tensor& settled, const at::Tensor& guide) {
  const int64_t n = guide.size(0), height = guide.size(2), width = guide.size(3);
  auto c = coefficients.contiguous(), p = probability.contiguous(), u = band.contiguous(), g = guide.contiguous();
  auto s = settled.defined() ? settled.contiguous() : at::Tensor();
  auto out = at::empty({n, 1, height, width}, g.options());
  // Each plane on its own grid: the coefficients and the band on the fit's, the others on the
  // probability's.
  auto resized = [&](const at::Tensor& t, int64_t i, int64_t channel) {
    const int64_t h = t.size(2), w = t.size(3);
    return std::make_unique<ResizedPlane>(t.data_ptr<float>() + (i * t.size(1) + channel) * h * w, h, w, height, width);
  };
  for (int64_t i = 0; i < n; ++i) {
    const auto a = resized(c, i, 0), b = resized(c, i, 1), plain = resized(p, i, 0), uncertain = resized(u, i, 0);
    const auto still = s.defined() ? resized(s, i, 0) : nullptr;
    const float* gp = g.data_ptr<float>() + i * height * width;
    float* op = out.data_ptr<float>() + i * height * width;
    birefnet::cpu_parallel_for(height, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> buffer(static_cast<size_t>(5 * width));
      float* scratch = buffer.data();
      for (int64_t y = begin; y < end; ++y) {
        const float* ra = a->row(y, scratch);
        const float* rb = b->row(y, scratch + width);
        const float* rp = plain->row(y, scratch + 2 * width);
        const float* ru = uncertain->row(y, scratch + 3 * width);
        const float* rs = still ? still->row(y, scratch + 4 * width) : nullptr;
        const float* guide_row = gp + y * width;
        float* out_row = op + y * width;
        for (int64_t x = 0; x < width; ++x) {
          const float guided = std::min(std::max(ra[x] * (guide_row[x] - 0.5f) + rb[x] + 0.5f, 0.0f), 1.0f);
          const float weight = rs ? ru[x] * (1.0f - rs[x]) : ru[x];
          out_row[x] = std::min(std::max(rp[x] + weight * (guided - rp[x]), 0.0f), 1.0f);
        }
      }
    });
  }
  return out;
}

at::Tensor foreground_final(const at::Tensor& image, const at::Tensor& alpha, const at::Tensor& means, double lowest,
                            double highest) {
  const int64_t n = image.size(0), channels = image.size(1), height = image.size(2), width = image.size(3);
  const int64_t h = means.size(2), w = means.size(3);
  auto result = image.contiguous().clone();
  auto a = alpha.contiguous(), m = means.contiguous();
  const auto rows = bilinear_axis(h, height), cols = bilinear_axis(w, width);
  const float low = static_cast<float>(lowest), high = static_cast<float>(highest);
  for (int64_t i = 0; i < n; ++i) {
    const float* ap = a.data_ptr<float>() + i * height * width;
    const float* mp = m.data_ptr<float>() + i * 2 * channels * h * w;
    float* rp = result.data_ptr<float>() + i * channels * height * width;
    birefnet::cpu_parallel_for(height, 16, [&](int64_t begin, int64_t end) {
      for (int64_t y = begin; y < end; ++y) {
        const auto yi = static_cast<size_t>(y);
        const float upper = rows.first_weight[yi], lower = rows.second_weight[yi];
        const int64_t top = rows.first[yi] * w, bottom = rows.second[yi] * w;
        for (int64_t x = 0; x < width; ++x) {
          const float coverage = ap[y * width + x];
          if (!(coverage > 0.02f && coverage < 0.98f)) continue;  // the thin band of partly covered pixels
          const auto k = static_cast<size_t>(x);
          const int64_t left = cols.first[k], right = cols.second[k];
          const float lw = cols.first_weight[k], rw = cols.second_weight[k];
          auto mean = [&](int64_t plane) {
            const float* p = mp + plane * h * w;
            return upper * (lw * p[top + left] + rw * p[top + right]) + lower * (lw * p[bottom + left] + rw * p[bottom + right]);
          };
          for (int64_t c = 0; c < channels; ++c) {
            const float f = mean(c), b = mean(channels + c);
            float& pixel = rp[(c * height + y) * width + x];
            pixel = std::min(std::max(f + coverage * (pixel - coverage * f - (1.0f - coverage) * b), low), high);
          }
        }
      }
    });
  }
  return result;
}

at::Tensor yuv_to_rgb(const at::Tensor& y, const at::Tensor& uv, const YuvToRgbConstants& k) {
  const int64_t n = y.size(0), height = y.size(2), width = y.size(3), ch = uv.size(2), cw = uv.size(3);
  auto luma_planes = y.contiguous(), chroma_planes = uv.contiguous();
  auto out = at::empty({n, 3, height, width}, luma_planes.options());
  for (int64_t i = 0; i < n; ++i) {
    const float* yp = luma_planes.data_ptr<float>() + i * height * width;
    const float* up = chroma_planes.data_ptr<float>() + i * 2 * ch * cw;
    const float* vp = up + ch * cw;
    float* red_plane = out.data_ptr<float>() + i * 3 * height * width;
    float* green_plane = red_plane + height * width;
    float* blue_plane = green_plane + height * width;
    birefnet::cpu_parallel_for(height, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const float* u_row = up + (row / 2) * cw;
        const float* v_row = vp + (row / 2) * cw;
        for (int64_t x = 0; x < width; ++x) {
          const int64_t at = row * width + x;
          const float luma = (yp[at] - k.y_offset) * k.y_factor;
          const float pb = (u_row[x / 2] - 128.0f) * k.c_factor;
          const float pr = (v_row[x / 2] - 128.0f) * k.c_factor;
          const float red = luma + pr * k.red_pr;
          const float blue = luma + pb * k.blue_pb;
          const float green = (luma - red * k.kr - blue * k.kb) * k.green_factor;
          red_plane[at] = std::min(std::max(red, 0.0f), 1.0f);
          green_plane[at] = std::min(std::max(green, 0.0f), 1.0f);
          blue_plane[at] = std::min(std::max(blue, 0.0f), 1.0f);
        }
      }
    });
  }
  return out;
}

at::Tensor box_mean(const at::Tensor& x, int64_t radius) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  auto input = x.contiguous();
  auto across = at::empty_like(input), out = at::empty_like(input);
  const float* in = input.data_ptr<float>();
  float* mid = across.data_ptr<float>();
  float* result = out.data_ptr<float>();
  // Pixels of the window around i on an axis of `length`.
  auto count = [radius](int64_t i, int64_t length) {
    return static_cast<double>(std::min(length, i + radius + 1) - std::max<int64_t>(0, i - radius));
  };
  // Along each row.
  birefnet::cpu_parallel_for(planes * h, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = in + r * w;
      float* dst = mid + r * w;
      double sum = 0;
      for (int64_t j = 0; j < std::min(w, radius + 1); ++j) sum += row[j];
      for (int64_t j = 0; j < w; ++j) {
        dst[j] = static_cast<float>(sum / count(j, w));
        if (j + radius + 1 < w) sum += row[j + radius + 1];
        if (j - radius >= 0) sum -= row[j - radius];
      }
    }
  });
  // Down each column, a row of column sums at a time.
  birefnet::cpu_parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sums(static_cast<size_t>(w));
    for (int64_t p = begin; p < end; ++p) {
      const float* plane = mid + p * h * w;
      float* dst = result + p * h * w;
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int64_t i = 0; i < std::min(h, radius + 1); ++i)
        for (int64_t j = 0; j < w; ++j) sums[static_cast<size_t>(j)] += plane[i * w + j];
      for (int64_t i = 0; i < h; ++i) {
        const double n = count(i, h);
        for (int64_t j = 0; j < w; ++j) dst[i * w + j] = static_cast<float>(sums[static_cast<size_t>(j)] / n);
        if (i + radius + 1 < h)
          for (int64_t j = 0; j < w; ++j) sums[static_cast<size_t>(j)] += plane[(i + radius + 1) * w + j];
        if (i - radius >= 0)
          for (int64_t j = 0; j < w; ++j) sums[static_cast<size_t>(j)] -= plane[(i - radius) * w + j];
      }
    }
  });
  return out;
}

at::Tensor block_mean(const at::Tensor& x, int64_t factor) {
  const int64_t planes = x.size(0) * x.size(1), height = x.size(2), width = x.size(3);
  const int64_t h = (height + factor - 1) / factor, w = (width + factor - 1) / factor;
  auto input = x.contiguous();
  auto out = at::empty({x.size(0), x.size(1), h, w}, input.options());
  const float* in = input.data_ptr<float>();
  float* result = out.data_ptr<float>();
  birefnet::cpu_parallel_for(planes * h, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> sums(static_cast<size_t>(w));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / h, row = r % h;
      const int64_t top = row * factor, bottom = std::min(top + factor, height);
      std::fill(sums.begin(), sums.end(), 0.0f);
      // Summed row by row within each block, in the order avg_pool2d's kernel adds them.
      for (int64_t y = top; y < bottom; ++y) {
        const float* line = in + (plane * height + y) * width;
        for (int64_t j = 0; j < w; ++j) {
          const int64_t left = j * factor, right = std::min(left + factor, width);
          float sum = sums[static_cast<size_t>(j)];
          for (int64_t x = left; x < right; ++x) sum += line[x];
          sums[static_cast<size_t>(j)] = sum;
        }
      }
      float* dst = result + r * w;
      for (int64_t j = 0; j < w; ++j) {
        const int64_t count = (bottom - top) * (std::min((j + 1) * factor, width) - j * factor);
        dst[j] = sums[static_cast<size_t>(j)] / static_cast<float>(count);
      }
    }
  });
  return out;
}

}  // namespace bd::cpu
