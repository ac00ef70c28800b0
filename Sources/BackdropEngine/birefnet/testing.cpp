// Test-only C entry point (backdrop_engine_testing.h): intermediate tensors of the native
// BiRefNet for a model opened through the public bd_model_open.
#include "backdrop_engine_testing.h"

#include <limits.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "birefnet_model.h"

namespace {

void write_err(char* err, size_t len, const std::string& msg) {
  if (err && len) std::snprintf(err, len, "%s", msg.c_str());
}

std::string real_path_of(const char* p) {
  char buf[PATH_MAX];
  if (::realpath(p, buf)) return buf;
  return p;
}

}  // namespace

extern "C" BD_EXPORT bd_status bd_testing_birefnet_forward(const bd_model_options* options, const float* input,
                                                           int batch, int height, int width, bd_testing_tensor_fn fn,
                                                           void* user, char* err, size_t err_len) {
  if (!options || !options->path || !input || !fn || batch < 1 || height < 1 || width < 1) {
    write_err(err, err_len, "bd_testing_birefnet_forward: invalid argument");
    return BD_ERR_INVALID_ARGUMENT;
  }
  bd_model* handle = nullptr;
  bd_status st = bd_model_open(options, &handle, err, err_len);
  if (st != BD_OK) return st;
  try {
    // The model behind the handle: the most recent live native model loaded from this file with
    // the same requested patch order.
    std::shared_ptr<bd::birefnet::BiRefNetModel> model;
    const std::string want = real_path_of(options->path);
    for (auto& m : bd::birefnet::loaded_models()) {
      if (m.real_path == want && m.requested_order == options->patch_order)
        if (auto p = m.model.lock()) model = p;
    }
    if (!model) {
      bd_model_release(handle);
      write_err(err, err_len, std::string("'") + options->path + "' is not loaded as a native BiRefNet model");
      return BD_ERR_MODEL;
    }
    auto x = at::from_blob(const_cast<float*>(input), {batch, 3, height, width}, at::kFloat);
    auto report = [&](const char* name, const at::Tensor& t) {
      auto c = t.detach().to(at::kCPU, at::kFloat).contiguous();
      fn(user, name, c.data_ptr<float>(), c.sizes().data(), int(c.dim()));
    };
    model->forward_capture(x, report);
  } catch (const bd::ArgumentError& e) {
    bd_model_release(handle);
    write_err(err, err_len, e.what());
    return BD_ERR_INVALID_ARGUMENT;
  } catch (const std::exception& e) {
    bd_model_release(handle);
    write_err(err, err_len, e.what());
    return BD_ERR_RUNTIME;
  }
  bd_model_release(handle);
  return BD_OK;
}
