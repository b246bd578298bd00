#!/usr/bin/env bash
# `train_gpt2 --version` reports the features the sources were compiled with (CUDA, NCCL, MPI:
# each answered by the source file that uses it). They must match what CMake found, as written to
# BUILD/gpt2_build_config.txt: a compile definition that does not reach a source that relies on
# it (GPT2_HAVE_NCCL in engine/backend/comm.cpp, say) fails here.
set -u
BUILD=$1
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$BUILD/gpt2_build_config.txt" ] || fail "$BUILD/gpt2_build_config.txt is missing (CMake writes it)"
want=$(tr '[:upper:]' '[:lower:]' <"$BUILD/gpt2_build_config.txt")
got=$("$BUILD/train_gpt2" --version) || fail "train_gpt2 --version exited non-zero"
echo "cmake:   $want"
echo "version: $got"
case "$got" in gpt2engine\ *) ;; *) fail "--version does not start with 'gpt2engine': $got" ;; esac
for feature in cuda nccl mpi; do
  w=$(echo "$want" | grep -o "$feature=[a-z]*" | cut -d= -f2)
  g=$(echo "$got" | tr '[:upper:]' '[:lower:]' | grep -o "$feature=[a-z]*" | cut -d= -f2)
  [ -n "$w" ] || fail "no $feature in gpt2_build_config.txt"
  [ "$w" = "$g" ] || fail "CMake found ${feature^^}=$w but train_gpt2 was compiled with ${feature^^}=${g:-nothing}"
done
echo "build info ok"
