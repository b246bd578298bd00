#!/usr/bin/env bash
# Data that would train on garbage is refused with one line naming the file: an llm.c shard read
# with --data-format nanogpt (its header would become tokens), and prepro of an empty input
# (which used to write a one-token shard), which writes nothing.
set -u
. "$(dirname "$0")/lib/common.sh"
require_tokenizer skip
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 50257 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --steps 1)

# An llm.c shard made by prepro.
for i in $(seq 1 30); do echo "Document $i. Some words here, and a few more to make tokens."; done >"$TMP/text.txt"
"$BUILD/prepro" --input "$TMP/text.txt" --out-dir "$TMP/llmc" --tokenizer-dir "$TOK" --val-fraction 0 \
  >/dev/null 2>&1 || fail "prepro of a small text"
shard=$(ls "$TMP"/llmc/*train*.bin | head -n 1)
[ -n "$shard" ] || fail "no train shard: $(ls "$TMP/llmc")"
"$BUILD/train_gpt2" "${TINY[@]}" --train-data "$shard" >/dev/null 2>&1 || fail "the shard does not train as llmc/auto"
err=$("$BUILD/train_gpt2" "${TINY[@]}" --train-data "$shard" --data-format nanogpt 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "--data-format nanogpt on an llm.c shard should exit 1, got $rc: $err"
grep -qF "$shard" <<<"$err" || fail "the error should name the shard: $err"
grep -q -- "--data-format" <<<"$err" || fail "the error should name --data-format: $err"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "one line expected: $err"

# prepro of an empty file, and of a directory holding only an empty file: refused, nothing written.
: >"$TMP/empty.txt"
mkdir "$TMP/emptydir"
: >"$TMP/emptydir/a.txt"
for in in "$TMP/empty.txt" "$TMP/emptydir"; do
  err=$("$BUILD/prepro" --input "$in" --out-dir "$TMP/out" --tokenizer-dir "$TOK" 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 1 ] || fail "prepro of empty $in should exit 1, got $rc: $err"
  grep -qF "$in" <<<"$err" || fail "the error should name $in: $err"
  [ -z "$(ls "$TMP/out" 2>/dev/null | grep '\.bin$')" ] || fail "prepro of empty $in wrote $(ls "$TMP/out")"
done
echo "ok"
