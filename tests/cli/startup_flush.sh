#!/usr/bin/env bash
# The start-up lines reach a redirected stdout before step 1 ends: a run killed inside its first
# step (here a long validation after step 1, before the step's line) leaves them in its log.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100)
"$BIN" "${TINY[@]}" --steps 1 --val-batches 100000000 >"$TMP/out" 2>&1 &
BG_PID=$!
wait_for "^backend " "$TMP/out" 15
stop_background
! grep -q "^step" "$TMP/out" || fail "step 1 ended; the test needs a run killed inside it"
for line in "^model " "^run " "^memory " "^data " "^backend "; do
  grep -q "$line" "$TMP/out" || fail "the start-up line '$line' was not flushed during step 1: '$(cat "$TMP/out")'"
done
echo "ok"
