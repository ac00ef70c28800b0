// The convolution and linear layers of net.h: on the CPU oneDNN kernels with packed weights and
// fused epilogues (onednn_conv.h) where the build has them, the ATen ops (conv2d, linear) elsewhere.
#include "cpu_kernels.h"
#include "net.h"

namespace bd {
namespace birefnet {

namespace {

// The layer's oneDNN kernels, given its weights; null where they do not run (see Conv in net.h).
std::shared_ptr<OneDnnConv> layer_kernels(const at::Tensor& w, const at::Tensor& b) {
  return cpu_kernels_enabled() ? make_onednn_conv(w, b) : nullptr;
}

}  // namespace

// See net.h: oneDNN for every float32 and bfloat16 CPU convolution, whatever its size and batch.
at::Tensor conv2d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t stride, int64_t pad) {
  if (w.scalar_type() != x.scalar_type()) return conv2d(x.to(w.scalar_type()), w, b, stride, pad);
  if (x.is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) && at::hasMKLDNN()) {
    return at::mkldnn_convolution(x.contiguous(x.suggest_memory_format()), w, b, {pad, pad}, {stride, stride}, {1, 1}, 1);
  }
  return at::conv2d(x, w, b, {stride, stride}, {pad, pad});
}

// Linear layer over the last dimension. On the CPU a token matrix [M, C] is an NHWC image
// [1, C, 1, M] in channels-last layout, and oneDNN's 1x1 convolution on it is 10-25 % faster than
// the BLAS GEMM behind at::linear (measured with OpenBLAS on AVX-512, 2 threads) with no copies:
// input and output stay row-major token matrices.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (w.scalar_type() != x.scalar_type()) return linear(x.to(w.scalar_type()), w, b);
  if (!x.is_cpu() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)) return at::linear(x, w, b);
  const int64_t c = x.size(-1), o = w.size(0);
  auto xc = x.contiguous();
  const int64_t m = xc.numel() / c;
  auto img = xc.view({1, 1, m, c}).permute({0, 3, 1, 2});  // [1, C, 1, M], channels-last
  auto y = conv2d(img, w.view({o, c, 1, 1}), b, 1, 0);    // [1, O, 1, M], channels-last
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = o;
  if (!y.is_contiguous(at::MemoryFormat::ChannelsLast)) y = y.contiguous(at::MemoryFormat::ChannelsLast);
  return y.permute({0, 2, 3, 1}).reshape(shape);
}

namespace {

// The target and epilogue of the ATen path, as oneDNN applies them.
at::Tensor finish(at::Tensor y, Epilogue epilogue, const ConvTarget& target) {
  if (target.into.defined()) {
    const auto& into = target.into;
    if (target.accumulate) into.add_(y.reshape(into.sizes()));
    else into.copy_(y.reshape(into.sizes()));
    y = into;
  }
  if (epilogue == Epilogue::ReLU) y.relu_();
  if (epilogue == Epilogue::GELU) y = target.into.defined() ? y.copy_(at::gelu(y)) : at::gelu(y);
  return y;
}

// Token rows [..., C] as the channels-last image [1, C, 1, M] a 1x1 convolution reads (a view of
// a contiguous tensor).
at::Tensor token_image(const at::Tensor& x) {
  const int64_t c = x.size(-1);
  auto xc = x.contiguous();
  return xc.view({1, 1, xc.numel() / c, c}).permute({0, 3, 1, 2});
}

}  // namespace

Conv make_conv(const at::Tensor& w, const at::Tensor& b, int64_t stride, int64_t pad) {
  Conv c;
  c.b = b;
  c.stride = stride;
  c.pad = pad;
  c.kernels = layer_kernels(w, b);
  if (!c.kernels) c.w = w;
  return c;
}

at::Tensor Conv::weights() const {
  return w.defined() ? w : plain_weights(*kernels);
}

at::Tensor Conv::operator()(const at::Tensor& x, Epilogue epilogue, const ConvTarget& target) const {
  if (kernels) {
    auto y = onednn_conv(*kernels, x, stride, pad, epilogue, target);
    if (y.defined()) return y;
  }
  return finish(conv2d(x, weights(), b, stride, pad), epilogue, target);
}

Linear make_linear(const at::Tensor& w, const at::Tensor& b) {
  Linear l;
  l.out = w.size(0);
  l.in = w.size(1);
  l.b = b;
  l.kernels = layer_kernels(w.contiguous().view({l.out, l.in, 1, 1}), b);
  if (!l.kernels) l.w = w;
  return l;
}

at::Tensor Linear::operator()(const at::Tensor& x, Epilogue epilogue, const ConvTarget& target) const {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  TORCH_CHECK(!target.into.defined() || target.into.is_contiguous(), "Linear: the target must be contiguous");
  if (kernels) {
    ConvTarget image_target{target.into.defined() ? token_image(target.into) : at::Tensor(), target.accumulate};
    auto y = onednn_conv(*kernels, token_image(x), 1, 0, epilogue, image_target);
    if (y.defined()) return target.into.defined() ? target.into : y.permute({0, 2, 3, 1}).reshape(shape);
  }
  return finish(linear(x, weights(), b), epilogue, target);
}

at::Tensor Linear::weights() const {
  return w.defined() ? w : plain_weights(*kernels).view({out, in});
}

}  // namespace birefnet
}  // namespace bd
