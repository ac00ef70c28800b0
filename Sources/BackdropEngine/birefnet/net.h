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

// A convolution with any following eval-mode BatchNorm folded in (weight, bias in compute dtype).
struct Conv {
  at::Tensor w, b;
  int64_t stride = 1, pad = 0;
  at::Tensor operator()(const at::Tensor& x) const;
};

// torchvision-style modulated deformable convolution (DCNv2), stride 1, pad k/2, no dilation,
// followed by the folded BatchNorm.
struct DeformConv {
  Conv offset_mask;  // offset_conv and modulator_conv fused: 2K offset channels (dy, dx), then K
  at::Tensor w;      // regular_conv weight with BN folded, as a [O, C*K] matrix
  at::Tensor b;      // folded BN bias [O]
  int64_t k = 1;
  at::Tensor operator()(const at::Tensor& x) const;

 private:
  void sample_split(const at::Tensor& src, const at::Tensor& grid, const at::Tensor& modulator, const at::Tensor& bias,
                    at::Tensor dst, int64_t splits, at::ScalarType type) const;
};

struct ASPPDeformable {
  DeformConv aspp1;
  std::array<DeformConv, 3> deforms;
  Conv pool_conv;  // global average pool branch: 1x1 conv + BN
  Conv conv1;      // 1x1 conv over the 5 concatenated branches + BN
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
  at::Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b;
  at::Tensor fc1_w, fc1_b, fc2_w, fc2_b;
  at::Tensor rel_bias;  // [heads, N, N], gathered from the table once at load
  int64_t heads = 1;
  bool shifted = false;
};

struct SwinLayer {
  std::vector<SwinBlock> blocks;
  bool has_downsample = false;
  at::Tensor down_norm_w, down_norm_b, down_w;
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
};

struct Network {
  Swin bb;
  BasicDecBlk squeeze;
  Decoder dec;
  PatchOrder patch_order = PatchOrder::Current;
  at::Tensor forward(const at::Tensor& x, const Capture* cap) const;
};

// Builds the network from checkpoint tensors (float32, CPU, prefix-stripped keys), converting to
// dtype/device. Problems are recorded in `src`; the caller checks them before using the result.
Swin build_swin(WeightSource& src, const SwinConfig& cfg, c10::ScalarType dtype, c10::Device dev);
BasicDecBlk build_dec_blk(WeightSource& src, const std::string& prefix, int64_t in_ch, int64_t out_ch,
                          c10::ScalarType dtype, c10::Device dev);
Decoder build_decoder(WeightSource& src, const std::array<int64_t, 4>& lateral, c10::ScalarType dtype,
                      c10::Device dev);

// Bilinear resize with align_corners=True (what every resize inside BiRefNet uses).
at::Tensor resize_ac(const at::Tensor& x, int64_t h, int64_t w);

}  // namespace birefnet
}  // namespace bd
