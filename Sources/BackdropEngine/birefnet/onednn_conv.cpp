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
  memory bias;  // over the layer's float32 bias; an empty handle when it has none
  int64_t o = 0, oh = 0, ow = 0;
};

}  // namespace

class OneDnnConv {
 public:
  OneDnnConv(const at::Tensor& w, const at::Tensor& b, memory::data_type type)
      : type(w.scalar_type()),
        dnnl_type_(type),
        dims_(w.sizes().vec()),
        bias_(b.defined() ? b.to(at::kFloat).contiguous() : at::Tensor()),
        plain_(w.contiguous()) {}

  const c10::ScalarType type;  // the weights' type, in which the layer computes

  // The kernel for this call, made (and the weights packed for it) on first use.
  Kernel kernel(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kernels_.find(key);
    if (it != kernels_.end()) return it->second;
    return kernels_.emplace(key, make(key)).first->second;
  }

  // The weights as a plain [O, C, KH, KW] tensor (reordered back from the packed copy once packed).
  at::Tensor plain() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (plain_.defined()) return plain_;
    auto out = at::empty(dims_, at::TensorOptions().dtype(type));
    reorder_into(packed_.front(), plain_memory(out.data_ptr()));
    return out;
  }

 private:
  memory plain_memory(void* data) const {
    return memory({{dims_[0], dims_[1], dims_[2], dims_[3]}, dnnl_type_, memory::format_tag::oihw}, cpu_engine(), data);
  }

  static void reorder_into(memory from, memory to) {
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
  }

  Kernel make(const Key& key) {
    const int64_t o = dims_[0], kh = dims_[2], kw = dims_[3];
    Kernel k;
    k.o = o;
    k.oh = (key.h + 2 * key.pad - kh) / key.stride + 1;
    k.ow = (key.w + 2 * key.pad - kw) / key.stride + 1;
    if (key.c != dims_[1] || k.oh < 1 || k.ow < 1) return k;
    k.src = memory::desc({key.n, key.c, key.h, key.w}, dnnl_type_, memory::format_tag::nhwc);
    k.dst = memory::desc({key.n, o, k.oh, k.ow}, key.out, memory::format_tag::nhwc);
    dnnl::convolution_forward::primitive_desc pd;
    try {
      const memory::desc any_weights({o, key.c, kh, kw}, dnnl_type_, memory::format_tag::any);
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
    if (bias_.defined()) k.bias = memory({{o}, memory::data_type::f32, memory::format_tag::a}, cpu_engine(), bias_.data_ptr());
    return k;
  }

  // The weights in `layout`: reordered from the plain tensor, or once that is dropped (after the
  // first packing, so that the layer holds one copy of its weights, two where kernels for other
  // input sizes want another layout) from the first packed copy.
  memory packed(const memory::desc& layout) {
    for (const auto& m : packed_)
      if (m.get_desc() == layout) return m;
    memory out(layout, cpu_engine());
    reorder_into(plain_.defined() ? plain_memory(plain_.data_ptr()) : packed_.front(), out);
    packed_.push_back(out);
    plain_ = at::Tensor();
    return out;
  }

  const memory::data_type dnnl_type_;
  const std::vector<int64_t> dims_;
  const at::Tensor bias_;  // float32 (also for bfloat16 weights: one rounding fewer), or undefined
  std::mutex mutex_;       // guards what follows: kernels are made by whichever thread calls first
  at::Tensor plain_;       // the plain weights until the first packing
  std::map<Key, Kernel> kernels_;
  std::vector<memory> packed_;
};

std::shared_ptr<OneDnnConv> make_onednn_conv(const at::Tensor& w, const at::Tensor& b) {
  memory::data_type type;
  if (!w.defined() || !w.is_cpu() || w.dim() != 4 || !to_dnnl(w.scalar_type(), &type)) return nullptr;
  return std::make_shared<OneDnnConv>(w, b, type);
}

at::Tensor plain_weights(OneDnnConv& layer) {
  return layer.plain();
}

at::Tensor onednn_conv(OneDnnConv& layer, const at::Tensor& x, int64_t stride, int64_t pad, Epilogue epilogue,
                       const ConvTarget& target) {
  if (!x.is_cpu() || x.dim() != 4) return at::Tensor();
  memory::data_type out_type;
  const auto out_scalar = target.into.defined() ? target.into.scalar_type() : layer.type;
  if (!to_dnnl(out_scalar, &out_type)) return at::Tensor();
  const auto src = (x.scalar_type() == layer.type ? x : x.to(layer.type)).contiguous(at::MemoryFormat::ChannelsLast);
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
  if (k.bias) args.emplace(DNNL_ARG_BIAS, k.bias);
  // A CPU stream is a handle on the calling thread: one per thread, made once.
  thread_local dnnl::stream stream(engine);
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

std::shared_ptr<OneDnnConv> make_onednn_conv(const at::Tensor&, const at::Tensor&) {
  return nullptr;
}

at::Tensor plain_weights(OneDnnConv&) {
  return at::Tensor();
}

at::Tensor onednn_conv(OneDnnConv&, const at::Tensor&, int64_t, int64_t, Epilogue, const ConvTarget&) {
  return at::Tensor();
}

}  // namespace birefnet
}  // namespace bd

#endif
