#!/usr/bin/env bash
# A checkpoint directory keeps the work of the run that owns it:
#  1. a run without --resume refuses a directory that holds a `latest` (one line naming
#     --checkpoint-dir and both ways out) and changes nothing in it;
#  2. --keep-checkpoints deletes only checkpoints of the run's own lineage;
#  3. a run refused by an output check creates no --checkpoint-dir;
#  4. --keep-checkpoints without a directory names --keep-checkpoints;
#  5. --eval-only --resume reads a read-only checkpoint directory.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100)
MNT=""
trap '[ -n "$MNT" ] && umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT
steps_in() { ls "$1" | sed -n 's/^model_0*\([0-9][0-9]*\)\.bin$/\1/p' | sort -n | tr '\n' ' '; }

# 1. A finished 12-step run, then a new run pointed at its directory without --resume.
"$BIN" "${TINY[@]}" --steps 12 --checkpoint-every 1 --checkpoint-dir "$TMP/ck" >/dev/null 2>&1 || fail "12-step run"
before=$(cd "$TMP/ck" && cksum model_* state_* latest)
"$BIN" "${TINY[@]}" --steps 3 --checkpoint-every 1 --keep-checkpoints 2 --checkpoint-dir "$TMP/ck" \
  >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] || fail "a new run in a used --checkpoint-dir should exit 1, got $rc: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "one error line expected: $(cat "$TMP/err")"
for word in --checkpoint-dir --resume "another --checkpoint-dir"; do
  grep -q -- "$word" "$TMP/err" || fail "the error should name $word: $(cat "$TMP/err")"
done
! grep -q "^step" "$TMP/out" || fail "the refused run trained"
[ "$(cd "$TMP/ck" && cksum model_* state_* latest)" = "$before" ] || fail "the refused run changed the checkpoints"

# 2. The same directory after its `latest` was lost: a new run keeps 2 of its own checkpoints and
# deletes none of the earlier run's steps 4-12.
rm "$TMP/ck/latest"
"$BIN" "${TINY[@]}" --steps 3 --checkpoint-every 1 --keep-checkpoints 2 --checkpoint-dir "$TMP/ck" >"$TMP/out" 2>&1 ||
  fail "a run in a directory without latest: $(cat "$TMP/out")"
[ "$(steps_in "$TMP/ck")" = "2 3 4 5 6 7 8 9 10 11 12 " ] ||
  fail "retention touched another run's checkpoints; left: $(steps_in "$TMP/ck")"
# Resuming a run prunes that run's own older steps.
"$BIN" "${TINY[@]}" --steps 6 --checkpoint-every 1 --keep-checkpoints 2 --checkpoint-dir "$TMP/r1" >/dev/null 2>&1 ||
  fail "run r1"
"$BIN" "${TINY[@]}" --steps 9 --checkpoint-every 1 --keep-checkpoints 2 --checkpoint-dir "$TMP/r1" --resume \
  >"$TMP/out" 2>&1 || fail "resumed r1: $(cat "$TMP/out")"
[ "$(steps_in "$TMP/r1")" = "8 9 " ] || fail "a resumed run should keep its newest 2; left: $(steps_in "$TMP/r1")"

# 3. Nothing is created when a later output check fails.
err=$("$BIN" "${TINY[@]}" --steps 1 --checkpoint-dir "$TMP/new/ck" --log "$TMP/nodir/x.log" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] && grep -q -- "--log" <<<"$err" || fail "a bad --log should exit 1 naming --log ($rc): $err"
[ ! -e "$TMP/new" ] || fail "the refused run created the --checkpoint-dir tree: $(find "$TMP/new")"

# 4. The flag given is the flag named.
err=$("$BIN" "${TINY[@]}" --steps 1 --keep-checkpoints 2 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "--keep-checkpoints without a directory should exit 1, got $rc: $err"
grep -q -- "--keep-checkpoints" <<<"$err" || fail "the error should name --keep-checkpoints: $err"
! grep -q -- "--checkpoint-every" <<<"$err" || fail "the error names a flag that was not given: $err"

# 5. Evaluation writes nothing, so a read-only checkpoint directory serves it: a read-only tmpfs
# where this user may mount one, else a directory without write permission (for a non-root user).
RO=""
mkdir "$TMP/mnt"
if mount -t tmpfs -o size=8m tmpfs "$TMP/mnt" 2>/dev/null; then
  MNT="$TMP/mnt"
  cp -r "$TMP/r1" "$MNT/ck"
  mount -o remount,ro "$MNT" 2>/dev/null && RO="$MNT/ck"
elif ! touch "$TMP/ro_probe" 2>/dev/null || [ "$(id -u)" != 0 ]; then
  cp -r "$TMP/r1" "$TMP/ro"
  chmod -R a-w "$TMP/ro"
  RO="$TMP/ro"
fi
if [ -n "$RO" ]; then
  "$BIN" "${TINY[@]}" --steps 9 --checkpoint-dir "$RO" --resume --eval-only >"$TMP/out" 2>&1 ||
    fail "--eval-only --resume on a read-only --checkpoint-dir: $(cat "$TMP/out")"
  grep -q "val loss" "$TMP/out" || fail "no validation loss: $(cat "$TMP/out")"
  [ -n "$MNT" ] || chmod -R u+w "$TMP/ro"
else
  echo "note: no read-only directory available; part 5 skipped"
fi
echo "ok"
