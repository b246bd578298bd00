#!/usr/bin/env bash
# Builds the project and runs the whole test suite (CPU tests always; GPU tests run where a GPU
# is present and report themselves as skipped otherwise). This is the README's test command and
# what CI runs.
#   scripts/test.sh [extra ctest args]
# Environment: BUILD_DIR (default build), JOBS (default: all cores), GPT2_SKIP_DEPS=1 to skip
# the package install step.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

if [ "${GPT2_SKIP_DEPS:-0}" != 1 ]; then scripts/install_deps.sh; fi
# Test data: GPT-2's tokenizer files (checked by sha256) and the Brown corpus.
for s in data/fetch_tokenizer.sh data/fetch_corpus.sh; do
  if [ -x "$s" ]; then "$s"; fi
done

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$JOBS"
# The PyTorch reference tests must run for real here, not skip.
export GPT2_REQUIRE_TORCH=${GPT2_REQUIRE_TORCH:-1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
