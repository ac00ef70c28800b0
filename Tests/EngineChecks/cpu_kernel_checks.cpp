// The hand-written CPU kernels of the native BiRefNet (Sources/BackdropEngine/birefnet:
// deform_gather.cpp, window_attention.cpp, cpu_parallel.cpp, onednn_conv.cpp) and of the
// post-processing (cpu_fused.cpp) against plain references or the ATen ops they replace, at the
// awkward sizes and values (taps far outside the map, NaN offsets, masked keys, sizes that are
// not multiples of the vector width). Built with ASan+UBSan by scripts/ci-sanitizers.sh
// (fuzz/build.sh checks), so every out-of-bounds read of the kernels fails CI.
#include <ATen/ATen.h>

#include <atomic>
#include <tuple>
#include <utility>
#include <cmath>
#include <cstdio>
#include <vector>

#include "birefnet/cpu_kernels.h"
#include "cpu_fused.h"
#include "birefnet/net.h"
#include "checks.h"

namespace {

using namespace bd::birefnet;

// torchvision's bilinear_interpolate (deform_conv2d's CPU kernel), written out plainly.
float bilinear(const float* x, int64_t h, int64_t w, int64_t c, int64_t ch, float y, float xx) {
  if (y <= -1 || y >= h || xx <= -1 || xx >= w) return 0.0f;
  const int64_t y0 = int64_t(std::floor(y)), x0 = int64_t(std::floor(xx)), y1 = y0 + 1, x1 = x0 + 1;
  const float ly = y - y0, lx = xx - x0, hy = 1 - ly, hx = 1 - lx;
  auto at = [&](int64_t yy, int64_t xv) { return (yy >= 0 && yy < h && xv >= 0 && xv < w) ? x[(yy * w + xv) * c + ch] : 0.0f; };
  return hy * hx * at(y0, x0) + hy * lx * at(y0, x1) + ly * hx * at(y1, x0) + ly * lx * at(y1, x1);
}

void deform_gather_matches_torchvision() {
  for (int64_t k : {1, 3, 7}) {
    const int64_t h = 9, w = 11, c = 13, kk = k * k;
    at::manual_seed(k);
    auto input = at::randn({h, w, c});
    // Offsets from -12 to 12 pixels: many taps land beyond the map, some exactly on its edge.
    auto om = at::randn({h, w, 3 * kk}) * 4.0;
    om.select(2, 0).fill_(-1.0);  // tap 0 dy: exactly one pixel up from the first row
    auto* o = om.data_ptr<float>();
    o[5 * 3 * kk + 1] = NAN;                        // pixel 5: tap 0 dx is NaN (a zero sample)
    if (k > 1) o[7 * 3 * kk + 2 * kk + 1] = NAN;    // pixel 7: tap 1's modulator is NaN
    auto cols = at::full({h * w, kk * c}, 123.0f);  // every element must be written
    DeformGatherArgs args{input.data_ptr<float>(), o, h, w, c, k, 0, h * w};
    deform_gather(args, cols.data_ptr<float>());
    const float* x = input.data_ptr<float>();
    const float* got = cols.data_ptr<float>();
    double worst = 0;
    int nan_ok = 0, nan_expected = 0;
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t t = 0; t < kk; ++t) {
        const float* op = o + p * 3 * kk;
        const float sy = float(p / w - k / 2 + t / k) + op[2 * t], sx = float(p % w - k / 2 + t % k) + op[2 * t + 1];
        const float m = 2.0f / (1.0f + std::exp(-op[2 * kk + t]));
        for (int64_t ch = 0; ch < c; ++ch) {
          const float g = got[p * kk * c + t * c + ch];
          if (std::isnan(m)) {
            ++nan_expected;
            nan_ok += std::isnan(g);
            continue;
          }
          const float want = std::isnan(sx) ? 0.0f : m * bilinear(x, h, w, c, ch, sy, sx);
          worst = std::max(worst, double(std::fabs(g - want)));
        }
      }
    CHECK(worst < 1e-5, "k=%lld: largest difference from torchvision's sampling %.3g", (long long)k, worst);
    CHECK(nan_ok == nan_expected, "k=%lld: %d of %d samples with a NaN modulator are NaN", (long long)k, nan_ok,
          nan_expected);
  }
  // A chunk in the middle of the frame fills only its own rows.
  const int64_t h = 5, w = 6, c = 8, k = 3, kk = 9;
  auto input = at::randn({h, w, c});
  auto om = at::randn({h, w, 3 * kk});
  auto full = at::empty({h * w, kk * c});
  deform_gather({input.data_ptr<float>(), om.data_ptr<float>(), h, w, c, k, 0, h * w}, full.data_ptr<float>());
  auto part = at::empty({7, kk * c});
  deform_gather({input.data_ptr<float>(), om.data_ptr<float>(), h, w, c, k, 11, 7}, part.data_ptr<float>());
  CHECK(at::equal(part, full.narrow(0, 11, 7)), "pixels 11..17 differ from the whole-frame gather");
}

// softmax(scale * q k^T + bias (+ mask)) v with ATen's own ops.
at::Tensor attention_reference(const at::Tensor& qkv, const at::Tensor& bias, const at::Tensor& mask, int64_t heads) {
  const int64_t bw = qkv.size(0), n = qkv.size(1), c = qkv.size(2) / 3, d = c / heads;
  auto parts = qkv.view({bw, n, 3, heads, d}).permute({2, 0, 3, 1, 4});  // [3, bw, h, n, d]
  auto scores = at::matmul(parts[0], parts[1].transpose(-1, -2)) / std::sqrt(double(d)) + bias.unsqueeze(0);
  if (mask.defined()) {
    const int64_t nw = mask.size(0);
    scores = (scores.view({bw / nw, nw, heads, n, n}) + mask.view({1, nw, 1, n, n})).view({bw, heads, n, n});
  }
  return at::matmul(scores.softmax(-1), parts[2]).transpose(1, 2).reshape({bw, n, c});
}

void window_attention_matches_aten() {
  struct Case { int64_t windows, n, heads, d, mask_windows; double padding; };
  // Swin-T (49 tokens), Swin-L (144), a tiny window, a head width that is not a multiple of 8
  // (the plain loops), masked windows with -inf entries as the shifted windows have, and window
  // positions that are padding (their keys and values are pad_qkv, their outputs not written).
  const Case cases[] = {{6, 49, 3, 32, 0, 0.0},  {4, 144, 2, 32, 2, 0.3}, {3, 9, 1, 8, 3, 0.5},
                        {2, 25, 2, 12, 0, 0.2},  {8, 49, 2, 32, 4, 0.0},  {5, 49, 3, 32, 5, 0.6},
                        {3, 25, 2, 12, 3, 0.4}};
  for (const auto& cs : cases) {
    at::manual_seed(cs.n * 7 + cs.d);
    const int64_t c = cs.heads * cs.d, positions = cs.windows * cs.n;
    // Each real token sits at one window position, in a shuffled order; the rest are padding.
    auto is_pad = at::rand({positions}) < cs.padding;
    const int64_t tokens = positions - is_pad.sum().item<int64_t>();
    auto token = at::full({positions}, tokens, at::kLong);
    auto order = at::randperm(tokens, at::kLong);
    for (int64_t p = 0, next = 0; p < positions; ++p)
      if (!is_pad[p].item<bool>()) token[p] = order[next++];
    auto qkv = at::randn({tokens, 3 * c});
    auto pad_qkv = at::randn({3 * c});
    auto bias = at::randn({cs.heads, cs.n, cs.n});
    at::Tensor mask;
    if (cs.mask_windows) {
      mask = at::zeros({cs.mask_windows, cs.n, cs.n});
      mask.masked_fill_(at::rand({cs.mask_windows, cs.n, cs.n}) < 0.3, -INFINITY);
      mask.diagonal(0, 1, 2).fill_(0.0f);  // every query keeps at least itself, as in Swin
    }
    auto out = at::full({tokens, c}, 123.0f);
    WindowAttentionArgs args{qkv.data_ptr<float>(), pad_qkv.data_ptr<float>(), token.data_ptr<int64_t>(), tokens,
                             bias.data_ptr<float>(), mask.defined() ? mask.data_ptr<float>() : nullptr,
                             cs.windows, cs.n, cs.heads, cs.d, cs.mask_windows ? cs.mask_windows : 1,
                             float(1.0 / std::sqrt(double(cs.d))), out.data_ptr<float>()};
    window_attention(args);
    // The reference on the windows as the official code forms them, read back at the real tokens.
    auto windows = at::cat({qkv, pad_qkv.view({1, 3 * c})}, 0).index_select(0, token).view({cs.windows, cs.n, 3 * c});
    auto per_position = attention_reference(windows, bias, mask, cs.heads).reshape({positions, c});
    auto want = at::empty({tokens, c});
    want.index_copy_(0, token.masked_select(~is_pad), per_position.index_select(0, at::nonzero(~is_pad).view({-1})));
    const double worst = tokens ? (out - want).abs().max().item<double>() : 0.0;
    CHECK(worst < 2e-5, "n=%lld heads=%lld d=%lld masked=%d padding=%.1f: largest difference from ATen %.3g",
          (long long)cs.n, (long long)cs.heads, (long long)cs.d, mask.defined() ? 1 : 0, cs.padding, worst);
  }
}

void parallel_for_covers_each_index_once() {
  for (int64_t n : {0, 1, 7, 1000, 4099})
    for (int64_t grain : {1, 16, 5000}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      for (auto& s : seen) s = 0;
      std::atomic<bool> bad_range{false};
      cpu_parallel_for(n, grain, [&](int64_t begin, int64_t end) {
        if (begin < 0 || end > n || begin >= end) bad_range = true;
        for (int64_t i = begin; i < end; ++i) seen[size_t(i)]++;
      });
      int wrong = 0;
      for (auto& s : seen) wrong += s != 1;
      CHECK(wrong == 0 && !bad_range, "n=%lld grain=%lld: %d indices not visited exactly once", (long long)n,
            (long long)grain, wrong);
    }
}

// The direct oneDNN convolution (onednn_conv.h) behind Conv and Linear against ATen's conv2d and
// linear: shapes as BiRefNet has them (1x1 token GEMMs, 3x3, the 4x4 stride-4 patch embedding, the
// 5x5 head from 3 channels), both input layouts, every epilogue, results written into a target and
// accumulated into it, one layer run at several input sizes (a kernel and packing per size, the
// later ones packed from the first copy), and the weights the layer owns given back bit-exact.
void onednn_conv_matches_aten() {
  if (!make_onednn_conv(at::ones({1, 1, 1, 1}), at::Tensor())) {
    std::printf("skip: this build has no direct oneDNN path (BD_WITH_ONEDNN)\n");
    return;
  }
  struct Case { int64_t n, c, h, w, o, k, stride, pad; };
  const Case cases[] = {{1, 96, 1, 300, 288, 1, 1, 0}, {2, 64, 13, 11, 256, 3, 1, 1}, {1, 3, 32, 24, 96, 4, 4, 0},
                        {1, 3, 17, 19, 1, 5, 1, 2},    {3, 24, 8, 8, 16, 7, 1, 3},   {1, 130, 9, 7, 20, 3, 1, 1}};
  for (const auto& cs : cases) {
    at::manual_seed(cs.c * 31 + cs.k);
    const auto weight = at::randn({cs.o, cs.c, cs.k, cs.k}) / std::sqrt(double(cs.c * cs.k * cs.k));
    const auto bias = at::randn({cs.o});
    const Conv conv = make_conv(weight.clone(), bias, cs.stride, cs.pad);
    CHECK(conv.kernels && !conv.w.defined(), "c=%lld k=%lld: make_conv kept its own plain weights", (long long)cs.c,
          (long long)cs.k);
    if (!conv.kernels) continue;
    for (int64_t scale : {1, 2, 1}) {  // a second input size, then the first again (its cached kernel)
      auto x = at::randn({cs.n, cs.c, cs.h * scale, cs.w});
      auto plain = at::conv2d(x, weight, bias, {cs.stride, cs.stride}, {cs.pad, cs.pad});
      const std::pair<Epilogue, at::Tensor> expected[] = {
          {Epilogue::None, plain}, {Epilogue::ReLU, plain.relu()}, {Epilogue::GELU, at::gelu(plain)}};
      for (const auto& [epilogue, want] : expected) {
        for (bool channels_last : {false, true}) {
          auto in = channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
          auto direct = onednn_conv(*conv.kernels, in, cs.stride, cs.pad, epilogue, {});
          CHECK(direct.defined(), "c=%lld k=%lld: oneDNN gave no kernel", (long long)cs.c, (long long)cs.k);
          if (!direct.defined()) continue;
          const double worst = (direct - want).abs().max().item<double>();
          CHECK(worst < 1e-4, "c=%lld k=%lld stride=%lld scale=%lld epilogue=%d nhwc=%d: largest difference %.3g",
                (long long)cs.c, (long long)cs.k, (long long)cs.stride, (long long)scale, int(epilogue),
                int(channels_last), worst);
        }
      }
      // Accumulated into a target before the epilogue: relu(target + conv(x)), in the target's storage.
      auto target = at::randn(plain.sizes()).contiguous(at::MemoryFormat::ChannelsLast);
      auto want = (target + plain).relu();
      auto got = conv(x, Epilogue::ReLU, {target, true});
      CHECK(got.data_ptr() == target.data_ptr() && (target - want).abs().max().item<double>() < 1e-4,
            "c=%lld k=%lld: accumulating into the target", (long long)cs.c, (long long)cs.k);
    }
    CHECK(conv.weights().equal(weight), "c=%lld k=%lld: the plain weights given back differ", (long long)cs.c,
          (long long)cs.k);
  }
  // Linear over token rows: the layer owns its weights (only packed copies once it has run), at
  // several token counts (kernels that may want other layouts, packed from the first copy); plain,
  // GELU, added into a residual stream in place; its plain weights given back for the ATen path.
  const auto weight = at::randn({48, 40}) / std::sqrt(40.0), bias = at::randn({48});
  Linear fc = make_linear(weight, bias);
  CHECK(!fc.w.defined() && fc.out == 48 && fc.in == 40, "make_linear kept its own plain weights");
  for (int64_t rows : {35, 16384, 1, 35}) {
    auto tokens = at::randn({rows, 40});
    auto want = at::linear(tokens, weight, bias);
    CHECK((fc(tokens) - want).abs().max().item<double>() < 1e-4, "linear over %lld rows", (long long)rows);
    CHECK((fc(tokens, Epilogue::GELU) - at::gelu(want)).abs().max().item<double>() < 1e-4, "linear + GELU");
    auto residual = at::randn({rows, 48});
    auto expected = residual + want;
    fc(tokens, Epilogue::None, {residual, true});
    CHECK((residual - expected).abs().max().item<double>() < 1e-4, "linear added into the residual");
  }
  CHECK(fc.weights().equal(weight), "the plain weights given back differ");
  // bfloat16 weights (where the CPU has a kernel): float32 activations in, float32 rows out.
  Linear half = make_linear(weight.to(at::kBFloat16), bias.to(at::kBFloat16));
  auto tokens = at::randn({2, 5, 7, 40});
  auto rows = at::zeros({2, 5, 7, 48});
  half(tokens, Epilogue::None, {rows});
  const double bf16_error = (rows - at::linear(tokens, weight, bias)).abs().max().item<double>();
  CHECK(bf16_error < 0.1, "bf16 linear into float32 rows: largest difference %.3g", bf16_error);
}

// The ATen ops TemporalStage::finish runs on a GPU: resize and scale the displacement and the
// weight, warp the history (gathers, edges clamped), gate by stillness, blend.
at::Tensor aten_still_history_blend(const at::Tensor& prob, const at::Tensor& history, const at::Tensor& displacement,
                                    const at::Tensor& weight) {
  const int64_t height = prob.size(1), width = prob.size(2), h = displacement.size(1), w = displacement.size(2);
  auto d = displacement;
  auto wt = weight;
  if (h != height || w != width) {
    auto scale = at::tensor({float(width) / w, float(height) / h}).view({2, 1, 1});
    d = at::upsample_bilinear2d(d.unsqueeze(0), {height, width}, false).squeeze(0) * scale;
    wt = at::upsample_bilinear2d(wt.unsqueeze(0), {height, width}, false).squeeze(0);
  }
  auto ys = at::arange(height, d.options()).view({height, 1}).expand({height, width});
  auto xs = at::arange(width, d.options()).view({1, width}).expand({height, width});
  auto x = (xs + d[0]).clamp(0, double(width - 1)), y = (ys + d[1]).clamp(0, double(height - 1));
  auto x0 = x.floor(), y0 = y.floor();
  auto fx = x - x0, fy = y - y0;
  auto x0i = x0.to(at::kLong), y0i = y0.to(at::kLong);
  auto x1i = (x0i + 1).clamp_max(width - 1), y1i = (y0i + 1).clamp_max(height - 1);
  auto flat = history.reshape({-1});
  auto at_ = [&](const at::Tensor& yi, const at::Tensor& xi) { return flat.index_select(0, (yi * width + xi).reshape({-1})).view({height, width}); };
  auto warped = (at_(y0i, x0i) * (1 - fx) + at_(y0i, x1i) * fx) * (1 - fy) + (at_(y1i, x0i) * (1 - fx) + at_(y1i, x1i) * fx) * fy;
  auto still = at::exp(-(d.pow(2).sum(0, true) / 0.25));
  return prob + wt * still * (warped.unsqueeze(0) - prob);
}

void still_history_blend_matches_aten() {
  // (frame, grid): the grid at the frame's size, a smaller grid, and sizes of one row or column.
  const int64_t sizes[][4] = {{13, 17, 13, 17}, {23, 31, 7, 9}, {1, 19, 1, 5}, {21, 1, 4, 1}};
  for (const auto& size : sizes) {
    at::manual_seed(size[0] * 100 + size[2]);
    auto prob = at::rand({1, size[0], size[1]}), history = at::rand({1, size[0], size[1]});
    // Motion from none to several pixels (beyond the edges, and gates far below exp's range).
    auto displacement = at::randn({2, size[2], size[3]}) * 3.0;
    displacement.select(1, 0).zero_();
    auto weight = at::rand({1, size[2], size[3]});
    auto fused = bd::cpu::still_history_blend(prob, history, displacement, weight);
    auto reference = aten_still_history_blend(prob, history, displacement, weight);
    const double error = (fused - reference).abs().max().item<double>();
    CHECK(error <= 1e-5, "still_history_blend %lldx%lld from %lldx%lld: max error %g", (long long)size[0],
          (long long)size[1], (long long)size[2], (long long)size[3], error);
  }
  // No motion: the history itself, exactly (a static scene must keep its matte bit for bit).
  auto prob = at::rand({1, 9, 12}), history = at::rand({1, 9, 12}), weight = at::rand({1, 9, 12});
  auto fused = bd::cpu::still_history_blend(prob, history, at::zeros({2, 9, 12}), weight);
  CHECK(fused.equal(prob + weight * (history - prob)), "still_history_blend without motion");
}

// guided_upsample's last step as the ATen ops a GPU runs.
at::Tensor aten_guided_blend(const at::Tensor& coefficients, const at::Tensor& probability, const at::Tensor& band,
                             const at::Tensor& settled, const at::Tensor& guide) {
  const int64_t height = guide.size(2), width = guide.size(3);
  auto up = [&](const at::Tensor& t) {
    return t.size(2) == height && t.size(3) == width ? t : at::upsample_bilinear2d(t, {height, width}, false);
  };
  auto c = up(coefficients);
  auto guided = (c.narrow(1, 0, 1) * (guide - 0.5) + c.narrow(1, 1, 1) + 0.5).clamp_(0.0, 1.0);
  auto plain = up(probability);
  auto weight = up(band);
  if (settled.defined()) weight = weight * (1.0 - up(settled));
  return (plain + weight * (guided - plain)).clamp_(0.0, 1.0);
}

void guided_blend_matches_aten() {
  // (frame, probability grid, fit grid)
  const int64_t sizes[][6] = {{17, 19, 7, 8, 5, 6}, {16, 16, 16, 16, 16, 16}, {30, 20, 9, 6, 9, 6}};
  for (const auto& size : sizes) {
    for (bool with_settled : {false, true}) {
      at::manual_seed(size[0] + size[4]);
      auto guide = at::rand({2, 1, size[0], size[1]});
      auto coefficients = at::randn({2, 2, size[4], size[5]});
      auto probability = at::rand({2, 1, size[2], size[3]});
      auto band = at::rand({2, 1, size[4], size[5]});
      auto settled = with_settled ? at::rand({2, 1, size[2], size[3]}) : at::Tensor();
      auto fused = bd::cpu::guided_blend(coefficients, probability, band, settled, guide);
      auto reference = aten_guided_blend(coefficients, probability, band, settled, guide);
      const double error = (fused - reference).abs().max().item<double>();
      CHECK(error <= 1e-5, "guided_blend %lldx%lld (settled %d): max error %g", (long long)size[0], (long long)size[1],
            with_settled, error);
    }
  }
}

// estimate_foreground's last step as the ATen ops a GPU runs: the partly covered pixels take the
// local means sampled with grid_sampler (border), the rest keep the image.
void foreground_final_matches_aten() {
  const int64_t sizes[][4] = {{15, 22, 5, 7}, {12, 12, 12, 12}, {1, 9, 1, 3}};
  for (const auto& size : sizes) {
    at::manual_seed(size[1] + size[3]);
    const int64_t channels = 2, height = size[0], width = size[1];
    auto image = at::rand({2, channels, height, width}) * 255.0;
    auto alpha = at::rand({2, 1, height, width});
    alpha.view({-1}).narrow(0, 0, 4).copy_(at::tensor({0.0f, 0.02f, 0.98f, 1.0f}));  // the band's edges
    auto means = at::rand({2, 2 * channels, size[2], size[3]}) * 255.0;
    auto fused = bd::cpu::foreground_final(image, alpha, means, 0.0, 255.0);
    auto reference = image.clone();
    auto ys = at::arange(height).to(at::kFloat).view({height, 1}).expand({height, width});
    auto xs = at::arange(width).to(at::kFloat).view({1, width}).expand({height, width});
    auto grid = at::stack({(xs + 0.5) * (2.0 / width) - 1.0, (ys + 0.5) * (2.0 / height) - 1.0}, 2).unsqueeze(0);
    for (int64_t i = 0; i < 2; ++i) {
      auto sampled = at::grid_sampler(means.narrow(0, i, 1), grid, 0, 1, false)[0];  // [2c,H,W]
      auto f = sampled.narrow(0, 0, channels), b = sampled.narrow(0, channels, channels), a = alpha[i];
      auto estimate = (f + a * (image[i] - a * f - (1.0 - a) * b)).clamp(0.0, 255.0);
      reference[i] = at::where(a.gt(0.02).logical_and(a.lt(0.98)), estimate, image[i]);
    }
    const double error = (fused - reference).abs().max().item<double>();
    CHECK(error <= 2e-3, "foreground_final %lldx%lld from %lldx%lld: max error %g (of 255)", (long long)height,
          (long long)width, (long long)size[2], (long long)size[3], error);
    CHECK(fused[0][0][0][0].item<float>() == image[0][0][0][0].item<float>(), "alpha 0 keeps the image");
  }
}

// color.cpp's yuv_to_rgb as ATen ops (BT.709 limited range), against the fused pass.
void yuv_to_rgb_matches_aten() {
  const double kr = 0.2126, kb = 0.0722, kg = 1.0 - kr - kb;
  const bd::cpu::YuvToRgbConstants k{16.0f, float(1.0 / 219.0), float(1.0 / 224.0), float(2.0 * (1.0 - kr)),
                                     float(2.0 * (1.0 - kb)), float(kr), float(kb), float(1.0 / kg)};
  for (auto [height, width] : {std::pair<int64_t, int64_t>{9, 13}, {2, 2}, {1, 7}, {16, 32}}) {
    at::manual_seed(height * width);
    auto y = at::randint(0, 256, {2, 1, height, width}).to(at::kFloat);
    auto uv = at::randint(0, 256, {2, 2, (height + 1) / 2, (width + 1) / 2}).to(at::kFloat);
    auto luma = (y - 16.0) * (1.0 / 219.0);
    auto chroma = ((uv - 128.0) * (1.0 / 224.0)).repeat_interleave(2, 2).repeat_interleave(2, 3).narrow(2, 0, height).narrow(3, 0, width);
    auto red = luma + chroma.narrow(1, 1, 1) * (2.0 * (1.0 - kr));
    auto blue = luma + chroma.narrow(1, 0, 1) * (2.0 * (1.0 - kb));
    auto green = (luma - red * kr - blue * kb) * (1.0 / kg);
    auto reference = at::cat({red, green, blue}, 1).clamp_(0.0, 1.0);
    auto fused = bd::cpu::yuv_to_rgb(y, uv, k);
    const double error = (fused - reference).abs().max().item<double>();
    CHECK(error <= 1e-6, "yuv_to_rgb %lldx%lld: max error %g", (long long)height, (long long)width, error);
  }
}

// box_mean: each pixel the plain mean of the window cut at the edges, counted pixel by pixel.
void box_mean_matches_plain_windows() {
  for (auto [height, width, radius] : {std::tuple<int64_t, int64_t, int64_t>{7, 11, 2}, {1, 9, 3}, {12, 5, 6}, {4, 4, 1}}) {
    at::manual_seed(height * 31 + width);
    auto x = at::rand({2, 3, height, width}) * 100.0;
    auto fused = bd::cpu::box_mean(x, radius);
    auto a = x.accessor<float, 4>();
    auto f = fused.accessor<float, 4>();
    double worst = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < height; ++i)
          for (int64_t j = 0; j < width; ++j) {
            double sum = 0;
            int count = 0;
            for (int64_t y = std::max<int64_t>(0, i - radius); y <= std::min(height - 1, i + radius); ++y)
              for (int64_t xx = std::max<int64_t>(0, j - radius); xx <= std::min(width - 1, j + radius); ++xx, ++count)
                sum += a[n][c][y][xx];
            worst = std::max(worst, std::abs(sum / count - f[n][c][i][j]));
          }
    CHECK(worst <= 1e-4, "box_mean %lldx%lld radius %lld: max error %g", (long long)height, (long long)width,
          (long long)radius, worst);
  }
}

// block_mean: avg_pool2d (stride = kernel, ceil_mode, edge blocks cut) exactly.
void block_mean_matches_avg_pool() {
  for (auto [height, width, factor] : {std::tuple<int64_t, int64_t, int64_t>{7, 11, 2}, {9, 9, 3}, {1, 5, 2}, {13, 8, 4}}) {
    at::manual_seed(height * 7 + width);
    auto x = at::rand({2, 3, height, width}) * 255.0;
    auto fused = bd::cpu::block_mean(x, factor);
    auto reference = at::avg_pool2d(x, {factor, factor}, {factor, factor}, {0, 0}, true, false);
    const double error = (fused - reference).abs().max().item<double>();
    CHECK(fused.sizes() == reference.sizes() && error <= 1e-4, "block_mean %lldx%lld by %lld: max error %g",
          (long long)height, (long long)width, (long long)factor, error);
  }
}

}  // namespace

int main() {
  return checks::run_groups({
      {"deformable gather = torchvision's sampling", deform_gather_matches_torchvision},
      {"window attention = ATen's softmax(q k^T + bias) v", window_attention_matches_aten},
      {"cpu_parallel_for covers each index once", parallel_for_covers_each_index_once},
      {"oneDNN convolution with packed weights = ATen conv2d", onednn_conv_matches_aten},
      {"fused temporal blend = the ATen ops", still_history_blend_matches_aten},
      {"fused guided filter output = the ATen ops", guided_blend_matches_aten},
      {"fused foreground estimate's last step = the ATen ops", foreground_final_matches_aten},
      {"fused YUV to RGB = the ATen ops", yuv_to_rgb_matches_aten},
      {"box_mean = plain window means", box_mean_matches_plain_windows},
      {"block_mean = avg_pool2d", block_mean_matches_avg_pool},
  });
}
