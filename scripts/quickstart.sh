#!/usr/bin/env bash
# The first run on a new machine: installs the dependencies, builds what this machine can run,
# prepares the default dataset (the Brown corpus) when it is missing, shows the memory plan of the
# seed case, and trains on the corpus: GPT-2 124M with --micro-batch auto where a GPU is present,
# else a small model on the CPU backend. The loss curve goes to runs/quickstart.png.
#   scripts/quickstart.sh [train_gpt2 flags]       (extra flags go to the training run, e.g. --steps 50)
#
# What it builds, in build/ (BUILD_DIR), only the programs (train_gpt2, prepro, sample, convert,
# tokenize), not the tests:
#   no GPU (nvidia-smi finds none)  the CPU build: the CPU backend and the dry run (which needs no CUDA)
#   a GPU                           the CPU backend and the CUDA backend for that GPU's architecture
#                                   only (nvidia-smi --query-gpu=compute_cap)
# Everything (every CUDA architecture, the tests, the benchmarks):
#   cmake -S . -B build -DGPT2_WITH_CUDA=ON && cmake --build build -j
# (CMakeLists.txt's default architectures: 80;86;89;90, plus 100;120 with CUDA 12.8 or later;
# scripts/test.sh builds and runs the tests, for one architecture of each generation.)
# Each phase prints one line; the configure and build output go to logs/quickstart_build.log, whose
# last lines are shown when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
LOG=logs/quickstart_build.log
start=$(date +%s)

scripts/install_deps.sh
data/fetch_tokenizer.sh

CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  HAVE_GPU=1
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
  [[ "$ARCH" =~ ^[0-9]+$ ]] || { echo "quickstart: nvidia-smi gave no compute capability ('$ARCH')" >&2; exit 1; }
  CMAKE_ARGS+=(-DGPT2_WITH_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCH")
  WHAT="the CPU and CUDA backends for this GPU (sm_$ARCH)"
else
  HAVE_GPU=0
  CMAKE_ARGS+=(-DGPT2_WITH_CUDA=OFF)
  WHAT="the CPU build (no GPU found; the dry run needs none)"
fi

mkdir -p logs
: >"$LOG"
. scripts/lib/quiet_phase.sh
phase() { quiet_phase quickstart "$LOG" 30 "$@"; }
phase "configuring $WHAT in $BUILD_DIR/ (output: $LOG)" cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}"
phase "building train_gpt2, prepro, sample, convert and tokenize on $(nproc) cores" \
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target train_gpt2 prepro sample convert tokenize
data/fetch_corpus.sh --prepro "$BUILD_DIR/prepro"

echo; echo "== The seed case: GPT-2 124M at batch 64x1024 on a 12 GB card (dry run, no GPU needed)"
"$BUILD_DIR/train_gpt2" --dry-run --model d12 --micro-batch 64 --gpu rtx3060-12gb || true

mkdir -p runs
DATA=(--train-data "data/brown/train_*.bin" --val-data "data/brown/val_*.bin" --log runs/quickstart.jsonl)
rm -f runs/quickstart.jsonl
if [ "$HAVE_GPU" = 1 ]; then
  echo; echo "== Training GPT-2 124M on the Brown corpus (GPU, auto-fit to the card's memory)"
  "$BUILD_DIR/train_gpt2" --device cuda --model d12 --micro-batch auto --total-batch-tokens 65536 \
    --steps 100 --lr 6e-4 --warmup 10 --val-every 25 "${DATA[@]}" "$@"
else
  echo; echo "== Training a small GPT-2 (L=4, C=128) on the Brown corpus (CPU backend; no GPU found)"
  "$BUILD_DIR/train_gpt2" --device cpu --layers 4 --heads 4 --width 128 --seq-len 128 --micro-batch 8 \
    --steps 150 --lr 1.5e-3 --warmup 20 --val-every 50 --print-every 10 "${DATA[@]}" "$@"
fi
tools/plot runs/quickstart.jsonl -o runs/quickstart.png
echo "quickstart: done in $(($(date +%s) - start)) s; loss curve: runs/quickstart.png"
