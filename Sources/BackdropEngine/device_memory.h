// CUDA memory in and out (issue 14): which memory a session's frames may live in, checking that a
// device pointer belongs to the session's GPU, and the caller's CUDA stream.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>

#include <cstdint>

#if defined(BD_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

#include "backdrop_engine.h"

namespace bd {

// Refuses memory kinds and a stream the session cannot honour (unknown kinds, CUDA memory or a
// CUDA stream on the CPU, or in an engine built without CUDA), naming what to change.
void check_memory_config(const bd_session_config& config, c10::Device device);

// A caller's device plane of `rows` rows of cols*channels bytes, `stride` bytes apart, copied into a
// new [rows, cols, channels] uint8 tensor on `device`, on the current stream. The copy is a pitched
// cudaMemcpy2DAsync: the driver resolves the pointer through unified addressing, so planes made in
// another CUDA context on the same GPU (GStreamer's GstCudaContext) are read correctly, which a
// kernel of ours reading them in place would not be. Throws ArgumentError for a pointer that is not
// device memory on `device` (host memory, another GPU), naming the plane (`what`).
at::Tensor read_device_plane(const uint8_t* data, int32_t stride, int64_t rows, int64_t cols, int64_t channels,
                             c10::Device device, const char* what);
// The [rows, cols, channels] uint8 tensor `values` (on `device`) written into a caller's device plane.
void write_device_plane(const at::Tensor& values, uint8_t* data, int32_t stride, c10::Device device, const char* what);

#if defined(BD_WITH_CUDA)
// The caller's cudaStream_t as a c10 stream on `device`.
c10::cuda::CUDAStream external_stream(void* stream, c10::Device device);
#endif

}  // namespace bd
