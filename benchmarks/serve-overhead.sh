#!/usr/bin/env bash
# The overhead of `backdrop serve`: time from the start of an upload to a downloaded transparent
# WebM, against `backdrop compose` writing the same WebM from the same clip, in one run, each
# measured RUNS times, alternating (median). The server runs the same pipeline in process; what it
# adds is the upload, the GStreamer probe, the queue, the event stream and the download. Wall time
# and CPU time (user+sys of the compose process; of the server process over the job) are both
# given: on a shared machine the CPU time is the steadier of the two.
#
#   benchmarks/serve-overhead.sh [FRAMES] [RUNS]      (default 150 frames of 640x360 at 30 fps, 3 runs)
#   BUILD=.build/release (default) or .build/debug; MODEL=selfie (default) or a --add-model NAME=PATH
set -euo pipefail
FRAMES=${1:-150}
RUNS=${2:-3}
BUILD=${BUILD:-.build/release}
MODEL=${MODEL:-selfie}
BIN="$BUILD/backdrop"
[ -x "$BIN" ] || { echo "no $BIN: run swift build -c release" >&2; exit 1; }
WORK=$(mktemp -d /tmp/serve-bench.XXXXXX)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export XDG_CACHE_HOME="$WORK/cache" GST_REGISTRY="$WORK/registry.bin"

gst-launch-1.0 -q -e videotestsrc num-buffers="$FRAMES" pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! videoconvert ! x264enc speed-preset=faster ! mp4mux name=m ! filesink location="$WORK/clip.mp4" \
  audiotestsrc num-buffers=$((FRAMES * 48000 / 30 / 1024)) ! audioconvert ! avenc_aac ! m.
SIZE=$(stat -c %s "$WORK/clip.mp4")

MODEL_ARGS=()
SERVE_MODEL_ARGS=()
case "$MODEL" in
  *=*) SERVE_MODEL_ARGS=(--add-model "$MODEL"); MODEL_ARGS=(--model "${MODEL#*=}"); MODEL=${MODEL%%=*} ;;
  *) MODEL_ARGS=(--model "$MODEL") ;;
esac

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Warm the page cache and GStreamer's registry once, outside the timings.
"$BIN" compose "$WORK/clip.mp4" -o "$WORK/warm.webm" "${MODEL_ARGS[@]}" -q

"$BIN" serve --port 0 --data "$WORK/data" "${SERVE_MODEL_ARGS[@]}" > "$WORK/url" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/url"); URL=${URL%/}

# CPU seconds (user+sys) of a process so far, from /proc.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

compose_times=(); serve_times=(); compose_cpu=(); serve_cpu=()
for run in $(seq "$RUNS"); do
  t0=$(now)
  cpu=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)' \
    "$BIN" compose "$WORK/clip.mp4" -o "$WORK/compose.webm" "${MODEL_ARGS[@]}" -q)
  t1=$(now)
  compose_times+=("$(echo "$t1 - $t0" | bc -l)")
  compose_cpu+=("$cpu")

  c0=$(cpu_of "$SERVER_PID")
  t0=$(now)
  ID=$(curl -sf -X POST --data-binary @"$WORK/clip.mp4" "$URL/api/jobs?name=clip.mp4&model=$MODEL&outputs=webm" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # Follow the job's events until it ends, then download the file.
  curl -sfN "$URL/api/jobs/$ID/events" | grep -q '^event: end'
  curl -sf -o "$WORK/served.webm" "$URL/api/jobs/$ID/files/webm?download=1"
  t1=$(now)
  serve_times+=("$(echo "$t1 - $t0" | bc -l)")
  serve_cpu+=("$(echo "$(cpu_of "$SERVER_PID") - $c0" | bc -l)")
  curl -sf -X DELETE "$URL/api/jobs/$ID"
  printf 'run %d: compose %.3f s wall, %.3f s CPU; serve upload->download %.3f s wall, %.3f s CPU\n' "$run" \
    "${compose_times[-1]}" "${compose_cpu[-1]}" "${serve_times[-1]}" "${serve_cpu[-1]}"
done

c=$(printf '%s\n' "${compose_times[@]}" | median)
s=$(printf '%s\n' "${serve_times[@]}" | median)
frames_c=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/compose.webm")
frames_s=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/served.webm")
echo "clip: ${FRAMES} frames 640x360 H.264+AAC (${SIZE} B), model $MODEL, build $BUILD, $(nproc) cores"
cc=$(printf '%s\n' "${compose_cpu[@]}" | median)
sc=$(printf '%s\n' "${serve_cpu[@]}" | median)
printf 'median of %d, wall: compose %.3f s (%s frames), serve %.3f s (%s frames): overhead %+.1f %%\n' \
  "$RUNS" "$c" "$frames_c" "$s" "$frames_s" "$(echo "($s / $c - 1) * 100" | bc -l)"
printf 'median of %d, CPU:  compose %.3f s, serve %.3f s: overhead %+.1f %%\n' \
  "$RUNS" "$cc" "$sc" "$(echo "($sc / $cc - 1) * 100" | bc -l)"
