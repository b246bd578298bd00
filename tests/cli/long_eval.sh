#!/usr/bin/env bash
# Long evaluations are visible or refused up front:
#  1. a validation of 100,000,000 batches says within seconds that it is long and how long, then
#     reports progress (the run is stopped once it has said so);
#  2. a training-time sample longer than the cap is refused before the first step, naming
#     --sample-tokens (the sample tool is for long texts).
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100)

"$BIN" "${TINY[@]}" --steps 1 --val-batches 100000000 >"$TMP/out" 2>&1 &
BG_PID=$!
wait_for "^val .*long validation: 100000000 batches" "$TMP/out"
stop_background

out=$(timeout 60 "$BIN" "${TINY[@]}" --steps 2 --sample-every 1 --sample-tokens 2000000000 2>"$TMP/err")
rc=$?
[ "$rc" -eq 1 ] || fail "--sample-tokens 2000000000 should exit 1, got $rc: $(cat "$TMP/err")"
grep -q -- "--sample-tokens.*sample tool" "$TMP/err" || fail "the error should name --sample-tokens: $(cat "$TMP/err")"
! grep -q "^step" <<<"$out" || fail "the run trained before refusing --sample-tokens"
echo "ok"
