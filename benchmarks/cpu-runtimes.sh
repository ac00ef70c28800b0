#!/usr/bin/env bash
# CPU benchmark: our native BiRefNet (birefnet-bench, through the engine's C ABI) against the SAME
# model (bdrand weights, Tests/Fixtures/birefnet/README.md) run by the official PyTorch code,
# ONNX Runtime and OpenVINO. fp32, 512x512, one fixed thread count; on a CPU with native BF16
# (AVX512-BF16 or AMX) also ours and OpenVINO in bf16.
#
#   benchmarks/cpu-runtimes.sh
#
# Environment (defaults in brackets):
#   BIREFNET_OFFICIAL_DIR  checkout of the official BiRefNet code [.build-cpu-runtimes/BiRefNet];
#                          commit 25cb9309bacf3dde954e4584594e16e142c51de5 is the one the fixtures
#                          were made with. It is never committed here.
#   ROWS [lite512,general512]  BATCHES [1]  THREADS [2]
#   ROUNDS [3]  WARMUP [1]  ITERS [3]  GENERAL_ITERS [2]   timed iterations per round
#   WAIT_FOR_BENCH [0]     seconds to wait (polling) for .build/release/birefnet-bench
#   BIREFNET_BENCH, BACKDROP_ENGINE_LIB  override the release binaries
#
# The runtimes are interleaved in rounds (ours, official torch, official torch with
# OMP_WAIT_POLICY=PASSIVE, ONNX Runtime, OpenVINO, repeat) so that machine load hits them alike.
# ms/frame = median over rounds of each round's mean over its timed iterations (birefnet-bench
# reports the mean of its --iters); model loading and export are never timed.
# Python side: benchmarks/cpu_runtimes.py (weights, export, parity, timing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$ROOT/.build-cpu-runtimes
VENV=$W/venv
WORK=$W/work
ROWS=${ROWS:-lite512,general512}
BATCHES=${BATCHES:-1}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
ITERS=${ITERS:-3}
GENERAL_ITERS=${GENERAL_ITERS:-2}
WAIT_FOR_BENCH=${WAIT_FOR_BENCH:-0}
BENCH=${BIREFNET_BENCH:-$ROOT/.build/release/birefnet-bench}
ENGINE=${BACKDROP_ENGINE_LIB:-$ROOT/.build/release/libbackdrop-torch.so}
OFFICIAL=${BIREFNET_OFFICIAL_DIR:-$W/BiRefNet}
OFFICIAL_COMMIT=25cb9309bacf3dde954e4584594e16e142c51de5
FIXTURES=${BIREFNET_FIXTURES:-$ROOT/Tests/Fixtures/birefnet}
SYS_PY=/usr/bin/python3  # Debian's python3: its python3-torch 1.13 / python3-torchvision 0.14 are used
export CPU_RUNTIMES_THREADS=$THREADS BIREFNET_FIXTURES=$FIXTURES
mkdir -p "$WORK"
say() { printf '== %s\n' "$*"; }

say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

# ---- official code ----
if [ ! -f "$OFFICIAL/models/birefnet.py" ]; then
  cat >&2 <<EOF
cpu-runtimes: the official BiRefNet code is not at $OFFICIAL.
  Put a checkout of github.com/ZhengPeng7/BiRefNet (commit $OFFICIAL_COMMIT) there, or point
  BIREFNET_OFFICIAL_DIR=/path/to/checkout at one. It is only read (config changes are made in memory).
EOF
  exit 2
fi
if head=$(git -C "$OFFICIAL" rev-parse HEAD 2>/dev/null); then
  [ "$head" = "$OFFICIAL_COMMIT" ] && say "official code: $OFFICIAL at $head (the fixtures' commit)" ||
    say "official code: $OFFICIAL at $head -- NOT the fixtures' commit $OFFICIAL_COMMIT"
else
  say "official code: $OFFICIAL (not a git checkout; commit unknown)"
fi

# ---- Python environment: Debian's torch/torchvision + pinned PyPI packages in an ignored venv ----
if ! $SYS_PY -c 'import torch, torchvision' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's python3-torch python3-torchvision"
    apt-get install -y python3-torch python3-torchvision >/dev/null
  else
    echo "cpu-runtimes: needs Debian's python3-torch and python3-torchvision (apt-get install)" >&2
    exit 2
  fi
fi
# timm and kornia are installed without their dependencies: their newest requirements would pull a
# second (CUDA) torch from PyPI into the venv. kornia is imported by the official model file
# (laplacian, training only). numpy stays Debian's (torch 1.13 is built against numpy 1.x).
PIP_NODEPS="timm==0.9.16 kornia==0.7.4 kornia_rs==0.2.0"
PIP_PKGS="einops==0.8.0 huggingface_hub==2.4.0 safetensors==0.8.0 opencv-python-headless==4.11.0.86 tqdm==4.70.1
  onnx==1.23.2 onnxruntime==1.32.0 openvino==2026.4.1"
STAMP="$PIP_NODEPS $PIP_PKGS"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.cpu-runtimes-stamp" 2>/dev/null)" != "$STAMP" ]; then
  say "creating $VENV"
  rm -rf "$VENV"
  $SYS_PY -m venv --system-site-packages "$VENV"
  numpy_v=$($SYS_PY -c 'import numpy; print(numpy.__version__)')
  echo "numpy==$numpy_v" >"$W/constraints.txt"
  "$VENV/bin/pip" install -q --no-deps $PIP_NODEPS
  "$VENV/bin/pip" install -q -c "$W/constraints.txt" $PIP_PKGS
  if "$VENV/bin/pip" list 2>/dev/null | grep -qiE '^(nvidia-|triton )'; then
    echo "cpu-runtimes: a CUDA package was pulled into $VENV; refusing to go on" >&2
    exit 1
  fi
  echo "$STAMP" >"$VENV/.cpu-runtimes-stamp"
fi
PY="$VENV/bin/python -W ignore"
PYB="$PY $ROOT/benchmarks/cpu_runtimes.py"
say "versions: $($PYB versions)"
# OpenVINO runs bf16 only where the CPU has it (AVX512-BF16 / AMX); otherwise the hint is ignored.
OV_BF16=$($PY -c 'import openvino as ov; print(int("BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")))')
say "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); OpenVINO bf16 capability: $OV_BF16"

# ---- our binary ----
waited=0
while [ ! -x "$BENCH" ] || [ ! -f "$ENGINE" ]; do
  if [ "$waited" -ge "$WAIT_FOR_BENCH" ]; then
    echo "cpu-runtimes: $BENCH or $ENGINE is missing: build the release products first (swift build -c release)," >&2
    echo "  or set WAIT_FOR_BENCH=seconds to wait for a build in progress" >&2
    exit 2
  fi
  sleep 60; waited=$((waited + 60))
done

# ---- per variant: weights, checks, ONNX export, parity ----
variant_of() { case $1 in lite*) echo lite ;; general*) echo general ;; *) echo "unknown row $1" >&2; exit 2 ;; esac; }
backbone_of() { [ "$(variant_of "$1")" = lite ] && echo swin_v1_t || echo swin_v1_l; }
IFS=, read -ra ROW_LIST <<<"$ROWS"
IFS=, read -ra BATCH_LIST <<<"$BATCHES"
for row in "${ROW_LIST[@]}"; do
  [ "${row%512}" != "$row" ] || { echo "cpu-runtimes: only 512x512 rows are exported (got $row)" >&2; exit 2; }
  say "prepare $row (weights, checks, ONNX export, parity)"
  log=$WORK/prepare-$row.log
  rc=0
  $PYB prepare --variant "$(variant_of "$row")" --official "$OFFICIAL" --work "$WORK" --batches "$BATCHES" \
    --fixtures "$FIXTURES" >"$log" 2>&1 || rc=$?
  grep -vE '^\s|Warning' "$log" || true
  [ "$rc" = 0 ] || { echo "cpu-runtimes: prepare $row failed (rc $rc), see $log" >&2; exit 1; }
done

RUNTIMES="ours torch torch-passive ort ov-f32"
[ "$OV_BF16" = 1 ] && RUNTIMES="$RUNTIMES ours-bf16 ov-bf16"
RESULTS=$W/results.tsv
: >"$RESULTS"
bench_weights() { echo "$WORK/bench_bdrand_$1.safetensors"; }

run_one() {  # runtime row batch iters -> appends "row batch runtime ms|ERR:msg" to RESULTS
  local rt=$1 row=$2 batch=$3 iters=$4 v ms out
  v=$(variant_of "$row")
  if [ "$rt" = ours ] || [ "$rt" = ours-bf16 ]; then
    local precision=fp32 extra=()
    [ "$rt" = ours-bf16 ] && precision=bf16 extra=(--cpu-bf16)
    out=$("$BENCH" --engine "$ENGINE" --rows "$row" --batches "$batch" --threads "$THREADS" --no-cuda "${extra[@]}" \
      --warmup "$WARMUP" --iters "$iters" --weights-t "$(bench_weights swin_v1_t)" \
      --weights-l "$(bench_weights swin_v1_l)" 2>&1) || true
    ms=$(awk -v r="$row" -v b="$batch" -v p="$precision" '$1 == r && $3 == "cpu" && $4 == p && $6 == b { print $7 }' <<<"$out")
    [ -n "$ms" ] || ms="ERR:$(tail -n 2 <<<"$out" | tr '\n\t' '  ')"
  else
    local envs=()
    [ "$rt" = torch-passive ] && envs=(OMP_WAIT_POLICY=PASSIVE)
    out=$(env "${envs[@]}" $PYB time --runtime "${rt%-passive}" --variant "$v" --batch "$batch" --official "$OFFICIAL" \
      --work "$WORK" --warmup "$WARMUP" --iters "$iters" 2>&1) || true
    ms=$(sed -n 's/^MS //p' <<<"$out")
    [ -n "$ms" ] || ms="ERR:$(tail -n 2 <<<"$out" | tr '\n\t' '  ')"
  fi
  printf '%s\t%s\t%s\t%s\n' "$row" "$batch" "$rt" "$ms" >>"$RESULTS"
  printf '   %-11s b%-2s %-14s %s ms/frame\n' "$row" "$batch" "$rt" "$ms"
}

for round in $(seq 1 "$ROUNDS"); do
  say "round $round/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for row in "${ROW_LIST[@]}"; do
    iters=$ITERS; [ "$(variant_of "$row")" = general ] && iters=$GENERAL_ITERS
    for batch in "${BATCH_LIST[@]}"; do
      for rt in $RUNTIMES; do run_one "$rt" "$row" "$batch" "$iters"; done
    done
    if [ "$round" = 1 ]; then  # birefnet-bench wrote its bdrand weights: they must equal ours bit for bit
      $PYB verify-weights --variant "$(variant_of "$row")" --official "$OFFICIAL" --work "$WORK" \
        --bench-weights "$(bench_weights "$(backbone_of "$row")")" 2>&1 | grep -vE '^\s|Warning' ||
        { echo "cpu-runtimes: the weights of birefnet-bench and ours differ" >&2; exit 1; }
    fi
  done
done

say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "BiRefNet CPU ${THREADS} threads, 512x512: ms/frame = median over $ROUNDS rounds of the mean of" \
  "$ITERS (general: $GENERAL_ITERS) timed iterations after $WARMUP warm-up; ratio = runtime / ours"
$PY - "$RESULTS" "$RUNTIMES" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
order = sys.argv[2].split()
names = {"ours": "ours (birefnet-bench)", "torch": "official PyTorch", "torch-passive": "official PyTorch, OMP passive",
         "ort": "ONNX Runtime", "ov-f32": "OpenVINO f32", "ours-bf16": "ours bf16", "ov-bf16": "OpenVINO bf16"}
keys = sorted({(r[0], int(r[1])) for r in rows}, key=lambda k: (k[0].startswith("general"), k[0], k[1]))
print(f"{'row':<11} {'batch':>5}  {'runtime':<30} {'ms/frame':>9}  {'rounds (min..max)':>20}  {'ratio to ours':>13}")
for row, batch in keys:
    med = {}
    for rt in order:
        vals = [r[3] for r in rows if r[0] == row and int(r[1]) == batch and r[2] == rt]
        ok = [float(v) for v in vals if not v.startswith("ERR")]
        if ok:
            med[rt] = statistics.median(ok)
            span = f"{len(ok)} ({min(ok):.0f}..{max(ok):.0f})"
            ratio = f"{med[rt] / med['ours']:.2f}" if "ours" in med else "n/a"
            print(f"{row:<11} {batch:>5}  {names[rt]:<30} {med[rt]:>9.0f}  {span:>20}  {ratio:>13}")
        errs = [v for v in vals if v.startswith("ERR")]
        if errs:
            print(f"{row:<11} {batch:>5}  {names[rt]:<30} {'FAILED':>9}  {len(errs)} run(s): {errs[0][4:][:300]}")
EOF
