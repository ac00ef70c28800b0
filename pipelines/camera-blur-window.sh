#!/bin/sh
# Camera → the background blurred, shown in a window. Live: batch 1, no waiting for a batch.
# Usage: pipelines/camera-blur-window.sh MODEL [DEVICE]
# SOURCE and SINK override the camera and the window (the tests use a live test source).
set -e
source=${SOURCE:-"v4l2src device=${2:-/dev/video0}"}
sink=${SINK:-autovideosink}
exec gst-launch-1.0 -q -e $source ! videoconvert ! \
  birefnetmatte model-file="$1" background=blur blur-radius=16 ! \
  videoconvert ! $sink
