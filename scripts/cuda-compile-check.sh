#!/usr/bin/env bash
# Compiles and links the engine with BD_WITH_CUDA against libtorch 2.x from PyPI's CUDA `torch`
# wheel, with no GPU and no CUDA toolkit, so that the CUDA code paths can never rot unseen.
#
#   bash scripts/cuda-compile-check.sh            # what .ci/run calls
#
# What it does: downloads (once; cached) the pinned wheels the GPU machines carry — torch 2.11.0
# (CUDA 13), nvidia-cuda-runtime and nvidia-cuda-crt (CUDA 13 moved crt/host_defines.h there) —,
# unpacks only the headers and the five libraries the engine links, compiles every engine source
# with -DBD_WITH_CUDA and links libbackdrop-torch.so with `-z defs`, so a missing symbol fails
# too. Prints the engine's NEEDED libraries at the end. Cache: $BACKDROP_CUDA_CACHE
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
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$cache/wheels" "${wheels[@]}"
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

torch="$unpacked/torch"
cuda="$unpacked/nvidia/cu13"
engine="$root/Sources/BackdropEngine"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

flags=(-std=c++17 -O0 -fPIC -fvisibility=hidden -DBD_WITH_CUDA=1 -D_GLIBCXX_USE_CXX11_ABI=1
  -Wall -Wno-unused-parameter -Werror=return-type
  -I"$engine" -I"$engine/include" -I"$root/Sources/CBackdropEngineABI/include"
  -isystem "$torch/include" -isystem "$torch/include/torch/csrc/api/include" -isystem "$cuda/include")

mapfile -t sources < <(find "$engine" -name '*.cpp' | sort)
echo "cuda-compile-check: compiling ${#sources[@]} engine sources against torch $torch_version (CUDA 13) with BD_WITH_CUDA"
objects=()
jobs="$(nproc)"
for src in "${sources[@]}"; do
  obj="$out/$(basename "${src%.cpp}").o"
  objects+=("$obj")
  g++ "${flags[@]}" -c "$src" -o "$obj" &
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
done
# Wait for each compile and fail if any did.
failed=0
for pid in $(jobs -rp); do wait "$pid" || failed=1; done
for obj in "${objects[@]}"; do [[ -s "$obj" ]] || failed=1; done
if [[ $failed != 0 ]]; then
  echo "cuda-compile-check: FAILED to compile the engine with BD_WITH_CUDA" >&2
  exit 1
fi

echo "cuda-compile-check: linking libbackdrop-torch.so with -z defs"
g++ -shared -o "$out/libbackdrop-torch.so" "${objects[@]}" -Wl,-z,defs -Wl,--no-as-needed \
  -L"$torch/lib" -L"$cuda/lib" -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -l:libcudart.so.13 -lm
readelf -d "$out/libbackdrop-torch.so" | awk '/NEEDED/ {print "  NEEDED " $5}'
echo "cuda-compile-check: OK (engine compiled and linked with BD_WITH_CUDA against torch $torch_version)"
