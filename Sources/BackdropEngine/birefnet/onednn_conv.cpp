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
  int64_t n, c, h, w, stride, pad;
  memory::data_type out;
  Epilogue epilogue;
  bool accumulate;
  bool operator<(const Key& o) const {
    return std::tie(n, c, h, w, stride, pad, out, epilogue, accumulate) <
           std::tie(o.n, o.c, o.h, o.w, o.stride, o.pad, o.out, o.epilogue, o.accumulate);
  }
};

// dnnl objects are reference-counted handles: a Kernel is copied out of the cache cheaply.
struct Kernel {
  bool usable = false;  // false: oneDNN has no kernel for this call (the ATen path takes it)
  dnnl::convolution_forward conv;
  memory::desc src, dst, scratchpad;
  memory weights;
  at::Tensor bias;  // float32 (also for bfloat16 weights: one rounding fewer), or undefined
  int64_t o = 0, oh = 0, ow = 0;
};

}  // namespace

class OneDnnConv {
 public:
  // Weights given for good (give_weights): kept plain only until the first kernel packed them.
  void own(const at::Tensor& w, const at::Tensor& b) {
    std::lock_guard<std::mutex> lock(mutex_);
    adopt(w, b);
    owned_ = true;
  }

  // The weights' type for a call that brings `w` (a layer that owns its weights ignores it);
  // false when there are none this path can run.
  bool weight_type(const at::Tensor& w, const at::Tensor& b, c10::ScalarType* type) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!owned_) {
      if (!w.defined() || !w.is_cpu() || w.dim() != 4) return false;
      if (!source_.defined() || source_.data_ptr() != w.data_ptr()) adopt(w, b);
    }
    memory::data_type unused;
    *type = type_;
    return to_dnnl(type_, &unused);
  }

  // The kernel for this call, made (and the weights packed for it) on first use.
  Kernel kernel(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kernels_.find(key);
    if (it != kernels_.end()) return it->second;
    return kernels_.emplace(key, make(key)).first->second;
  }

  // The weights as a plain [O, C, KH, KW] tensor (reordered back from a packed copy once given away).
  at::Tensor plain() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (source_.defined()) return source_;
    auto out = at::empty(dims_, at::TensorOptions().dtype(type_));
    reorder_into(packed_.front(), plain_memory(out.data_ptr()));
    return out;
  }

 private:
  // New weights (the first call, or a layer object copied and given other tensors): start over.
  // Holding `w` keeps its storage alive, so its address cannot come back with other values.
  void adopt(const at::Tensor& w, const at::Tensor& b) {
    source_ = w.contiguous();
    type_ = w.scalar_type();
    dims_ = w.sizes().vec();
    bias_ = b.defined() ? b.to(at::kFloat).contiguous() : at::Tensor();
    kernels_.clear();
    packed_.clear();
  }

  memory plain_memory(void* data) const {
    memory::data_type wt;
    to_dnnl(type_, &wt);
    return memory({{dims_[0], dims_[1], dims_[2], dims_[3]}, wt, memory::format_tag::oihw}, cpu_engine(), data);
  }

  static void reorder_into(memory from, memory to) {
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
  }

  Kernel make(const Key& key) {
    memory::data_type wt;
    to_dnnl(type_, &wt);
    const int64_t o = dims_[0], kh = dims_[2], kw = dims_[3];
    Kernel k;
    k.o = o;
    k.oh = (key.h + 2 * key.pad - kh) / key.stride + 1;
    k.ow = (key.w + 2 * key.pad - kw) / key.stride + 1;
    if (key.c != dims_[1] || k.oh < 1 || k.ow < 1) return k;
    k.src = memory::desc({key.n, key.c, key.h, key.w}, wt, memory::format_tag::nhwc);
    k.dst = memory::desc({key.n, o, k.oh, k.ow}, key.out, memory::format_tag::nhwc);
    dnnl::convolution_forward::primitive_desc pd;
    try {
      const memory::desc any_weights({o, key.c, kh, kw}, wt, memory::format_tag::any);
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

  // The weights in `layout`: reordered from the plain tensor, or once that is given away from the
  // first packed copy. Owned plain weights are dropped after the first packing, so that a layer
  // holds one copy of its weights (two where kernels for other input sizes want another layout).
  memory packed(const memory::desc& layout) {
    for (const auto& m : packed_)
      if (m.get_desc() == layout) return m;
    memory out(layout, cpu_engine());
    reorder_into(source_.defined() ? plain_memory(source_.data_ptr()) : packed_.front(), out);
    packed_.push_back(out);
    if (owned_) source_ = at::Tensor();
    return out;
  }

  std::mutex mutex_;
  bool owned_ = false;
  at::Tensor source_, bias_;  // source_: the plain weights while needed
  c10::ScalarType type_ = at::kFloat;
  std::vector<int64_t> dims_;
  std::map<Key, Kernel> kernels_;
  std::vector<memory> packed_;
};

std::shared_ptr<OneDnnConv> make_onednn_conv() {
  return std::make_shared<OneDnnConv>();
}

void give_weights(OneDnnConv& layer, const at::Tensor& w, const at::Tensor& b) {
  layer.own(w, b);
}

at::Tensor plain_weights(OneDnnConv& layer) {
  return layer.plain();
}

at::Tensor onednn_conv(OneDnnConv& layer, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                       int64_t stride, int64_t pad, Epilogue epilogue, const ConvTarget& target) {
  c10::ScalarType type;
  if (!x.is_cpu() || x.dim() != 4 || !layer.weight_type(w, b, &type)) return at::Tensor();
  memory::data_type out_type;
  const auto out_scalar = target.into.defined() ? target.into.scalar_type() : type;
  if (!to_dnnl(out_scalar, &out_type)) return at::Tensor();
  const auto src = (x.scalar_type() == type ? x : x.to(type)).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t n = src.size(0), c = src.size(1), h = src.size(2), wd = src.size(3);
  const Kernel k = layer.kernel(Key{n, c, h, wd, stride, pad, out_type, epilogue, target.accumulate});
  if (!k.usable) return at::Tensor();
  at::Tensor y = target.into;
  if (y.defined()) {
    TORCH_CHECK(y.sizes() == at::IntArrayRef({n, k.o, k.oh, k.ow}) && y.is_contiguous(at::MemoryFormat::ChannelsLast),
                "onednn_conv: the target is not a channels-last [", n, ", ", k.o, ", ", k.oh, ", ", k.ow, "] tensor");
  } else {
    y = at::empty({n, k.o, k.oh, k.ow}, src.options().dtype(out_scalar).memory_format(at::MemoryFormat::ChannelsLast));
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
    args.emplace(DNNL_ARG_BIAS, memory({{k.o}, memory::data_type::f32, memory::format_tag::a}, engine, k.bias.data_ptr()));
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

void give_weights(OneDnnConv&, const at::Tensor&, const at::Tensor&) {}

at::Tensor plain_weights(OneDnnConv&) {
  return at::Tensor();
}

}  // namespace birefnet
}  // namespace bd

#endif
