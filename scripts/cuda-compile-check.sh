#!/usr/bin/env bash
# Compiles and links the engine with BD_WITH_CUDA against libtorch 2.x from PyPI's CUDA `torch`
# wheel, with no GPU and no CUDA toolkit, so that the CUDA code paths can never rot unseen.
#
#   bash scripts/cuda-compile-check.sh            # what .ci/run calls
#
# What it does: downloads (once; cached) the pinned wheels the GPU machines carry — torch 2.11.0
# (CUDA 13), nvidia-cuda-runtime and nvidia-cuda-crt (CUDA 13 moved crt/host_defines.h there) —,
# unpacks only the headers and the five libraries the engine links, then builds the engine with
# its CMake build exactly as a GPU user would (BD_WITH_CUDA on, linked with `-z defs`, so a
# missing symbol fails too; incremental between runs). Prints the engine's NEEDED libraries. Cache: $BACKDROP_CUDA_CACHE
# (default /var/cache/backdrop/cuda-check, about 1 GB unpacked).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${BACKDROP_CUDA_CACHE:-/var/cache/backdrop/cuda-check}"
torch_version="2.11.0"
wheels=("torch==$torch_version" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-crt==13.0.88")
python="${BACKDROP_PYTHON:-python3}"

mkdir -p "$cache/wheels" "$cache/unpacked"
have_all=1
for w in torch- nvidia_cuda_runtime- nvidia_cuda_crt-; do
  compgen -G "$cache/wheels/$w*.whl" >/dev/null || have_all=0
done
if [[ $have_all == 0 ]]; then
  echo "cuda-compile-check: downloading ${wheels[*]} (about 530 MB, once)"
  # torch is tagged manylinux_2_28, the nvidia wheels manylinux2014 (2_17); pip does not widen
  # an explicit --platform to older tags, so every tag the pinned wheels carry is named.
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$cache/wheels" "${wheels[@]}"
fi

unpacked="$cache/unpacked"
stamp="$unpacked/.complete-$torch_version"
if [[ ! -e "$stamp" ]]; then
  echo "cuda-compile-check: unpacking headers and libraries"
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  unzip -q -o "$cache"/wheels/torch-"$torch_version"-*.whl -d "$unpacked" 'torch/include/*' 'torch/version.py' \
    'torch/lib/libtorch.so' 'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch_cuda.so' \
    'torch/lib/libc10.so' 'torch/lib/libc10_cuda.so'
  unzip -q -o "$cache"/wheels/nvidia_cuda_runtime-*.whl -d "$unpacked" 'nvidia/*'
  unzip -q -o "$cache"/wheels/nvidia_cuda_crt-*.whl -d "$unpacked" 'nvidia/*'
  touch "$stamp"
fi

# The CMake build as a GPU user runs it (a torch package directory, CUDA headers from the
# nvidia-cuda-runtime wheel beside it), which also links with -z defs: a missing symbol fails.
# One build folder per checkout: CMake refuses a cache made for another source folder, and the
# cache outlives any one clone (CI builds from a fresh clone at another path).
build="$cache/build-$(printf '%s' "$root" | sha1sum | cut -c1-12)"
echo "cuda-compile-check: CMake build of the engine and birefnet-bench against torch $torch_version (CUDA 13)"
cmake -S "$root/Sources/BackdropEngine" -B "$build" -G Ninja -DBD_TORCH_DIR="$unpacked/torch" \
  -DCMAKE_BUILD_TYPE=Release >"$cache/cmake-configure.log" 2>&1 || { cat "$cache/cmake-configure.log"; exit 1; }
grep -q "building with BD_WITH_CUDA" "$cache/cmake-configure.log" || {
  cat "$cache/cmake-configure.log"
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
