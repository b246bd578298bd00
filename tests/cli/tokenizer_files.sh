#!/usr/bin/env bash
# The tokenizer files are checked against each other when loaded: a vocab.bpe cut at a line
# boundary or missing a line is refused by every tool that loads it, with the file, the merge
# counts and a hint, instead of giving token ids that differ from GPT-2's.
set -u
. "$(dirname "$0")/lib/common.sh"
require_tokenizer fail
printf 'Hello world' > "$TMP/hello.txt"

[ "$("$BUILD/tokenize" encode --tokenizer-dir "$TOK" "$TMP/hello.txt" | paste -sd' ')" = "15496 995" ] ||
  fail "the real files do not load"

mkdir -p "$TMP/cut" "$TMP/dropped"
cp "$TOK/encoder.json" "$TMP/cut/"
cp "$TOK/encoder.json" "$TMP/dropped/"
head -n 45001 "$TOK/vocab.bpe" > "$TMP/cut/vocab.bpe"            # header + 45,000 merges
sed '20001d' "$TOK/vocab.bpe" > "$TMP/dropped/vocab.bpe"        # merge 19,999 missing

for case in cut dropped; do
  want=45000; [ $case = dropped ] && want=49999
  err=$("$BUILD/tokenize" encode --tokenizer-dir "$TMP/$case" "$TMP/hello.txt" 2>&1 >/dev/null); rc=$?
  [ $rc -eq 1 ] || fail "tokenize with a $case vocab.bpe should exit 1, got $rc: $err"
  grep -q "$TMP/$case/vocab.bpe: holds $want merges" <<<"$err" || fail "$case: no file and count: $err"
  grep -q "expects 50000" <<<"$err" || fail "$case: no expected count: $err"
  grep -q "HINT: .*data/fetch_tokenizer.sh" <<<"$err" || fail "$case: no hint: $err"

  mkdir -p "$TMP/in"
  echo "Some text." > "$TMP/in/a.txt"
  err=$("$BUILD/prepro" --input "$TMP/in" --out-dir "$TMP/out_$case" --tokenizer-dir "$TMP/$case" 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 1 ] && grep -q "holds $want merges" <<<"$err" || fail "prepro with a $case vocab.bpe: rc=$rc $err"
  [ -e "$TMP/out_$case/train_000000.bin" ] && fail "prepro wrote a shard with a $case vocab.bpe"
done
echo "tokenizer files: ok"
