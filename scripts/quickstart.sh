#!/usr/bin/env bash
# Installs the dependencies, builds, prepares the default dataset (the Brown corpus) when it is
# missing, shows the memory plan of the seed case, and trains on the corpus: GPT-2 124M with
# --micro-batch auto where a GPU is present, else a small model on the CPU backend. Extra
# arguments go to the training command (e.g. --steps 50).
#   scripts/quickstart.sh [train_gpt2 flags]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/install_deps.sh
data/fetch_tokenizer.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$(nproc)"
data/fetch_corpus.sh --prepro "$BUILD_DIR/prepro"

echo; echo "== The seed case: GPT-2 124M at batch 64x1024 on a 12 GB card (dry run, no GPU needed)"
"$BUILD_DIR/train_gpt2" --dry-run --model d12 --micro-batch 64 --gpu rtx3060-12gb || true

mkdir -p runs
DATA=(--train-data "data/brown/train_*.bin" --val-data "data/brown/val_*.bin" --log runs/quickstart.jsonl)
rm -f runs/quickstart.jsonl
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo; echo "== Training GPT-2 124M on the Brown corpus (GPU, auto-fit to the card's memory)"
  "$BUILD_DIR/train_gpt2" --device cuda --model d12 --micro-batch auto --total-batch-tokens 65536 \
    --steps 100 --lr 6e-4 --warmup 10 --val-every 25 "${DATA[@]}" "$@"
else
  echo; echo "== Training a small GPT-2 (L=4, C=128) on the Brown corpus (CPU backend; no GPU found)"
  "$BUILD_DIR/train_gpt2" --device cpu --layers 4 --heads 4 --width 128 --seq-len 128 --micro-batch 8 \
    --steps 150 --lr 1.5e-3 --warmup 20 --val-every 50 --print-every 10 "${DATA[@]}" "$@"
fi
tools/plot runs/quickstart.jsonl -o runs/quickstart.png && echo "loss curve: runs/quickstart.png"
