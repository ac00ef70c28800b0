#!/bin/sh
# File → ProRes 4444 with alpha in QuickTime (.mov), the transparent file DaVinci Resolve, Premiere
# and Final Cut import. The matte becomes a 10-bit 4:4:4 picture with alpha (A444_10LE), which
# avenc_prores_ks (gstreamer1.0-libav) codes as ProRes 4444. Picture only: `backdrop compose IN
# -o OUT.mov` also keeps the sound (as PCM).
# Usage: pipelines/prores-4444-alpha.sh INPUT MODEL OUTPUT.mov
set -e
exec gst-launch-1.0 -q -e filesrc location="$1" ! decodebin ! videoconvert ! \
  videoflip video-direction=auto ! birefnetmatte model-file="$2" ! video/x-raw,format=RGBA ! \
  videoconvert ! video/x-raw,format=A444_10LE,colorimetry=bt709 ! \
  avenc_prores_ks profile=4444 vendor=apl0 ! qtmux ! filesink location="$3"
