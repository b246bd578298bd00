#!/usr/bin/env bash
# Checkpoints move between backends: 3 fp32 steps on the CUDA backend with a checkpoint, then
# --resume on the CPU backend loads its model file and state and trains steps 4-5. Those losses
# are compared with an uninterrupted 5-step CPU run: within 1e-5 relative (the CUDA weights
# after 3 steps differ from the CPU's in the last bits only).
. "$(dirname "$0")/lib.sh"
COMMON=("${SHAPE[@]}" --precision fp32 --micro-batch 2 --total-batch-tokens $((2 * T)) --lr 1e-3
        --lr-schedule constant --seed 21 --val-batches 1)
run cuda --device cuda "${COMMON[@]}" --steps 3 --checkpoint-dir "$W/ck" --log "$W/cuda.jsonl"
[ "$(cat "$W/ck/latest")" = 3 ] || fail "no step-3 checkpoint from the CUDA run"
run cpu_resumed --device cpu "${COMMON[@]}" --steps 5 --checkpoint-dir "$W/ck" --resume --log "$W/resumed.jsonl"
grep -q "resume  from step 3" "$W/cpu_resumed.out" || fail "the CPU run did not resume from step 3: $(head -20 "$W/cpu_resumed.out")"
[ "$(cat "$W/ck/latest")" = 5 ] || fail "the CPU run wrote no step-5 checkpoint"
run cpu_straight --device cpu "${COMMON[@]}" --steps 5 --log "$W/straight.jsonl"
"$PY" - "$W" <<'PY' || fail "the resumed CPU run does not continue the CUDA run's trajectory"
import sys; sys.path.insert(0, sys.argv[1])
from e2e import losses
d = sys.argv[1]
cuda, resumed, straight = losses(f"{d}/cuda.jsonl"), losses(f"{d}/resumed.jsonl"), losses(f"{d}/straight.jsonl")
assert sorted(resumed) == [4, 5], resumed
for s in range(1, 6):
    got = cuda.get(s, resumed.get(s))
    rel = abs(got - straight[s]) / abs(straight[s])
    print(f"  step {s}: {'cuda' if s in cuda else 'cpu resumed'} {got:.9f}  cpu straight {straight[s]:.9f}  rel {rel:.2e}")
    assert rel <= 1e-5, rel
PY
echo "interop: OK"
