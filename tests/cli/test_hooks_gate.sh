#!/usr/bin/env bash
# The crash-test hook (GPT2_TEST_CHECKPOINT_PAUSE, which makes the checkpoint writer sleep forever)
# is inert unless GPT2_TEST_HOOKS=1 is also set: a user's stray variable never hangs a run.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 100 --steps 3)
GPT2_TEST_CHECKPOINT_PAUSE=2 timeout 60 "$BIN" "${TINY[@]}" --checkpoint-dir "$TMP/ck" --checkpoint-every 1 \
  >"$TMP/out" 2>&1
rc=$?
[ "$rc" -ne 124 ] || fail "GPT2_TEST_CHECKPOINT_PAUSE alone hung the run"
[ "$rc" -eq 0 ] || fail "the run failed ($rc): $(cat "$TMP/out")"
! grep -q "paused" "$TMP/out" || fail "the hook ran without GPT2_TEST_HOOKS=1"
[ "$(cat "$TMP/ck/latest")" = "3" ] || fail "the run did not finish its checkpoints"
echo "ok"
