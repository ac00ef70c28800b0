#!/bin/sh
# Release benchmark (DESIGN §8): the same 1080p A420 clip encoded with vp9alphaenc and with
# ffmpeg's libvpx-vp9 (yuva420p) at equal settings, in one run; prints fps of each and the ratio.
#
#   benchmarks/vp9alpha.sh [frames]            (default 300 frames, 1080p30)
#
# Settings shared by both (DESIGN §5 speed anchors): deadline realtime, cpu-used 8, row-mt,
# THREADS threads (default: number of cores), lag 0, 4 Mb/s, keyframe distance 128, 4 tile
# columns. vp9alphaenc additionally uses its alpha defaults (alpha-cpu-used, alpha bitrate,
# alpha-static-threshold): mattes are mostly flat, so the alpha stream is encoded cheaply.
# Environment: SCRATCH (SwiftPM build directory, default .build), THREADS, KEEP=1 keeps the clip.
set -eu
cd "$(dirname "$0")/.."
FRAMES=${1:-300}
THREADS=${THREADS:-$(nproc)}
SCRATCH=${SCRATCH:-.build}
WORK=$(mktemp -d /tmp/vp9alpha-bench.XXXXXX)
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT

if [ ! -f "$SCRATCH/release/libgstbackdrop.so" ]; then
  echo "building the plugin (release)..." >&2
  swift build -c release --product gstbackdrop --scratch-path "$SCRATCH" >&2
fi
mkdir -p "$WORK/plugin"
ln -s "$(realpath "$SCRATCH/release/libgstbackdrop.so")" "$WORK/plugin/libgstbackdrop.so"
export GST_PLUGIN_PATH="$WORK/plugin" GST_REGISTRY="$WORK/registry.bin"

# The clip: detailed moving colour (testsrc2) with a matte-like alpha: a moving, soft-edged
# opaque shape on a transparent background. Written once as raw yuva420p (= GStreamer A420).
CLIP="$WORK/clip.yuva420p"
echo "making $FRAMES frames of 1920x1080 A420..." >&2
ffmpeg -v error -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -f lavfi -i "color=c=black:size=1920x1080:rate=30,drawbox=x='300+400*sin(t)':y='150+100*cos(t)':w=900:h=800:color=white:t=fill,boxblur=6,format=gray" \
  -filter_complex "[0:v]format=yuv420p[c];[c][1:v]alphamerge,format=yuva420p" \
  -frames:v "$FRAMES" -f rawvideo "$CLIP"
FRAME_SIZE=$((1920 * 1080 * 5 / 2))
cat "$CLIP" > /dev/null  # into the page cache for both runs

now() { date +%s.%N; }
# Best of REPEAT runs (default 2, alternating the encoders): the machines are shared and noisy.
REPEAT=${REPEAT:-2}

ours() {  # extra vp9alphaenc properties...
  gst-launch-1.0 -q filesrc location="$CLIP" blocksize=$FRAME_SIZE \
    ! rawvideoparse format=a420 width=1920 height=1080 framerate=30/1 \
    ! vp9alphaenc deadline=1 cpu-used=8 row-mt=true threads="$THREADS" lag-in-frames=0 \
        target-bitrate=4000000 keyframe-max-dist=128 tile-columns=2 "$@" \
    ! webmalphamux ! filesink location="$WORK/ours.webm"
}
theirs() {
  ffmpeg -v error -y -f rawvideo -pix_fmt yuva420p -s 1920x1080 -r 30 -i "$CLIP" \
    -c:v libvpx-vp9 -pix_fmt yuva420p -deadline realtime -cpu-used 8 -row-mt 1 -threads "$THREADS" \
    -lag-in-frames 0 -b:v 4M -g 128 -tile-columns 2 -f webm "$WORK/ffmpeg.webm"
}
# Seconds of the fastest of REPEAT runs of "$@".
best() {
  BEST=""
  i=0
  while [ $i -lt "$REPEAT" ]; do
    T0=$(now); "$@"; T1=$(now)
    BEST=$(echo "$T0 $T1 ${BEST:-1e9}" | awk '{ d = $2 - $1; print (d < $3 ? d : $3) }')
    i=$((i + 1))
  done
  echo "$BEST"
}

echo "encoding ($REPEAT runs each)..." >&2
S_OURS=$(best ours)
SIZE_OURS=$(stat -c %s "$WORK/ours.webm")
S_PLAIN=$(best ours alpha-static-threshold=-1 skip-transparent=false)
SIZE_PLAIN=$(stat -c %s "$WORK/ours.webm")
S_FFMPEG=$(best theirs)
SIZE_FFMPEG=$(stat -c %s "$WORK/ffmpeg.webm")

fps() { echo "$FRAMES $1" | awk '{ printf "%.1f", $1 / $2 }'; }
echo "1080p A420, $FRAMES frames, $THREADS threads, realtime cpu-used 8, 4 Mb/s, best of $REPEAT"
echo "vp9alphaenc ! webmalphamux (defaults):          $(fps "$S_OURS") fps  ($SIZE_OURS bytes)"
echo "vp9alphaenc, no block skipping (plain lockstep): $(fps "$S_PLAIN") fps  ($SIZE_PLAIN bytes)"
echo "ffmpeg libvpx-vp9 yuva420p (webm):              $(fps "$S_FFMPEG") fps  ($SIZE_FFMPEG bytes)"
echo "$S_OURS $S_PLAIN $S_FFMPEG" | awk '{ printf "ratio vp9alphaenc / ffmpeg: %.2f (target >= 1.2); without block skipping: %.2f\n", $3 / $1, $3 / $2 }'
