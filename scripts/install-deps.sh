#!/usr/bin/env bash
# Installs every Debian 12 package Backdrop needs to build, test and run (needs root).
# The Swift toolchain (6.x) is expected on PATH already.
set -euo pipefail
packages=(
  # build
  pkg-config unzip cmake ninja-build ccache libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libtorch-dev libvpx-dev
  libdnnl-dev  # oneDNN's headers: the engine calls the oneDNN Debian's libtorch links (CPU convolutions)
  libopencv-dev  # DIS optical flow (temporal stage)
  # `backdrop serve`: its job table (SQLite), and curl and bc for its tests and benchmark
  libsqlite3-dev curl bc
  # the launcher linked with a static Swift runtime (scripts/install.sh, package-deb.sh): its
  # static FoundationNetworking links libcurl
  libcurl4-openssl-dev
  # run and test
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav gstreamer1.0-plugins-ugly libopenblas0-pthread ffmpeg mkvtoolnix
  # transparent WebM in real browsers (tests)
  chromium firefox-esr
  # designed test models, BiRefNet fixtures, the selfie model conversion and its test photo
  python3-torch python3-pip python3-skimage
  # synthetic clips and stills with ground truth (temporal and edge tests), real footage (vtest.avi)
  python3-numpy python3-pil opencv-doc
  # examples/python (PyGObject, NumPy) and the webm_mux fuzz target (fuzz/webm_mux_fuzz.py)
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  # the Debian package test: a fresh Debian 12 root
  debootstrap
  # scale-out tests: a one-node Slurm (deploy/slurm/local-cluster.sh)
  slurmctld slurmd slurm-client munge
)
export DEBIAN_FRONTEND=noninteractive
# The downloaded packages are kept where scripts/test-deb.sh's Debian root looks for them first
# (its apt cache), so installing our .deb there downloads none of libtorch, GStreamer and their
# dependencies again: a fresh CI machine fetches them once. (Debian's container images delete
# /var/cache/apt/archives after every install, so not there.)
archives="${BACKDROP_CACHE:-/var/cache/backdrop}/apt-archives"
mkdir -p "$archives/partial"
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dir::Cache::Archives="$archives" "${packages[@]}" >/dev/null
# The Kubernetes manifests' schema check (deploy/kubernetes): a validator that carries the
# Kubernetes schemas, so it runs offline.
/usr/bin/python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
echo "installed: ${packages[*]} kubernetes-validate"
