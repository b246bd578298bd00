#!/usr/bin/env bash
# Builds the project and runs the whole test suite (CPU tests always; GPU tests run where a GPU
# is present and report themselves as skipped otherwise), then a short fuzzing smoke run of the
# shard reader and the tokenizer. This is the README's test command and what CI runs.
#   scripts/test.sh [extra ctest args]
# Environment: BUILD_DIR (default build), JOBS (default: all cores), GPT2_SKIP_DEPS=1 to skip
# the package install step, FUZZ_SECONDS (default 20 per target; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

if [ "${GPT2_SKIP_DEPS:-0}" != 1 ]; then scripts/install_deps.sh; fi
# GPT-2's tokenizer files (checked by sha256), for the tokenizer's reference tests.
data/fetch_tokenizer.sh

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$JOBS"
# The Brown corpus, prepared with the prepro just built (does nothing when already complete).
data/fetch_corpus.sh --prepro "$BUILD_DIR/prepro"

# The PyTorch reference tests must run for real here, not skip.
export GPT2_REQUIRE_TORCH=${GPT2_REQUIRE_TORCH:-1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"; fi
