#!/usr/bin/env bash
# The GPU check: one run of a few minutes on a machine with an NVIDIA GPU, PyTorch 2.x with CUDA,
# CMake and ninja (no Swift, no GStreamer, no network needed). It builds the engine and
# birefnet-bench with CMake against that torch, then prints one table (scripts/gpu_check.py):
# FP32 parity with the reference fixtures on the GPU, FP16/BF16 against FP32, frames/s and peak GPU
# memory for lite and general at 512² and 1024², batch 1/4/8/16, the 1080p pre/post cost, the
# official PyTorch BiRefNet when its code is carried along (BIREFNET_OFFICIAL_DIR=checkout), and
# frames as CUDA device pointers in and out against the same frames from host memory, and the element
# in gst-launch-1.0 with nvh264dec when .build-gpu-gst (scripts/gpu-gst-bundle.sh) is carried along.
#
#   bash scripts/gpu-check.sh          # on the GPU machine
#   bash scripts/gpu-check.sh --cpu    # here: the same steps on the CPU at tiny sizes
#
# Environment: PYTHON (a python3 with torch; default: the first of python3, /usr/bin/python3 that
# imports torch), BUILD (default .build-gpu-check), GPU_CHECK_BUDGET (seconds for the whole check,
# build included, default 540: a device run's 600 s limit with room to copy the log back; a step
# that raises is reported and the next still runs, and steps past the budget print SKIPPED).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode=()
[[ "${1:-}" == "--cpu" ]] && mode=(--cpu)
build="${BUILD:-$root/.build-gpu-check}"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch' 2>/dev/null; then python="$candidate"; break; fi
  done
fi
[[ -n "$python" ]] || { echo "gpu-check: no python3 with torch found (set PYTHON)" >&2; exit 1; }
echo "gpu-check: $("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count())')"

# A pip-installed torch is built against directly; a system libtorch through find_package(Torch).
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
mkdir -p "$build"
cmake -S Sources/BackdropEngine -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPython3_EXECUTABLE="$(command -v "$python")" -DBD_TORCH_DIR="$torch_dir" >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
grep "backdrop-torch:" "$build/configure.log" || true
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 || { tail -50 "$build/build.log"; exit 1; }
echo "gpu-check: engine built in $(( $(date +%s) - start )) s"

# Unbuffered (-u): when a device run is cut off, every line printed so far is in the log. The
# budget counts from before the build; steps that no longer fit are reported as skipped.
exec "$python" -u scripts/gpu_check.py --build "$build" --deadline "$(( start + ${GPU_CHECK_BUDGET:-540} ))" "${mode[@]}"
