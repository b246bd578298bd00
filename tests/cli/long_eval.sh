#!/usr/bin/env bash
# Long evaluations are visible or refused up front:
#  1. a validation of 100,000,000 batches says within seconds that it is long and how long, then
#     reports progress (the run is stopped once it has said so);
#  2. a training-time sample longer than the cap is refused before the first step, naming
#     --sample-tokens (the sample tool is for long texts).
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 100)

"$BIN" "${TINY[@]}" --steps 1 --val-batches 100000000 >"$TMP/out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  grep -q "^val .*long validation" "$TMP/out" && break
  kill -0 "$pid" 2>/dev/null || fail "the run ended: $(cat "$TMP/out")"
  sleep 0.1
done
grep -q "^val .*long validation: 100000000 batches" "$TMP/out" ||
  fail "no word of the long validation after 30 s: $(tail -3 "$TMP/out")"
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=""

out=$(timeout 60 "$BIN" "${TINY[@]}" --steps 2 --sample-every 1 --sample-tokens 2000000000 2>"$TMP/err")
rc=$?
[ "$rc" -eq 1 ] || fail "--sample-tokens 2000000000 should exit 1, got $rc: $(cat "$TMP/err")"
grep -q -- "--sample-tokens.*sample tool" "$TMP/err" || fail "the error should name --sample-tokens: $(cat "$TMP/err")"
! grep -q "^step" <<<"$out" || fail "the run trained before refusing --sample-tokens"
echo "ok"
