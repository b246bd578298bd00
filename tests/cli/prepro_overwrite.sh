#!/usr/bin/env bash
# prepro --overwrite never loses the old token files: the new ones are written beside them and
# moved in only when all are complete, so a bad input line leaves the old shards and prepro.json
# as they were; old shards the new set does not replace are removed after the swap. An output
# directory that is an input, lies inside an input directory, or holds an input among its output
# files is refused with one line, and the input is left alone.
set -u
BUILD=$1
SRC=$2
BIN="$BUILD/prepro"
# Every check runs, so one run shows each rule that does not hold.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TOK="$SRC/data/tokenizer"
[ -f "$TOK/encoder.json" ] || { echo "FAIL: tokenizer files missing: run data/fetch_tokenizer.sh"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
P=("$BIN" --tokenizer-dir "$TOK" -q)

mkdir -p "$TMP/in"
for i in $(seq 1 30); do echo "Document $i holds a few words of text." >"$TMP/in/doc$(printf %02d "$i").txt"; done
"${P[@]}" -i "$TMP/in" -o "$TMP/out" --shard-tokens 100 >/dev/null || { echo "FAIL: first run"; exit 1; }
ls "$TMP/out"/train_000002.bin >/dev/null || fail "expected at least 3 train shards: $(ls "$TMP/out")"
before=$(cd "$TMP/out" && sha256sum -- * | sort)

# A bad line in the new input: the run fails, the old files are all still there, unchanged.
printf '{"text": "fine"}\n{"text": oops}\n' >"$TMP/bad.jsonl"
err=$("${P[@]}" -i "$TMP/bad.jsonl" -o "$TMP/out" --overwrite 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "a bad input line should exit 1, got $rc: $err"
grep -q "bad.jsonl" <<<"$err" || fail "the error does not name the file: $err"
after=$(cd "$TMP/out" && sha256sum -- * | sort)
[ "$before" = "$after" ] || fail "a failed --overwrite run changed the old files: $(ls "$TMP/out")"
[ -z "$(ls -A "$TMP/out" | grep -v -e '^train_' -e '^val_' -e '^prepro.json$' -e '^gpt2_tokenizer.bin$')" ] ||
  fail "a failed run left files behind: $(ls -A "$TMP/out")"

# The staging directory of a killed run (its process is gone) is cleared by the next run.
mkdir -p "$TMP/out/.prepro-new-999999999" && touch "$TMP/out/.prepro-new-999999999/train_000000.bin"
# A smaller new set replaces the old one; the old shards it does not replace are gone, and
# prepro.json names exactly the token files present.
"${P[@]}" -i "$TMP/in" -o "$TMP/out" --overwrite >/dev/null || fail "--overwrite run"
[ -e "$TMP/out/train_000001.bin" ] && fail "an old shard the new set does not replace was kept: $(ls "$TMP/out")"
[ -z "$(ls -A "$TMP/out" | grep '^\.')" ] || fail "hidden files left: $(ls -A "$TMP/out")"
listed=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(' '.join(sorted(m['train']['files']+m['val']['files'])))" "$TMP/out/prepro.json")
present=$(cd "$TMP/out" && ls train_*.bin val_*.bin 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')
[ "$listed" = "$present" ] || fail "prepro.json lists '$listed', the directory holds '$present'"
# Another format replaces the llm.c shards too.
"${P[@]}" -i "$TMP/in" -o "$TMP/out" --overwrite --format nanogpt >/dev/null || fail "--format nanogpt over llmc"
[ -e "$TMP/out/train_000000.bin" ] && fail "llm.c shards kept beside the nanoGPT files: $(ls "$TMP/out")"
[ -e "$TMP/out/train.bin" ] || fail "no train.bin"

# The output directory apart from the inputs: one line, exit 1, the input untouched.
inputs=$(cd "$TMP/in" && sha256sum -- * | sort)
for case in same inside; do
  [ $case = same ] && o="$TMP/in" || o="$TMP/in/tokens"
  err=$("${P[@]}" -i "$TMP/in" -o "$o" --overwrite 2>&1 >/dev/null); rc=$?
  [ $rc -eq 1 ] || fail "-o $case as -i should exit 1, got $rc: $err"
  grep -q -- "--out-dir" <<<"$err" || fail "-o $case: the error does not name --out-dir: $err"
  [ "$(grep -c . <<<"$err")" -eq 1 ] || fail "-o $case: more than one line: $err"
done
[ "$(cd "$TMP/in" && sha256sum -- * | sort)" = "$inputs" ] || fail "the input directory changed: $(ls -A "$TMP/in")"
cp "$TMP/out/prepro.json" "$TMP/keep.json"
err=$("${P[@]}" -i "$TMP/out/prepro.json" -o "$TMP/out" --overwrite 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--input" <<<"$err" || fail "an input among the output files: $rc $err"
cmp -s "$TMP/keep.json" "$TMP/out/prepro.json" || fail "the input prepro.json was overwritten"
# Text in a subdirectory of the output directory (data/fetch_corpus.sh does this) is fine.
mkdir -p "$TMP/corpus/text" && cp "$TMP/in"/doc0*.txt "$TMP/corpus/text/"
"${P[@]}" -i "$TMP/corpus/text" -o "$TMP/corpus" >/dev/null || fail "input inside the output directory"
"${P[@]}" -i "$TMP/corpus/text" -o "$TMP/corpus" --overwrite >/dev/null || fail "the same, with --overwrite"
[ $failures -eq 0 ] || exit 1
echo "prepro overwrite: ok"
