// Swin Transformer v1 backbone as BiRefNet uses it: zero-padded windows, shifted windows with the
// 9-region mask (also when the map is smaller than a window), PatchMerging, per-stage norms.
#include <torch/version.h>

#include <cmath>
#include <vector>

#include "cpu_kernels.h"
#include "net.h"

namespace bd {
namespace birefnet {

namespace {

// LayerNorm over the last dimension in the norm weights' type, the activations' (the input may be
// a GEMM's output in the GEMM type).
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return at::layer_norm(x.to(w.scalar_type()), {x.size(-1)}, w, b, 1e-5);
}

// Region ids of the shifted-window mask along one axis of the padded map.
at::Tensor region_ids(int64_t n, int64_t window, int64_t shift) {
  auto ids = at::empty({n}, at::kLong);
  auto* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; i++) p[i] = i < n - window ? 0 : (i < n - shift ? 1 : 2);
  return ids;
}

// Additive mask [nW, N, N]: 0 inside a region, a large negative value across regions. -inf in
// float32 (as the official code), a finite value in reduced precision so no inf arithmetic occurs.
at::Tensor shift_mask(int64_t hp, int64_t wp, int64_t window, int64_t shift, c10::ScalarType dtype,
                      c10::Device dev) {
  auto img = region_ids(hp, window, shift).view({hp, 1}) * 3 + region_ids(wp, window, shift).view({1, wp});
  auto mw = img.view({hp / window, window, wp / window, window}).permute({0, 2, 1, 3}).reshape({-1, window * window});
  auto differ = mw.unsqueeze(1).ne(mw.unsqueeze(2));
  double neg = dtype == at::kFloat || dtype == at::kDouble ? -INFINITY : -30000.0;
  auto mask = at::zeros(differ.sizes(), at::TensorOptions().dtype(at::kFloat)).masked_fill(differ, neg);
  return mask.to(dev, dtype);
}

// Row indices that turn a [B*H*W (+1 padding row), C] token map into windows and back, with the
// zero padding to a multiple of the window and the cyclic shift folded in (one gather each way
// instead of pad + roll + partition copies).
struct WindowIndex {
  at::Tensor gather;   // [B*nW*N]: source row of each window token (B*H*W = the padding row)
  at::Tensor scatter;  // [B*H*W]: window-token row of each output token
};

// Window attention of the normed tokens h [B*H*W, C], before its output projection: [B*H*W, C].
// The official code pads the normed map with zeros before the qkv projection, so a padding token
// projects to the qkv bias and its output is cropped: qkv and proj run on the real tokens only
// (at 512², Swin-L's half-resolution stages 2 and 3 pad 16² and 8² maps to 24² and 12²).
at::Tensor attention(const SwinBlock& blk, const at::Tensor& h, const at::Tensor& mask, int64_t batch,
                     const WindowIndex& index, int64_t window, bool cpu_kernel) {
  const int64_t tokens = h.size(0), c = h.size(1), n = window * window, heads = blk.heads, d = c / heads;
  auto qkv = blk.qkv(h).to(h.scalar_type()).contiguous();  // [tokens, 3c]
  if (cpu_kernel && h.is_cpu() && h.scalar_type() == at::kFloat) {
    // One pass per window and head (window_attention.cpp), reading the qkv rows through the index.
    auto out = at::empty({tokens, c}, h.options());
    const auto pad_qkv = blk.qkv.b.to(at::kFloat).contiguous();  // the GEMM type's rounding, as qkv
    const auto bias = blk.rel_bias.contiguous();
    const auto m = mask.defined() ? mask.contiguous() : at::Tensor();
    WindowAttentionArgs args{qkv.data_ptr<float>(), pad_qkv.data_ptr<float>(), index.gather.data_ptr<int64_t>(), tokens,
                             bias.data_ptr<float>(), m.defined() ? m.data_ptr<float>() : nullptr,
                             index.gather.numel() / n, n, heads, d, m.defined() ? m.size(0) : 1,
                             float(1.0 / std::sqrt(double(d))), out.data_ptr<float>()};
    window_attention(args);
    return out;
  }
  // Windows of qkv rows, the padding row being the bias; then one copy to [3, bw, h, N, d], so
  // that q, k, v are contiguous views.
  auto rows = at::cat({qkv, blk.qkv.b.to(qkv.scalar_type()).view({1, 3 * c})}, 0).index_select(0, index.gather);
  const int64_t bw = rows.size(0) / n;
  auto parts = rows.view({bw, n, 3, heads, d}).permute({2, 0, 3, 1, 4}).contiguous();
  auto q = parts[0], k = parts[1], v = parts[2];
  at::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  at::Tensor bias = blk.rel_bias.unsqueeze(0);  // [1, h, N, N]
  if (mask.defined()) {
    const int64_t nw = mask.size(0);
    bias = (bias + mask.unsqueeze(1)).unsqueeze(0).expand({batch, nw, heads, n, n}).reshape({bw, heads, n, n});
  } else {
    bias = bias.expand({bw, heads, n, n});
  }
  out = at::scaled_dot_product_attention(q, k, v, bias);
#else
  // softmax(scale * q @ k^T + bias (+ mask)) @ v with the bias as baddbmm's input.
  const double scale = 1.0 / std::sqrt(double(d));
  at::Tensor bias;
  if (mask.defined()) {
    const int64_t nw = mask.size(0);
    bias = (blk.rel_bias.unsqueeze(0) + mask.unsqueeze(1)).unsqueeze(0).expand({batch, nw, heads, n, n});
  } else {
    bias = blk.rel_bias.unsqueeze(0).expand({bw, heads, n, n});
  }
  auto attn = at::baddbmm(bias.reshape({bw * heads, n, n}), q.reshape({bw * heads, n, d}),
                          k.reshape({bw * heads, n, d}).transpose(1, 2), 1.0, scale);
  attn = attn.scalar_type() == at::kFloat ? attn.softmax(-1) : attn.softmax(-1, at::kFloat).to(attn.scalar_type());
  out = at::bmm(attn, v.reshape({bw * heads, n, d})).view({bw, heads, n, d});
#endif
  // Back to token order (the padding tokens' outputs are dropped here).
  return out.transpose(1, 2).reshape({bw * n, c}).index_select(0, index.scatter);
}

WindowIndex window_index(int64_t b, int64_t hh, int64_t ww, int64_t window, int64_t shift, c10::Device dev) {
  const int64_t hp = (hh + window - 1) / window * window, wp = (ww + window - 1) / window * window;
  const int64_t nwx = wp / window, n = window * window;
  auto g = at::empty({b * hp * wp}, at::kLong);
  auto s = at::empty({b * hh * ww}, at::kLong);
  int64_t* gp = g.data_ptr<int64_t>();
  int64_t* sp = s.data_ptr<int64_t>();
  const int64_t zero_row = b * hh * ww;
  for (int64_t bi = 0; bi < b; bi++) {
    for (int64_t y = 0; y < hp; y++) {
      for (int64_t x = 0; x < wp; x++) {
        // Token (y, x) of the shifted padded map comes from (y + shift, x + shift) of the padded map.
        const int64_t sy = (y + shift) % hp, sx = (x + shift) % wp;
        const int64_t row = bi * hp * wp + ((y / window) * nwx + x / window) * n + (y % window) * window + x % window;
        gp[row] = (sy < hh && sx < ww) ? bi * hh * ww + sy * ww + sx : zero_row;
        if (sy < hh && sx < ww) sp[bi * hh * ww + sy * ww + sx] = row;
      }
    }
  }
  return {g.to(dev), s.to(dev)};
}

// x: [B, H, W, C] contiguous tokens, updated in place: the output projections add into the
// residual stream (fused into the GEMM on the CPU), which stays in x's type; the MLP's hidden
// layer (GELU) is in the GEMM type.
void block_forward(const SwinBlock& blk, const at::Tensor& x, int64_t window, const at::Tensor& mask,
                   const WindowIndex& index, bool cpu_kernel) {
  const int64_t b = x.size(0), hh = x.size(1), ww = x.size(2), c = x.size(3);
  auto h = layer_norm(x, blk.norm1_w, blk.norm1_b).view({b * hh * ww, c});
  auto a = attention(blk, h, blk.shifted ? mask : at::Tensor(), b, index, window, cpu_kernel);
  blk.proj(a, Epilogue::None, {x, true});
  auto m = blk.fc1(layer_norm(x, blk.norm2_w, blk.norm2_b), Epilogue::GELU);
  blk.fc2(m, Epilogue::None, {x, true});
}

at::Tensor patch_merging(const SwinLayer& layer, at::Tensor x) {
  int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  if (h % 2 || w % 2) {
    x = at::constant_pad_nd(x, {0, 0, 0, w % 2, 0, h % 2}, 0);
    h += h % 2;
    w += w % 2;
  }
  // [x(0::2,0::2), x(1::2,0::2), x(0::2,1::2), x(1::2,1::2)]: column parity outer, row parity inner.
  auto m = x.view({b, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).reshape({b, h / 2, w / 2, 4 * c});
  m = layer_norm(m, layer.down_norm_w, layer.down_norm_b);
  return layer.down(m).to(m.scalar_type()).contiguous();
}

}  // namespace

std::array<at::Tensor, 4> Swin::forward(const at::Tensor& input) const {
  at::Tensor x = input;
  const int64_t ph = (4 - x.size(2) % 4) % 4, pw = (4 - x.size(3) % 4) % 4;
  if (ph || pw) x = at::constant_pad_nd(x, {0, pw, 0, ph}, 0);
  x = patch_embed(x);  // [B, E, Wh, Ww]
  auto t = layer_norm(x.permute({0, 2, 3, 1}), pe_norm_w, pe_norm_b).contiguous();
  std::array<at::Tensor, 4> outs;
  const int64_t window = cfg.window;
  for (int i = 0; i < 4; i++) {
    const SwinLayer& layer = layers[i];
    const int64_t hh = t.size(1), ww = t.size(2);
    const int64_t hp = (hh + window - 1) / window * window, wp = (ww + window - 1) / window * window;
    at::Tensor mask;
    WindowIndex plain = window_index(t.size(0), hh, ww, window, 0, t.device()), shifted;
    if (layer.blocks.size() > 1) {
      mask = shift_mask(hp, wp, window, window / 2, t.scalar_type(), t.device());
      shifted = window_index(t.size(0), hh, ww, window, window / 2, t.device());
    }
    // t is this stage's own tensor (a norm's or the patch merging's output): updated in place.
    for (const auto& blk : layer.blocks) block_forward(blk, t, window, mask, blk.shifted ? shifted : plain, cpu_kernels);
    outs[i] = layer_norm(t, layer.out_norm_w, layer.out_norm_b).permute({0, 3, 1, 2}).contiguous();
    if (layer.has_downsample) t = patch_merging(layer, t);
  }
  return outs;
}

Swin build_swin(WeightSource& src, const SwinConfig& cfg, const Compute& to) {
  Swin s;
  s.cfg = cfg;
  s.cpu_kernels = cpu_kernels_enabled();
  const int64_t e = cfg.embed, win = cfg.window, n = win * win;
  // The weights of the patch embedding, qkv, proj, MLP and patch merging in the GEMM type; norms
  // and the relative position bias in the activations' type.
  auto gemm = [&](const std::string& key, std::vector<int64_t> shape) { return to.gemm_weight(src.take(key, shape)); };
  auto act = [&](const std::string& key, std::vector<int64_t> shape) { return to.parameter(src.take(key, shape)); };
  s.patch_embed = make_conv(gemm("bb.patch_embed.proj.weight", {e, 3, 4, 4}), gemm("bb.patch_embed.proj.bias", {e}), 4, 0);
  s.pe_norm_w = act("bb.patch_embed.norm.weight", {e});
  s.pe_norm_b = act("bb.patch_embed.norm.bias", {e});
  // Canonical relative position index of a win x win window.
  auto coords = at::arange(win, at::kLong);
  auto hp = coords.view({win, 1}).expand({win, win}).reshape({n});
  auto wp = coords.view({1, win}).expand({win, win}).reshape({n});
  auto index = (hp.view({n, 1}) - hp.view({1, n}) + win - 1) * (2 * win - 1) + (wp.view({n, 1}) - wp.view({1, n}) + win - 1);
  for (int i = 0; i < 4; i++) {
    const int64_t dim = e << i, heads = cfg.heads[i];
    SwinLayer& layer = s.layers[i];
    const std::string lp = "bb.layers." + std::to_string(i) + ".";
    for (int64_t j = 0; j < cfg.depths[i]; j++) {
      const std::string bp = lp + "blocks." + std::to_string(j) + ".";
      SwinBlock blk;
      blk.heads = heads;
      blk.shifted = j % 2 == 1;
      blk.norm1_w = act(bp + "norm1.weight", {dim});
      blk.norm1_b = act(bp + "norm1.bias", {dim});
      auto table = src.take(bp + "attn.relative_position_bias_table", {(2 * win - 1) * (2 * win - 1), heads});
      blk.rel_bias = to.parameter(table.index_select(0, index.view({-1})).view({n, n, heads}).permute({2, 0, 1}));
      if (src.has(bp + "attn.relative_position_index")) src.take(bp + "attn.relative_position_index", {n, n});
      blk.qkv = make_linear(gemm(bp + "attn.qkv.weight", {3 * dim, dim}), gemm(bp + "attn.qkv.bias", {3 * dim}));
      blk.proj = make_linear(gemm(bp + "attn.proj.weight", {dim, dim}), gemm(bp + "attn.proj.bias", {dim}));
      blk.norm2_w = act(bp + "norm2.weight", {dim});
      blk.norm2_b = act(bp + "norm2.bias", {dim});
      blk.fc1 = make_linear(gemm(bp + "mlp.fc1.weight", {4 * dim, dim}), gemm(bp + "mlp.fc1.bias", {4 * dim}));
      blk.fc2 = make_linear(gemm(bp + "mlp.fc2.weight", {dim, 4 * dim}), gemm(bp + "mlp.fc2.bias", {dim}));
      layer.blocks.push_back(std::move(blk));
    }
    if (i < 3) {
      layer.has_downsample = true;
      layer.down = make_linear(gemm(lp + "downsample.reduction.weight", {2 * dim, 4 * dim}), at::Tensor());
      layer.down_norm_w = act(lp + "downsample.norm.weight", {4 * dim});
      layer.down_norm_b = act(lp + "downsample.norm.bias", {4 * dim});
    }
    layer.out_norm_w = act("bb.norm" + std::to_string(i) + ".weight", {dim});
    layer.out_norm_b = act("bb.norm" + std::to_string(i) + ".bias", {dim});
  }
  return s;
}

}  // namespace birefnet
}  // namespace bd
