// The engine's internal model interface: every kind of model file (TorchScript, native BiRefNet)
// is loaded into a MatteModel, and the session code only ever calls forward().
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "backdrop_engine.h"

namespace bd {

// An error a user caused or can fix (bad file, missing key, wrong contract). The message must name
// the file and say what is wrong; the C ABI returns it as BD_ERR_MODEL.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A device that cannot be used (CUDA without CUDA, a GPU index that does not exist, fp16 on the
// CPU): BD_ERR_DEVICE.
struct DeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A caller mistake in sizes, formats or pointers: BD_ERR_INVALID_ARGUMENT.
struct ArgumentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ModelLoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = at::kFloat;  // compute dtype: float on CPU, half/bfloat16 on CUDA
  bd_patch_order patch_order = BD_PATCH_ORDER_AUTO;
};

class MatteModel {
 public:
  virtual ~MatteModel() = default;
  // normalized_rgb: [B,3,H,W], ImageNet-normalised RGB, input_dtype(), on options' device.
  // Returns logits [B,1,H,W] (pre-sigmoid) in the same dtype and device. Called without autograd.
  virtual at::Tensor forward(const at::Tensor& normalized_rgb) = 0;
  // The type forward() takes: the options' dtype unless the model computes in mixed precision.
  virtual c10::ScalarType input_dtype() const = 0;
  virtual bd_model_kind kind() const = 0;
  virtual std::string description() const = 0;
  virtual int native_width() const { return 0; }
  virtual int native_height() const { return 0; }
};

// True when the file starts like a safetensors file (8-byte header length, then '{').
bool looks_like_safetensors(const std::string& path);

std::shared_ptr<MatteModel> load_torchscript(const std::string& path, const ModelLoadOptions& options);
std::shared_ptr<MatteModel> load_birefnet(const std::string& path, const ModelLoadOptions& options);

}  // namespace bd
