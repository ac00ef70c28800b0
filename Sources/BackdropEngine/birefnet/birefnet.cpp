// Loading official BiRefNet .safetensors weights into the native network: prefix stripping,
// variant detection from keys and shapes, strict key/shape/dtype checking with one combined
// error, F16/BF16 conversion at load, and the MatteModel wrapper.
#include <c10/core/InferenceMode.h>
#include <cmath>
#include <limits.h>
#include <stdlib.h>

#include <cstring>
#include <mutex>
#include <regex>
#include <sstream>

#include "birefnet_model.h"
#include "safetensors.h"

namespace bd {

namespace birefnet {

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); i++) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

bool starts_with(const std::string& s, const char* p) { return s.compare(0, std::strlen(p), p) == 0; }
bool ends_with(const std::string& s, const char* p) {
  size_t n = std::strlen(p);
  return s.size() >= n && s.compare(s.size() - n, n, p) == 0;
}

bool training_only(const std::string& key) {
  return starts_with(key, "decoder.conv_ms_spvn_") || starts_with(key, "decoder.gdt_convs_pred_") ||
         ends_with(key, "num_batches_tracked");
}

std::string strip_prefixes(std::string key) {
  for (;;) {
    if (starts_with(key, "module.")) key.erase(0, 7);
    else if (starts_with(key, "_orig_mod.")) key.erase(0, 10);
    else return key;
  }
}

std::mutex g_registry_mutex;
std::vector<LoadedModel> g_registry;

std::string real_path_of(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf)) return buf;
  return p;
}

}  // namespace

bool WeightSource::has(const std::string& key) const { return tensors_->count(key) != 0; }

at::Tensor WeightSource::take(const std::string& key, std::vector<int64_t> shape) {
  auto it = tensors_->find(key);
  const bool want_int = ends_with(key, "relative_position_index");
  if (it == tensors_->end()) {
    missing.push_back(key + " " + shape_str(shape));
    return at::zeros(shape, want_int ? at::kLong : at::kFloat);
  }
  used_.insert(key);
  const at::Tensor& t = it->second;
  const bool is_int = t.scalar_type() == at::kLong;
  if (is_int != want_int) {
    wrong_dtype.push_back(key + " is " + (is_int ? "I64" : "a float type") + ", expected " +
                          (want_int ? "I64" : "F32, F16 or BF16"));
    return at::zeros(shape, want_int ? at::kLong : at::kFloat);
  }
  if (t.sizes() != at::IntArrayRef(shape)) {
    wrong_shape.push_back(key + " has " + shape_str(t.sizes()) + ", expected " + shape_str(shape));
    return at::zeros(shape, t.scalar_type());
  }
  return t;
}

BiRefNetModel::BiRefNetModel(Network net, std::string description, const ModelLoadOptions& options)
    : net_(std::move(net)), description_(std::move(description)), options_(options) {}

void BiRefNetModel::check_input(const at::Tensor& x) const {
  if (x.dim() != 4 || x.size(1) != 3 || x.size(0) < 1)
    throw ArgumentError("BiRefNet input must be [B, 3, H, W], got " + shape_str(x.sizes()));
  if (x.size(2) < 32 || x.size(3) < 32 || x.size(2) % 32 || x.size(3) % 32)
    throw ArgumentError("BiRefNet input height and width must be positive multiples of 32, got " +
                                std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
}

at::Tensor BiRefNetModel::forward(const at::Tensor& x) {
  check_input(x);
  c10::InferenceMode guard;
  return net_.forward(x.to(options_.device, input_dtype()), nullptr);
}

at::Tensor BiRefNetModel::forward_capture(const at::Tensor& x, const Capture& capture) {
  check_input(x);
  c10::InferenceMode guard;
  return net_.forward(x.to(options_.device, input_dtype()), &capture);
}

std::vector<LoadedModel> loaded_models() {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  std::vector<LoadedModel> alive;
  for (auto& m : g_registry)
    if (!m.model.expired()) alive.push_back(m);
  g_registry = alive;
  return alive;
}

}  // namespace birefnet

bool looks_like_safetensors(const std::string& path) { return st::sniff(path); }

std::shared_ptr<MatteModel> load_birefnet(const std::string& path, const ModelLoadOptions& options) {
  using namespace birefnet;
  st::File file(path);
  const std::string where = "BiRefNet weights '" + path + "'";

  // Patch order: explicit option, else the file's __metadata__ "patch_order", else current.
  PatchOrder order = PatchOrder::Current;
  std::string order_source = "default";
  if (options.patch_order == BD_PATCH_ORDER_LEGACY) { order = PatchOrder::Legacy; order_source = "option"; }
  else if (options.patch_order == BD_PATCH_ORDER_CURRENT) { order_source = "option"; }
  else {
    auto it = file.metadata().find("patch_order");
    if (it != file.metadata().end()) {
      if (it->second == "legacy") order = PatchOrder::Legacy;
      else if (it->second != "current")
        throw ModelError(where + ": __metadata__ key 'patch_order' is '" + it->second +
                         "' (rule: it must be 'legacy' or 'current')");
      order_source = "metadata";
    }
  }

  // Tensors by prefix-stripped key, as float32 (or int64) CPU tensors.
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> raw_name;
  for (const auto& tv : file.tensors()) {
    std::string key = strip_prefixes(tv.name);
    if (raw_name.count(key))
      throw ModelError(where + ": tensors '" + raw_name[key] + "' and '" + tv.name + "' both name '" + key +
                       "' once the module./_orig_mod. prefixes are stripped (rule: unique keys)");
    raw_name[key] = tv.name;
    at::Tensor t;
    switch (tv.dtype) {
      case st::DType::F32: t = at::empty(tv.shape, at::kFloat); break;
      case st::DType::F16: t = at::empty(tv.shape, at::kHalf); break;
      case st::DType::BF16: t = at::empty(tv.shape, at::kBFloat16); break;
      case st::DType::I64: t = at::empty(tv.shape, at::kLong); break;
    }
    if (tv.nbytes) std::memcpy(t.data_ptr(), tv.data, tv.nbytes);
    if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
    tensors[key] = std::move(t);
  }
  file.close();

  // Variant from keys and shapes.
  auto pe = tensors.find("bb.patch_embed.proj.weight");
  if (pe == tensors.end())
    throw ModelError(where + " is not a BiRefNet swin_v1 checkpoint: key 'bb.patch_embed.proj.weight' is missing "
                     "(rule: the backbone is detected from it; module./_orig_mod. prefixes are stripped)");
  if (pe->second.dim() != 4 || pe->second.size(1) != 3 || pe->second.size(2) != 4 || pe->second.size(3) != 4 ||
      pe->second.size(0) < 8 || pe->second.size(0) > 1024 || pe->second.size(0) % 8)
    throw ModelError(where + ": 'bb.patch_embed.proj.weight' has shape " + shape_str(pe->second.sizes()) +
                     " (rule: [E, 3, 4, 4] with E a multiple of 8, e.g. 96 for swin_v1_t, 192 for swin_v1_l)");
  SwinConfig cfg;
  cfg.embed = pe->second.size(0);
  std::regex block_re("^bb\\.layers\\.([0-3])\\.blocks\\.([0-9]{1,3})\\.");
  std::array<int64_t, 4> depth{{0, 0, 0, 0}};
  for (auto& kv : tensors) {
    std::smatch m;
    if (std::regex_search(kv.first, m, block_re)) {
      int layer = std::stoi(m[1].str());
      depth[layer] = std::max<int64_t>(depth[layer], std::stoll(m[2].str()) + 1);
    }
  }
  const bool large = cfg.embed >= 128;
  const std::array<int64_t, 4> default_depths = cfg.embed == 96 && depth[2] <= 6 ? std::array<int64_t, 4>{{2, 2, 6, 2}}
                                                                                : std::array<int64_t, 4>{{2, 2, 18, 2}};
  for (int i = 0; i < 4; i++) cfg.depths[i] = depth[i] ? depth[i] : default_depths[i];
  cfg.window = large ? 12 : 7;
  auto table = tensors.find("bb.layers.0.blocks.0.attn.relative_position_bias_table");
  if (table != tensors.end() && table->second.dim() == 2) {
    int64_t side = int64_t(std::llround(std::sqrt(double(table->second.size(0)))));
    if (side * side == table->second.size(0) && side % 2 == 1 && side >= 3 && side <= 63) cfg.window = (side + 1) / 2;
  }
  for (int i = 0; i < 4; i++) {
    int64_t heads = (cfg.embed / 32) << i;  // 96 -> 3, 128 -> 4, 192 -> 6
    auto t = tensors.find("bb.layers." + std::to_string(i) + ".blocks.0.attn.relative_position_bias_table");
    if (t != tensors.end() && t->second.dim() == 2 && t->second.size(1) >= 1 && ((cfg.embed << i) % t->second.size(1)) == 0)
      heads = t->second.size(1);
    cfg.heads[i] = std::max<int64_t>(1, heads);
  }
  if (cfg.embed == 96 && cfg.depths == std::array<int64_t, 4>{{2, 2, 6, 2}}) cfg.name = "swin_v1_t";
  else if (cfg.embed == 96 && cfg.depths == std::array<int64_t, 4>{{2, 2, 18, 2}}) cfg.name = "swin_v1_s";
  else if (cfg.embed == 128 && cfg.depths == std::array<int64_t, 4>{{2, 2, 18, 2}}) cfg.name = "swin_v1_b";
  else if (cfg.embed == 192 && cfg.depths == std::array<int64_t, 4>{{2, 2, 18, 2}}) cfg.name = "swin_v1_l";
  else {
    std::ostringstream o;
    o << "swin_v1 (embed " << cfg.embed << ", depths " << cfg.depths[0] << "-" << cfg.depths[1] << "-" << cfg.depths[2]
      << "-" << cfg.depths[3] << ", window " << cfg.window << ")";
    cfg.name = o.str();
  }

  // Build (validating every key), then report all problems at once.
  Network net;
  net.patch_order = order;
  WeightSource src(&tensors);
  const Compute to = Compute::for_precision(options.dtype, options.device);
  net.compute = to;
  net.bb = build_swin(src, cfg, to);
  const int64_t e = cfg.embed;
  const std::array<int64_t, 4> lateral{{16 * e, 8 * e, 4 * e, 2 * e}};  // 'cat' doubles the backbone channels
  net.squeeze = build_dec_blk(src, "squeeze_module.0", lateral[0] + lateral[3] + lateral[2] + lateral[1], lateral[0],
                              to);
  net.dec = build_decoder(src, lateral, to);
  std::vector<std::string> unexpected;
  for (auto& kv : tensors)
    if (!src.used().count(kv.first) && !training_only(kv.first)) unexpected.push_back(raw_name[kv.first]);
  if (!src.missing.empty() || !src.wrong_shape.empty() || !src.wrong_dtype.empty() || !unexpected.empty()) {
    std::ostringstream o;
    o << where << " do not match BiRefNet " << cfg.name << " (detected from bb.patch_embed.proj.weight and the block keys):";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      o << " " << v.size() << " " << what << ": ";
      for (size_t i = 0; i < v.size() && i < 12; i++) o << (i ? "; " : "") << v[i];
      if (v.size() > 12) o << "; ... and " << (v.size() - 12) << " more";
      o << ".";
    };
    list("missing key(s)", src.missing);
    list("unexpected key(s)", unexpected);
    list("wrong shape(s)", src.wrong_shape);
    list("wrong dtype(s)", src.wrong_dtype);
    throw ModelError(o.str());
  }
  tensors.clear();

  std::string desc = "BiRefNet " + cfg.name + ", " + (order == PatchOrder::Legacy ? "legacy" : "current") +
                     " patch order" + (order_source == "default" ? "" : " (from " + order_source + ")");
  auto model = std::make_shared<BiRefNetModel>(std::move(net), desc, options);
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    g_registry.push_back({path, real_path_of(path), options.patch_order, model});
  }
  return model;
}

}  // namespace bd
