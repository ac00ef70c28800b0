#include "device_memory.h"

#include <cstring>

#include <stdexcept>
#include <string>

#if defined(BD_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

#include "model.h"

namespace bd {
namespace {

const char* memory_name(bd_memory_kind kind) { return kind == BD_MEMORY_CUDA ? "CUDA memory" : "system memory"; }

// The field's bits as an integer: a caller may have stored any number there, and loading it as
// the enum would be undefined behaviour for values outside it.
void check_kind(const bd_memory_kind& field, const char* which) {
  int kind = 0;
  static_assert(sizeof kind == sizeof field, "bd_memory_kind is an int-sized C enum");
  std::memcpy(&kind, &field, sizeof kind);
  if (kind != BD_MEMORY_SYSTEM && kind != BD_MEMORY_CUDA) {
    throw ArgumentError(std::string("unknown ") + which + " memory kind " + std::to_string(kind) +
                        " (0: system memory, 1: CUDA memory)");
  }
}

}  // namespace

void check_memory_config(const bd_session_config& config, c10::Device device) {
  check_kind(config.input_memory, "input");
  check_kind(config.output_memory, "output");
  const bool cuda_memory = config.input_memory == BD_MEMORY_CUDA || config.output_memory == BD_MEMORY_CUDA;
  if (!cuda_memory && config.cuda_stream == nullptr) return;
  const std::string what = cuda_memory ? std::string("frames in CUDA memory (input: ") + memory_name(config.input_memory) +
                                             ", output: " + memory_name(config.output_memory) + ")"
                                       : std::string("a CUDA stream");
#if !defined(BD_WITH_CUDA)
  throw ArgumentError("the session was given " + what +
                      " but this engine was built without CUDA (libtorch without CUDA); give frames in system "
                      "memory, or build the engine against a CUDA libtorch");
#else
  if (!device.is_cuda()) {
    throw ArgumentError("the session was given " + what +
                        " but its model runs on the CPU; give frames in system memory, or open the model with "
                        "device=cuda");
  }
#endif
}

#if defined(BD_WITH_CUDA)
namespace {

void check_device_pointer(const uint8_t* data, c10::Device device, const char* what) {
  cudaPointerAttributes attributes{};
  const cudaError_t status = cudaPointerGetAttributes(&attributes, data);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: clear it so that the next CUDA call does not report it
    throw ArgumentError(std::string(what) + " is not a CUDA pointer the runtime knows (" + cudaGetErrorString(status) +
                        "); with CUDA memory give device pointers on " + device.str());
  }
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw ArgumentError(std::string(what) + " is host memory, not device memory; with CUDA memory give device "
                        "pointers on " + device.str() + " (or use system memory)");
  }
  if (attributes.device != device.index()) {
    throw ArgumentError(std::string(what) + " is device memory on cuda:" + std::to_string(attributes.device) +
                        " but the session runs on " + device.str() + "; give frames on that GPU");
  }
}

void check_copy(cudaError_t status, const char* what, const char* direction) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  throw std::runtime_error(std::string("copying ") + what + " " + direction + " device memory failed: " +
                           cudaGetErrorString(status));
}

}  // namespace

at::Tensor read_device_plane(const uint8_t* data, int32_t stride, int64_t rows, int64_t cols, int64_t channels,
                             c10::Device device, const char* what) {
  check_device_pointer(data, device, what);
  auto plane = at::empty({rows, cols, channels}, at::TensorOptions().dtype(at::kByte).device(device));
  const size_t row = static_cast<size_t>(cols * channels);
  check_copy(cudaMemcpy2DAsync(plane.data_ptr(), row, data, static_cast<size_t>(stride), row, static_cast<size_t>(rows),
                               cudaMemcpyDefault, c10::cuda::getCurrentCUDAStream(device.index()).stream()),
             what, "from");
  return plane;
}

void write_device_plane(const at::Tensor& values, uint8_t* data, int32_t stride, c10::Device device, const char* what) {
  check_device_pointer(data, device, what);
  auto source = values.contiguous();
  const size_t row = static_cast<size_t>(source.size(1) * source.size(2));
  if (static_cast<size_t>(stride) < row) {
    throw ArgumentError(std::string("stride ") + std::to_string(stride) + " of " + what + " is smaller than a row (" +
                        std::to_string(row) + " bytes)");
  }
  check_copy(cudaMemcpy2DAsync(data, static_cast<size_t>(stride), source.data_ptr(), row, row,
                               static_cast<size_t>(source.size(0)), cudaMemcpyDefault,
                               c10::cuda::getCurrentCUDAStream(device.index()).stream()),
             what, "into");
}

c10::cuda::CUDAStream external_stream(void* stream, c10::Device device) {
  return c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(stream), device.index());
}
#else
at::Tensor read_device_plane(const uint8_t*, int32_t, int64_t, int64_t, int64_t, c10::Device device, const char* what) {
  throw ArgumentError(std::string(what) + " is in CUDA memory but this engine has no CUDA (" + device.str() + ")");
}

void write_device_plane(const at::Tensor&, uint8_t*, int32_t, c10::Device device, const char* what) {
  throw ArgumentError(std::string(what) + " is in CUDA memory but this engine has no CUDA (" + device.str() + ")");
}
#endif

}  // namespace bd
