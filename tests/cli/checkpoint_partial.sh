#!/usr/bin/env bash
# A checkpoint whose state file cannot be written (disk full, a bad path) is removed whole: no
# orphan model_SSSSSSSS.bin of that step stays behind, `latest` still names the previous step,
# and the run resumes from it. The failure is injected honestly: the state file's path is a
# directory, so its rename fails; where this user may mount a small tmpfs, a full disk too.
set -u
. "$(dirname "$0")/lib/common.sh"
MNT=""
trap '[ -n "$MNT" ] && umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT
TINY+=(--print-every 100)

# check_partial DIR: step 2's save failed; nothing of step 2 is left and step 1 resumes.
check_partial() {
  local ck=$1
  [ ! -e "$ck/model_00000002.bin" ] || fail "an orphan model_00000002.bin was left in $ck: $(ls "$ck")"
  ! ls "$ck" | grep -q '\.tmp$' || fail "a temporary file was left in $ck: $(ls "$ck")"
  [ "$(cat "$ck/latest")" = "1" ] || fail "latest should still name step 1: $(cat "$ck/latest")"
  [ -s "$ck/model_00000001.bin" ] && [ -s "$ck/state_00000001.bin" ] || fail "step 1's checkpoint is gone"
}

# 1. The state file's path is a directory.
"$BIN" "${TINY[@]}" --steps 1 --checkpoint-dir "$TMP/ck" >/dev/null 2>&1 || fail "first run"
mkdir "$TMP/ck/state_00000002.bin"
err=$("$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/ck" --resume 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "a failed state write should exit 1, got $rc: $err"
grep -q "state_00000002.bin" <<<"$err" || fail "the error should name the state file: $err"
rmdir "$TMP/ck/state_00000002.bin"
check_partial "$TMP/ck"
"$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/ck" --resume >"$TMP/resume.out" 2>&1 ||
  { cat "$TMP/resume.out"; fail "resume after the failed save"; }
grep -q "resume  from step 1" "$TMP/resume.out" || fail "did not resume from step 1: $(cat "$TMP/resume.out")"

# 2. A full disk: a tmpfs with room for step 1's checkpoint and step 2's model file only.
mkdir "$TMP/mnt"
if mount -t tmpfs -o size=2300k tmpfs "$TMP/mnt" 2>/dev/null; then
  MNT="$TMP/mnt"
  "$BIN" "${TINY[@]}" --steps 1 --checkpoint-dir "$MNT/ck" >/dev/null 2>&1 || fail "first run on the tmpfs"
  err=$("$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$MNT/ck" --resume 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 1 ] || fail "a full disk should exit 1, got $rc: $err"
  check_partial "$MNT/ck"
  "$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$MNT/ck" --resume --eval-only >/dev/null 2>&1 ||
    fail "the previous checkpoint no longer loads after a full disk"
fi
# 3. Two ranks, and only rank 1's state file fails: both ranks stop with an error (rank 0 must not
# wait for rank 1 forever), and neither rank's files of step 2 stay behind.
if command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  MPI=(timeout 120 mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1)
  "${MPI[@]}" "$BIN" "${TINY[@]}" --steps 1 --checkpoint-dir "$TMP/mr" >/dev/null 2>&1 || fail "first 2-rank run"
  mkdir "$TMP/mr/state_00000002_rank1.bin"
  "${MPI[@]}" "$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/mr" --resume >"$TMP/mr.out" 2>&1
  rc=$?
  [ "$rc" -ne 124 ] || fail "a failed state write on rank 1 left the job hanging"
  [ "$rc" -ne 0 ] || fail "a failed state write on rank 1 should fail the job: $(cat "$TMP/mr.out")"
  grep -q "state_00000002_rank1.bin" "$TMP/mr.out" || fail "rank 1's error should name its file: $(cat "$TMP/mr.out")"
  grep -q "another rank failed to write its state file" "$TMP/mr.out" ||
    fail "rank 0 should say that another rank failed: $(cat "$TMP/mr.out")"
  rmdir "$TMP/mr/state_00000002_rank1.bin"
  [ ! -e "$TMP/mr/model_00000002.bin" ] && [ ! -e "$TMP/mr/state_00000002_rank0.bin" ] ||
    fail "step 2's files were left behind: $(ls "$TMP/mr")"
  [ "$(cat "$TMP/mr/latest")" = "1" ] || fail "latest should still name step 1"
  "${MPI[@]}" "$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/mr" --resume >"$TMP/mr2.out" 2>&1 ||
    fail "2-rank resume after the failed save: $(tail -5 "$TMP/mr2.out")"
fi
echo "ok"
