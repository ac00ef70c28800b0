// What the few hand-written CPU kernels (deform_gather.cpp, window_attention.cpp) share: the
// runtime choice of instruction set and a parallel loop on libtorch's own CPU threads.
#pragma once

#include <cstdint>
#include <functional>

// Each kernel is compiled twice, once for AVX2+FMA and once for the baseline, so that one binary
// runs everywhere and uses the wide vectors where they exist.
#if defined(__x86_64__)
#define BD_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace bd {
namespace birefnet {

inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

// False when the model being built should take the ATen paths a GPU runs on the CPU too
// (BD_TESTING_KERNELS=aten), so that the tests cover them; read when a model is built.
bool cpu_kernels_enabled();

// Calls body(begin, end) on disjoint ranges covering [0, n), at most at::get_num_threads() at a
// time and each range at least `grain` long where n allows (cpu_parallel.cpp).
void cpu_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace birefnet
}  // namespace bd
