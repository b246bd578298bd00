#!/usr/bin/env bash
# Installs the dependencies, builds, prepares the default dataset (the Brown corpus) when it is
# missing, and runs the main job. Extra arguments go to train_gpt2.
#   scripts/quickstart.sh [train_gpt2 flags]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/install_deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$(nproc)"
for s in data/fetch_tokenizer.sh data/fetch_corpus.sh; do
  if [ -x "$s" ]; then "$s"; fi
done
# The memory plan for GPT-2 124M at the seed's batch on a 12 GB card, then auto-fit for it.
"$BUILD_DIR/train_gpt2" --dry-run --model d12 --micro-batch 64 --gpu rtx3060-12gb "$@" || true
"$BUILD_DIR/train_gpt2" --dry-run --model d12 --micro-batch auto --gpu rtx3060-12gb "$@"
