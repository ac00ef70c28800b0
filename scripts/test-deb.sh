#!/usr/bin/env bash
# Installs a gstreamer1.0-backdrop .deb into a fresh Debian 12 root (debootstrap, minbase) and uses
# it there as a user would, with no Backdrop or GStreamer environment variable:
#   1. gst-inspect-1.0 birefnetmatte (and the plugin scanner must not load libtorch),
#   2. gst-launch-1.0 videotestsrc → vp9alphaenc → webmalphamux: a transparent WebM,
#   3. backdrop compose with the default model (selfie): a generated clip with sound, and, when the
#      host can make it (python3-skimage), three frames of the public-domain astronaut photo as an
#      image-sequence input, where selfie must find the person.
# Needs root, debootstrap and network access to a Debian mirror (apt resolves the package's
# dependencies in the root).
#
#   scripts/test-deb.sh PACKAGE.deb OUTDIR
#
# OUTDIR receives inspect.txt, testsrc.webm, clip.webm, composed.webm, compose.txt,
# scanner-libs.txt, docs.txt and astronaut.webm for the caller to check. Caches, kept between runs on the same machine (under
# $BACKDROP_CACHE, default /var/cache/backdrop): the debootstrap package tarball, a pristine
# unpacked root (a tar of it; every run starts from a fresh copy) and apt's downloaded packages.
# First run ≈ 5-8 minutes (download); later runs ≈ 1-2 minutes.
set -euo pipefail
deb=$(realpath "$1")
outdir=$(mkdir -p "$2" && realpath "$2")
cache=${BACKDROP_CACHE:-/var/cache/backdrop}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
mkdir -p "$cache/apt-archives/partial"
packages="$cache/debootstrap-$suite-minbase.tgz"
pristine="$cache/root-$suite-minbase.tar"

root=$(mktemp -d /var/tmp/backdrop-deb-root.XXXXXX)
cleanup() {
  for mount in "$root/var/cache/apt/archives" "$root/dev" "$root/proc"; do
    mountpoint -q "$mount" 2>/dev/null && umount -l "$mount"
  done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

step() { echo "== $(date +%T) $*" >&2; }
if [ ! -f "$pristine" ]; then
  if [ ! -f "$packages" ]; then
    step "downloading the $suite minbase packages (cached in $packages)"
    debootstrap --variant=minbase --make-tarball="$packages.tmp" "$suite" "$root/make" "$mirror" >&2
    mv "$packages.tmp" "$packages"
    rm -rf "$root/make"
  fi
  step "debootstrap $suite (cached as $pristine)"
  debootstrap --variant=minbase --unpack-tarball="$packages" "$suite" "$root/base" "$mirror" >&2
  tar -C "$root/base" -cf "$pristine.tmp" .
  mv "$pristine.tmp" "$pristine"
  rm -rf --one-file-system "$root/base"
fi
step "fresh root from $pristine"
tar -C "$root" -xf "$pristine"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$root/tmp/"

# Everything inside runs with a clean environment: no GST_PLUGIN_PATH, no BACKDROP_*.
inside() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
step "apt-get install ./$(basename "$deb") (and gstreamer1.0-tools for the checks)"
inside apt-get update -qq >&2
inside env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$deb")" gstreamer1.0-tools >&2

step "gst-inspect-1.0 birefnetmatte"
inside gst-inspect-1.0 birefnetmatte > "$outdir/inspect.txt"
# The plugin scanner (a fresh registry) must not map libtorch: the engine is opened at start only.
inside sh -c 'rm -rf /root/.cache/gstreamer-1.0; LD_DEBUG=libs gst-inspect-1.0 backdrop 2>&1 >/dev/null' \
  | grep -o 'calling init: [^ ]*' | sort -u > "$outdir/scanner-libs.txt" || true

step "gst-launch-1.0: a transparent WebM"
inside gst-launch-1.0 -q videotestsrc num-buffers=30 pattern=ball background-color=0x00000000 \
  ! video/x-raw,format=AYUV,width=320,height=240,framerate=30/1 ! videoconvert ! video/x-raw,format=A420 \
  ! vp9alphaenc ! webmalphamux ! filesink location=/tmp/testsrc.webm >&2
cp "$root/tmp/testsrc.webm" "$outdir/"

step "backdrop compose with the default model"
inside gst-launch-1.0 -q videotestsrc num-buffers=15 pattern=smpte ! video/x-raw,width=256,height=144,framerate=15/1 \
  ! videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location=/tmp/clip.webm >&2
inside backdrop compose /tmp/clip.webm -o /tmp/composed.webm > "$outdir/compose.txt" 2>&1
cp "$root/tmp/clip.webm" "$root/tmp/composed.webm" "$outdir/"
inside backdrop models list >> "$outdir/compose.txt" 2>&1
here=$(cd "$(dirname "$0")/.." && pwd)
if /usr/bin/python3 "$here/models/selfie/make_astronaut_input.py" "$root/tmp/astronaut.png" 2>/dev/null; then
  mkdir -p "$root/tmp/astronaut"
  for i in 00000 00001 00002; do cp "$root/tmp/astronaut.png" "$root/tmp/astronaut/$i.png"; done
  inside backdrop compose '/tmp/astronaut/%05d.png' -o /tmp/astronaut.webm --fps 5 >> "$outdir/compose.txt" 2>&1
  cp "$root/tmp/astronaut.webm" "$outdir/"
fi
inside sh -c 'ls /usr/share/man/man1/backdrop.1.gz /usr/share/man/man1/backdrop-compose.1.gz /usr/share/bash-completion/completions/backdrop /usr/share/zsh/vendor-completions/_backdrop /usr/share/fish/vendor_completions.d/backdrop.fish' \
  > "$outdir/docs.txt" 2>&1 || true
step "done"
