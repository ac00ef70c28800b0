#!/usr/bin/env bash
# The engine's tests on libtorch 2 (the torch 2.11 wheel the GPU machines carry), here without a GPU:
# the engine is built against that wheel with -DBD_CPU_ONLY=ON (libtorch_cpu and libc10 only, which
# load without the CUDA libraries; scripts/torch-wheels.sh fetches the two small ones they still
# name), then the engine checks (691 checks over the bd_ ABI) and the BiRefNet tests (parity with the
# official code, loading, checkpoints, the cascade, CPU precision) and the element's tests (GStreamer
# pipelines, formats, stream semantics, temporal and spatial stages) run against it. This is where the
# libtorch >= 2 code runs before any GPU does: scaled_dot_product_attention in the Swin attention
# (the BD_TESTING_KERNELS=aten parity test), and whatever else differs between the two libtorch.
#
#   bash scripts/libtorch2-tests.sh      # what .ci/run calls, after scripts/test.sh built the tests
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/torch-wheels.sh
torch_wheels_ready

build="$(torch_build_dir "$root" cpu)"
echo "libtorch2-tests: CMake build of the engine (no CUDA) against torch $torch_version"
cmake -S Sources/BackdropEngine -B "$build" -G Ninja "${torch_cmake_launcher[@]}" -DBD_TORCH_DIR="$torch_dir" -DBD_CPU_ONLY=ON \
  -DCMAKE_BUILD_TYPE=Release >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target backdrop-torch engine-checks

export LD_LIBRARY_PATH="$torch_ld_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The checks print the engine's version line; it must name this libtorch, not Debian's.
checks_log="$build.engine-checks.log"
"$build/engine-checks" 2>&1 | tee "$checks_log"
grep -q "libtorch $torch_version" "$checks_log" || {
  echo "libtorch2-tests: FAILED: the engine checks did not run on libtorch $torch_version" >&2
  exit 1
}
export BACKDROP_ENGINE="$build/libbackdrop-torch.so"
swift test --skip-build --filter BiRefNetTests
# The element on that engine (what a user of a pip-installed torch runs): the tests open
# BACKDROP_ENGINE in this process (a second libtorch build would be refused), and the build folder's
# engine (Debian's libtorch) is the second build that ErrorReportingTests must see refused. Every
# suite that reaches engine code of its own, but not those whose subject is the element's timing
# and threading or the examples (InferenceQueue, PreferredInferenceSize, PipelineExamples) or the
# temporal stage's quality over long clips (TemporalStability, TemporalLookahead: about 80 s): CI
# must stay under 40 minutes, the engine checks above run the look-ahead on this libtorch, and the
# temporal blend runs in every pipeline here (temporal-smooth is 0.8 by default).
BACKDROP_SECOND_ENGINE="$root/.build/debug/libbackdrop-torch.so" \
  swift test --skip-build --filter BackdropTests \
  --skip 'TemporalStabilityTests|TemporalLookaheadTests|InferenceQueueTests|PreferredInferenceSizeTests|PipelineExamplesTests'
echo "libtorch2-tests: OK (engine checks, BiRefNet and element tests on libtorch $torch_version)"
