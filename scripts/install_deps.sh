#!/usr/bin/env bash
# Installs the build and test dependencies from Debian packages. Used by the README and by CI.
#   scripts/install_deps.sh          build + test dependencies (includes python3-torch for the
#                                    PyTorch reference tests and OpenMPI for multi-process runs)
# Safe to run again; apt-get skips what is already installed.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config
  catch2 nlohmann-json3-dev libcli11-dev libpcre2-dev libomp-dev
  libopenmpi-dev openmpi-bin
  python3-torch python3-numpy python3-matplotlib
  nodejs npm
  clang libclang-rt-14-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from a non-Debian Node.js install; accept any working npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}"); missing=("${missing[@]/nodejs}")
fi
clean=()
for p in "${missing[@]}"; do [ -n "$p" ] && clean+=("$p"); done
if [ ${#clean[@]} -gt 0 ]; then
  echo "install_deps: installing ${clean[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${clean[@]}"
else
  echo "install_deps: all packages present"
fi
