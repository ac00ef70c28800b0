# Sourced by scripts/cuda-compile-check.sh and scripts/libtorch2-tests.sh: the pinned wheels the GPU
# machines carry (torch 2.11.0 with CUDA 13), downloaded once and unpacked into a cache:
# - torch: headers, the five libraries the engine links, and its libgomp;
# - nvidia-cuda-runtime and nvidia-cuda-crt: the CUDA runtime headers and libcudart (CUDA 13 moved
#   crt/host_defines.h into the crt wheel);
# - nvidia-cuda-cupti: libcupti, which libtorch_cpu.so needs (with libcudart) to load at all, so that
#   a CPU engine built against this torch runs on a machine without a GPU or CUDA libraries.
# After `torch_wheels_ready`: $torch_dir (the torch package directory) and $torch_ld_path (what the
# dynamic loader needs for it). Cache: $BACKDROP_CUDA_CACHE (default /var/cache/backdrop/cuda-check,
# about 1 GB unpacked).
torch_version="2.11.0"
torch_cache="${BACKDROP_CUDA_CACHE:-/var/cache/backdrop/cuda-check}"
torch_dir="$torch_cache/unpacked/torch"
torch_ld_path="$torch_cache/unpacked/torch/lib:$torch_cache/unpacked/nvidia/cu13/lib"
# Both scripts compile the same engine sources against the same headers, with and without CUDA:
# through ccache the second build takes the objects whose preprocessed source is the same (the
# BiRefNet network, most of the engine) from the first. $torch_cmake_launcher goes on their cmake line.
torch_cmake_launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-${BACKDROP_CACHE:-/var/cache/backdrop}/ccache}"
  torch_cmake_launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

torch_wheels_ready() {
  local python="${BACKDROP_PYTHON:-python3}" wheels=("torch==$torch_version" "nvidia-cuda-runtime==13.0.96"
    "nvidia-cuda-crt==13.0.88" "nvidia-cuda-cupti==13.0.85") have_all=1 w
  mkdir -p "$torch_cache/wheels"
  for w in torch- nvidia_cuda_runtime- nvidia_cuda_crt- nvidia_cuda_cupti-; do
    compgen -G "$torch_cache/wheels/$w*.whl" >/dev/null || have_all=0
  done
  if [[ $have_all == 0 ]]; then
    echo "torch-wheels: downloading ${wheels[*]} (about 540 MB, once)"
    # torch is tagged manylinux_2_28, the nvidia wheels manylinux2014 (2_17) or 2_25; pip does not
    # widen an explicit --platform to older tags, so every tag the pinned wheels carry is named.
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$torch_cache/wheels" "${wheels[@]}"
  fi
  local unpacked="$torch_cache/unpacked" stamp="$torch_cache/unpacked/.complete-$torch_version-cupti"
  if [[ ! -e "$stamp" ]]; then
    echo "torch-wheels: unpacking headers and libraries"
    rm -rf "$unpacked" && mkdir -p "$unpacked"
    unzip -q -o "$torch_cache"/wheels/torch-"$torch_version"-*.whl -d "$unpacked" 'torch/include/*' 'torch/version.py' \
      'torch/lib/libtorch.so' 'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch_cuda.so' \
      'torch/lib/libc10.so' 'torch/lib/libc10_cuda.so' 'torch/lib/libgomp.so.1'
    unzip -q -o "$torch_cache"/wheels/nvidia_cuda_runtime-*.whl -d "$unpacked" 'nvidia/*'
    unzip -q -o "$torch_cache"/wheels/nvidia_cuda_crt-*.whl -d "$unpacked" 'nvidia/*'
    unzip -q -o "$torch_cache"/wheels/nvidia_cuda_cupti-*.whl -d "$unpacked" 'nvidia/cu13/lib/libcupti.so.13'
    touch "$stamp"
  fi
}

# One build folder per checkout and kind: CMake refuses a cache made for another source folder, and
# the cache outlives any one clone (CI builds from a fresh clone at another path).
torch_build_dir() {  # torch_build_dir ROOT KIND
  printf '%s/build-%s%s' "$torch_cache" "${2:+$2-}" "$(printf '%s' "$1" | sha1sum | cut -c1-12)"
}
