// The C ABI of libbackdrop-torch.so (backdrop_engine.h): argument checks, error translation, the
// process-wide model cache, device and precision resolution. Processing lives in session.cpp.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/version.h>

#include <malloc.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "backdrop_engine.h"
#include "backdrop_engine_testing.h"
#include "model.h"
#include "session.h"

#if defined(BD_WITH_CUDA)
#include <c10/cuda/CUDAFunctions.h>
#endif

struct bd_model {
  std::shared_ptr<bd::MatteModel> model;
  bd_model_info info;
  int threads;
};

struct bd_session {
  std::unique_ptr<bd::Session> session;
};

namespace {

void write_error(char* err, size_t len, const std::string& message) {
  if (err == nullptr || len == 0) return;
  std::snprintf(err, len, "%s", message.c_str());
}

// Runs body and turns every exception into a status and a message: nothing may cross the C ABI.
template <typename Body>
bd_status guarded(char* err, size_t len, Body&& body) {
  write_error(err, len, "");
  try {
    body();
    return BD_OK;
  } catch (const bd::ModelError& e) {
    write_error(err, len, e.what());
    return BD_ERR_MODEL;
  } catch (const bd::DeviceError& e) {
    write_error(err, len, e.what());
    return BD_ERR_DEVICE;
  } catch (const bd::ArgumentError& e) {
    write_error(err, len, e.what());
    return BD_ERR_INVALID_ARGUMENT;
  } catch (const c10::Error& e) {
    write_error(err, len, e.what_without_backtrace());
    return BD_ERR_RUNTIME;
  } catch (const std::exception& e) {
    write_error(err, len, e.what());
    return BD_ERR_RUNTIME;
  } catch (...) {
    write_error(err, len, "unknown error in the engine");
    return BD_ERR_RUNTIME;
  }
}

int cuda_device_count() {
#if defined(BD_WITH_CUDA)
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

// BF16 on the CPU pays off only with native BF16 dot products (AVX512-BF16, or AMX-BF16); without
// them oneDNN emulates BF16 and is slower than FP32.
bool cpu_has_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5))) return true;  // AVX512_BF16
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 22))) return true;  // AMX_BF16
#endif
  return false;
}

int default_threads() {
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

enum class FileKind { TorchScript, SafeTensors };

// A zip that holds data.pkl but no constants.pkl: torch.save's format, not TorchScript's. A zip
// the reader cannot parse is left to the TorchScript loader, which reports it.
bool is_torch_save_archive(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord("data.pkl") && !reader.hasRecord("constants.pkl");
  } catch (const std::exception&) {
    return false;
  }
}

// Checks that the model file exists and is readable, and tells its kind from its first bytes.
FileKind inspect_model_file(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    throw bd::ModelError("model-file " + path + " does not exist (" + std::strerror(errno) + ")");
  }
  if (S_ISDIR(info.st_mode)) throw bd::ModelError("model-file " + path + " is a directory, not a model file");
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw bd::ModelError("model-file " + path + " cannot be read (" + std::strerror(errno) + ")");
  }
  unsigned char head[4] = {0, 0, 0, 0};
  size_t got = std::fread(head, 1, sizeof head, file);
  std::fclose(file);
  const bool zip = got == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
  if (zip && !is_torch_save_archive(path)) return FileKind::TorchScript;
  if (!zip && bd::looks_like_safetensors(path)) return FileKind::SafeTensors;
  // torch.save writes a zip like TorchScript's but without constants.pkl (before PyTorch 1.6, a
  // bare pickle, protocol 2 and up): a checkpoint of weights, which only Python's pickle reads in full.
  if (zip || (got >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)) {
    throw bd::ModelError("model-file " + path +
                         " is a PyTorch checkpoint (.pth, saved with torch.save), which the engine does not read: "
                         "convert it once with `python3 pth_to_safetensors.py " + path +
                         " OUT.safetensors` (the script is in models/ of Backdrop's source and in share/backdrop/ "
                         "where Backdrop is installed; add --patch-order legacy for weights from before "
                         "2024-11-05) and give OUT.safetensors");
  }
  throw bd::ModelError("model-file " + path +
                       " is neither a TorchScript archive nor a .safetensors file (" + std::to_string(info.st_size) +
                       " bytes); give BiRefNet weights (model.safetensors) or a TorchScript model");
}

// Inference allocates and frees the same large activations on every batch. glibc would return
// each one to the kernel (mmap/munmap) and fault it in again: about 13 % of BiRefNet-lite's time
// at 512². Keeping blocks up to 512 MB on the heap and not trimming it lets them be reused.
void keep_large_allocations() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 512 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  });
}

std::mutex cache_mutex;
std::map<std::string, std::weak_ptr<bd::MatteModel>> model_cache;

const char* precision_name(bd_precision precision) {
  switch (precision) {
    case BD_PRECISION_FP16: return "fp16";
    case BD_PRECISION_BF16: return "bf16";
    default: return "fp32";
  }
}

}  // namespace

extern "C" {

BD_EXPORT uint32_t bd_abi_version(void) { return BD_ABI_VERSION; }

BD_EXPORT const char* bd_engine_version(void) {
  static const std::string version = std::string("backdrop-torch 0.1 (libtorch ") + TORCH_VERSION +
#if defined(BD_WITH_CUDA)
                                     ", CUDA: built in)";
#else
                                     ", CUDA: not built in)";
#endif
  return version.c_str();
}

BD_EXPORT int bd_cuda_device_count(void) {
  try {
    return cuda_device_count();
  } catch (...) {
    return 0;
  }
}

BD_EXPORT bd_status bd_model_open(const bd_model_options* options, bd_model** out_model, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    if (options == nullptr || out_model == nullptr || options->path == nullptr || options->path[0] == 0) {
      throw bd::ArgumentError("bd_model_open needs options with a model path and an output pointer");
    }
    *out_model = nullptr;
    const std::string path = options->path;
    const int gpus = cuda_device_count();

    bd_model_info info{};
    switch (options->device) {
      case BD_DEVICE_AUTO: info.device = gpus > 0 ? BD_DEVICE_CUDA : BD_DEVICE_CPU; break;
      case BD_DEVICE_CPU: info.device = BD_DEVICE_CPU; break;
      case BD_DEVICE_CUDA:
        if (gpus == 0) {
          throw bd::DeviceError(std::string("device=cuda was requested but no CUDA device is available to ") +
                                bd_engine_version() + "; use device=cpu, or device=auto to fall back to the CPU");
        }
        if (options->device_index < 0 || options->device_index >= gpus) {
          throw bd::DeviceError("device=cuda:" + std::to_string(options->device_index) + " does not exist: " +
                                std::to_string(gpus) + " CUDA device(s) are available (cuda:0 to cuda:" +
                                std::to_string(gpus - 1) + ")");
        }
        info.device = BD_DEVICE_CUDA;
        info.device_index = options->device_index;
        break;
      default: throw bd::ArgumentError("unknown device kind " + std::to_string(options->device));
    }
    const bool cuda = info.device == BD_DEVICE_CUDA;
    info.precision = options->precision == BD_PRECISION_AUTO ? (cuda ? BD_PRECISION_FP16 : BD_PRECISION_FP32)
                                                              : options->precision;
    if (!cuda && info.precision == BD_PRECISION_FP16) {
      throw bd::DeviceError("precision=fp16 needs a CUDA device; on the CPU use precision=fp32 (or auto), or bf16 "
                            "where the CPU has AVX512-BF16");
    }
    if (!cuda && info.precision == BD_PRECISION_BF16 && !cpu_has_bf16()) {
      throw bd::DeviceError("precision=bf16 on the CPU needs native BF16 instructions (AVX512-BF16 or AMX), which "
                            "this CPU lacks; use precision=fp32 (or auto)");
    }

    if (cuda && info.precision == BD_PRECISION_FP32) {
      // precision=fp32 means FP32: libtorch otherwise runs CUDA convolutions in TF32 (10-bit
      // mantissa), about 1e-3 relative error, which breaks parity with the reference.
      at::globalContext().setAllowTF32CuDNN(false);
      at::globalContext().setFloat32MatmulPrecision("highest");
    }
    if (cuda) {
      // A video's shapes are fixed per session (frame size, inference size, batch), so cuDNN's
      // one-time search for the fastest convolution algorithm per shape pays for itself after the
      // first batch; libtorch's default picks by heuristic.
      at::globalContext().setBenchmarkCuDNN(true);
    }
    keep_large_allocations();
    const int threads = options->threads > 0 ? options->threads : default_threads();
    if (at::get_num_threads() != threads) at::set_num_threads(threads);

    const auto kind = inspect_model_file(path);
    bd::ModelLoadOptions load;
    load.device = cuda ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(info.device_index)) : c10::Device(c10::kCPU);
    load.dtype = info.precision == BD_PRECISION_FP16 ? at::kHalf
                 : info.precision == BD_PRECISION_BF16 ? at::kBFloat16 : at::kFloat;
    load.patch_order = options->patch_order;

    const std::string key = path + "|" + load.device.str() + "|" + precision_name(info.precision) + "|" +
                            std::to_string(options->patch_order);
    std::shared_ptr<bd::MatteModel> model;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      model = model_cache[key].lock();
      if (!model) {
        c10::InferenceMode guard;
        model = kind == FileKind::TorchScript ? bd::load_torchscript(path, load) : bd::load_birefnet(path, load);
        model_cache[key] = model;
      }
    }
    info.kind = model->kind();
    info.native_width = model->native_width();
    info.native_height = model->native_height();
    std::string description = model->description() + " on " + load.device.str() + ", " + precision_name(info.precision);
    std::snprintf(info.description, sizeof info.description, "%s", description.c_str());
    *out_model = new bd_model{std::move(model), info, threads};
  });
}

BD_EXPORT void bd_model_get_info(const bd_model* model, bd_model_info* out_info) {
  if (model != nullptr && out_info != nullptr) *out_info = model->info;
}

BD_EXPORT void bd_model_release(bd_model* model) { delete model; }

BD_EXPORT bd_status bd_session_create(bd_model* model, const bd_session_config* config, bd_session** out_session,
                                      char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    if (model == nullptr || config == nullptr || out_session == nullptr) {
      throw bd::ArgumentError("bd_session_create needs a model, a config and an output pointer");
    }
    *out_session = nullptr;
    const auto& info = model->info;
    c10::Device device = info.device == BD_DEVICE_CUDA
                             ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(info.device_index))
                             : c10::Device(c10::kCPU);
    auto session = std::make_unique<bd::Session>(model->model, *config, device, model->threads);
    *out_session = new bd_session{std::move(session)};
  });
}

BD_EXPORT void bd_session_destroy(bd_session* session) { delete session; }

BD_EXPORT bd_status bd_session_set_background_image(bd_session* session, const uint8_t* rgb, int32_t stride, int width,
                                                    int height, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    if (session == nullptr || rgb == nullptr) throw bd::ArgumentError("bd_session_set_background_image: NULL argument");
    session->session->set_background_image(rgb, stride, width, height);
  });
}

BD_EXPORT bd_status bd_session_process(bd_session* session, const bd_frame* inputs, const bd_frame* outputs, int n,
                                       const bd_composite_params* params, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    if (session == nullptr || params == nullptr) throw bd::ArgumentError("bd_session_process: NULL session or params");
    session->session->process(inputs, outputs, n, *params);
  });
}

BD_EXPORT bd_status bd_session_drain(bd_session* session, const bd_frame* output, const bd_composite_params* params,
                                     int* written, char* err, size_t err_len) {
  if (written != nullptr) *written = 0;
  return guarded(err, err_len, [&] {
    if (session == nullptr || params == nullptr || written == nullptr) {
      throw bd::ArgumentError("bd_session_drain: NULL session, params or written");
    }
    *written = session->session->drain(output, *params) ? 1 : 0;
  });
}

BD_EXPORT void bd_session_get_stats(const bd_session* session, bd_session_stats* out_stats) {
  if (session != nullptr && out_stats != nullptr) *out_stats = session->session->stats();
}

BD_EXPORT void bd_session_reset(bd_session* session) {
  if (session != nullptr) session->session->reset();
}

// Test-only (backdrop_engine_testing.h): where the temporal stage spends its time, for matte-bench.
BD_EXPORT void bd_testing_session_temporal_timing(const bd_session* session, bd_testing_temporal_timing* out_timing) {
  if (session == nullptr || out_timing == nullptr) return;
  const auto timing = session->session->temporal_timing();
  *out_timing = {timing.grey_ms, timing.flow_ms, timing.blend_ms, timing.model_ms, timing.frames};
}

}  // extern "C"
