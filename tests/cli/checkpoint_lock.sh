#!/usr/bin/env bash
# One run at a time per checkpoint directory: while a run uses --checkpoint-dir, a second run on
# it is refused at once, naming the first run's process id; once the first run is gone (even
# killed with SIGKILL, its lock file left behind) the directory is free again.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--lr-schedule constant)

"$BIN" "${TINY[@]}" --steps 100000 --print-every 1 --checkpoint-dir "$TMP/ck" >"$TMP/first.out" 2>&1 &
BG_PID=$!
wait_for "^step" "$TMP/first.out"

out=$(timeout 60 "$BIN" "${TINY[@]}" --steps 1 --print-every 1 --checkpoint-dir "$TMP/ck" 2>"$TMP/err")
rc=$?
[ "$rc" -eq 1 ] || fail "a second run on a directory in use should exit 1, got $rc: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "one error line expected: $(cat "$TMP/err")"
grep -q -- "--checkpoint-dir.*in use by process $BG_PID" "$TMP/err" ||
  fail "the error should name --checkpoint-dir and process $BG_PID: $(cat "$TMP/err")"
! grep -q "^step" <<<"$out" || fail "the second run trained"
kill -0 "$BG_PID" 2>/dev/null || fail "the first run died"

stop_background
[ -f "$TMP/ck/lock" ] || fail "no lock file was left to test a stale lock with"
"$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/ck" >"$TMP/third.out" 2>&1 ||
  fail "the directory of a killed run should be free: $(cat "$TMP/third.out")"
[ "$(cat "$TMP/ck/latest")" = "2" ] || fail "the run after the killed one did not checkpoint"
echo "ok"
