#!/usr/bin/env bash
# The start-up lines reach a redirected stdout before step 1 ends: a run killed inside its first
# step (here a long validation after step 1, before the step's line) leaves them in its log.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 100 --steps 1 --val-batches 100000000)
"$BIN" "${TINY[@]}" >"$TMP/out" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
  grep -q "^backend " "$TMP/out" && break
  kill -0 "$pid" 2>/dev/null || fail "the run ended: $(cat "$TMP/out")"
  sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=""
! grep -q "^step" "$TMP/out" || fail "step 1 ended; the test needs a run killed inside it"
for line in "^model " "^run " "^memory " "^data " "^backend "; do
  grep -q "$line" "$TMP/out" || fail "the start-up line '$line' was not flushed during step 1: '$(cat "$TMP/out")'"
done
echo "ok"
