#!/usr/bin/env bash
# Builds the project and runs the whole test suite (CPU tests always; GPU tests run where a GPU
# is present and report themselves as skipped otherwise), then the CUDA code on the CPU through
# the SIMT layer (the `simt` preset and ctest label), the kernel audit (the `audit` preset), then a
# short fuzzing smoke run of the loaders. This is the README's test command and what CI runs. The
# last line sums the ctest runs.
#   scripts/test.sh [extra ctest args]
# Environment: BUILD_DIR (default build), JOBS (default: all cores), GPT2_SKIP_DEPS=1 to skip
# the package install step, GPT2_SKIP_SIMT=1 to skip the SIMT and audit builds and their tests, FUZZ_SECONDS
# (default 20 per target; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

if [ "${GPT2_SKIP_DEPS:-0}" != 1 ]; then scripts/install_deps.sh; fi
# GPT-2's tokenizer files (checked by sha256), for the tokenizer's reference tests.
data/fetch_tokenizer.sh

# CUDA where nvcc is found, for one architecture of each generation:
# Ampere (sm_80), Hopper (sm_90) and, with CUDA 12.8 or later, Blackwell (sm_100, sm_120). The
# default build (CMakeLists.txt) adds sm_86 and sm_89, which compile the same code; leaving them
# out here keeps the whole suite under 30 minutes on 2 cores. GPT2_CUDA_ARCHITECTURES overrides
# the list. It is passed explicitly, so a build folder that scripts/quickstart.sh configured for
# one GPU, or for none, is tested in full too.
ARCHS="80;90"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
NVCC_ARCHS=$([ -x "$NVCC" ] && "$NVCC" --list-gpu-arch 2>/dev/null || true)
if grep -q "compute_120" <<<"$NVCC_ARCHS"; then ARCHS="80;90;100;120"; fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DGPT2_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${GPT2_CUDA_ARCHITECTURES:-$ARCHS}"
cmake --build "$BUILD_DIR" -j "$JOBS"
# The Brown corpus, prepared with the prepro just built (does nothing when already complete).
data/fetch_corpus.sh --prepro "$BUILD_DIR/prepro"

# The PyTorch reference tests must run for real here, not skip.
export GPT2_REQUIRE_TORCH=${GPT2_REQUIRE_TORCH:-1}
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
status=0

# ctest shows a skipped test as "***Skipped" only: print each one with the first line of its
# output, which is the reason (e.g. "SKIPPED test_backend_ops: no CUDA device (...)").
print_skip_reasons() {
  local build=$1 log=$2 last="$1/Testing/Temporary/LastTest.log" name reason
  [ -f "$last" ] || return 0
  { grep -oE "[0-9]+ - [^ ]+ \(Skipped\)" "$log" || true; } | awk '{print $3}' | while read -r name; do
    reason=$(awk -v t="\"$name\" start time" 'index($0, t) == 1 {f = 1; next}
                                               f && /^Output:/ {getline; getline; print; exit}' "$last")
    echo "skipped: $name: ${reason:-(no output)}"
  done
}

ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@" 2>&1 | tee "$LOGS/main.log" || status=1
print_skip_reasons "$BUILD_DIR" "$LOGS/main.log"

# The CUDA kernels, GPU tests and layer self-tests on the CPU (AddressSanitizer + UBSan).
if [ "${GPT2_SKIP_SIMT:-0}" != 1 ]; then
  cmake --preset simt
  cmake --build --preset simt -j "$JOBS"
  ctest --preset simt -j "$JOBS" "$@" 2>&1 | tee "$LOGS/simt.log" || status=1
  print_skip_reasons build-simt "$LOGS/simt.log"
fi

# The kernel audit (tests/simt/audit): access-counting self-tests, and the checked-in report
# kernels/cuda/kernel_audit.json compared with a fresh run of every kernel (clang build).
if [ "${GPT2_SKIP_SIMT:-0}" != 1 ]; then
  cmake --preset audit
  cmake --build --preset audit -j "$JOBS"
  ctest --preset audit -j "$JOBS" "$@" 2>&1 | tee "$LOGS/audit.log" || status=1
  print_skip_reasons build-audit "$LOGS/audit.log"
fi

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" || status=1; fi

# One closing line over the ctest runs: "total: N passed, N failed, N skipped".
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
