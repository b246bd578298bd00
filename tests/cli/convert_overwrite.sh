#!/usr/bin/env bash
# convert never writes over its input: the same path, the same file reached another way (./x,
# a symbolic link, a hard link), with any --dtype, is refused with one line naming the file, and
# the input is left byte for byte as it was.
set -u
BUILD=$1
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BUILD/train_gpt2" --device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32 \
  --micro-batch 2 --total-batch-tokens 128 --steps 1 --checkpoint-dir "$TMP/ck" >/dev/null 2>&1 || fail "training"
cp "$TMP/ck/model_00000001.bin" "$TMP/m.bin"
sum=$(cksum <"$TMP/m.bin")
ln -s m.bin "$TMP/link.bin"
ln "$TMP/m.bin" "$TMP/hard.bin"

# refused IN OUT: exit 1, one line naming the input, the input unchanged.
refused() {
  local err rc
  err=$(cd "$TMP" && "$BUILD/convert" --in "$1" --out "$2" --dtype bf16 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 1 ] || fail "convert --in $1 --out $2 should exit 1, got $rc: $err"
  [ "$(wc -l <<<"$err")" -eq 1 ] || fail "convert --in $1 --out $2 should print one line: $err"
  grep -qF "$1" <<<"$err" || fail "convert --in $1 --out $2 should name the file: $err"
  [ "$(cksum <"$TMP/m.bin")" = "$sum" ] || fail "convert --in $1 --out $2 changed the input"
}
refused "$TMP/m.bin" "$TMP/m.bin"
refused m.bin ./m.bin
refused m.bin link.bin
refused link.bin m.bin
refused m.bin hard.bin

# An output that is not a regular file (a FIFO here; /dev/full or /dev/null alike) is refused and
# left as it is: the atomic rename would replace the node with a regular file.
mkfifo "$TMP/fifo"
mkdir "$TMP/adir"
for out in "$TMP/fifo" "$TMP/adir"; do
  err=$("$BUILD/convert" --in "$TMP/m.bin" --out "$out" 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq 1 ] || fail "convert --out $out should exit 1, got $rc: $err"
  grep -qF "$out" <<<"$err" && grep -q "not a regular file" <<<"$err" || fail "convert --out $out: $err"
done
[ -p "$TMP/fifo" ] || fail "the FIFO was replaced"
[ -d "$TMP/adir" ] || fail "the directory was replaced"

# A different output still converts.
"$BUILD/convert" --in "$TMP/m.bin" --out "$TMP/m_bf16.bin" --dtype bf16 >/dev/null || fail "a plain convert"
[ -s "$TMP/m_bf16.bin" ] || fail "no output written"
echo "ok"
