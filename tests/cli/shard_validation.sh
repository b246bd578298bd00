#!/usr/bin/env bash
# train_gpt2 checks every token of every data file before step 1: a token outside the vocab
# near the end of a shard (train or val, first or later file) is refused with the file and the
# token's byte offset, exit 1, and no step is run. A shard too short for one batch names the
# real flags (--micro-batch, --seq-len).
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# shard PATH N [BAD_INDEX]: an llm.c shard of N tokens below 256, with token 300 at BAD_INDEX.
shard() {
  python3 - "$@" <<'PY'
import array, random, sys
path, n = sys.argv[1], int(sys.argv[2])
raw = bytearray(2 * n)
raw[0::2] = random.Random(n).randbytes(n)  # little-endian uint16 tokens below 256
t = array.array('H')
t.frombytes(bytes(raw))
if len(sys.argv) > 3:
    t[int(sys.argv[3])] = 300
h = array.array('i', [0] * 256)
h[0], h[1], h[2] = 20240520, 1, n
with open(path, 'wb') as f:
    f.write(h.tobytes())
    f.write(t.tobytes())
PY
}
N=$((32 * 5000 + 1))
BAD=$((N - 4))
OFFSET=$((1024 + 2 * BAD))
mkdir -p "$TMP/one" "$TMP/two" "$TMP/val"
shard "$TMP/one/train_000000.bin" $N $BAD
shard "$TMP/two/train_000000.bin" $N
shard "$TMP/two/train_000001.bin" $N $BAD
shard "$TMP/val/val_000000.bin" $N $BAD
shard "$TMP/good.bin" $N
shard "$TMP/short.bin" 50
MODEL=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --micro-batch 2 --seq-len 32 --steps 3)

# The clean file trains (so the checks below are not passing for another reason).
out=$("$BIN" "${MODEL[@]}" --train-data "$TMP/good.bin" 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "^step  *1/3" <<<"$out" || fail "clean shard: rc=$rc $out"

check_refused() {  # NAME FILE ARGS...
  local name=$1 file=$2
  shift 2
  out=$("$BIN" "${MODEL[@]}" "$@" 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "$name: expected exit 1, got $rc: $out"
  grep -q "^step" <<<"$out" && fail "$name: a step ran before the bad token was found: $out"
  grep -q "$file: token 300 at byte offset $OFFSET (token index $BAD) is not below the vocab size 256" <<<"$out" ||
    fail "$name: the message should name the file and the offset: $out"
}
check_refused "one shard" "$TMP/one/train_000000.bin" --train-data "$TMP/one/train_*.bin"
check_refused "second shard" "$TMP/two/train_000001.bin" --train-data "$TMP/two/train_*.bin"
check_refused "val shard" "$TMP/val/val_000000.bin" --train-data "$TMP/good.bin" --val-data "$TMP/val/val_*.bin"

# Too short for one batch: the hint names train_gpt2's real flags.
out=$("$BIN" "${MODEL[@]}" --train-data "$TMP/short.bin" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "short shard: expected exit 1, got $rc: $out"
grep -q "$TMP/short.bin: holds 50 tokens, fewer than one batch needs" <<<"$out" || fail "short shard: $out"
grep -q -- "use a smaller --micro-batch or --seq-len" <<<"$out" || fail "short shard: no real flags: $out"
grep -q -- "--batch-size" <<<"$out" && fail "short shard: names --batch-size, which train_gpt2 does not have"
"$BIN" --help | grep -q -- "--micro-batch" || fail "train_gpt2 --help has no --micro-batch"
echo "shard validation: ok"
