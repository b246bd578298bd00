#!/usr/bin/env bash
# The crash-test hook (GPT2_TEST_CHECKPOINT_PAUSE, which makes the checkpoint writer sleep forever)
# is inert unless GPT2_TEST_HOOKS=1 is also set: a user's stray variable never hangs a run.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100 --steps 3)
GPT2_TEST_CHECKPOINT_PAUSE=2 timeout 60 "$BIN" "${TINY[@]}" --checkpoint-dir "$TMP/ck" --checkpoint-every 1 \
  >"$TMP/out" 2>&1
rc=$?
[ "$rc" -ne 124 ] || fail "GPT2_TEST_CHECKPOINT_PAUSE alone hung the run"
[ "$rc" -eq 0 ] || fail "the run failed ($rc): $(cat "$TMP/out")"
! grep -q "paused" "$TMP/out" || fail "the hook ran without GPT2_TEST_HOOKS=1"
[ "$(cat "$TMP/ck/latest")" = "3" ] || fail "the run did not finish its checkpoints"
echo "ok"
