#!/bin/sh
# File → the matte alone (white = subject) as a greyscale VP8 WebM.
# Usage: pipelines/matte-only.sh INPUT MODEL OUTPUT.webm
set -e
exec gst-launch-1.0 -q -e filesrc location="$1" ! decodebin ! videoconvert ! \
  videoflip video-direction=auto ! birefnetmatte model-file="$2" ! video/x-raw,format=GRAY8 ! \
  videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location="$3"
