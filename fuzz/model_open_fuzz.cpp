// libFuzzer target: the engine's model loading path through the C ABI (bd_model_open: file kind
// sniffing, the TorchScript loader and the native BiRefNet loader behind it) on arbitrary bytes.
// Every input must be refused with BD_ERR_MODEL and a message that names the file, or load; a
// loaded model must then give a session (or refuse it with a status) and process one frame.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backdrop_engine.h"

namespace {

int memory_file() {
  static int fd = memfd_create("model-fuzz", MFD_CLOEXEC);
  return fd;
}

void fail(const char* what, const char* detail) {
  std::fprintf(stderr, "invariant broken: %s (%s)\n", what, detail);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memory_file();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  bd_model_options options{};
  options.path = path.c_str();
  options.device = BD_DEVICE_CPU;
  options.precision = BD_PRECISION_FP32;
  options.threads = 1;
  bd_model* model = nullptr;
  char err[1024];
  const bd_status status = bd_model_open(&options, &model, err, sizeof err);
  if (status != BD_OK) {
    if (model != nullptr) fail("a failed open returned a model", err);
    if (status != BD_ERR_MODEL) fail("a bad file must be BD_ERR_MODEL", err);
    if (std::strstr(err, path.c_str()) == nullptr) fail("the message must name the file", err);
    return 0;
  }
  bd_session_config config{};
  config.width = 32;
  config.height = 32;
  config.input_format = BD_FORMAT_RGBA;
  config.output_format = BD_FORMAT_RGBA;
  config.inference_width = 32;
  config.inference_height = 32;
  config.max_batch = 1;
  bd_session* session = nullptr;
  if (bd_session_create(model, &config, &session, err, sizeof err) == BD_OK) {
    std::vector<uint8_t> in(32 * 32 * 4, 128), out(32 * 32 * 4, 0);
    bd_frame input{}, output{};
    input.planes[0] = in.data();
    input.strides[0] = 32 * 4;
    output.planes[0] = out.data();
    output.strides[0] = 32 * 4;
    bd_composite_params params{};
    params.threshold = 0.5f;
    (void)bd_session_process(session, &input, &output, 1, &params, err, sizeof err);
    bd_session_destroy(session);
  }
  bd_model_release(model);
  return 0;
}
