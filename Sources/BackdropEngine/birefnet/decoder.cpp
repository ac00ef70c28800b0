// BiRefNet's decoder side: convolutions with folded BatchNorm, the modulated deformable
// convolution (gathered with one grid_sampler call per chunk, then one GEMM), ASPPDeformable,
// BasicDecBlk, the image-patch branches, gradient-attention gating and the output head.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

#include "cpu_kernels.h"
#include "net.h"

namespace bd {
namespace birefnet {

// Named scopes for a profiler (libtorch's RecordFunction): free when no profiler is on.
#define BD_STAGE(name) RECORD_USER_SCOPE("birefnet." name)

namespace {

// Fold an eval-mode BatchNorm (eps 1e-5) into a preceding convolution, in float64.
void fold_bn(WeightSource& src, const std::string& bn, int64_t ch, at::Tensor& w, at::Tensor& b) {
  auto g = src.take(bn + ".weight", {ch}).to(at::kDouble);
  auto beta = src.take(bn + ".bias", {ch}).to(at::kDouble);
  auto mean = src.take(bn + ".running_mean", {ch}).to(at::kDouble);
  auto var = src.take(bn + ".running_var", {ch}).to(at::kDouble);
  if (src.has(bn + ".num_batches_tracked")) src.mark_used(bn + ".num_batches_tracked");
  auto s = g / at::sqrt(var + 1e-5);
  std::vector<int64_t> view(size_t(w.dim()), 1);
  view[0] = ch;
  auto wd = w.to(at::kDouble) * s.view(view);
  auto bd = b.defined() ? b.to(at::kDouble) : at::zeros({ch}, at::kDouble);
  w = (wd).to(at::kFloat);
  b = ((bd - mean) * s + beta).to(at::kFloat);
}

// A convolution's weights and bias in the compute type, with its BatchNorm (if any) folded in.
std::pair<at::Tensor, at::Tensor> folded_weights(WeightSource& src, const std::string& key, int64_t out, int64_t in,
                                                 int64_t k, bool bias, const std::string& bn, const Compute& to) {
  at::Tensor w = src.take(key + ".weight", {out, in, k, k});
  at::Tensor b;
  if (bias) b = src.take(key + ".bias", {out});
  if (!bn.empty()) fold_bn(src, bn, out, w, b);
  return {to.gemm_weight(w), b.defined() ? to.gemm_weight(b) : at::Tensor()};
}

// A stride-1 k x k convolution (padding k/2) from the checkpoint.
Conv load_conv(WeightSource& src, const std::string& key, int64_t out, int64_t in, int64_t k, bool bias,
               const std::string& bn, const Compute& to) {
  const auto [w, b] = folded_weights(src, key, out, in, k, bias, bn, to);
  return make_conv(w, b, 1, k / 2);
}

DeformConv make_deform(WeightSource& src, const std::string& prefix, int64_t in, int64_t out, int64_t k,
                       const Compute& to) {
  const int64_t kk = k * k;
  const std::string p = prefix + ".atrous_conv.";
  auto ow = src.take(p + "offset_conv.weight", {2 * kk, in, k, k});
  auto ob = src.take(p + "offset_conv.bias", {2 * kk});
  auto mw = src.take(p + "modulator_conv.weight", {kk, in, k, k});
  auto mb = src.take(p + "modulator_conv.bias", {kk});
  DeformConv d;
  d.k = k;
  d.cpu_kernels = cpu_kernels_enabled();
  d.offset_mask = make_conv(to.gemm_weight(at::cat({ow, mw}, 0)), to.gemm_weight(at::cat({ob, mb}, 0)), 1, k / 2);
  at::Tensor w = src.take(p + "regular_conv.weight", {out, in, k, k});
  at::Tensor b;
  fold_bn(src, prefix + ".bn", out, w, b);
  d.conv = make_linear(to.gemm_weight(w.reshape({out, in, kk}).permute({0, 2, 1}).reshape({out, kk * in})),
                       to.gemm_weight(b));
  return d;
}

// Largest number of gathered elements (C*K*pixels) per chunk of the deformable convolution: on
// the CPU about what stays in cache while the GEMM reads it; on a GPU far more, because each
// chunk costs a handful of kernel launches and small GEMMs leave the GPU idle (BiRefNet at 1024²
// batch 1 would otherwise take 52 chunks per 7x7 deformable convolution of decoder level 1),
// while 64 Mi samples are 256 MB of float32, a small part of a GPU's memory.
constexpr int64_t kDeformChunk = int64_t(1) << 22;
constexpr int64_t kDeformChunkGpu = int64_t(1) << 26;

}  // namespace

at::Tensor resize_ac(const at::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  if (x.size(2) == 1 && x.size(3) == 1) return x.expand({x.size(0), x.size(1), h, w}).contiguous();
  // Reduced precision: interpolate in float32 (CPU bf16 bilinear loses ~5 % on the half-resolution
  // backbone input; the cost of two casts is small next to the convolutions).
  if (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16)
    return at::upsample_bilinear2d(x.to(at::kFloat), {h, w}, true).to(x.scalar_type());
  return at::upsample_bilinear2d(x, {h, w}, true);
}

// DCNv2 as torchvision.ops.deform_conv2d computes it: tap t = (i, j) of output pixel (y, x)
// samples the input bilinearly at (y - p + i + dy, x - p + j + dx), corners outside the map count
// as zero, and the sample is scaled by the modulator 2*sigmoid(m). The sampled taps form an
// im2col matrix [pixels, K*C] for one GEMM with the tap-major weight, computed in chunks of rows
// so that the matrix stays small. On the CPU the samples come from deform_gather (channels-last);
// elsewhere from grid_sampler (on the CPU too in a model built with BD_TESTING_KERNELS=aten).
at::Tensor DeformConv::relu_rows(const at::Tensor& x) const {
  BD_STAGE("deform_conv");
  auto om = offset_mask(x);  // [B, 3K, H, W]
  if (cpu_kernels && x.is_cpu()) return rows_gather(x, om);
  return rows_grid_sampler(x, om).relu_();
}

at::Tensor DeformConv::rows_gather(const at::Tensor& x, const at::Tensor& om) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w_ = x.size(3), kk = k * k, out_ch = conv.out;
  // Channels-last float32 copies (none when the input already is: ASPPDeformable passes it so).
  auto input = x.to(at::kFloat).permute({0, 2, 3, 1}).contiguous();  // [B, H, W, C]
  auto offsets = om.to(at::kFloat).permute({0, 2, 3, 1}).contiguous();  // [B, H, W, 3K]
  auto y = at::empty({b, h * w_, out_ch}, x.options());
  const int64_t rows_per_chunk = std::max<int64_t>(1, std::min(h, kDeformChunk / (kk * c * w_)));
  auto cols = at::empty({rows_per_chunk * w_, kk * c}, x.options().dtype(at::kFloat));
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t r0 = 0; r0 < h; r0 += rows_per_chunk) {
      const int64_t pixels = std::min(rows_per_chunk, h - r0) * w_;
      DeformGatherArgs args{input.select(0, i).data_ptr<float>(), offsets.select(0, i).data_ptr<float>(),
                            h, w_, c, k, r0 * w_, pixels};
      deform_gather(args, cols.data_ptr<float>());
      auto matrix = cols.narrow(0, 0, pixels);
      if (x.scalar_type() != at::kFloat) matrix = matrix.to(x.scalar_type());
      // The GEMM as oneDNN's 1x1 convolution (see linear): 20-40 % faster than BLAS here; the
      // ReLU fused, the rows written in place.
      conv(matrix, Epilogue::ReLU, {y.select(0, i).narrow(0, r0 * w_, pixels)});
    }
  }
  return y;
}

at::Tensor DeformConv::rows_grid_sampler(const at::Tensor& x, const at::Tensor& om) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w_ = x.size(3), kk = k * k, pad = k / 2;
  auto off = om.narrow(1, 0, 2 * kk).reshape({b, kk, 2, h, w_});  // reshape: om may be channels-last
  auto mod = at::sigmoid(om.narrow(1, 2 * kk, kk)).mul_(2.0);  // [B, K, H, W]
  auto opts = x.options();
  // Base positions: tap offsets plus the pixel grid, in normalised coordinates.
  auto tap = at::arange(kk, opts.dtype(at::kFloat));
  auto ti = at::floor(tap / double(k)) - double(pad);  // row offset of each tap
  auto tj = tap - at::floor(tap / double(k)) * double(k) - double(pad);
  auto ys = at::arange(h, opts.dtype(at::kFloat)).view({1, 1, h, 1});
  auto xs = at::arange(w_, opts.dtype(at::kFloat)).view({1, 1, 1, w_});
  auto py = off.select(2, 0).to(at::kFloat) + ti.view({1, kk, 1, 1}) + ys;  // [B, K, H, W]
  auto px = off.select(2, 1).to(at::kFloat) + tj.view({1, kk, 1, 1}) + xs;
  // grid_sampler (bilinear, zero padding, align_corners=False) has the DCNv2 semantics when given
  // the pixel positions mapped to [-1, 1]: pixel p maps to (2p + 1)/size - 1.
  auto gy = py.mul_(2.0 / double(h)).add_(1.0 / double(h) - 1.0);
  auto gx = px.mul_(2.0 / double(w_)).add_(1.0 / double(w_) - 1.0);
  auto grid = at::stack({gx, gy}, -1);  // [B, K, H, W, 2], float32
  const int64_t out_ch = conv.out;
  // grid_sampler's output [B, C, K, P] is channel-major: the weight as [O, C*K] to match.
  auto wck = conv.w.view({out_ch, kk, c}).transpose(1, 2).reshape({out_ch, c * kk});
  const int64_t budget = x.is_cpu() ? kDeformChunk : kDeformChunkGpu;
  const int64_t rows_per_chunk = std::max<int64_t>(1, budget / std::max<int64_t>(1, c * kk * w_ * b));
  auto y = at::empty({b, h * w_, out_ch}, x.options());
  const bool reduced = x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble;
  const auto src = reduced ? x.to(at::kFloat) : x;  // sample in float32: positions need the precision
  for (int64_t r0 = 0; r0 < h; r0 += rows_per_chunk) {
    const int64_t rows = std::min(rows_per_chunk, h - r0), p = rows * w_;
    auto g = grid.narrow(2, r0, rows).reshape({b, kk, p, 2});
    auto m = mod.narrow(2, r0, rows).reshape({b, 1, kk, p});
    auto cols = at::grid_sampler(src, g, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners*/ false);  // [B, C, K, P]
    cols.mul_(m);
    if (cols.scalar_type() != wck.scalar_type()) cols = cols.to(wck.scalar_type());
    for (int64_t i = 0; i < b; i++) {
      auto dst = y.select(0, i).narrow(0, r0 * w_, p);  // contiguous rows [P, O]
      auto rows = cols.select(0, i).view({c * kk, p}).t();
      if (dst.scalar_type() == wck.scalar_type()) at::addmm_out(dst, conv.b, rows, wck.t());
      else dst.copy_(at::addmm(conv.b, rows, wck.t()));  // bf16 GEMM, float32 activations
    }
  }
  return y;
}

// conv1 over cat[x1, d0, d1, d2, pool] without materialising the 1280-channel concatenation:
// a sum of four GEMMs over pixel rows accumulated into one tensor (the last with the ReLU), and
// the pooled branch (constant over pixels) becomes a per-frame bias.
at::Tensor ASPPDeformable::operator()(const at::Tensor& x) const {
  BD_STAGE("aspp");
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3), planes = 256, out_ch = conv1[4].out;
  auto g = pool_conv(x.mean({2, 3}, true), Epilogue::ReLU).view({b, planes});  // [B, 256]
  auto bias = conv1[4](g);                                                       // [B, O]
  auto out = bias.view({b, 1, out_ch}).expand({b, h * w, out_ch}).contiguous();  // [B, H*W, O]
  // The CPU gather reads channels-last frames: convert once for the four branches.
  const auto input = x.is_cpu() ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  const DeformConv* branches[4] = {&aspp1, &deforms[0], &deforms[1], &deforms[2]};
  for (int i = 0; i < 4; i++) {
    auto y = branches[i]->relu_rows(input).to(out.scalar_type());  // [B, H*W, 256]
    conv1[i](y, i == 3 ? Epilogue::ReLU : Epilogue::None, {out, true});
  }
  return out.view({b, h, w, out_ch}).permute({0, 3, 1, 2});  // channels-last, as convolutions read it
}

at::Tensor BasicDecBlk::operator()(const at::Tensor& x, const Capture* cap, const char* att_name) const {
  auto y = conv_in(x, Epilogue::ReLU);
  y = att(y);
  if (cap && att_name) (*cap)(att_name, y);
  return conv_out(y);
}

BasicDecBlk build_dec_blk(WeightSource& src, const std::string& p, int64_t in_ch, int64_t out_ch,
                          const Compute& to) {
  const int64_t inter = 64, planes = 256;
  BasicDecBlk blk;
  blk.conv_in = load_conv(src, p + ".conv_in", inter, in_ch, 3, true, p + ".bn_in", to);
  blk.conv_out = load_conv(src, p + ".conv_out", out_ch, inter, 3, true, p + ".bn_out", to);
  const std::string a = p + ".dec_att";
  blk.att.aspp1 = make_deform(src, a + ".aspp1", inter, planes, 1, to);
  const int64_t ks[3] = {1, 3, 7};
  for (int i = 0; i < 3; i++)
    blk.att.deforms[i] = make_deform(src, a + ".aspp_deforms." + std::to_string(i), inter, planes, ks[i], to);
  // pool_conv and conv1 run in the activations' type (they sum the branches).
  blk.att.pool_conv = load_conv(src, a + ".global_avg_pool.1", planes, inter, 1, false, a + ".global_avg_pool.2", to.exact());
  const auto [w1, b1] = folded_weights(src, a + ".conv1", inter, planes * 5, 1, false, a + ".bn1", to.exact());
  for (int i = 0; i < 5; i++)
    blk.att.conv1[i] = make_linear(w1.view({inter, 5 * planes}).narrow(1, i * planes, planes).contiguous(),
                                   i == 4 ? b1 : at::Tensor());
  return blk;
}

Decoder build_decoder(WeightSource& src, const std::array<int64_t, 4>& ch, const Compute& to) {
  Decoder d;
  const std::array<int64_t, 4> ipt_out{{ch[0] / 8, ch[1] / 8, ch[2] / 8, ch[3] / 8}};
  auto simple = [&](const std::string& p, int64_t in, int64_t out) {
    SimpleConvs s;
    s.conv1 = load_conv(src, p + ".conv1", 64, in, 3, true, "", to);
    s.conv_out = load_conv(src, p + ".conv_out", out, 64, 3, true, "", to);
    return s;
  };
  d.ipt5 = simple("decoder.ipt_blk5", 3 << 10, ipt_out[0]);
  d.ipt4 = simple("decoder.ipt_blk4", 3 << 8, ipt_out[0]);
  d.ipt3 = simple("decoder.ipt_blk3", 3 << 6, ipt_out[1]);
  d.ipt2 = simple("decoder.ipt_blk2", 3 << 4, ipt_out[2]);
  d.ipt1.conv1 = load_conv(src, "decoder.ipt_blk1.conv1", 64, 3, 3, true, "", to);  // conv_out: see head_ipt1
  const std::array<int64_t, 4> dec_out{{ch[1], ch[2], ch[3], ch[3] / 2}};
  std::array<int64_t, 4> dec_in;
  for (int i = 0; i < 4; i++) dec_in[i] = ch[i] + ipt_out[std::max(0, i - 1)];
  d.block4 = build_dec_blk(src, "decoder.decoder_block4", dec_in[0], dec_out[0], to);
  d.block3 = build_dec_blk(src, "decoder.decoder_block3", dec_in[1], dec_out[1], to);
  d.block2 = build_dec_blk(src, "decoder.decoder_block2", dec_in[2], dec_out[2], to);
  d.block1 = build_dec_blk(src, "decoder.decoder_block1", dec_in[3], dec_out[3], to);
  {
    const int64_t cp = dec_out[3], ci = ipt_out[3];
    auto w = src.take("decoder.conv_out1.0.weight", {1, cp + ci, 1, 1}).to(at::kDouble);
    auto b = src.take("decoder.conv_out1.0.bias", {1}).to(at::kDouble);
    auto wo = src.take("decoder.ipt_blk1.conv_out.weight", {ci, 64, 3, 3}).to(at::kDouble);
    auto bo = src.take("decoder.ipt_blk1.conv_out.bias", {ci}).to(at::kDouble);
    auto wi = w.narrow(1, cp, ci).reshape({1, ci});  // conv_out1's weights on the patch channels
    // The head makes the logits: no GEMM rounding (to.exact()).
    const Compute head = to.exact();
    d.head_p1 = make_conv(head.gemm_weight(w.narrow(1, 0, cp).to(at::kFloat)), at::Tensor(), 1, 0);
    d.head_ipt1 = make_conv(head.gemm_weight(at::mm(wi, wo.reshape({ci, -1})).view({1, 64, 3, 3}).to(at::kFloat)),
                            head.gemm_weight((at::mv(wi, bo) + b).to(at::kFloat)), 1, 1);
    // head_image = head_ipt1 composed with ipt_blk1.conv1 (no activation between): one 5x5 conv
    // from the 3 image channels, w5[u] = sum over a + a2 = u of head_ipt1.w[a] * conv1.w[a2].
    auto w1 = src.take("decoder.ipt_blk1.conv1.weight", {64, 3, 3, 3}).to(at::kDouble);  // as load_conv read it
    auto b1 = src.take("decoder.ipt_blk1.conv1.bias", {64}).to(at::kDouble);
    auto wh = at::mm(wi, wo.reshape({ci, -1})).view({64, 3, 3});  // head_ipt1's weight, float64
    auto w5 = at::zeros({1, 3, 5, 5}, at::kDouble);
    for (int64_t a = 0; a < 9; ++a)
      for (int64_t a2 = 0; a2 < 9; ++a2) {
        auto tap = at::mv(w1.select(2, a2 / 3).select(2, a2 % 3).t(), wh.select(1, a / 3).select(1, a % 3));  // [3]
        w5.select(2, a / 3 + a2 / 3).select(2, a % 3 + a2 % 3).select(0, 0).add_(tap);
      }
    d.head_image = make_conv(head.gemm_weight(w5.to(at::kFloat)),
                             head.gemm_weight((at::mv(wi, bo) + b + (wh.sum({1, 2}) * b1).sum()).to(at::kFloat)), 1, 2);
  }
  d.lateral4 = load_conv(src, "decoder.lateral_block4.conv", dec_out[0], ch[1], 1, true, "", to);
  d.lateral3 = load_conv(src, "decoder.lateral_block3.conv", dec_out[1], ch[2], 1, true, "", to);
  d.lateral2 = load_conv(src, "decoder.lateral_block2.conv", dec_out[2], ch[3], 1, true, "", to);
  d.gdt4 = load_conv(src, "decoder.gdt_convs_4.0", 16, dec_out[0], 3, true, "decoder.gdt_convs_4.1", to);
  d.gdt3 = load_conv(src, "decoder.gdt_convs_3.0", 16, dec_out[1], 3, true, "decoder.gdt_convs_3.1", to);
  d.gdt2 = load_conv(src, "decoder.gdt_convs_2.0", 16, dec_out[2], 3, true, "decoder.gdt_convs_2.1", to);
  d.gdt_attn4 = load_conv(src, "decoder.gdt_convs_attn_4.0", 1, 16, 1, true, "", to.exact());
  d.gdt_attn3 = load_conv(src, "decoder.gdt_convs_attn_3.0", 1, 16, 1, true, "", to.exact());
  d.gdt_attn2 = load_conv(src, "decoder.gdt_convs_attn_2.0", 1, 16, 1, true, "", to.exact());
  return d;
}

namespace {

// image2patches: [B, 3, gh*h, gw*w] -> [B, 3*gh*gw, h, w] in the current '(c hg wg)' or the
// legacy '(wg hg c)' channel order, for a reference map of size h x w.
at::Tensor patches(const at::Tensor& x, int64_t h, int64_t w, PatchOrder order) {
  const int64_t b = x.size(0), c = x.size(1), gh = x.size(2) / h, gw = x.size(3) / w;
  if (gh == 1 && gw == 1) return x;
  auto v = x.view({b, c, gh, h, gw, w});
  if (order == PatchOrder::Current) return v.permute({0, 1, 2, 4, 3, 5}).reshape({b, c * gh * gw, h, w});
  return v.permute({0, 4, 2, 1, 3, 5}).reshape({b, c * gh * gw, h, w});
}

// head_ipt1(ipt_blk1.conv1(x)) at the full input size. The composed 5x5 conv (head_image) is exact
// except on the outermost ring of pixels, where the two-step path sees the 64-channel map's zero
// padding: those four lines are recomputed the two-step way from 3-pixel strips. This replaces
// a 64-channel map of the input's size (the largest tensor of the network) and two passes over it.
at::Tensor image_head(const Decoder& dec, const at::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  auto y = dec.head_image(x);
  auto two_step = [&](const at::Tensor& strip) { return dec.head_ipt1(dec.ipt1.conv1(strip)); };
  y.narrow(2, 0, 1).copy_(two_step(x.narrow(2, 0, 3)).narrow(2, 0, 1));
  y.narrow(2, h - 1, 1).copy_(two_step(x.narrow(2, h - 3, 3)).narrow(2, 2, 1));
  y.narrow(3, 0, 1).copy_(two_step(x.narrow(3, 0, 3)).narrow(3, 0, 1));
  y.narrow(3, w - 1, 1).copy_(two_step(x.narrow(3, w - 3, 3)).narrow(3, 2, 1));
  return y;
}

at::Tensor gate(const Conv& gdt, const Conv& attn, const at::Tensor& p, const Capture* cap, const char* name) {
  auto logit = attn(gdt(p, Epilogue::ReLU));
  if (cap) (*cap)(name, logit);
  return p * at::sigmoid(logit);
}

}  // namespace

at::Tensor Network::forward(const at::Tensor& x, const Capture* cap) const {
  const int64_t H = x.size(2), W = x.size(3);
  std::array<at::Tensor, 4> full, half;
  {
    BD_STAGE("backbone_full");
    full = bb.forward(x);
  }
  {
    BD_STAGE("backbone_half");
    half = bb.forward(resize_ac(x, H / 2, W / 2));
  }
  std::array<at::Tensor, 4> f;
  for (int i = 0; i < 4; i++) {
    if (cap) {
      (*cap)(("features." + std::to_string(i)).c_str(), full[i]);
      (*cap)(("debug.features_half." + std::to_string(i)).c_str(), half[i]);
    }
    f[i] = at::cat({full[i], resize_ac(half[i], full[i].size(2), full[i].size(3))}, 1);
  }
  const int64_t h4 = f[3].size(2), w4 = f[3].size(3);
  at::Tensor x4, p4, p3, p2, p1;
  {
    BD_STAGE("squeeze");
    x4 = at::cat({resize_ac(f[0], h4, w4), resize_ac(f[1], h4, w4), resize_ac(f[2], h4, w4), f[3]}, 1);
    x4 = squeeze(x4, cap, "debug.squeeze_aspp");
    if (cap) (*cap)("debug.squeeze", x4);
  }

  const auto order = patch_order;
  {
    BD_STAGE("level4");
    auto ipt5 = dec.ipt5(patches(x, h4, w4, order));
    if (cap) (*cap)("debug.ipt_blk5", ipt5);
    p4 = dec.block4(at::cat({x4, ipt5}, 1), cap, "debug.decoder_block4_aspp");
    if (cap) (*cap)("debug.decoder_block4", p4);
    p4 = gate(dec.gdt4, dec.gdt_attn4, p4, cap, "debug.gdt_attn_4_logit");
  }

  const int64_t h3 = f[2].size(2), w3 = f[2].size(3);
  {
    BD_STAGE("level3");
    auto p3in = resize_ac(p4, h3, w3) + dec.lateral4(f[2]);
    auto ipt4 = dec.ipt4(patches(x, h3, w3, order));
    if (cap) (*cap)("debug.ipt_blk4", ipt4);
    p3 = dec.block3(at::cat({p3in, ipt4}, 1), cap, nullptr);
    if (cap) (*cap)("debug.decoder_block3", p3);
    p3 = gate(dec.gdt3, dec.gdt_attn3, p3, cap, "debug.gdt_attn_3_logit");
  }

  const int64_t h2 = f[1].size(2), w2 = f[1].size(3);
  {
    BD_STAGE("level2");
    auto p2in = resize_ac(p3, h2, w2) + dec.lateral3(f[1]);
    p2 = dec.block2(at::cat({p2in, dec.ipt3(patches(x, h2, w2, order))}, 1), cap, nullptr);
    if (cap) (*cap)("debug.decoder_block2", p2);
    p2 = gate(dec.gdt2, dec.gdt_attn2, p2, cap, "debug.gdt_attn_2_logit");
  }

  const int64_t h1 = f[0].size(2), w1 = f[0].size(3);
  {
    BD_STAGE("level1");
    auto p1in = resize_ac(p2, h1, w1) + dec.lateral2(f[0]);
    p1 = dec.block1(at::cat({p1in, dec.ipt2(patches(x, h1, w1, order))}, 1), cap, nullptr);
    if (cap) (*cap)("debug.decoder_block1", p1);
  }
  BD_STAGE("head");
  auto logits = resize_ac(dec.head_p1(p1), H, W).add_(image_head(dec, x));
  if (cap) (*cap)("logits", logits);
  return logits;
}

}  // namespace birefnet
}  // namespace bd
