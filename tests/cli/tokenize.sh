#!/usr/bin/env bash
# Runs the real tokenize binary: known ids, encode/decode round trip, llm.c .bin export, errors.
set -u
BUILD=$1
SRC=$2
BIN="$BUILD/tokenize"
fail() { echo "FAIL: $*"; exit 1; }
export GPT2_TOKENIZER_DIR="$SRC/data/tokenizer"
[ -f "$GPT2_TOKENIZER_DIR/encoder.json" ] || fail "tokenizer files missing: run data/fetch_tokenizer.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

out=$("$BIN" --help); rc=$?
[ $rc -eq 0 ] || fail "--help exit $rc"
grep -q "encode" <<<"$out" || fail "--help lists no encode"
"$BIN" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "no subcommand should exit 2, got $rc"

printf 'Hello world' > "$TMP/hello.txt"
[ "$("$BIN" encode "$TMP/hello.txt" | paste -sd' ')" = "15496 995" ] || fail "Hello world ids"
[ "$("$BIN" encode --eot "$TMP/hello.txt" | head -1)" = "50256" ] || fail "--eot"
[ "$(printf 'Hello world' | "$BIN" encode - | wc -l)" -eq 2 ] || fail "stdin encode"

printf 'Tabs\tand  spaces, "quotes", ünïcödé, 中文, emoji 😀\n\n<|endoftext|> end\n' > "$TMP/mixed.txt"
"$BIN" encode "$TMP/mixed.txt" > "$TMP/ids.txt" || fail "encode failed"
grep -qx 50256 "$TMP/ids.txt" && fail "<|endoftext|> in text must not become 50256"
"$BIN" decode "$TMP/ids.txt" > "$TMP/back.txt" || fail "decode failed"
cmp -s "$TMP/mixed.txt" "$TMP/back.txt" || fail "decode(encode(x)) != x"

"$BIN" export-bin "$TMP/tok.bin" 2>/dev/null || fail "export-bin failed"
[ "$(stat -c %s "$TMP/tok.bin")" -eq 372108 ] || fail "llm.c tokenizer .bin has the wrong size"
"$BIN" decode --tokenizer-bin "$TMP/tok.bin" "$TMP/ids.txt" | cmp -s - "$TMP/mixed.txt" ||
  fail "decode with the .bin differs"

printf '15496 99999\n' > "$TMP/bad_ids.txt"
err=$("$BIN" decode "$TMP/bad_ids.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "bad id should exit 1, got $rc"
grep -q "byte offset 6" <<<"$err" || fail "bad id error lacks its offset: $err"
printf '1 two 3\n' > "$TMP/bad_ids.txt"
err=$("$BIN" decode "$TMP/bad_ids.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "'two' is not a token id" <<<"$err" || fail "non-numeric id: $err"

err=$("$BIN" encode "$TMP/nope.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "missing file should exit 1, got $rc"
grep -q "nope.txt" <<<"$err" || fail "error does not name the file: $err"
err=$("$BIN" encode --tokenizer-dir "$TMP/none" "$TMP/hello.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "HINT: run data/fetch_tokenizer.sh" <<<"$err" || fail "missing tokenizer hint: $err"
# Without GPT2_TOKENIZER_DIR and outside the checkout, the binary finds data/tokenizer of the
# checkout it was built in (when the build directory is inside it, as build/ is).
case "$(cd "$BUILD" && pwd)" in
  "$(cd "$SRC" && pwd)"/*)
    out=$(cd "$TMP" && env -u GPT2_TOKENIZER_DIR "$BIN" encode "$TMP/hello.txt" 2>&1) ||
      fail "tokenize from another directory: $out"
    [ -n "$out" ] || fail "tokenize from another directory printed nothing"
    ;;
esac
# An output path that is not a regular file is refused, not replaced.
mkfifo "$TMP/fifo"
err=$("$BIN" export-bin "$TMP/fifo" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "not a regular file" <<<"$err" && [ -p "$TMP/fifo" ] || fail "export-bin onto a FIFO: $err"
echo "tokenize CLI: ok"
