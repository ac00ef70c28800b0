#!/usr/bin/env bash
# Installs every Debian 12 package Backdrop needs to build, test and run (needs root).
# The Swift toolchain (6.x) is expected on PATH already.
set -euo pipefail
packages=(
  # build
  pkg-config unzip cmake ninja-build libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libtorch-dev libvpx-dev
  # run and test
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav gstreamer1.0-plugins-ugly libopenblas0-pthread ffmpeg mkvtoolnix
  # transparent WebM in real browsers (tests)
  chromium firefox-esr
  # designed test models, BiRefNet fixtures, the selfie model conversion and its test photo
  python3-torch python3-pip python3-skimage
  # scale-out tests: a one-node Slurm (deploy/slurm/local-cluster.sh)
  slurmctld slurmd slurm-client munge
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The Kubernetes manifests' schema check (deploy/kubernetes): a validator that carries the
# Kubernetes schemas, so it runs offline.
python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
echo "installed: ${packages[*]} kubernetes-validate"
