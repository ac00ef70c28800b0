#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what Backdrop needs, make the offline default
# model (selfie), build in release mode, make a sample clip from a real photo (slow pan and zoom
# over the public-domain astronaut picture, with a tone as audio) and compose it with `backdrop`:
# a transparent WebM, an MP4 preview on a green backdrop and a contact sheet.
#
#   bash scripts/demo.sh [MODEL]     (as root for the apt step; SKIP_INSTALL=1 skips it)
#
# MODEL is a registry name (`backdrop models list`) or a file; the default is `selfie`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
model=${1:-selfie}
out=$root/demo-output
mkdir -p "$out"

if [ "${SKIP_INSTALL:-0}" != 1 ]; then bash scripts/install-deps.sh; fi
bash scripts/setup-models.sh
swift build -c release
backdrop=$root/.build/release/backdrop

# 6 seconds at 30 fps, 640×360, VP8 + Vorbis in WebM.
/usr/bin/python3 scripts/make_sample_frames.py 640 360 180 | gst-launch-1.0 -q -e \
  fdsrc ! rawvideoparse format=rgb width=640 height=360 framerate=30/1 ! videoconvert ! \
  vp8enc deadline=1 target-bitrate=2000000 ! queue ! webmmux name=mux ! filesink location="$out/astronaut.webm" \
  audiotestsrc freq=440 volume=0.3 num-buffers=259 ! audioconvert ! vorbisenc ! queue ! mux.

"$backdrop" compose "$out/astronaut.webm" -o "$out/astronaut-transparent.webm" \
  --model "$model" --preview "$out/astronaut-preview.mp4"
"$backdrop" preview "$out/astronaut.webm" -o "$out/astronaut-sheet.png" --model "$model" --frames 4

echo
echo "Backdrop demo written to $out:"
echo "  astronaut.webm               the sample clip (pan and zoom over a photo, with a tone)"
echo "  astronaut-transparent.webm   VP9 with alpha (open it in Chromium or Firefox)"
echo "  astronaut-preview.mp4        H.264 preview on a backdrop"
echo "  astronaut-sheet.png          contact sheet: original | matte | composite"
