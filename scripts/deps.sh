#!/usr/bin/env bash
# Install MIXL's Debian 12 build and test dependencies when any is missing.
# Quiet on success; idempotent (does nothing when everything is present).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libucx-dev ucx-utils
  libhdf5-dev hdf5-tools libyaml-dev libmsgpack-dev
  libcurl4-openssl-dev libjansson-dev libcmocka-dev libssl-dev
  etcd-server etcd-client
  openssl
  slurm-wlm munge
  iproute2 util-linux python3
  gnuplot-nox
  libmicrohttpd-dev prometheus
  python3-h5py python3-matplotlib
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "mixl: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "mixl: apt-get failed installing: ${missing[*]}" >&2
  exit 1
fi
rm -f "$log"
