#!/usr/bin/env bash
# Makes .build-gpu-gst/: what the GPU check (scripts/gpu-check.sh) needs to run the element on a GPU
# machine that has PyTorch but no GStreamer, no Swift and no network. Carry it along with the run:
#   bin/      gst-launch-1.0 and gst-plugin-scanner (Debian 12, GStreamer 1.22)
#   plugins/  birefnetmatte (this build, release), coreelements, videotestsrc, videoparsersbad
#             (h264parse) and nvcodec (nvh264dec, cudadownload)
#   lib/      every library those need, except glibc's and the C++ runtime: the GPU machine's own are
#             newer, and the engine built there needs its own libstdc++
#   media/    a 1080p H.264 clip (videotestsrc, x264) for `nvh264dec ! birefnetmatte`
#   BiRefNet/ the official BiRefNet code, without its .git, when BIREFNET_OFFICIAL_DIR names a checkout
# The engine is not in it: the GPU check builds it there against that machine's torch.
#
#   bash scripts/gpu-gst-bundle.sh      # here (the plugin in release mode, as install.sh builds it); about 30 MB
#
# Frames of the clip: $GPU_GST_FRAMES (default 750).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.build-gpu-gst"
# The release plugin exactly as scripts/install.sh builds it (same scratch folder and flags), so
# that after the Debian package test (which runs install.sh) this is no build at all: a second
# release build of the plugin's dependencies costs minutes on a fresh CI machine.
scratch="${BACKDROP_INSTALL_SCRATCH:-$root/.build-install}"
plugin="$scratch/release/libgstbackdrop.so"
log="$(mktemp)"
(cd "$root" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product gstbackdrop) >"$log" 2>&1 \
  || { cat "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
triplet=x86_64-linux-gnu
gst_plugins="/usr/lib/$triplet/gstreamer-1.0"
scanner="/usr/lib/$triplet/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner"

rm -rf "$out"
mkdir -p "$out/bin" "$out/plugins" "$out/lib" "$out/media"
cp "$(command -v gst-launch-1.0)" "$scanner" "$out/bin/"
cp "$plugin" "$out/plugins/"
for name in coreelements videotestsrc videoparsersbad nvcodec; do
  [[ -f "$gst_plugins/libgst$name.so" ]] || { echo "gpu-gst-bundle: $gst_plugins/libgst$name.so missing (install gstreamer1.0-plugins-base/-bad)" >&2; exit 1; }
  cp "$gst_plugins/libgst$name.so" "$out/plugins/"
done
# libgstcuda is loaded by the plugin at run time (dlopen), so ldd does not list it.
ldd "$out"/bin/* "$out"/plugins/*.so "/usr/lib/$triplet/libgstcuda-1.0.so.0" \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u \
  | grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux-x86-64)\.so' \
  | while read -r lib; do cp -L "$lib" "$out/lib/"; done
cp -L "/usr/lib/$triplet/libgstcuda-1.0.so.0" "$out/lib/"

frames="${GPU_GST_FRAMES:-750}"
gst-launch-1.0 -q videotestsrc pattern=ball num-buffers="$frames" \
  ! video/x-raw,width=1920,height=1080,framerate=30/1 \
  ! x264enc speed-preset=ultrafast bitrate=1500 key-int-max=60 ! video/x-h264,profile=high \
  ! h264parse ! filesink location="$out/media/clip-1080p.h264"
echo "$frames" >"$out/media/clip-1080p.frames"

if [[ -n "${BIREFNET_OFFICIAL_DIR:-}" ]]; then
  mkdir -p "$out/BiRefNet"
  (cd "$BIREFNET_OFFICIAL_DIR" && tar --exclude=.git -cf - .) | tar -xf - -C "$out/BiRefNet"
fi
echo "gpu-gst-bundle: $(du -sh "$out" | cut -f1) in $out ($(ls "$out/lib" | wc -l) libraries)"
