#!/usr/bin/env bash
# Hostile values are refused with one line naming the flag, file or line: non-finite and
# out-of-range numbers, --config files that are not key = value, values that used to fall back
# to a default, a resume target behind the checkpoint, a NaN checkpoint, and failed writes to
# the --log file or to standard output.
set -u
. "$(dirname "$0")/lib/common.sh"
SAMPLE="$BUILD/sample"
TINY+=(--print-every 100)

# 1. Non-finite and out-of-range floats: refused at parse time (exit 2), naming the flag.
for v in nan NaN inf -inf 1e999; do
  expect 2 "--lr" "$BIN" "${TINY[@]}" --steps 1 --lr "$v" --skip-nonfinite
done
expect 2 "--weight-decay" "$BIN" "${TINY[@]}" --steps 1 --weight-decay nan
expect 2 "--grad-clip" "$BIN" "${TINY[@]}" --steps 1 --grad-clip inf
expect 2 "--final-lr-frac" "$BIN" "${TINY[@]}" --steps 1 --final-lr-frac nan
expect 2 "--sample-temperature" "$BIN" "${TINY[@]}" --steps 1 --sample-temperature nan
expect 2 "--lr" "$BIN" "${TINY[@]}" --steps 1 --lr 1e6

# 2. Readable messages: a plain range or "must be positive", and the value as given.
expect 2 "--steps: must be positive, got 0" "$BIN" "${TINY[@]}" --steps 0
expect 2 "--lr: must be from 0 to 10, got -1" "$BIN" "${TINY[@]}" --lr -1
expect 2 "--shard-tokens: must be positive, got -1" "$BUILD/prepro" -i "$TMP" -o "$TMP/p" --shard-tokens -1

# 4. Values that used to fall back to a default.
expect 2 "--seq-len: must be positive, got 0" "$BIN" "${TINY[@]}" --steps 1 --seq-len 0
expect 2 "--total-batch-tokens: must be positive, got 0" "$BIN" "${TINY[@]}" --steps 1 --total-batch-tokens 0

# 3. --config: unknown keys, lines that are not key = value, binary files: file and line named.
printf '# a comment\n\nsteps = 1\nstepz = 3\n' >"$TMP/typo.toml"
expect 1 "typo.toml:4: unknown key 'stepz'" "$BIN" "${TINY[@]}" --config "$TMP/typo.toml"
printf 'steps = 1\njust some words\n' >"$TMP/words.toml"
expect 1 "words.toml:2" "$BIN" "${TINY[@]}" --config "$TMP/words.toml"
head -c 4096 "$BIN" >"$TMP/exe.toml"
expect 1 "exe.toml:1" "$BIN" "${TINY[@]}" --config "$TMP/exe.toml"
printf 'steps = 1\nlr = nan\n' >"$TMP/nan.toml"
expect 2 "--lr" "$BIN" "${TINY[@]}" --config "$TMP/nan.toml"
printf '# fine\nsteps = 1\nlr_schedule = "constant"\n' >"$TMP/good.toml"
"$BIN" "${TINY[@]}" --config "$TMP/good.toml" >"$TMP/good.out" 2>&1 || { cat "$TMP/good.out"; fail "a good --config"; }
grep -q "done: 1 steps" "$TMP/good.out" || fail "the good --config did not run 1 step"

# 4. --resume with --steps behind the checkpoint: an error naming --steps and the step.
"$BIN" "${TINY[@]}" --steps 3 --checkpoint-dir "$TMP/ck" >/dev/null 2>&1 || fail "checkpoint run"
expect 1 "--steps.*step 3" "$BIN" "${TINY[@]}" --steps 2 --checkpoint-dir "$TMP/ck" --resume

# 1. A checkpoint is never written from non-finite weights: a model file whose weights are NaN,
#    trained with --skip-nonfinite (every update skipped), must fail instead of saving.
cp "$TMP/ck/model_00000003.bin" "$TMP/nan.bin"
size=$(stat -c %s "$TMP/nan.bin")
head -c $((size - 1024)) /dev/zero | tr '\0' '\377' | dd of="$TMP/nan.bin" bs=1024 seek=1 conv=notrunc status=none
expect 1 "NaN or infinite" "$BIN" "${TINY[@]}" --model "$TMP/nan.bin" --steps 2 --skip-nonfinite \
  --checkpoint-dir "$TMP/nan_ck"
[ ! -e "$TMP/nan_ck/latest" ] || fail "a checkpoint was written from non-finite weights"

# 4. sample: --context 0/-1/beyond the model, --top-k -5, --temperature nan.
expect 2 "--context" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --context 0
expect 2 "--context" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --context -1
expect 1 "--context: 5000 is beyond the model's context of 32" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --context 5000
expect 2 "--top-k" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --top-k -5
expect 2 "--temperature" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --temperature nan
expect 2 "--tokens: must be positive, got 0" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --tokens 0
# --prompt-ids: every item a whole number in the vocabulary; an empty list is an error, and the
# default start token outside a small vocabulary is named as such.
for ids in "" "1x" "1.5" "1,,2" "99999999999" "-3"; do
  expect 1 "--prompt-ids" "$SAMPLE" --model "$TMP/ck" --prompt-ids "$ids" --ids --tokens 2
done
expect 1 "--prompt-ids: the default start" "$SAMPLE" --model "$TMP/ck" --ids --tokens 2

# 5. Failed writes: the --log file, and standard output, are errors naming what failed.
if [ -w /dev/full ]; then
  expect 1 "/dev/full" "$BIN" "${TINY[@]}" --steps 1 --log /dev/full
  err=$("$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --tokens 4 2>&1 >/dev/full); rc=$?
  [ $rc -eq 1 ] && grep -q "standard output" <<<"$err" || fail "sample > /dev/full: rc=$rc $err"
  err=$("$BIN" "${TINY[@]}" --steps 1 2>&1 >/dev/full); rc=$?
  [ $rc -eq 1 ] && grep -q "standard output" <<<"$err" || fail "train_gpt2 > /dev/full: rc=$rc $err"
  if [ -f "$SRC/data/tokenizer/encoder.json" ]; then
    printf 'Hello world' >"$TMP/hello.txt"
    err=$(GPT2_TOKENIZER_DIR="$SRC/data/tokenizer" "$BUILD/tokenize" encode "$TMP/hello.txt" 2>&1 >/dev/full); rc=$?
    [ $rc -eq 1 ] && grep -q "standard output" <<<"$err" || fail "tokenize > /dev/full: rc=$rc $err"
    err=$(GPT2_TOKENIZER_DIR="$SRC/data/tokenizer" "$BUILD/prepro" -i "$TMP/hello.txt" -o "$TMP/pp" 2>&1 >/dev/full); rc=$?
    [ $rc -eq 1 ] && grep -q "standard output" <<<"$err" || fail "prepro > /dev/full: rc=$rc $err"
  fi
  err=$("$BUILD/convert" --in "$TMP/ck/model_00000003.bin" --out "$TMP/conv.bin" 2>&1 >/dev/full); rc=$?
  [ $rc -eq 1 ] && grep -q "standard output" <<<"$err" || fail "convert > /dev/full: rc=$rc $err"
fi
echo "hostile flag checks passed"
