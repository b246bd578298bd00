#!/usr/bin/env bash
# The durable writer (checkpoints, --profile-json) never writes through a link, and a checkpoint
# save removes no file it did not create:
#  1. a link planted at the temporary name older writers used (model_00000002.bin.tmp) is not
#     followed: the file it points to, outside the directory, is unchanged;
#  2. a link in the place of a checkpoint file or of the --profile-json file is refused with an
#     error naming it, and its target is unchanged;
#  3. other *.tmp files in the checkpoint directory survive the run's saves.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100)
echo "precious" >"$TMP/victim"

# 1. The only save is step 2's.
mkdir "$TMP/ck"
ln -s "$TMP/victim" "$TMP/ck/model_00000002.bin.tmp"
"$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/ck" >"$TMP/out" 2>&1 ||
  fail "a run beside a planted link: $(cat "$TMP/out")"
[ "$(cat "$TMP/victim")" = "precious" ] || fail "the run wrote through the planted link into $TMP/victim"
[ "$(cat "$TMP/ck/latest")" = "2" ] || fail "no checkpoint of step 2"

# 3. Saves of steps 1 and 2 beside other .tmp files.
mkdir "$TMP/ck3"
echo "notes" >"$TMP/ck3/notes.tmp"
echo "an older writer's" >"$TMP/ck3/state_00000007.bin.tmp"
"$BIN" "${TINY[@]}" --steps 2 --checkpoint-every 1 --checkpoint-dir "$TMP/ck3" >"$TMP/out" 2>&1 ||
  fail "a run beside other .tmp files: $(cat "$TMP/out")"
[ -f "$TMP/ck3/notes.tmp" ] && [ -f "$TMP/ck3/state_00000007.bin.tmp" ] ||
  fail "a checkpoint save deleted .tmp files it did not create: $(ls "$TMP/ck3")"

# 2. A link where the checkpoint file goes.
mkdir "$TMP/ck2"
ln -s "$TMP/victim" "$TMP/ck2/model_00000001.bin"
err=$("$BIN" "${TINY[@]}" --steps 1 --checkpoint-dir "$TMP/ck2" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "a link in place of a checkpoint file should fail the run (exit 1), got $rc: $err"
grep -q "model_00000001.bin.*symbolic link" <<<"$err" || fail "the error should name the link: $err"
[ "$(cat "$TMP/victim")" = "precious" ] && [ -L "$TMP/ck2/model_00000001.bin" ] ||
  fail "the link or its target was changed"
# ... and where --profile-json goes: refused before the first step.
ln -s "$TMP/victim" "$TMP/profile.json"
out=$("$BIN" "${TINY[@]}" --steps 1 --profile-json "$TMP/profile.json" 2>"$TMP/err")
rc=$?
[ "$rc" -eq 1 ] || fail "a link as --profile-json should exit 1, got $rc: $(cat "$TMP/err")"
grep -q -- "--profile-json.*profile.json.*symbolic link" "$TMP/err" || fail "the error should name the flag and the link: $(cat "$TMP/err")"
! grep -q "^step" <<<"$out" || fail "the run trained before refusing the --profile-json link"
[ "$(cat "$TMP/victim")" = "precious" ] || fail "the profile was written through the link"
echo "ok"
