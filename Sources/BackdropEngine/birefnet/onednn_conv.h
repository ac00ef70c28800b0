// CPU convolutions through oneDNN directly, with each layer's weights reordered once into the
// blocked layout its kernel wants, and ReLU/GELU and residual adds fused into the kernel.
//
// Why: at::mkldnn_convolution takes plain weight tensors and reorders them on every call (DNNL_VERBOSE
// on BiRefNet-lite 512², AVX-512: 269 weight reorders per frame, 40 ms of 555), sends NCHW maps
// through two more reorders, and fuses nothing. Debian's libtorch links the system libdnnl.so.2, so
// calling it ourselves uses the same library and threads. Built only with BD_WITH_ONEDNN (Debian's
// libtorch with libdnnl-dev); elsewhere (a PyPI torch with its own oneDNN inside, or on a GPU) every
// call takes the ATen path of conv2d() in net.h.
#pragma once

#include <ATen/ATen.h>

#include <memory>

namespace bd {
namespace birefnet {

// What a convolution applies to its result before storing it (in oneDNN: a fused post-op).
enum class Epilogue { None, ReLU, GELU };

// Where a convolution's result goes: a new tensor, or `into` (a channels-last [N, O, OH, OW] tensor
// of the result's shape), replacing its values or, with accumulate, added to them before the
// epilogue: into = epilogue(into + conv(x) + b) (the residual add of a Swin block, or ASPP's sum
// of branch projections, without a separate pass over the tensor).
struct ConvTarget {
  at::Tensor into;
  bool accumulate = false;
};

// One layer's weights and oneDNN kernels, per input shape: the full- and half-resolution backbone
// passes and each batch size get their own kernel. The weights are packed once per layout the
// kernels want (most layers want one; a few get a second for the smaller maps), and the plain copy
// is dropped once packed, so that the packed copy is the only one (the bulk of a model: Swin's
// linear layers, 0.75 GB for Swin-L in float32).
class OneDnnConv;

// The layer for weights w [O, C, KH, KW] and bias b [O] (or undefined), float32 or bfloat16 on the
// CPU; null when this build has no direct oneDNN path or the weights are not of that kind.
std::shared_ptr<OneDnnConv> make_onednn_conv(const at::Tensor& w, const at::Tensor& b);

// The weights as a plain [O, C, KH, KW] tensor (reordered back from the packed copy once packed):
// for the ATen path, should oneDNN have no kernel for a call.
at::Tensor plain_weights(OneDnnConv& layer);

// conv(x) + b with the epilogue, stride and symmetric padding, no dilation, groups 1, in the
// weights' type and returned in that type unless written into target.into. Returns an undefined
// tensor when oneDNN cannot run it (a GPU tensor, another type, no kernel on this CPU): the caller
// then takes the ATen path.
at::Tensor onednn_conv(OneDnnConv& layer, const at::Tensor& x, int64_t stride, int64_t pad, Epilogue epilogue,
                       const ConvTarget& target);

}  // namespace birefnet
}  // namespace bd
