#!/usr/bin/env bash
# CI: the engine's C++ sources and its checks (Tests/EngineChecks/engine_checks.cpp: formats,
# sizes, NaN, contract breaks, malformed safetensors and TorchScript files over the bd_ ABI; and
# cpu_kernel_checks.cpp: the native BiRefNet's hand-written CPU kernels against references) built with AddressSanitizer + UndefinedBehaviorSanitizer, then run. About 3 minutes on 2 cores.
# Leak detection is off: libtorch keeps process-wide caches that LeakSanitizer reports.
set -euo pipefail
cd "$(dirname "$0")/.."
nice bash fuzz/build.sh checks
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  timeout 900 .build-sanitize/engine-checks
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  timeout 300 .build-sanitize/cpu-kernel-checks
