#!/bin/sh
# A transparent WebM from test sources: a ball on a transparent background (VP9 with alpha)
# and a tone (Opus), written by vp9alphaenc and webmalphamux. Plays with transparency in
# Chromium and Firefox; decode with `ffmpeg -c:v libvpx-vp9 -i OUT ...` to keep the alpha.
#
#   GST_PLUGIN_PATH=DIR pipelines/webm-alpha-from-testsrc.sh [OUT.webm] [FRAMES]
#
# DIR holds libgstbackdrop.so only (a symlink is enough; see README).
set -eu
OUT=${1:-testsrc-alpha.webm}
FRAMES=${2:-150}
SAMPLES=$((FRAMES * 1600))  # 48 kHz audio as long as the video at 30 fps
gst-launch-1.0 -q \
  videotestsrc num-buffers="$FRAMES" pattern=ball background-color=0x00000000 foreground-color=0xffffa000 \
  ! video/x-raw,format=AYUV,width=640,height=360,framerate=30/1 \
  ! videoconvert ! video/x-raw,format=A420 \
  ! vp9alphaenc keyframe-max-dist=60 ! queue ! webmalphamux name=mux ! filesink location="$OUT" \
  audiotestsrc samplesperbuffer=960 num-buffers=$((SAMPLES / 960)) ! audio/x-raw,rate=48000,channels=2 \
  ! opusenc ! queue ! mux.
