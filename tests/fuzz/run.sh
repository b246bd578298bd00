#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a while (CI: a smoke run).
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR]     (defaults: 20, build-fuzz)
#
# Needs clang and libclang-rt-14-dev (scripts/install_deps.sh), and the tokenizer files
# (data/fetch_tokenizer.sh). Exits non-zero when a target finds a crash; the crashing input is
# left in BUILD_DIR/artifacts/.
set -euo pipefail
SECONDS_PER_TARGET="${1:-20}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${2:-$ROOT/build-fuzz}"
CXX_BIN="${CXX_FUZZ:-clang++}"
command -v "$CXX_BIN" >/dev/null 2>&1 || { echo "fuzz: $CXX_BIN not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
[ -f "$ROOT/data/tokenizer/encoder.json" ] || { echo "fuzz: tokenizer files missing: run data/fetch_tokenizer.sh" >&2; exit 1; }

cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

# Seed corpora: a good llm.c shard, a nanoGPT file, a small tokenizer .bin, and text.
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"; mkdir -p "$SEEDS/shard" "$SEEDS/text" "$BUILD/artifacts"
python3 - "$SEEDS" "$ROOT" <<'PY'
import os, struct, sys, glob
seeds, root = sys.argv[1], sys.argv[2]
toks = struct.pack("<20H", *range(100, 120))
hdr = struct.pack("<256i", 20240520, 1, 20, *([0] * 253))
for sel, body in ((0, hdr + toks), (1, hdr + toks), (2, toks), (0, toks)):
    open(f"{seeds}/shard/s{sel}_{len(body)}", "wb").write(bytes([sel]) + body)
vocab = [bytes([b]) for b in range(256)] + [b"<|endoftext|>"]
tok = struct.pack("<256I", 20240328, 2, len(vocab), 256, *([0] * 252))
tok += b"".join(bytes([len(t)]) + t for t in vocab)
open(f"{seeds}/shard/tokbin", "wb").write(bytes([3]) + tok)
texts = ["Hello world, it's 2024!", "caf\u00e9 \u4f60\u597d \U0001F600", "  \n\n  x"]
for i, t in enumerate(texts):
    open(f"{seeds}/text/t{i}", "wb").write(t.encode())
open(f"{seeds}/text/invalid", "wb").write(b"ok \xc0\xaf \xed\xa0\x80 \xff end\xe4")
for p in sorted(glob.glob(f"{root}/data/brown/text/*.txt"))[:5]:
    open(f"{seeds}/text/" + os.path.basename(p), "wb").write(open(p, "rb").read()[:2000])
PY

status=0
run() {
  local name=$1 corpus=$2
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s"
  if ! GPT2_TOKENIZER_DIR="$ROOT/data/tokenizer" "$BUILD/$name" -max_total_time="$SECONDS_PER_TARGET" \
      -max_len=8192 -artifact_prefix="$BUILD/artifacts/$name-" -print_final_stats=1 "$corpus" \
      >"$BUILD/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; see $BUILD/$name.log and $BUILD/artifacts/" >&2
    tail -30 "$BUILD/$name.log" >&2
    status=1
  else
    grep -E "stat::(number_of_executed_units|average_exec_per_sec)" "$BUILD/$name.log" | sed "s/^/  /" || true
  fi
}
run fuzz_shard "$SEEDS/shard"
run fuzz_tokenizer "$SEEDS/text"
exit $status
