#!/bin/sh
# File → the subject on a green screen, VP8 in WebM (audio dropped).
# Usage: pipelines/green-screen.sh INPUT MODEL OUTPUT.webm
set -e
exec gst-launch-1.0 -q -e filesrc location="$1" ! decodebin ! videoconvert ! \
  videoflip video-direction=auto ! birefnetmatte model-file="$2" background=green ! \
  videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location="$3"
