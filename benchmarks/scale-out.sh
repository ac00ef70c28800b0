#!/bin/sh
# Release benchmark (issue 13): the cost of cutting a clip into parts and joining them, in one run
# on the same clip and machine.
#
#   benchmarks/scale-out.sh [frames]      (default 750 frames: 30 s of 640x360 at 25 fps)
#
#   single1     one `backdrop compose` over the whole clip, --threads 1
#   sequential  part 0/2 then part 1/2, each --threads 1, then `backdrop join`: the same work as
#               single1 plus everything splitting adds (each part reads the clip's keyframes,
#               loads the model, seeks, starts a new keyframe) and the join
#   single2     one `backdrop compose` over the whole clip, --threads 2 (1 part on 2 cores)
#   parallel    parts 0/2 and 1/2 side by side, --threads 1 each (2 parts on 2 cores), then join
#
# Overhead = sequential / single1 - 1 (target < 3 %); speed-up = single2 / parallel. Best of
# REPEAT (default 2) runs of each, alternating. MODES picks some (default all four; e.g.
# MODES="single1 sequential" for the overhead alone on a long clip). Environment: SCRATCH (default .build), MODEL (default
# models/selfie/selfie.pt), REPEAT.
set -eu
cd "$(dirname "$0")/.."
FRAMES=${1:-750}
REPEAT=${REPEAT:-2}
SCRATCH=${SCRATCH:-.build}
MODEL=${MODEL:-models/selfie/selfie.pt}
B="$SCRATCH/release/backdrop"
for file in "$B" "$SCRATCH/release/libgstbackdrop.so" "$SCRATCH/release/libbackdrop-torch.so" "$MODEL"; do
  [ -f "$file" ] || { echo "missing $file: swift build -c release (and scripts/setup-models.sh for the selfie model)" >&2; exit 66; }
done
WORK=$(mktemp -d /tmp/scale-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME="$WORK/cache" GST_REGISTRY="$WORK/registry.bin"

echo "making $FRAMES frames of 640x360 H.264 (a keyframe every 2 s) with AAC audio..." >&2
gst-launch-1.0 -q -e videotestsrc num-buffers="$FRAMES" pattern=ball ! video/x-raw,width=640,height=360,framerate=25/1 \
  ! videoconvert ! x264enc key-int-max=50 speed-preset=veryfast ! mp4mux name=m ! filesink location="$WORK/clip.mp4" \
  audiotestsrc num-buffers="$((FRAMES * 48000 / 25 / 1024))" samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
  ! audioconvert ! avenc_aac ! m.
CLIP="$WORK/clip.mp4"
OPTS="--model $MODEL --device cpu -q"

now() { date +%s.%N; }
single1() {
  "$B" compose "$CLIP" -o "$WORK/single.webm" $OPTS --threads 1
}
single2() {
  "$B" compose "$CLIP" -o "$WORK/single.webm" $OPTS --threads 2
}
sequential() {
  "$B" compose "$CLIP" -o "$WORK/s0.webm" $OPTS --threads 1 --segment 0/2
  "$B" compose "$CLIP" -o "$WORK/s1.webm" $OPTS --threads 1 --segment 1/2
  "$B" join "$WORK/s0.webm" "$WORK/s1.webm" -o "$WORK/sequential.webm" -q
}
parallel() {
  "$B" compose "$CLIP" -o "$WORK/p0.webm" $OPTS --threads 1 --segment 0/2 &
  first=$!
  "$B" compose "$CLIP" -o "$WORK/p1.webm" $OPTS --threads 1 --segment 1/2
  wait "$first"
  "$B" join "$WORK/p0.webm" "$WORK/p1.webm" -o "$WORK/parallel.webm" -q
}
best_single1=; best_single2=; best_sequential=; best_parallel=
i=0
while [ "$i" -lt "$REPEAT" ]; do
  for mode in ${MODES:-single1 sequential single2 parallel}; do
    rm -f "$WORK"/*.webm
    start=$(now); $mode; end=$(now)
    t=$(echo "$end - $start" | bc -l)
    eval "best=\${best_$mode}"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then eval "best_$mode=$t"; fi
    printf '  run %d %-10s %6.2f s\n' "$((i + 1))" "$mode" "$t" >&2
  done
  i=$((i + 1))
done
joined=$(ls "$WORK"/sequential.webm "$WORK"/parallel.webm 2>/dev/null | head -1)
echo "scale-out benchmark: $FRAMES frames 640x360, model $(basename "$MODEL"), $(nproc) cores, best of $REPEAT"
if [ -n "$best_single1" ]; then
  printf '  single pass, 1 thread                      %7.2f s  %6.1f fps\n' "$best_single1" "$(echo "$FRAMES / $best_single1" | bc -l)"
fi
if [ -n "$best_single1" ] && [ -n "$best_sequential" ]; then
  printf '  2 parts in sequence + join, 1 thread       %7.2f s  overhead %+.1f %% of the single pass (target < 3 %%)\n' \
    "$best_sequential" "$(echo "($best_sequential / $best_single1 - 1) * 100" | bc -l)"
fi
if [ -n "$best_single2" ]; then
  printf '  1 part on 2 cores (single pass, 2 threads) %7.2f s  %6.1f fps\n' "$best_single2" "$(echo "$FRAMES / $best_single2" | bc -l)"
fi
if [ -n "$best_single2" ] && [ -n "$best_parallel" ]; then
  printf '  2 parts on 2 cores (1 thread each) + join  %7.2f s  speed-up x%.2f over 1 part on 2 cores\n' "$best_parallel" \
    "$(echo "$best_single2 / $best_parallel" | bc -l)"
fi
if [ -n "$joined" ]; then
  echo "  joined file: $(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$joined") frames"
fi
