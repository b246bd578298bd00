#!/usr/bin/env bash
# Every output of train_gpt2 (--checkpoint-dir, --log) is checked before step 1: a directory that
# cannot be created or written, or a path that is a regular file, fails at once with one line
# naming the flag and the path, and no training step runs.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
trap 'chmod -R u+w "$TMP"; rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 1 --steps 2)

# expect_early FLAG PATH ARGS...: exit 1, one error line naming the flag and the path, no step run.
expect_early() {
  local flag=$1 path=$2
  shift 2
  local out err rc
  out=$("$BIN" "${TINY[@]}" "$@" 2>"$TMP/err")
  rc=$?
  err=$(cat "$TMP/err")
  [ "$rc" -eq 1 ] || fail "$* should exit 1, got $rc: $err"
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$* should print one error line: $err"
  grep -q -- "$flag" <<<"$err" || fail "$* should name $flag: $err"
  grep -qF -- "$path" <<<"$err" || fail "$* should name $path: $err"
  ! grep -q "^step" <<<"$out" || fail "$* trained before failing: $out"
}

touch "$TMP/file"
expect_early --checkpoint-dir /proc/foo --checkpoint-dir /proc/foo
expect_early --checkpoint-dir "$TMP/file" --checkpoint-dir "$TMP/file"
expect_early --checkpoint-dir "$TMP/file/sub" --checkpoint-dir "$TMP/file/sub"
expect_early --log "$TMP/file/x.log" --log "$TMP/file/x.log"
expect_early --log "$TMP/nodir/x.log" --log "$TMP/nodir/x.log"
mkdir "$TMP/adir"
expect_early --log "$TMP/adir" --log "$TMP/adir"
# A read-only directory refuses writes only to a user other than root.
mkdir "$TMP/ro"
chmod 555 "$TMP/ro"
if ! touch "$TMP/ro/x" 2>/dev/null; then
  expect_early --checkpoint-dir "$TMP/ro" --checkpoint-dir "$TMP/ro"
  expect_early --checkpoint-dir "$TMP/ro/sub" --checkpoint-dir "$TMP/ro/sub"
fi

# A good directory is created, probed and left clean; the run still trains and checkpoints.
"$BIN" "${TINY[@]}" --checkpoint-dir "$TMP/new/ck" --log "$TMP/run.log" >"$TMP/good.out" 2>&1 ||
  { cat "$TMP/good.out"; fail "a good run"; }
[ -s "$TMP/new/ck/latest" ] || fail "no checkpoint written"
! ls -A "$TMP/new/ck" | grep -q probe || fail "a probe file was left behind: $(ls -A "$TMP/new/ck")"
[ -s "$TMP/run.log" ] || fail "no --log written"

# An output never lands on an input, the other output, or a checkpoint's files.
CK="$TMP/new/ck"
MODEL="$CK/model_00000002.bin"
before=$(cksum <"$MODEL"; cksum <"$CK/latest")
expect_early --log "$CK/latest" --log "$CK/latest"
expect_early --profile-json "$MODEL" --profile-json "$MODEL"
expect_early --log "$CK/run.log" --checkpoint-dir "$CK" --log "$CK/run.log"
expect_early --log "$MODEL" --model "$MODEL" --log "$MODEL"
expect_early --profile-json "$TMP/same.json" --log "$TMP/same.json" --profile-json "$TMP/same.json"
[ "$(cksum <"$MODEL"; cksum <"$CK/latest")" = "$before" ] || fail "a refused run changed the checkpoint"
echo "ok"
