#!/bin/sh
# File → H.264 MP4 twice as tall: the picture on top, its alpha as grey below (alphaview), for
# players without transparency that composite the two halves in a shader.
# Usage: pipelines/stacked-alpha-mp4.sh INPUT MODEL OUTPUT.mp4
set -e
exec gst-launch-1.0 -q -e filesrc location="$1" ! decodebin ! videoconvert ! \
  videoflip video-direction=auto ! birefnetmatte model-file="$2" ! video/x-raw,format=RGBA ! \
  alphaview layout=stacked ! videoconvert ! video/x-raw,format=I420 ! x264enc ! mp4mux ! filesink location="$3"
