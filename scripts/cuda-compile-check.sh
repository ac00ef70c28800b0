#!/usr/bin/env bash
# Compiles and links the engine with BD_WITH_CUDA against libtorch 2.x from PyPI's CUDA `torch`
# wheel, with no GPU and no CUDA toolkit, so that the CUDA code paths can never rot unseen.
#
#   bash scripts/cuda-compile-check.sh            # what .ci/run calls
#
# What it does: fetches the pinned wheels the GPU machines carry (scripts/torch-wheels.sh: torch
# 2.11.0 with CUDA 13 and the CUDA runtime headers; downloaded once, cached), then builds the engine
# with its CMake build exactly as a GPU user would (BD_WITH_CUDA on, linked with `-z defs`, so a
# missing symbol fails too; incremental between runs). Prints the engine's NEEDED libraries.
# scripts/libtorch2-tests.sh then runs the engine's tests on the same libtorch, without CUDA.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/torch-wheels.sh"
torch_wheels_ready

# The CMake build as a GPU user runs it (a torch package directory, CUDA headers from the
# nvidia-cuda-runtime wheel beside it), which also links with -z defs: a missing symbol fails.
build="$(torch_build_dir "$root")"
echo "cuda-compile-check: CMake build of the engine and birefnet-bench against torch $torch_version (CUDA 13)"
cmake -S "$root/Sources/BackdropEngine" -B "$build" -G Ninja "${torch_cmake_launcher[@]}" -DBD_TORCH_DIR="$torch_dir" \
  -DCMAKE_BUILD_TYPE=Release >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
grep -q "building with BD_WITH_CUDA" "$build.configure.log" || {
  cat "$build.configure.log"
  echo "cuda-compile-check: FAILED: CMake did not enable BD_WITH_CUDA for the CUDA wheel" >&2
  exit 1
}
cmake --build "$build" -j "$(nproc)"
readelf -d "$build/libbackdrop-torch.so" | awk '/NEEDED/ {print "  NEEDED " $5}'
readelf -d "$build/libbackdrop-torch.so" | grep -q 'libtorch_cuda.so' || {
  echo "cuda-compile-check: FAILED: the engine does not link libtorch_cuda.so" >&2
  exit 1
}
echo "cuda-compile-check: OK (engine compiled and linked with BD_WITH_CUDA against torch $torch_version)"
