#!/usr/bin/env bash
# Runs the real prepro binary: --help, outputs in both formats, progress bar, overwrite guard,
# and errors with their exit codes.
set -u
. "$(dirname "$0")/lib/common.sh"
BIN="$BUILD/prepro"
require_tokenizer fail

out=$("$BIN" --help); rc=$?
[ $rc -eq 0 ] || fail "--help exit $rc"
for flag in --input --out-dir --val-fraction --shard-tokens --format; do
  grep -q -- "$flag" <<<"$out" || fail "--help does not mention $flag"
done
"$BIN" --out-dir "$TMP/x" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "missing --input should exit 2, got $rc"
"$BIN" --input "$TMP" --out-dir "$TMP/x" --format parquet >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "bad --format should exit 2, got $rc"

mkdir -p "$TMP/in"
for i in $(seq 1 40); do echo "Document $i. Some words here." > "$TMP/in/doc$(printf %02d "$i").txt"; done
printf '{"text": "a json document"}\n{"text": "another one"}\n' > "$TMP/more.jsonl"

out=$("$BIN" --input "$TMP/in" "$TMP/more.jsonl" --out-dir "$TMP/out" --tokenizer-dir "$TOK" \
      --val-fraction 0.1 --shard-tokens 200 --progress 2>"$TMP/err"); rc=$?
[ $rc -eq 0 ] || fail "prepro exit $rc: $(cat "$TMP/err")"
grep -q "42 documents" <<<"$out" || fail "summary: $out"
grep -q "tok/s" "$TMP/err" || fail "no progress bar with --progress"
ls "$TMP/out"/train_000000.bin "$TMP/out"/train_000001.bin "$TMP/out"/val_000000.bin \
   "$TMP/out"/gpt2_tokenizer.bin "$TMP/out"/prepro.json >/dev/null || fail "missing outputs"
ls "$TMP/out"/*.tmp >/dev/null 2>&1 && fail "left .tmp files behind"

err=$("$BIN" --input "$TMP/in" --out-dir "$TMP/out" --tokenizer-dir "$TOK" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--overwrite" <<<"$err" || fail "rerun without --overwrite: $rc $err"
"$BIN" --input "$TMP/in" --out-dir "$TMP/out" --tokenizer-dir "$TOK" --overwrite -q >/dev/null ||
  fail "--overwrite failed"

"$BIN" --input "$TMP/in" --out-dir "$TMP/nano" --tokenizer-dir "$TOK" --format nanogpt >/dev/null ||
  fail "nanogpt format failed"
[ -f "$TMP/nano/train.bin" ] && [ -f "$TMP/nano/val.bin" ] || fail "nanogpt train.bin/val.bin missing"
[ $(( $(stat -c %s "$TMP/nano/train.bin") % 2 )) -eq 0 ] || fail "nanogpt file has an odd size"

err=$("$BIN" --input "$TMP/in" --out-dir "$TMP/o2" --tokenizer-dir "$TMP/none" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "HINT: run data/fetch_tokenizer.sh" <<<"$err" || fail "tokenizer hint: $err"
err=$("$BIN" --input "$TMP/missing" --out-dir "$TMP/o3" --tokenizer-dir "$TOK" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "missing: does not exist" <<<"$err" || fail "missing input: $err"
err=$("$BIN" --input "$TMP/in" --out-dir "$TMP/o4" --tokenizer-dir "$TOK" --val-fraction 1.5 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--val-fraction" <<<"$err" || fail "bad --val-fraction: $rc $err"
# A number too large for a double in a .jsonl line (found by fuzz_text_inputs): one error naming
# the file and the line, not an escaped JSON library exception.
printf '{"text": "fine"}\n{"text": "x", "n": 5555555555E5555555555}\n' >"$TMP/big.jsonl"
err=$("$BIN" --input "$TMP/big.jsonl" --out-dir "$TMP/o5" --tokenizer-dir "$TOK" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -qF "$TMP/big.jsonl: line 2" <<<"$err" || fail "jsonl number overflow: $rc $err"
echo "prepro CLI: ok"
