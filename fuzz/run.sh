#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60): first its regression corpus (inputs that
# once failed, fuzz/regressions/TARGET: each must pass), then new inputs grown from the seed corpus
# (fuzz/corpus/TARGET, plus a working corpus in .build-sanitize/corpus). Findings land in
# fuzz-findings/TARGET/; move a fixed one into fuzz/regressions/TARGET/ to keep it tested.
#   fuzz/run.sh [SECONDS] [TARGET...]     targets: safetensors model_open launcher_options libtorch_linkage webm_mux
# Exit status 1 when any target found something.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors model_open launcher_options libtorch_linkage webm_mux)
out=.build-sanitize
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}  # libtorch keeps global caches
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export SWIFT_BACKTRACE=enable=no
status=0
summary=()

needs_engine=0
for t in "${targets[@]}"; do [[ $t == safetensors || $t == model_open ]] && needs_engine=1; done
if ((needs_engine)); then bash fuzz/build.sh || exit 70; fi

swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
build_swift_target() {  # build_swift_target NAME MODULE SOURCES...: the target's main.swift and the sources it fuzzes
  local binary=$out/$1_fuzz module=$2
  shift 2
  local sources=("$@")
  local stale=0
  [[ -x $binary ]] || stale=1
  for s in "${sources[@]}"; do [[ $s -nt $binary ]] && stale=1; done
  if ((stale)); then
    echo "building $binary (swiftc -sanitize=fuzzer,address)"
    mkdir -p "$out"
    "$swiftc" -sanitize=fuzzer,address -parse-as-library -O -module-name "$module" "${sources[@]}" -o "$binary" 2>&1 \
      | grep -v "Cannot export local symbol" || true
    [[ -x $binary ]]
  fi
}

# ASan's operator new cannot fail with std::bad_alloc: it aborts ("out of memory"). libtorch sizes
# some allocations from the archive (a corrupt TorchScript zip can ask for 30 GB), which in a normal
# build is std::bad_alloc, caught and reported as a bad model file. So model_open runs in fork mode,
# goes on after a crash, and each crash input is replayed: an ASan out-of-memory inside libtorch is
# counted as such (kept in .build-sanitize/known-oom), anything else is a finding.
classify_findings() {  # classify_findings NAME BINARY
  local name=$1 binary=$2 findings=fuzz-findings/$1 known=0 artifact
  mkdir -p "$out/known-oom/$name"
  for artifact in "$findings"/*; do
    [[ -f $artifact ]] || continue
    # The replay aborts (non-zero) by design: take its report first, so that pipefail does not
    # turn every replay into "not a known case".
    local report
    report=$("$binary" "$artifact" 2>&1 || true)
    if grep -q "AddressSanitizer: out of memory" <<<"$report" \
      && grep -A3 "out of memory" <<<"$report" | grep -q "libtorch"; then
      mv "$artifact" "$out/known-oom/$name/"
      known=$((known + 1))
    fi
  done
  echo "$known"
}

run_libfuzzer() {  # run_libfuzzer NAME BINARY [EXTRA FLAGS...]
  local name=$1 binary=$2
  shift 2
  local work=$out/corpus/$name findings=fuzz-findings/$name log=$out/fuzz-$name.log
  mkdir -p "$work" "$findings"
  local regressions=(fuzz/regressions/$name/*)
  if [[ -e ${regressions[0]} ]]; then
    if ! "$binary" "${regressions[@]}" >"$log.regressions" 2>&1; then
      echo "$name: a regression input fails again:"; tail -20 "$log.regressions"; status=1
    fi
  fi
  "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=6144 -print_final_stats=1 "$@" \
    -artifact_prefix="$findings/" "$work" "fuzz/corpus/$name" >"$log" 2>&1
  local rc=$?
  local runs known=0
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [[ -n $runs ]] || runs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | sort -n | tail -1)
  if [[ " $* " == *" -fork=1 "* ]]; then
    known=$(classify_findings "$name" "$binary")
    [[ $rc -eq 0 || $(find "$findings" -type f | wc -l) -gt 0 ]] || rc=0
  fi
  local found
  found=$(find "$findings" -type f | wc -l)
  ((found == 0)) || rc=1
  summary+=("$name: ${runs:-?} executions in ${seconds} s, corpus $(find "$work" -type f | wc -l) inputs, findings $found (libtorch out-of-memory under ASan: $known)")
  if ((rc != 0)); then
    echo "$name: libFuzzer stopped with status $rc:"; grep -E "ERROR|invariant|SUMMARY|Test unit written" "$log" | head -20; status=1
  fi
}

for target in "${targets[@]}"; do
  case $target in
    safetensors) run_libfuzzer safetensors "$out/safetensors_fuzz" ;;
    model_open) run_libfuzzer model_open "$out/model_open_fuzz" -fork=1 -ignore_crashes=1 -ignore_ooms=1 ;;
    launcher_options)
      build_swift_target launcher_options LauncherOptionsFuzz fuzz/launcher_options/main.swift \
        Sources/backdrop/OptionParsers.swift Sources/backdrop/LauncherError.swift \
        && run_libfuzzer launcher_options "$out/launcher_options_fuzz" || status=1 ;;
    libtorch_linkage)
      build_swift_target libtorch_linkage LibtorchLinkageFuzz fuzz/libtorch_linkage/main.swift \
        Sources/BackdropEngineClient/LibtorchLinkage.swift \
        && run_libfuzzer libtorch_linkage "$out/libtorch_linkage_fuzz" || status=1 ;;
    webm_mux)
      plugin=$(ls -t .build/debug/libgstbackdrop.so .build/release/libgstbackdrop.so 2>/dev/null | head -1)
      if [[ -z $plugin ]]; then echo "webm_mux: build the plugin first (swift build)"; status=1; continue; fi
      dir=$out/plugin-only
      mkdir -p "$dir"
      ln -sf "$PWD/$plugin" "$dir/libgstbackdrop.so"
      line=$(GST_PLUGIN_PATH=$PWD/$dir GST_REGISTRY=$PWD/$out/registry.bin \
        /usr/bin/python3 fuzz/webm_mux_fuzz.py "$seconds" fuzz/corpus/webm_mux fuzz/regressions/webm_mux fuzz-findings/webm_mux 2>&1 | tee "$out/fuzz-webm_mux.log" | tail -1)
      [[ ${PIPESTATUS[0]} -eq 0 ]] || { grep FAILED "$out/fuzz-webm_mux.log" | head; status=1; }
      summary+=("$line")
      ;;
    *) echo "unknown target $target"; status=64 ;;
  esac
done
printf '%s\n' "${summary[@]}"
exit $status
