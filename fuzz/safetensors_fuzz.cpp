// libFuzzer target: the engine's safetensors reader (bd::st::File) on arbitrary bytes.
// Every input must either be rejected with bd::ModelError or give tensors whose byte ranges lie
// inside the file and match their shape and dtype; anything else (a crash, another exception, a
// sanitizer report) is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "birefnet/safetensors.h"
#include "model.h"

namespace {

// The reader takes a path (it mmaps the file): an in-memory file, rewritten for each input.
int memory_file() {
  static int fd = memfd_create("safetensors-fuzz", MFD_CLOEXEC);
  return fd;
}

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memory_file();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    bd::st::File file(path);
    size_t total = 0;
    for (const auto& tensor : file.tensors()) {
      check(tensor.data != nullptr || tensor.nbytes == 0, "tensor without data");
      check(tensor.nbytes == static_cast<size_t>(tensor.numel()) * bd::st::dtype_size(tensor.dtype), "nbytes != numel x dtype size");
      check(tensor.nbytes <= size, "tensor larger than the file");
      total += tensor.nbytes;
      // Touch the first and last byte: both must be readable (inside the mapping).
      if (tensor.nbytes > 0) {
        volatile uint8_t first = tensor.data[0], last = tensor.data[tensor.nbytes - 1];
        (void)first;
        (void)last;
      }
    }
    check(total <= size, "tensors overlap or exceed the file");
    (void)bd::st::sniff(path);
  } catch (const bd::ModelError& error) {
    check(std::string(error.what()).find(path) != std::string::npos, "the error must name the file");
  }
  return 0;
}
