// cpu_parallel_for on the OpenMP team that libtorch's own operators use.
//
// Why not at::parallel_for: with libtorch's OpenMP backend it is a header template whose
// `#pragma omp parallel` only works in code compiled with -fopenmp, and the engine is compiled
// without it (Swift's clang has no OpenMP headers; GCC's would tie the build to one compiler), so
// it silently runs on one thread. Instead this calls the OpenMP runtime that libtorch loaded
// (libgomp, or the renamed copy a PyTorch wheel carries, or LLVM's libomp, which exports the same
// entry points) through its C ABI, found at run time. Without one, the loop runs on the caller's
// thread.
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cpu_kernels.h"

namespace bd {
namespace birefnet {

namespace {

// libgomp's entry point for `#pragma omp parallel num_threads(n)` (stable since GCC 4.9).
using GompParallel = void (*)(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);
using OmpInt = int (*)();

struct OpenMP {
  GompParallel parallel = nullptr;
  OmpInt thread_num = nullptr, num_threads = nullptr;
  OpenMP() {
    parallel = reinterpret_cast<GompParallel>(::dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    thread_num = reinterpret_cast<OmpInt>(::dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
    num_threads = reinterpret_cast<OmpInt>(::dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
    if (!thread_num || !num_threads) parallel = nullptr;
  }
};

const OpenMP& openmp() {
  static const OpenMP runtime;
  return runtime;
}

struct Job {
  const OpenMP* omp;
  int64_t n, chunk;
  const std::function<void(int64_t, int64_t)>* body;
};

void run_share(void* data) {
  const Job& job = *static_cast<const Job*>(data);
  const int64_t team = job.omp->num_threads(), me = job.omp->thread_num();
  // Static split in team-sized steps, so any team size (even one smaller than asked) covers [0, n).
  for (int64_t begin = me * job.chunk; begin < job.n; begin += team * job.chunk)
    (*job.body)(begin, std::min(job.n, begin + job.chunk));
}

}  // namespace

void cpu_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const OpenMP& omp = openmp();
  const int64_t most = std::max<int64_t>(1, at::get_num_threads());
  const int64_t threads = std::min(most, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (threads <= 1 || !omp.parallel || at::in_parallel_region()) {
    body(0, n);
    return;
  }
  Job job{&omp, n, (n + threads - 1) / threads, &body};
  omp.parallel(run_share, &job, unsigned(threads), 0);
}

bool cpu_kernels_enabled() {
  const char* v = std::getenv("BD_TESTING_KERNELS");
  return !(v && std::strcmp(v, "aten") == 0);
}

}  // namespace birefnet
}  // namespace bd
