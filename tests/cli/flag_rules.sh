#!/usr/bin/env bash
# Flag rules of train_gpt2 and sample, each a one-line error naming the flag (or a warning):
#   planning flags: --world-size/--rank plan dry runs; a training run must agree with its launch;
#   zero and out-of-range shape, seed and count values are refused, never read as "unset";
#   a repeated flag takes its last value, for every flag;
#   flags that would do nothing (--json without --dry-run, --warmup past --steps, --prompt with
#   --prompt-ids) are refused;
#   --gpu-mem below one byte says so; more OpenMP threads than hardware threads are warned about.
set -u
. "$(dirname "$0")/lib/common.sh"
SAMPLE="$BUILD/sample"
# Every check runs, so one run shows each rule that does not hold.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TINY+=(--print-every 100)
DRY=(--dry-run --device cpu --gpu-mem 1GiB --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32
     --micro-batch 2)
# Not started by mpirun/srun: the launcher's variables would change what these tests mean.
unset OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_RANK PMI_SIZE PMI_RANK PMIX_RANK SLURM_NTASKS SLURM_PROCID WORLD_SIZE RANK

# --- planning flags outside a dry run: refused before any step, nothing written
expect 1 "--world-size: 2 does not match the launch" "$BIN" "${TINY[@]}" --steps 1 --world-size 2 \
  --checkpoint-dir "$TMP/ck2"
[ -e "$TMP/ck2/latest" ] && fail "--world-size 2 without a launcher wrote a checkpoint"
expect 1 "--world-size" "$BIN" "${TINY[@]}" --steps 1 --world-size 2 --rank 1 --checkpoint-dir "$TMP/ck21"
[ -e "$TMP/ck21/latest" ] && fail "--world-size 2 --rank 1 wrote a checkpoint"
expect 1 "--rank: 1 does not match the launch" "$BIN" "${TINY[@]}" --steps 1 --rank 1
expect 2 "--world-size: must be positive, got 0" "$BIN" "${DRY[@]}" --world-size 0
expect 2 "--rank: must be 0 or more, got -1" "$BIN" "${DRY[@]}" --world-size 2 --rank -1
"$BIN" "${TINY[@]}" --steps 1 --world-size 1 --rank 0 >/dev/null 2>&1 || fail "--world-size 1 --rank 0 agree with no launcher"
"$BIN" "${DRY[@]}" --world-size 4 --rank 3 >/dev/null 2>&1 || fail "a dry run plans for --world-size 4 --rank 3"

# --- zero and out-of-range shape, seed and count values
for flag in --layers --heads --width --vocab --max-seq-len; do
  expect 2 "$flag: must be positive, got 0" "$BIN" --dry-run --device cpu --gpu-mem 1GiB "$flag" 0
done
expect 2 "--seed: must be from 0 to 18446744073709551615, got -1" "$BIN" "${DRY[@]}" --seed -1
expect 2 "--seed: must be from 0 to 18446744073709551615" "$BIN" "${DRY[@]}" --seed 18446744073709551616
expect 2 "--seed" "$BIN" "${DRY[@]}" --seed 99999999999999999999999
"$BIN" "${DRY[@]}" --seed 18446744073709551615 >/dev/null 2>&1 || fail "--seed 2^64-1 is a valid seed"

# --- a repeated flag: the last value wins, for every flag (and --help says so)
out=$("$BIN" "${DRY[@]}" --json --width 128 --width 64 --lr 1 --lr 2 --micro-batch 8 --micro-batch 2) ||
  fail "repeated flags should be accepted (last wins): $out"
grep -q '"width": 64' <<<"$out" || fail "the last --width should win"
grep -q '"micro_batch": 2' <<<"$out" || fail "the last --micro-batch should win"
"$BIN" --help | grep -q "more than once takes its last value" || fail "--help does not state the repeated-flag rule"
TOK="$SRC/data/tokenizer"
if [ -f "$TOK/encoder.json" ]; then
  ids=$(printf 'hi' | "$BUILD/tokenize" encode --tokenizer-dir "$TMP/none" --tokenizer-dir "$TOK" - 2>&1) ||
    fail "tokenize: a repeated flag should take its last value: $ids"
  mkdir -p "$TMP/text" && echo "Some words for a shard." >"$TMP/text/a.txt"
  "$BUILD/prepro" -q -i "$TMP/text" -o "$TMP/none" -o "$TMP/tok" --tokenizer-dir "$TOK" --val-fraction 0.5 \
    --val-fraction 0 >/dev/null 2>&1 || fail "prepro: a repeated flag should take its last value"
  [ -e "$TMP/tok/train_000000.bin" ] && [ ! -e "$TMP/tok/val_000000.bin" ] && [ ! -e "$TMP/none" ] ||
    fail "prepro: the last -o and --val-fraction should win"
fi
expect 2 "--heads: must be positive, got 0" "$BUILD/convert" --in "$TMP/a.bin" --out "$TMP/b.bin" --heads 0

# --- flags that would do nothing
expect 2 "--json requires --dry-run" "$BIN" "${TINY[@]}" --steps 1 --json
expect 2 "--warmup: 300 warmup steps is more than --steps 200" "$BIN" "${TINY[@]}" --steps 200 --warmup 300
"$BIN" "${TINY[@]}" --steps 2 --warmup 2 --checkpoint-dir "$TMP/ck" >/dev/null 2>&1 || fail "--warmup equal to --steps"
expect 2 "--prompt.*--prompt-ids\|--prompt-ids.*--prompt" "$SAMPLE" --model "$TMP/ck" --prompt x --prompt-ids 1 --ids
expect 2 "--seed" "$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --seed -1
out=$("$SAMPLE" --model "$TMP/ck" --prompt-ids 1 --ids --tokens 3 --tokens 2 --temperature 0) ||
  fail "sample: a repeated flag should take its last value"
[ "$(wc -w <<<"$out")" -eq 2 ] || fail "sample --tokens 3 --tokens 2 should print 2 new ids: $out"

# --- a size below one byte is not "must be positive"
err=$("$BIN" --dry-run --gpu-mem 0.5 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "--gpu-mem 0.5 should exit 1, got $rc"
grep -q -- "--gpu-mem: '0.5' is less than one byte" <<<"$err" || fail "--gpu-mem 0.5: $err"
grep -q "positive" <<<"$err" && fail "--gpu-mem 0.5 is positive: $err"
expect 1 "--gpu-mem: '0' is zero bytes" "$BIN" --dry-run --gpu-mem 0

# --- more OpenMP threads than hardware threads: one warning line naming OMP_NUM_THREADS
hw=$(getconf _NPROCESSORS_ONLN)
err=$(OMP_NUM_THREADS=$((hw + 1)) "$BIN" "${TINY[@]}" --steps 1 2>&1 >/dev/null) || fail "the oversubscribed run failed: $err"
grep -q "warning: OMP_NUM_THREADS=$((hw + 1)) asks for $((hw + 1)) threads, but this machine has $hw" <<<"$err" ||
  fail "no thread warning: $err"
err=$(OMP_NUM_THREADS=1 "$BIN" "${TINY[@]}" --steps 1 2>&1 >/dev/null) || fail "OMP_NUM_THREADS=1 run failed: $err"
grep -q "OMP_NUM_THREADS" <<<"$err" && fail "a warning with 1 thread: $err"
if [ -f "$SRC/data/tokenizer/encoder.json" ]; then
  err=$("$BUILD/prepro" -q -i "$TMP/text" -o "$TMP/tok_threads" --tokenizer-dir "$SRC/data/tokenizer" \
        --threads $((hw + 1)) 2>&1 >/dev/null) || fail "prepro --threads $((hw + 1)) failed: $err"
  grep -q "prepro: warning: --threads $((hw + 1)) asks for $((hw + 1)) threads" <<<"$err" ||
    fail "prepro: no thread warning: $err"
fi
[ $failures -eq 0 ] || exit 1
echo "flag rules: ok"
