#!/usr/bin/env bash
# Soak benchmark (not in CI): 10,000 frames through birefnetmatte in gst-launch-1.0 and 10,000
# through `backdrop compose` (the selfie model, 160x96 frames, so each run takes minutes), the
# process's resident memory sampled every second. Prints RSS at 10 %, 50 % and 100 % of each run
# and the slope over its second half (a leak shows as a steady climb; allocator warm-up does not).
#   scripts/soak.sh [FRAMES] [BUILD_DIR]        defaults: 10000 .build/release (else .build/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-10000}
build=${2:-}
if [[ -z $build ]]; then
  for candidate in .build/release .build/debug; do
    [[ -x $candidate/backdrop && -f $candidate/libgstbackdrop.so ]] && { build=$candidate; break; }
  done
fi
[[ -n $build ]] || { echo "soak.sh: build first (swift build -c release)" >&2; exit 69; }
model=models/selfie/selfie.pt
[[ -f $model ]] || { echo "soak.sh: $model is missing: run scripts/setup-models.sh" >&2; exit 69; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/plugin" "$work/cache"
ln -s "$PWD/$build/libgstbackdrop.so" "$work/plugin/libgstbackdrop.so"
export GST_PLUGIN_PATH=$work/plugin GST_REGISTRY=$work/registry.bin XDG_CACHE_HOME=$work/cache

# Samples VmRSS (kB) of a command every second until it exits; "seconds rss" lines in $2.
sample() {  # sample NAME SAMPLES_FILE COMMAND...
  local name=$1 file=$2
  shift 2
  local start=$SECONDS
  "$@" >"$work/$name.out" 2>&1 &
  local pid=$!
  : >"$file"
  while kill -0 "$pid" 2>/dev/null; do
    awk -v t=$((SECONDS - start)) '/^VmRSS:/ { print t, $2 }' "/proc/$pid/status" >>"$file" 2>/dev/null || true
    sleep 1
  done
  wait "$pid" || { echo "$name failed:"; tail -5 "$work/$name.out"; exit 70; }
}

report() {  # report NAME SAMPLES_FILE
  awk -v name="$1" -v frames="$frames" '
    { t[NR] = $1; r[NR] = $2 }
    END {
      if (NR < 4) { print name ": too few samples (" NR ")"; exit }
      i10 = int(NR * 0.1); if (i10 < 1) i10 = 1
      i50 = int(NR * 0.5); if (i50 < 1) i50 = 1
      # Least-squares slope over the second half, in kB per second and per 1,000 frames.
      n = 0; sx = sy = sxx = sxy = 0
      for (i = i50; i <= NR; i++) { n++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
      slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
      rate = frames / (t[NR] > 0 ? t[NR] : 1)
      printf "%-9s %d frames in %d s (%.0f fps); RSS at 10%% %.1f MB, 50%% %.1f MB, 100%% %.1f MB; peak %.1f MB; slope over the second half %+.1f kB/s = %+.1f kB per 1000 frames\n",
        name, frames, t[NR], rate, r[i10] / 1024, r[i50] / 1024, r[NR] / 1024, max(r) / 1024, slope, slope / rate * 1000
    }
    function max(a,   m, k) { m = 0; for (k in a) if (a[k] > m) m = a[k]; return m }' "$2"
}

echo "soak: $frames frames of 160x96, selfie model, $build"
sample element "$work/element.rss" gst-launch-1.0 -q \
  videotestsrc num-buffers="$frames" pattern=smpte horizontal-speed=3 ! video/x-raw,width=160,height=96,framerate=30/1 ! \
  birefnetmatte model-file="$model" inference-width=256 inference-height=256 device=cpu ! fakesink sync=false
report element "$work/element.rss"

# The same number of frames as a clip (VP8 in WebM, a tone), then composed to a transparent WebM.
gst-launch-1.0 -q -e videotestsrc num-buffers="$frames" pattern=smpte horizontal-speed=3 ! \
  video/x-raw,width=160,height=96,framerate=30/1 ! vp8enc deadline=1 cpu-used=8 ! webmmux name=m ! \
  filesink location="$work/clip.webm" \
  audiotestsrc num-buffers=$((frames * 48000 / 30 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1 ! \
  audioconvert ! vorbisenc ! m.
sample compose "$work/compose.rss" "$build/backdrop" compose "$work/clip.webm" -o "$work/out.webm" --model selfie --quiet
report compose "$work/compose.rss"
