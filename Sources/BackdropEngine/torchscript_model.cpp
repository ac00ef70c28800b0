// TorchScript models: a scripted or traced module with the contract
// "ImageNet-normalised RGB [B,3,H,W] → logits [B,1,H,W]". A tuple or list output counts by its
// last element (BiRefNet exports return one prediction per decoder stage, finest last).
#include <torch/script.h>

#include <cstdio>
#include <utility>

#include "model.h"
#include "torchscript_archive.h"
#include "torchscript_code_check.h"

namespace bd {
namespace {

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// TorchScript errors carry the interpreter's whole traceback; the cause is its last line.
std::string last_line(const std::string& text) {
  auto end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return text;
  auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

class TorchScriptModel final : public MatteModel {
 public:
  TorchScriptModel(torch::jit::Module module, std::string path, c10::ScalarType dtype, int preferred_width,
                   int preferred_height)
      : module_(std::move(module)), path_(std::move(path)), dtype_(dtype),
        preferred_width_(preferred_width), preferred_height_(preferred_height) {}

  at::Tensor forward(const at::Tensor& normalized_rgb) override {
    std::lock_guard<std::mutex> lock(mutex_);  // a Module's forward is not re-entrant
    torch::jit::IValue output;
    try {
      output = module_.forward({normalized_rgb});
    } catch (const c10::Error& error) {
      throw ModelError(failure(normalized_rgb, last_line(error.what_without_backtrace())));
    } catch (const std::exception& error) {  // torch::jit::JITException and friends
      throw ModelError(failure(normalized_rgb, last_line(error.what())));
    }
    if (output.isTuple()) {
      auto elements = output.toTuple()->elements();
      if (elements.empty()) throw ModelError("model-file " + path_ + " returned an empty tuple");
      output = elements.back();
    } else if (output.isList()) {
      auto list = output.toList();
      if (list.size() == 0) throw ModelError("model-file " + path_ + " returned an empty list");
      output = list.get(list.size() - 1);
    }
    if (!output.isTensor()) {
      throw ModelError("model-file " + path_ + " returned " + output.tagKind() +
                       ", expected a logits tensor [B,1,H,W]");
    }
    auto logits = output.toTensor();
    if (logits.dim() != 4 || logits.size(0) != normalized_rgb.size(0) || logits.size(1) != 1) {
      throw ModelError("model-file " + path_ + " returned a tensor of shape " + shape_text(logits) +
                       " for an input of shape " + shape_text(normalized_rgb) +
                       "; the contract is logits [B,1,H,W]");
    }
    // The matte must line up with the frame pixel for pixel: a model that answers at another size
    // (half-size logits from a stride mistake, a fixed-size export) breaks the contract, and
    // silently resizing its answer would hide that. The session's probe forward meets this first.
    if (logits.size(2) != normalized_rgb.size(2) || logits.size(3) != normalized_rgb.size(3)) {
      throw ModelError("model-file " + path_ + " returned logits of size " + std::to_string(logits.size(3)) + "x" +
                       std::to_string(logits.size(2)) + " (shape " + shape_text(logits) + ") for an input of " +
                       std::to_string(normalized_rgb.size(3)) + "x" + std::to_string(normalized_rgb.size(2)) +
                       " (shape " + shape_text(normalized_rgb) +
                       "); the contract is logits [B,1,H,W] at the input's size: resize inside the model");
    }
    return logits.to(normalized_rgb.scalar_type());
  }

  bd_model_kind kind() const override { return BD_MODEL_TORCHSCRIPT; }
  c10::ScalarType input_dtype() const override { return dtype_; }  // the whole module is converted
  int native_width() const override { return preferred_width_; }
  int native_height() const override { return preferred_height_; }
  std::string description() const override { return "TorchScript " + path_; }

  // A traced model often holds the shape it was traced with: say which settings give the input's.
  std::string failure(const at::Tensor& input, const std::string& cause) const {
    return "model-file " + path_ + " failed on an input of shape " + shape_text(input) + ": " + cause +
           ". If it was exported (traced) for one input shape, match it: inference-width and inference-height (now " +
           std::to_string(input.size(3)) + "x" + std::to_string(input.size(2)) + ") and batch-size (now " +
           std::to_string(input.size(0)) + ")";
  }

  static std::string shape_text(const at::Tensor& t) {
    std::string text = "[";
    for (int64_t i = 0; i < t.dim(); ++i) text += (i ? "," : "") + std::to_string(t.size(i));
    return text + "]";
  }

 private:
  torch::jit::Module module_;
  std::string path_;
  c10::ScalarType dtype_;
  int preferred_width_;
  int preferred_height_;
  std::mutex mutex_;
};

// A model carries the size it prefers as the extra file "backdrop/inference_size" ("256x256"),
// written with torch.jit.save(..., _extra_files={"backdrop/inference_size": "256x256"}).
// Anything else (absent, unparsable, out of range) means no preference: {0, 0}.
std::pair<int, int> parse_inference_size(const std::string& text) {
  int width = 0, height = 0;
  char separator = 0;
  if (std::sscanf(text.c_str(), "%d%c%d", &width, &separator, &height) != 3) return {0, 0};
  if ((separator != 'x' && separator != 'X') || width < 32 || height < 32 || width > 4096 || height > 4096) return {0, 0};
  return {width, height};
}

}  // namespace

std::shared_ptr<MatteModel> load_torchscript(const std::string& path, const ModelLoadOptions& options) {
  torch::jit::Module module;
  torch::jit::ExtraFilesMap extra_files{{"backdrop/inference_size", ""}};
  auto archive = open_torchscript_archive(path);  // debug records hidden: see torchscript_archive.h
  try {
    check_torchscript_code(archive, path);  // what libtorch 1.13's importer would crash on
    module = torch::jit::load(std::move(archive), options.device, extra_files);
  } catch (const ModelError&) {
    throw;
  } catch (const std::bad_alloc&) {
    // A corrupt archive can declare a record of many gigabytes (found by fuzz/model_open).
    throw ModelError("model-file " + path +
                     " is not a valid TorchScript model: it declares a record larger than the memory available "
                     "(a corrupt or truncated archive?)");
  } catch (const c10::Error& error) {
    throw ModelError("model-file " + path + " is not a valid TorchScript model: " +
                     first_line(error.what_without_backtrace()));
  } catch (const std::exception& error) {
    throw ModelError("model-file " + path + " is not a valid TorchScript model: " + first_line(error.what()));
  }
  module.eval();
  module.to(options.dtype);
  auto preferred = parse_inference_size(extra_files["backdrop/inference_size"]);
  return std::make_shared<TorchScriptModel>(std::move(module), path, options.dtype, preferred.first, preferred.second);
}

}  // namespace bd
