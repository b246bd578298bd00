#!/usr/bin/env bash
# Installs every Debian package that the build, the tests, the fuzzers and the SIMT layer need.
# Used by scripts/quickstart.sh, scripts/test.sh and CI. Safe to run again: it installs only what
# is missing.
#   scripts/install_deps.sh
# It prints one line per phase; apt's full output goes to a log file (GPT2_DEPS_LOG, default
# logs/install_deps.log in the checkout), whose last lines are shown when a phase fails.
#
# What needs what (CMake stops with the package's name when one is missing):
#   build-essential cmake pkg-config        the compilers, CMake, pkg-config (PCRE2)
#   catch2                                  the unit tests (tests/CMakeLists.txt)
#   nlohmann-json3-dev libcli11-dev         JSON files and the command lines
#   libpcre2-dev                            the tokenizer's pretokenizer regex
#   libomp-dev                              OpenMP for clang (the fuzzers); g++ brings libgomp
#   libopenmpi-dev openmpi-bin              multi-process runs and their tests (mpirun)
#   libboost-context-dev                    the SIMT layer's fibers (tests/simt, preset simt)
#   clang libclang-rt-14-dev                libFuzzer and its sanitizer runtimes (tests/fuzz)
#   python3 python3-torch python3-numpy     the PyTorch reference tests (/usr/bin/python3)
#   python3-matplotlib                      tools/plot.py (loss curves, memory plans)
#   nodejs npm                              GPT-2's tokenizer files and the reference JS encoder
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG="${GPT2_DEPS_LOG:-$ROOT/logs/install_deps.log}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config
  catch2 nlohmann-json3-dev libcli11-dev libpcre2-dev libomp-dev
  libopenmpi-dev openmpi-bin
  libboost-context-dev
  clang libclang-rt-14-dev
  python3 python3-torch python3-numpy python3-matplotlib
  nodejs npm
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from a non-Debian Node.js install; accept any working npm.
if command -v npm >/dev/null 2>&1; then
  kept=()
  for p in "${missing[@]+"${missing[@]}"}"; do
    case "$p" in nodejs|npm) ;; *) kept+=("$p") ;; esac
  done
  missing=("${kept[@]+"${kept[@]}"}")
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PKGS[@]} packages present"
  exit 0
fi

mkdir -p "$(dirname "$LOG")"
: >"$LOG"
. "$ROOT/scripts/lib/quiet_phase.sh"
phase() { quiet_phase install_deps "$LOG" 25 "$@"; }
echo "install_deps: ${#missing[@]} package(s) missing: ${missing[*]} (full output: $LOG)"
phase "updating the package lists" $SUDO apt-get update
phase "installing ${#missing[@]} package(s)" \
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install_deps: done"
