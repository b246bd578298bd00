#!/usr/bin/env bash
# What a new user meets on a first run:
# - the predicted time per step and for the run is printed before step 1;
# - the default model on the CPU, predicted to take hours, names a small model for a first run;
# - --eval-only without --val-data says its val loss is on synthetic tokens;
# - a --train-data glob in a folder that does not exist names the folder and how to make shards.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 1)

# 1. The prediction comes before the first step.
out=$("$BIN" "${TINY[@]}" --steps 2 2>&1) || fail "tiny run failed: $out"
first_predict=$(grep -n "^predict " <<<"$out" | head -1 | cut -d: -f1)
first_step=$(grep -n "^step " <<<"$out" | head -1 | cut -d: -f1)
[ -n "$first_predict" ] || fail "no predict line: $out"
grep -qE "^predict .+/step, .+ for 2 steps \(roofline for cpu" <<<"$out" || fail "predict line: $(grep ^predict <<<"$out")"
[ "$first_predict" -lt "$first_step" ] || fail "the prediction comes after step 1"

# 2. GPT-2 124M on the CPU for many steps: a note with a small model, before step 1. The run is
# stopped as soon as the note is out (it would take hours).
"$BIN" --device cpu --seq-len 64 --micro-batch 1 --steps 1000000 >"$TMP/big.out" 2>"$TMP/big.err" &
BG_PID=$!
wait_for "note:" "$TMP/big.err" 60
stop_background
grep -q "note: GPT-2 d12.* on the CPU is predicted to take .* h .*--layers 4 --heads 4 --width 128" "$TMP/big.err" ||
  fail "no note for a long CPU run: $(cat "$TMP/big.err")"
grep -q "^step" "$TMP/big.out" && fail "the note came after a step"
# ... and none for a shape the user chose.
grep -q "note:" <<<"$out" && fail "a note for a small model: $out"

# 3. --eval-only without --val-data: the val loss is labelled synthetic.
out=$("$BIN" "${TINY[@]}" --eval-only 2>&1) || fail "--eval-only failed: $out"
grep -qE "^val loss [0-9.]+ \(on synthetic tokens: no --val-data given\)" <<<"$out" ||
  fail "--eval-only's val loss is not labelled: $(grep 'val loss' <<<"$out")"

# 4. A glob in a missing folder.
err=$("$BIN" "${TINY[@]}" --steps 1 --train-data "$TMP/nofolder/train_*.bin" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "missing data folder: exit $rc: $err"
grep -qF "the directory $TMP/nofolder does not exist" <<<"$err" || fail "missing folder not named: $err"
grep -q "HINT: make shards with data/fetch_corpus.sh" <<<"$err" || fail "no hint: $err"
echo PASS
