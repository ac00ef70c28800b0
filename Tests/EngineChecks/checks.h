// The little check harness of the sanitizer-built engine checks (engine_checks.cpp,
// cpu_kernel_checks.cpp): CHECK counts and reports without stopping, run_groups prints one line a
// group and gives the exit status.
#pragma once

#include <cstdio>
#include <functional>
#include <utility>

namespace checks {

inline int failures = 0;
inline int total = 0;

inline int run_groups(std::initializer_list<std::pair<const char*, std::function<void()>>> groups) {
  for (auto& [name, body] : groups) {
    const int before = failures;
    body();
    std::printf("%s: %s\n", failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%d checks, %d failures\n", total, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace checks

#define CHECK(condition, ...)                                                   \
  do {                                                                          \
    ++checks::total;                                                            \
    if (!(condition)) {                                                         \
      ++checks::failures;                                                       \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition); \
      std::fprintf(stderr, __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                               \
    }                                                                           \
  } while (0)
