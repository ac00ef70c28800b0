#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what Backdrop needs, build it in release mode,
# make a sample clip and matte it into files you can look at.
#
#   bash scripts/demo.sh [MODEL]      (as root, or with sudo for the apt step)
#
# MODEL defaults to the designed luma-key model (models/designed/lumakey.pt: bright = subject), which
# needs no download; give BiRefNet weights (model.safetensors) for real matting.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
model=${1:-$root/models/designed/lumakey.pt}
out=$root/demo-output
mkdir -p "$out"

if [ "${SKIP_INSTALL:-0}" != 1 ]; then bash scripts/install-deps.sh; fi
swift build -c release
# A folder that holds only the plugin: GStreamer's scanner must not load the engine (libtorch).
plugins=$root/.build/release-plugin
mkdir -p "$plugins"
ln -sf "$root/.build/release/libgstbackdrop.so" "$plugins/libgstbackdrop.so"
export GST_PLUGIN_PATH=$plugins

# A 4-second sample clip: a bright ball moving over a dark test pattern, with a tone.
gst-launch-1.0 -q -e videotestsrc pattern=ball num-buffers=120 ! video/x-raw,width=640,height=360,framerate=30/1 ! \
  videoconvert ! vp8enc deadline=1 ! queue ! webmmux name=mux ! filesink location="$out/sample.webm" \
  audiotestsrc num-buffers=172 ! audioconvert ! vorbisenc ! queue ! mux.

# Green screen composite (VP8 WebM plays everywhere).
gst-launch-1.0 -q filesrc location="$out/sample.webm" ! decodebin ! videoconvert ! \
  birefnetmatte model-file="$model" background=green ! videoconvert ! vp8enc deadline=1 ! webmmux ! \
  filesink location="$out/sample-green.webm"

# The matte alone, as a greyscale video.
gst-launch-1.0 -q filesrc location="$out/sample.webm" ! decodebin ! videoconvert ! \
  birefnetmatte model-file="$model" ! video/x-raw,format=GRAY8 ! videoconvert ! vp8enc deadline=1 ! webmmux ! \
  filesink location="$out/sample-matte.webm"

# A frame as PNG with transparency, to look at directly.
gst-launch-1.0 -q filesrc location="$out/sample.webm" ! decodebin ! videoconvert ! \
  birefnetmatte model-file="$model" ! video/x-raw,format=RGBA ! videoconvert ! pngenc snapshot=true ! \
  filesink location="$out/sample-frame.png"

# Transparent VP9 WebM, when this build has vp9alphaenc and webmalphamux.
if gst-inspect-1.0 vp9alphaenc >/dev/null 2>&1 && gst-inspect-1.0 webmalphamux >/dev/null 2>&1; then
  gst-launch-1.0 -q filesrc location="$out/sample.webm" ! decodebin ! videoconvert ! \
    birefnetmatte model-file="$model" ! video/x-raw,format=A420 ! vp9alphaenc ! webmalphamux ! \
    filesink location="$out/sample-alpha.webm"
fi

echo "Backdrop demo written to $out:"
ls -l "$out"
