#!/usr/bin/env bash
# Builds gstreamer1.0-backdrop_<version>_<arch>.deb from the release build with dpkg-deb.
#
#   scripts/package-deb.sh [--no-build] [OUTDIR]        (default OUTDIR: dist/)
#
# Layout (scripts/install.sh --prefix /usr): the plugin in GStreamer's system plugin folder, the
# engine in /usr/lib/<triplet>/backdrop/ (the plugin looks there first, relative to its own file;
# keeping it out of the plugin folder means gst-plugin-scanner never loads libtorch), `backdrop` in
# /usr/bin, the selfie model and the registry in /usr/share/backdrop/models, man pages, bash/zsh/fish
# completions and the copyright file. Depends: what dpkg-shlibdeps finds for the three binaries,
# plus the GStreamer plugin packages the launcher's pipelines use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_flag=
if [ "${1:-}" = --no-build ]; then build_flag=--no-build; shift; fi
outdir=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)

package=gstreamer1.0-backdrop
version=$(sed -n 's/.*bd_plugin_init, "\([0-9][0-9.]*\)".*/\1/p' "$root/Sources/CBackdropShim/plugin_desc.c")
[ -n "$version" ] || { echo "package-deb.sh: no version found in Sources/CBackdropShim/plugin_desc.c" >&2; exit 65; }
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
# Reproducible timestamps (man page dates, file times) from the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
bash "$root/scripts/install.sh" --prefix /usr --destdir "$stage" $build_flag >/dev/null
rm -f "$stage/usr/share/backdrop/installed-files"  # dpkg keeps its own list
# Debian ships binaries without debugging symbols (the launcher's static Swift runtime halves).
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$stage/usr/bin/backdrop" "$stage/usr/lib/$triplet/gstreamer-1.0/libgstbackdrop.so" \
  "$stage/usr/lib/$triplet/backdrop/libbackdrop-torch.so"

# Debian puts man pages gzipped, without names or times in the header.
gzip -9n "$stage"/usr/share/man/man1/*.1
doc="$stage/usr/share/doc/$package"
install -d "$doc"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: backdrop
Comment: AI video background removal for GStreamer (birefnetmatte, vp9alphaenc, webmalphamux, alphaview)
 and the backdrop launcher.

Files: *
Copyright: the Backdrop authors
License: LGPL-2.1+

Files: usr/share/backdrop/models/selfie.pt
Copyright: Google LLC (MediaPipe selfie segmentation model), converted to TorchScript by Backdrop
License: Apache-2.0
Comment: converted from mediapipe 0.10.14's selfie_segmentation.tflite by
 models/selfie/convert_selfie.py.

License: LGPL-2.1+
 On Debian systems the full text of the GNU Lesser General Public License version 2.1 is in
 /usr/share/common-licenses/LGPL-2.1.

License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
printf '%s\n\n -- Backdrop <backdrop@localhost>  %s\n' \
  "$package ($version) unstable; urgency=medium

  * Package built from the source tree by scripts/package-deb.sh." \
  "$(date -R -u -d "@$SOURCE_DATE_EPOCH")" | gzip -9n > "$doc/changelog.gz"

# Shared-library dependencies of the three binaries (dpkg-shlibdeps reads debian/control).
mkdir -p "$work/src/debian"
printf 'Source: backdrop\n\nPackage: %s\nArchitecture: any\n' "$package" > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$stage/usr/bin/backdrop" \
  -e"$stage/usr/lib/$triplet/gstreamer-1.0/libgstbackdrop.so" \
  -e"$stage/usr/lib/$triplet/backdrop/libbackdrop-torch.so" 2>"$work/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p') \
  || { cat "$work/shlibdeps.log" >&2; exit 70; }
[ -n "$shlibs" ] || { echo "package-deb.sh: dpkg-shlibdeps found no dependencies" >&2; cat "$work/shlibdeps.log" >&2; exit 70; }
# Elements the pipelines need at run time, which no linker sees: decodebin, videoconvert,
# compositor, opusenc (base); vp9enc, qtmux, mp4mux, multifilesink, pngenc (good).
depends="$shlibs, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good"
# Nice to have: x264enc (ugly) for MP4, ProRes (libav), vp9alphadecodebin (bad), the tools,
# and an optimised BLAS (libtorch is ~15x faster on matrix products with OpenBLAS).
recommends="gstreamer1.0-tools, gstreamer1.0-plugins-bad, gstreamer1.0-plugins-ugly, gstreamer1.0-libav, libopenblas0-pthread"

size=$(du -sk "$stage" | cut -f1)
install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: Backdrop <backdrop@localhost>
Installed-Size: $size
Depends: $depends
Recommends: $recommends
Section: video
Priority: optional
Description: AI video background removal for GStreamer
 The GStreamer plugin "backdrop": birefnetmatte removes or replaces the background of video with
 a matting network (BiRefNet weights or TorchScript models, through libtorch), vp9alphaenc and
 webmalphamux write transparent VP9 WebM, alphaview shows alpha where players have none. The backdrop command composes files (transparent WebM,
 ProRes 4444 with alpha, PNG sequences, H.264 composites) and cameras, with the offline selfie
 model as its default.
EOF
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$outdir/${package}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
