// The direct oneDNN convolution of onednn_conv.h: the only file that includes dnnl.hpp.
#include "onednn_conv.h"

#ifdef BD_WITH_ONEDNN

#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace bd {
namespace birefnet {

namespace {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

bool to_dnnl(c10::ScalarType t, memory::data_type* out) {
  if (t == at::kFloat) *out = memory::data_type::f32;
  else if (t == at::kBFloat16) *out = memory::data_type::bf16;
  else return false;
  return true;
}

// What one kernel depends on besides the layer's weights.
struct Key {
  int64_t n, h, w, stride, pad;
  memory::data_type out;
  Epilogue epilogue;
  bool accumulate;
  bool operator<(const Key& o) const {
    return std::tie(n, h, w, stride, pad, out, epilogue, accumulate) <
           std::tie(o.n, o.h, o.w, o.stride, o.pad, o.out, o.epilogue, o.accumulate);
  }
};

// dnnl objects are reference-counted handles: a Kernel is copied out of the cache cheaply.
struct Kernel {
  bool usable = false;  // false: oneDNN has no kernel for this call (the ATen path takes it)
  dnnl::convolution_forward conv;
  memory::desc src, dst, scratchpad;
  memory weights;
  at::Tensor bias;  // float32 (also for bfloat16 weights: one rounding fewer), or undefined
};

}  // namespace

class OneDnnConv {
 public:
  // The kernel for this call, made (and the weights packed for it) on first use.
  Kernel kernel(const at::Tensor& w, const at::Tensor& b, const Key& key, int64_t c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!source_.defined() || source_.data_ptr() != w.data_ptr()) adopt(w, b);
    auto it = kernels_.find(key);
    if (it != kernels_.end()) return it->second;
    return kernels_.emplace(key, make(key, c)).first->second;
  }

 private:
  // New weights (the first call, or a layer object copied and given other tensors): start over.
  // Holding `w` keeps its storage alive, so its address cannot come back with other values.
  void adopt(const at::Tensor& w, const at::Tensor& b) {
    source_ = w.contiguous();
    bias_ = b.defined() ? b.to(at::kFloat).contiguous() : at::Tensor();
    kernels_.clear();
    packed_.clear();
  }

  Kernel make(const Key& key, int64_t c) {
    memory::data_type wt;
    to_dnnl(source_.scalar_type(), &wt);
    const int64_t o = source_.size(0), kh = source_.size(2), kw = source_.size(3);
    const int64_t oh = (key.h + 2 * key.pad - kh) / key.stride + 1, ow = (key.w + 2 * key.pad - kw) / key.stride + 1;
    Kernel k;
    k.src = memory::desc({key.n, c, key.h, key.w}, wt, memory::format_tag::nhwc);
    k.dst = memory::desc({key.n, o, oh, ow}, key.out, memory::format_tag::nhwc);
    dnnl::convolution_forward::primitive_desc pd;
    try {
      const memory::desc any_weights({o, c, kh, kw}, wt, memory::format_tag::any);
      const memory::dims strides{key.stride, key.stride}, padding{key.pad, key.pad};
      const auto desc = bias_.defined()
          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                            k.src, any_weights, memory::desc({o}, memory::data_type::f32, memory::format_tag::a),
                                            k.dst, strides, padding, padding)
          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                            k.src, any_weights, k.dst, strides, padding, padding);
      dnnl::post_ops ops;  // the sum first: the epilogue applies to the accumulated value
      if (key.accumulate) ops.append_sum(1.f);
      if (key.epilogue == Epilogue::ReLU) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      if (key.epilogue == Epilogue::GELU) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      // The scratchpad comes with each call, so that two threads may run one kernel at once.
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      pd = dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
    } catch (const dnnl::error&) {
      return k;  // no kernel here, e.g. bfloat16 on a CPU without it
    }
    k.usable = true;
    k.conv = dnnl::convolution_forward(pd);
    k.scratchpad = pd.scratchpad_desc();
    k.weights = packed(pd.weights_desc());
    k.bias = bias_;
    return k;
  }

  // The weights in `layout`, reordered from the plain [O, C, KH, KW] tensor the first time.
  memory packed(const memory::desc& layout) {
    for (const auto& m : packed_)
      if (m.get_desc() == layout) return m;
    memory::data_type wt;
    to_dnnl(source_.scalar_type(), &wt);
    memory plain({{source_.size(0), source_.size(1), source_.size(2), source_.size(3)}, wt, memory::format_tag::oihw},
                 cpu_engine(), source_.data_ptr());
    memory out(layout, cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, out).execute(stream, plain, out);
    stream.wait();
    packed_.push_back(out);
    return out;
  }

  std::mutex mutex_;
  at::Tensor source_, bias_;
  std::map<Key, Kernel> kernels_;
  std::vector<memory> packed_;
};

std::shared_ptr<OneDnnConv> make_onednn_conv() {
  return std::make_shared<OneDnnConv>();
}

at::Tensor onednn_conv(OneDnnConv& layer, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                       int64_t stride, int64_t pad, Epilogue epilogue, const ConvTarget& target) {
  memory::data_type wt, out_type;
  const auto out_scalar = target.into.defined() ? target.into.scalar_type() : w.scalar_type();
  if (!x.is_cpu() || !w.is_cpu() || x.dim() != 4 || w.dim() != 4 || !to_dnnl(w.scalar_type(), &wt) ||
      !to_dnnl(out_scalar, &out_type))
    return at::Tensor();
  const auto src = (x.scalar_type() == w.scalar_type() ? x : x.to(w.scalar_type())).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t n = src.size(0), c = src.size(1), h = src.size(2), wd = src.size(3);
  const int64_t o = w.size(0), oh = (h + 2 * pad - w.size(2)) / stride + 1, ow = (wd + 2 * pad - w.size(3)) / stride + 1;
  const Kernel k = layer.kernel(w, b, Key{n, h, wd, stride, pad, out_type, epilogue, target.accumulate}, c);
  if (!k.usable) return at::Tensor();
  at::Tensor y = target.into;
  if (y.defined()) {
    TORCH_CHECK(y.sizes() == at::IntArrayRef({n, o, oh, ow}) && y.is_contiguous(at::MemoryFormat::ChannelsLast),
                "onednn_conv: the target is not a channels-last [", n, ", ", o, ", ", oh, ", ", ow, "] tensor");
  } else {
    y = at::empty({n, o, oh, ow}, src.options().dtype(out_scalar).memory_format(at::MemoryFormat::ChannelsLast));
  }
  auto scratch = at::empty({int64_t(k.scratchpad.get_size())}, src.options().dtype(at::kByte));
  // oneDNN (OpenMP) runs on the calling thread's team: give it libtorch's thread count on this
  // thread too (an inference thread of the element starts with the OpenMP default).
  at::internal::lazy_init_num_threads();
  auto& engine = cpu_engine();
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(k.src, engine, src.data_ptr())},
      {DNNL_ARG_WEIGHTS, k.weights},
      {DNNL_ARG_DST, memory(k.dst, engine, y.data_ptr())},
      {DNNL_ARG_SCRATCHPAD, memory(k.scratchpad, engine, scratch.data_ptr())}};
  if (k.bias.defined())
    args.emplace(DNNL_ARG_BIAS, memory({{o}, memory::data_type::f32, memory::format_tag::a}, engine, k.bias.data_ptr()));
  dnnl::stream stream(engine);
  k.conv.execute(stream, args);
  stream.wait();
  return y;
}

}  // namespace birefnet
}  // namespace bd

#else  // no direct oneDNN in this build

namespace bd {
namespace birefnet {

class OneDnnConv {};

std::shared_ptr<OneDnnConv> make_onednn_conv() {
  return nullptr;
}

at::Tensor onednn_conv(OneDnnConv&, const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, Epilogue,
                       const ConvTarget&) {
  return at::Tensor();
}

}  // namespace birefnet
}  // namespace bd

#endif
