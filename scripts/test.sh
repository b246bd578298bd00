#!/usr/bin/env bash
# Builds the project and runs the whole test suite (CPU tests always; GPU tests run where a GPU
# is present and report themselves as skipped otherwise), then the CUDA code on the CPU through
# the SIMT layer (the `simt` preset and ctest label), then a short fuzzing smoke run of the
# loaders. This is the README's test command and what CI runs. The last line sums both ctest runs.
#   scripts/test.sh [extra ctest args]
# Environment: BUILD_DIR (default build), JOBS (default: all cores), GPT2_SKIP_DEPS=1 to skip
# the package install step, GPT2_SKIP_SIMT=1 to skip the SIMT build and label, FUZZ_SECONDS
# (default 20 per target; 0 skips fuzzing).
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
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@" 2>&1 | tee "$LOGS/main.log" || status=1

# The CUDA kernels, GPU tests and layer self-tests on the CPU (AddressSanitizer + UBSan).
if [ "${GPT2_SKIP_SIMT:-0}" != 1 ]; then
  cmake --preset simt
  cmake --build --preset simt -j "$JOBS"
  ctest --preset simt -j "$JOBS" "$@" 2>&1 | tee "$LOGS/simt.log" || status=1
fi

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" || status=1; fi

# One closing line over both ctest runs: "total: N passed, N failed, N skipped".
passed=0 failed=0 skipped=0
for log in "$LOGS"/*.log; do
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1 || true)
  [ -n "$line" ] || { status=1; continue; }
  f=$(sed -E 's/.*passed, ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  n=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
  s=$(grep -cE "\*\*\*Skipped|Not Run" "$log" || true)
  passed=$((passed + n - f - s)) failed=$((failed + f)) skipped=$((skipped + s))
done
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $status
