// The native BiRefNet MatteModel, visible to the birefnet/ folder (testing.cpp uses it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../model.h"
#include "net.h"

namespace bd {
namespace birefnet {

class BiRefNetModel final : public MatteModel {
 public:
  BiRefNetModel(Network net, std::string description, const ModelLoadOptions& options);
  at::Tensor forward(const at::Tensor& normalized_rgb) override;
  // forward() that also reports intermediate tensors (tests).
  at::Tensor forward_capture(const at::Tensor& normalized_rgb, const Capture& capture);
  bd_model_kind kind() const override { return BD_MODEL_BIREFNET; }
  // The activations' type (float32 for bf16, which runs mixed: see Compute).
  c10::ScalarType input_dtype() const override { return net_.compute.act; }
  std::string description() const override { return description_; }
  const ModelLoadOptions& options() const { return options_; }
  const Network& network() const { return net_; }

 private:
  void check_input(const at::Tensor& x) const;
  Network net_;
  std::string description_;
  ModelLoadOptions options_;
};

// Models created by load_birefnet that are still alive, most recent last (for the test entry
// point, which reaches the model behind a bd_model* opened through the public ABI).
struct LoadedModel {
  std::string path;       // as given to load_birefnet
  std::string real_path;  // realpath() of it
  bd_patch_order requested_order;
  std::weak_ptr<BiRefNetModel> model;
};
std::vector<LoadedModel> loaded_models();

}  // namespace birefnet
}  // namespace bd
