#!/usr/bin/env bash
# Builds the engine's C++ sources once with AddressSanitizer, UndefinedBehaviorSanitizer and
# libFuzzer coverage (-fsanitize=fuzzer-no-link), then the fuzz targets and the sanitized engine
# checks on top of those objects. Output: .build-sanitize/ (ignored by git).
#   fuzz/build.sh            everything
#   fuzz/build.sh checks     only the engine checks (scripts/ci-sanitizers.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-sanitize
mkdir -p "$out/engine"
cxx=${CXX:-}
if [[ -z "$cxx" ]]; then
  for candidate in /opt/swift/usr/bin/clang++ clang++; do
    if command -v "$candidate" >/dev/null; then cxx=$candidate; break; fi
  done
fi
[[ -n "$cxx" ]] || { echo "fuzz/build.sh: no clang++ (the Swift toolchain's or Debian's clang)" >&2; exit 69; }
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
includes="-ISources/BackdropEngine -ISources/BackdropEngine/include -ISources/CBackdropEngineABI/include -I/usr/include/torch/csrc/api/include"
common="-std=c++17 -O1 -g $sanitize $includes -DBD_WITH_ONEDNN"
libs="-ltorch -ltorch_cpu -lc10 -ldnnl -lm -lpthread"

# Engine objects, rebuilt when their source or any engine header is newer.
newest_header=$(find Sources/BackdropEngine Sources/CBackdropEngineABI -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objects=()
todo=()
for source in $(find Sources/BackdropEngine -name '*.cpp' | sort); do
  object="$out/engine/$(echo "${source#Sources/BackdropEngine/}" | tr / _).o"
  objects+=("$object")
  if [[ ! -f "$object" || "$source" -nt "$object" ]] \
     || awk -v h="$newest_header" -v o="$(stat -c %Y "$object")" 'BEGIN { exit !(h > o) }'; then
    todo+=("$source:$object")
  fi
done
if ((${#todo[@]})); then
  echo "compiling ${#todo[@]} engine sources with ASan+UBSan+coverage ($cxx)"
  printf '%s\n' "${todo[@]}" | xargs -P "${BD_JOBS:-2}" -I{} bash -c \
    'src=${1%%:*}; obj=${1##*:}; '"$cxx $common"' -fPIC -fsanitize=fuzzer-no-link -c "$src" -o "$obj"' _ {}
fi

link() {  # link NAME FLAGS SOURCES...
  local name=$1 flags=$2; shift 2
  echo "linking $out/$name"
  rm -f "$out/$name"
  $cxx $common $flags "$@" "${objects[@]}" -o "$out/$name" $libs 2>&1 | grep -v "Cannot export local symbol" || true
  [[ -x "$out/$name" ]]
}

link engine-checks "" Tests/EngineChecks/engine_checks.cpp
link cpu-kernel-checks "" Tests/EngineChecks/cpu_kernel_checks.cpp
[[ "${1:-}" == checks ]] && exit 0
link safetensors_fuzz "-fsanitize=fuzzer" fuzz/safetensors_fuzz.cpp
link model_open_fuzz "-fsanitize=fuzzer" fuzz/model_open_fuzz.cpp
