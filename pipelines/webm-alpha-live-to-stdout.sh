#!/bin/sh
# Live transparent WebM on stdout (unknown sizes, no index): a live test source through
# vp9alphaenc (realtime defaults) and webmalphamux into fdsink. Pipe it to a file, a web
# server or a player, e.g.
#
#   GST_PLUGIN_PATH=DIR pipelines/webm-alpha-live-to-stdout.sh 90 | ffmpeg -c:v libvpx-vp9 -i pipe:0 out.mov
#
# The first argument limits the frame count (default: run until interrupted).
set -eu
FRAMES=${1:--1}
gst-launch-1.0 -q \
  videotestsrc is-live=true num-buffers="$FRAMES" pattern=ball background-color=0x00000000 \
  ! video/x-raw,format=AYUV,width=640,height=360,framerate=30/1 \
  ! videoconvert ! video/x-raw,format=A420 \
  ! vp9alphaenc deadline=1 keyframe-max-dist=30 ! webmalphamux streamable=true ! fdsink fd=1
