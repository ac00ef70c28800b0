#!/bin/sh
# File → one PNG per frame with the background transparent (straight alpha).
# Usage: pipelines/transparent-png-frames.sh INPUT MODEL OUTPUT_PATTERN (e.g. out/frame%05d.png)
set -e
exec gst-launch-1.0 -q -e filesrc location="$1" ! decodebin ! videoconvert ! \
  videoflip video-direction=auto ! birefnetmatte model-file="$2" ! video/x-raw,format=RGBA ! \
  videoconvert ! pngenc ! multifilesink location="$3"
