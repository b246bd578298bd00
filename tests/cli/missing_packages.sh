#!/usr/bin/env bash
# A required package that is missing stops the configure with one line naming the Debian package
# and scripts/install_deps.sh, not CMake's raw "Could not find a package configuration file".
# Each package is hidden from a fresh configure with -DCMAKE_DISABLE_FIND_PACKAGE_<Name>=ON (the
# nearest thing to a machine without it).
set -u
SRC=$2
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# expect_missing NAME DEBIAN_PACKAGE EXTRA_CMAKE_ARGS...
expect_missing() {
  local name=$1 package=$2
  shift 2
  local err rc
  cmake -S "$SRC" -B "$TMP/$name" -DGPT2_WITH_CUDA=OFF "-DCMAKE_DISABLE_FIND_PACKAGE_$name=ON" "$@" \
    >/dev/null 2>"$TMP/$name.err"
  rc=$?
  err=$(cat "$TMP/$name.err")
  [ "$rc" -ne 0 ] || fail "configure without $name should fail"
  grep -q "Could not find a package configuration file" <<<"$err" && fail "$name: CMake's raw error: $err"
  local line
  line=$(grep -F "install the Debian package $package" <<<"$err") || fail "$name: no line naming $package: $err"
  grep -qF "scripts/install_deps.sh" <<<"$line" || fail "$name: the line does not name scripts/install_deps.sh: $line"
  echo "ok: $name ->$line"
}

expect_missing Boost libboost-context-dev -DGPT2_SIMT=ON -DGPT2_BUILD_TESTS=OFF
expect_missing Catch2 catch2
expect_missing CLI11 libcli11-dev
expect_missing nlohmann_json nlohmann-json3-dev
echo "PASS"
