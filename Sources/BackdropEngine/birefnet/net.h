// BiRefNet (swin_v1 backbone, ASPPDeformable decoder) as plain structs of ATen tensors.
// Internal to the birefnet/ folder: the rest of the engine only sees bd::MatteModel (model.h).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "onednn_conv.h"

namespace bd {
namespace birefnet {

// Called with intermediate tensors ("features.0", "debug.squeeze", ...) when tests ask for them.
using Capture = std::function<void(const char* name, const at::Tensor& t)>;

enum class PatchOrder { Current, Legacy };

// Hands out checkpoint tensors by name while building the network, remembering every problem
// (missing key, wrong shape) so that they can be reported together.
class WeightSource {
 public:
  // tensors: float32 CPU tensors by (prefix-stripped) key; `used` collects what was taken.
  explicit WeightSource(std::map<std::string, at::Tensor>* tensors) : tensors_(tensors) {}
  // Returns the tensor, or an empty float tensor of the wanted shape when missing/wrong (and
  // records the problem).
  at::Tensor take(const std::string& key, std::vector<int64_t> shape);
  // Like take() but does not complain when absent.
  bool has(const std::string& key) const;
  void mark_used(const std::string& key) { used_.insert(key); }
  const std::set<std::string>& used() const { return used_; }
  std::vector<std::string> missing, wrong_shape, wrong_dtype;

 private:
  std::map<std::string, at::Tensor>* tensors_;
  std::set<std::string> used_;
};

// A convolution with any following eval-mode BatchNorm folded in. Made by make_conv, which on the
// CPU gives the weights to the layer's oneDNN kernels (onednn_conv.h): w is then undefined, the
// packed copy being the only one. Builds without those kernels, GPU weights and a model built with
// BD_TESTING_KERNELS=aten keep w and take the ATen path.
struct Conv {
  at::Tensor w, b;
  int64_t stride = 1, pad = 0;
  std::shared_ptr<OneDnnConv> kernels;
  // The result in the weight's type (see conv2d), with the epilogue applied; or written into
  // target.into (see ConvTarget).
  at::Tensor operator()(const at::Tensor& x, Epilogue epilogue = Epilogue::None, const ConvTarget& target = {}) const;
  // The weights as a plain [O, C, KH, KW] tensor (given back by the kernels when they hold them).
  at::Tensor weights() const;
};
Conv make_conv(const at::Tensor& w, const at::Tensor& b, int64_t stride, int64_t pad);

// x @ w^T + b over the last dimension of x, w [O, C]: on the CPU a 1x1 convolution of the token
// matrix (see linear()). Made by make_linear, which gives the weights away as make_conv does.
struct Linear {
  at::Tensor w, b;
  int64_t out = 0, in = 0;  // w's shape, also once w is given away
  std::shared_ptr<OneDnnConv> kernels;
  // The result in the weight's type with the epilogue applied; or written into target.into, a
  // contiguous tensor of the result's rows [..., O] (with accumulate: added to it, the residual
  // add of a Swin block in place).
  at::Tensor operator()(const at::Tensor& x, Epilogue epilogue = Epilogue::None, const ConvTarget& target = {}) const;
  // The weights as a plain [O, C] tensor (given back by the kernels when they hold them).
  at::Tensor weights() const;
};
Linear make_linear(const at::Tensor& w, const at::Tensor& b);

// torchvision-style modulated deformable convolution (DCNv2), stride 1, pad k/2, no dilation,
// followed by the folded BatchNorm.
struct DeformConv {
  Conv offset_mask;  // offset_conv and modulator_conv fused: 2K offset channels (dy, dx), then K
  Linear conv;       // regular_conv with BN folded, tap-major weight [O, K*C] (column t*C + c)
  int64_t k = 1;
  bool cpu_kernels = true;  // CPU tensors take rows_gather (cpu_kernels_enabled() when built)
  // relu(output) as pixel rows [B, H*W, O] (what ASPPDeformable's 1x1 fusion multiplies).
  at::Tensor relu_rows(const at::Tensor& x) const;

 private:
  at::Tensor rows_gather(const at::Tensor& x, const at::Tensor& om) const;        // CPU
  at::Tensor rows_grid_sampler(const at::Tensor& x, const at::Tensor& om) const;  // any device
};

// One frame of the CPU deformable im2col (deform_gather.cpp).
struct DeformGatherArgs {
  const float* input;        // [H, W, C], channels-last, float32
  const float* offset_mask;  // [H, W, 3K]: per pixel dy0, dx0, dy1, dx1, ..., then K raw modulators
  int64_t h, w, c, k;
  int64_t first_pixel, pixels;  // the pixels (row-major index) to fill
};
// Fills cols [pixels, K*C] (row-major): row p, column t*C + c is tap t of channel c of pixel
// first_pixel + p, bilinearly sampled and scaled by 2*sigmoid(modulator). Spread over the CPU threads.
void deform_gather(const DeformGatherArgs& args, float* cols);

struct ASPPDeformable {
  DeformConv aspp1;
  std::array<DeformConv, 3> deforms;
  Conv pool_conv;  // global average pool branch: 1x1 conv + BN
  // conv1 (1x1 over the 5 concatenated branches, BN folded) as one [O, 256] slice per branch: the
  // four pixel branches, then the pooled one with conv1's bias.
  std::array<Linear, 5> conv1;
  at::Tensor operator()(const at::Tensor& x) const;
};

struct BasicDecBlk {
  Conv conv_in, conv_out;  // with bn_in / bn_out folded
  ASPPDeformable att;
  at::Tensor operator()(const at::Tensor& x, const Capture* cap, const char* att_name) const;
};

struct SimpleConvs {
  Conv conv1, conv_out;
  at::Tensor operator()(const at::Tensor& x) const { return conv_out(conv1(x)); }
};

struct SwinBlock {
  at::Tensor norm1_w, norm1_b, norm2_w, norm2_b;
  Linear qkv, proj, fc1, fc2;
  at::Tensor rel_bias;  // [heads, N, N], gathered from the table once at load
  int64_t heads = 1;
  bool shifted = false;
};

// Window attention of float32 CPU tensors in one pass (window_attention.cpp), reading the qkv rows
// of the real tokens through the window index (a padding position projects to the qkv bias).
struct WindowAttentionArgs {
  const float* qkv;      // [tokens, 3, heads, d]: the qkv projection of each real token
  const float* pad_qkv;  // [3, heads, d]: the projection of a padding (zero) token, i.e. the qkv bias
  const int64_t* token;  // [windows, N]: token row at each window position; `tokens` for padding
  int64_t tokens;
  const float* bias;     // [heads, N, N]: relative position bias
  const float* mask;     // [mask_windows, N, N]: shifted-window mask of window w % mask_windows, or null
  int64_t windows, n, heads, d, mask_windows;
  float scale;           // 1 / sqrt(d)
  float* out;            // [tokens, heads, d]: each real token's row written once
};
void window_attention(const WindowAttentionArgs& args);

struct SwinLayer {
  std::vector<SwinBlock> blocks;
  bool has_downsample = false;
  at::Tensor down_norm_w, down_norm_b;
  Linear down;
  at::Tensor out_norm_w, out_norm_b;
};

struct SwinConfig {
  std::string name;  // "swin_v1_t", ...
  int64_t embed = 96;
  std::array<int64_t, 4> depths{{2, 2, 6, 2}};
  std::array<int64_t, 4> heads{{3, 6, 12, 24}};
  int64_t window = 7;
};

struct Swin {
  SwinConfig cfg;
  bool cpu_kernels = true;  // float32 CPU tensors take window_attention (cpu_kernels_enabled() when built)
  Conv patch_embed;
  at::Tensor pe_norm_w, pe_norm_b;
  std::array<SwinLayer, 4> layers;
  // Returns the 4 normed stage outputs, NCHW.
  std::array<at::Tensor, 4> forward(const at::Tensor& x) const;
};

struct Decoder {
  SimpleConvs ipt5, ipt4, ipt3, ipt2, ipt1;
  BasicDecBlk block4, block3, block2, block1;
  Conv lateral4, lateral3, lateral2;
  Conv gdt4, gdt3, gdt2;            // conv3x3 + BN (ReLU applied in forward)
  Conv gdt_attn4, gdt_attn3, gdt_attn2;
  // The output head conv_out1(cat[up(p1), ipt_blk1(x)]) rewritten without full-resolution
  // concatenation: up(head_p1(p1)) + head_ipt1(ipt_blk1.conv1(x)), where head_p1 is conv_out1's
  // slice for the decoder channels (1x1, applied before the linear upsampling) and head_ipt1 is
  // ipt_blk1.conv_out composed with conv_out1's slice for the patch channels (a 3x3 conv to one
  // channel instead of to 24), carrying both biases.
  Conv head_p1, head_ipt1;
  // head_ipt1 composed with ipt1.conv1: one 5x5 conv from the image (exact but for the border).
  Conv head_image;
};

// Where and in which types the network computes. The weights of convolutions and linear layers
// are stored in `gemm`, and conv2d()/linear() run in the weight's type; everything else
// (activations, residual streams, norms, attention, the deformable sampling) is in `act`.
// bf16 is mixed, as torch.autocast does it: bf16 GEMMs with float32 activations, so residual adds,
// norms, attention and the deformable sampling are not rounded to 8 significant bits. Measured on
// the CPU (AVX512-BF16, bdrand weights) against a network all in bf16: lite 256² logits' RMS error
// against float32 0.075 instead of 0.105, and general 512² in 0.62 of float32's time instead of
// 0.75 (the float32 kernels of attention and sampling stay). float32 and float16 are uniform.
struct Compute {
  c10::Device dev = c10::Device(c10::kCPU);
  c10::ScalarType act = at::kFloat, gemm = at::kFloat;
  static Compute for_precision(c10::ScalarType precision, c10::Device dev) {
    return {dev, precision == at::kBFloat16 ? at::kFloat : precision, precision};
  }
  // For the few small layers whose output is the matte (the head) or gates it: no GEMM rounding.
  Compute exact() const { return {dev, act, act}; }
  // A checkpoint tensor on the device: a convolution's or linear layer's weight (or its bias) in
  // the GEMM type, any other parameter (norms, position bias) in the activations' type.
  at::Tensor gemm_weight(const at::Tensor& t) const { return t.to(dev, gemm).contiguous(); }
  at::Tensor parameter(const at::Tensor& t) const { return t.to(dev, act).contiguous(); }
};

struct Network {
  Compute compute;  // what the weights were converted to (the input is taken in compute.act)
  Swin bb;
  BasicDecBlk squeeze;
  Decoder dec;
  PatchOrder patch_order = PatchOrder::Current;
  at::Tensor forward(const at::Tensor& x, const Capture* cap) const;
};

// Builds the network from checkpoint tensors (float32, CPU, prefix-stripped keys), converting to
// the compute types and device. Problems are recorded in `src`; the caller checks them before
// using the result.
Swin build_swin(WeightSource& src, const SwinConfig& cfg, const Compute& to);
BasicDecBlk build_dec_blk(WeightSource& src, const std::string& prefix, int64_t in_ch, int64_t out_ch,
                          const Compute& to);
Decoder build_decoder(WeightSource& src, const std::array<int64_t, 4>& lateral, const Compute& to);

// at::conv2d (groups 1, no dilation), but float32 CPU tensors always go to oneDNN (swin.cpp):
// ATen 1.13 sends small inputs at batch 1 (kernels up to 3x3 and under 20480 input values, such
// as the decoder's 16x16 maps at 512²) to its native im2col convolution, which parallelises over
// the batch only and so runs on one thread. Runs in the weight's type (see Compute) and returns
// that type: the consumer decides whether the activations' type is needed (a norm, a residual
// add) or the GEMM type can go on (ReLU, GELU, the next convolution), saving two casts.
at::Tensor conv2d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t stride, int64_t pad);

// x @ w^T + b over the last dimension of x (swin.cpp): oneDNN's 1x1 convolution on the CPU in
// float32 and bfloat16, at::linear otherwise. Runs in and returns the weight's type, as conv2d.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// Bilinear resize with align_corners=True (what every resize inside BiRefNet uses).
at::Tensor resize_ac(const at::Tensor& x, int64_t h, int64_t w);

}  // namespace birefnet
}  // namespace bd
