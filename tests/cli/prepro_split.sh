#!/usr/bin/env bash
# prepro splits one text file into train and val whatever its script or line structure
# (Cyrillic prose, indented lines), and says clearly why a tiny input gets no val file.
set -u
. "$(dirname "$0")/lib/common.sh"
BIN="$BUILD/prepro"
require_tokenizer fail

for i in $(seq 1 2000); do
  echo "Строка $i: в чащах юга жил бы цитрус? Да, но фальшивый экземпляр!"
done > "$TMP/cyrillic.txt"
for i in $(seq 1 2000); do
  printf '    if (x > %d) {\n        return %d;\n    }\n' "$i" "$i"
done > "$TMP/indented.txt"

for name in cyrillic indented; do
  out=$("$BIN" --input "$TMP/$name.txt" --out-dir "$TMP/$name" --tokenizer-dir "$TOK" -q 2>&1); rc=$?
  [ $rc -eq 0 ] || fail "$name: prepro exit $rc: $out"
  [ -f "$TMP/$name/train_000000.bin" ] || fail "$name: no train shard: $out"
  [ -f "$TMP/$name/val_000000.bin" ] || fail "$name: no val shard: $out"
  grep -q "warning" <<<"$out" && fail "$name: unexpected warning: $out"
  grep -q "val: the last 5% of the input bytes" <<<"$out" || fail "$name: summary: $out"
  # The val shard is about 5% of the tokens (its header's count is int 2).
  n_train=$(od -An -t d4 -j 8 -N 4 "$TMP/$name/train_000000.bin" | tr -d ' ')
  n_val=$(od -An -t d4 -j 8 -N 4 "$TMP/$name/val_000000.bin" | tr -d ' ')
  pct=$(( 1000 * n_val / (n_train + n_val) ))
  [ "$pct" -ge 40 ] && [ "$pct" -le 60 ] || fail "$name: val is $n_val of $((n_train + n_val)) tokens"
done

# A tiny input: no val file, and a warning that says why and what to do.
printf 'Привет' > "$TMP/tiny.txt"
out=$("$BIN" --input "$TMP/tiny.txt" --out-dir "$TMP/tiny" --tokenizer-dir "$TOK" -q 2>&1); rc=$?
[ $rc -eq 0 ] || fail "tiny: prepro exit $rc: $out"
[ -f "$TMP/tiny/train_000000.bin" ] || fail "tiny: no train shard"
ls "$TMP/tiny"/val_*.bin >/dev/null 2>&1 && fail "tiny: a val shard was written"
grep -q "warning: no val file: the last --val-fraction 0.05 of 12 input bytes" <<<"$out" || fail "tiny: $out"
grep -q "give more text or a larger --val-fraction" <<<"$out" || fail "tiny: no advice: $out"
grep -q "too little input" <<<"$out" && fail "tiny: the old message: $out"
echo "prepro split: ok"
