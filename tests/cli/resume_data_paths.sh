#!/usr/bin/env bash
# --resume compares the files --train-data resolves to, not its text: the same shards named by a
# relative glob, an absolute glob or a symbolic link resume; other shards are refused naming
# --train-data.
set -u
. "$(dirname "$0")/lib/common.sh"
require_tokenizer skip
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 50257 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 100)

for i in $(seq 1 60); do echo "Document $i. Some words here, and a few more to make tokens."; done >"$TMP/text.txt"
"$BUILD/prepro" --input "$TMP/text.txt" --out-dir "$TMP/data" --tokenizer-dir "$TOK" --val-fraction 0 \
  --shard-tokens 400 >/dev/null 2>&1 || fail "prepro"
cp -r "$TMP/data" "$TMP/other"
ln -s data "$TMP/alias"

cd "$TMP" || fail "cd"
"$BUILD/train_gpt2" "${TINY[@]}" --steps 1 --train-data 'data/train_*.bin' --checkpoint-dir ck >/dev/null 2>&1 ||
  fail "first run"
step=1
for spec in "$TMP/data/train_*.bin" './data/train_*.bin' 'alias/train_*.bin'; do
  step=$((step + 1))
  out=$("$BUILD/train_gpt2" "${TINY[@]}" --steps $step --train-data "$spec" --checkpoint-dir ck --resume 2>&1) ||
    fail "--train-data '$spec' names the same files but was refused: $out"
  grep -q "resume  from step $((step - 1))" <<<"$out" || fail "'$spec' did not resume: $out"
done
# Other files (a copy elsewhere, or fewer shards) are refused, naming --train-data.
for spec in "$TMP/other/train_*.bin" 'data/train_000000.bin'; do
  err=$("$BUILD/train_gpt2" "${TINY[@]}" --steps 9 --train-data "$spec" --checkpoint-dir ck --resume 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 1 ] || fail "--train-data '$spec' (other files) should be refused, got $rc: $err"
  grep -q -- "--train-data" <<<"$err" || fail "the error should name --train-data: $err"
done
echo "ok"
