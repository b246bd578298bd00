#!/usr/bin/env bash
# --micro-batch auto on a small emulated card, with the CUDA backend's own memory measurements.
# The card's memory is set 1 MiB below what B=4 without recompute needs (from the dry run's
# JSON plan, so the test follows the planner), which leaves auto-fit a recompute policy:
#  A. `--micro-batch auto` picks one (the "run" line names recompute other than none), trains 2
#     steps, and reports "arena planned X bytes, measured drop in free memory X bytes" (equal).
#     The binary itself fails a run whose backend allocated device memory after start-up
#     ("internal error: the backend allocated memory during training", exit 1), so exit 0 is the
#     check that nothing was allocated after start-up.
#     The backend line says the card is emulated, with no measured MFU and no predicted time
#     (auto-fit's own ranking still predicts the real card, marked as an estimate).
#  B. The same model at --micro-batch 4 (no recompute) fails before allocating: exit 1, the plan
#     and "DOES NOT FIT" on stderr, the flags that fit (the ones auto-fit chose), no arena
#     measurement and no step.
. "$(dirname "$0")/lib.sh"
M=(--device cuda --precision bf16 "${SHAPE[@]}" --total-batch-tokens $((4 * T)) --seed 5 --val-batches 1)
need=$("$TRAIN" --dry-run --json "${M[@]}" --micro-batch 4 --recompute none --gpu-mem 1GiB --reserve 64MiB |
       "$PY" -c "import json,sys; print(json.load(sys.stdin)['total_bytes'])") || fail "dry run"
export GPT2_SIMT_MEMORY=$((need - 1048576))B
echo "  B=4 without recompute needs $need bytes; the card has $GPT2_SIMT_MEMORY"

run auto "${M[@]}" --micro-batch auto --steps 2
cat "$W/auto.out"
runline=$(grep -E '^run ' "$W/auto.out") || fail "no run line"
pol=$(sed -nE 's/.*recompute=([^ ]+).*/\1/p' <<<"$runline")
[ -n "$pol" ] && [ "$pol" != none ] || fail "auto-fit did not pick a recompute policy: $runline"
arena=$(grep -E 'arena planned [0-9,]+ bytes, measured drop in free memory [0-9,]+ bytes' "$W/auto.out") ||
  fail "no planned/measured arena line"
planned=$(sed -nE 's/.*arena planned ([0-9,]+) bytes.*/\1/p' <<<"$arena")
measured=$(sed -nE 's/.*free memory ([0-9,]+) bytes.*/\1/p' <<<"$arena")
[ "$planned" = "$measured" ] || fail "planned arena $planned != measured $measured"
[ "$(grep -c '^step' "$W/auto.out")" -eq 2 ] || fail "expected 2 step lines"
# The card is emulated: the backend line says so; no step line gives an MFU, and no time is predicted.
grep -qE "^backend cuda \(.*emulated on the CPU by the SIMT layer" "$W/auto.out" ||
  fail "the backend line does not say the card is emulated: $(grep '^backend' "$W/auto.out")"
grep -q "^step.*MFU" "$W/auto.out" && fail "a measured MFU for an emulated card: $(grep -m1 '^step.*MFU' "$W/auto.out")"
grep -q "^predict" "$W/auto.out" && fail "a predicted time for an emulated card"
# Under the layer the count is every cudaMalloc of the process (the libraries' too).
grep -q "^memory  allocations after start-up: 0$" "$W/auto.out" ||
  fail "expected 'allocations after start-up: 0', got: $(grep 'allocations after' "$W/auto.out")"
flags=$(sed -nE 's/.*B=([0-9]+) .*recompute=([^ ]+) logits_chunk=([0-9]+).*/--micro-batch \1 --recompute \2 --logits-chunk \3/p' <<<"$runline")

"$TRAIN" "${M[@]}" --micro-batch 4 --steps 2 >"$W/big.out" 2>"$W/big.err"; rc=$?
[ $rc -eq 1 ] || { cat "$W/big.out" "$W/big.err"; fail "B=4 without recompute should exit 1, got $rc"; }
grep -q "DOES NOT FIT" "$W/big.err" || fail "no verdict on stderr"
grep -qE '^  arena +[0-9,]+' "$W/big.err" || fail "no plan on stderr"
grep -qF -- "$flags" "$W/big.err" || { cat "$W/big.err"; fail "the suggested flags are not auto-fit's ($flags)"; }
grep -q "arena planned" "$W/big.out" "$W/big.err" && fail "the failing run allocated its arena"
grep -q "^step" "$W/big.out" && fail "the failing run trained"
echo "  auto-fit chose: $flags; arena planned $planned = measured $measured"
echo "autofit: OK"
