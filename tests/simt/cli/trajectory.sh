#!/usr/bin/env bash
# The CUDA backend's training trajectory against the CPU backend's: same seed, same synthetic
# stream, 5 optimizer steps of 2 micro-batches (gradient accumulation) with gradient clipping
# biting at every step (--grad-clip 0.5 against norms of about 2).
#   trajectory.sh BUILD_DIR SOURCE_DIR [fp32|bf16] [hs16]
# fp32: every step's loss within 1e-5 relative of the CPU's, and after the 5 steps every
#   parameter (from the written model files) within |cuda - cpu| <= 1e-4 * max|cpu over its
#   tensor| + 0.1 * lr. The lr term is AdamW's: it moves a weight by lr * m/(sqrt(v) + eps),
#   about lr whatever the gradient's size, so a gradient that is rounding noise (the key bias's
#   is exactly zero analytically: softmax ignores a shift shared by all keys) or close to eps
#   moves by a fraction of lr that differs between two correct backends. Observed here: up to
#   0.014 lr at C=128 (in the key bias and a handful of single weights, already after step 1 and
#   not growing) and 0.061 lr at C=64 (hs16: 2 of fcprojw's 32,768 weights, while the losses
#   agree within 4e-8); a real fault moves the weights by whole multiples of lr and the losses
#   beyond 1e-5.
# bf16: every step's loss within 1e-2 relative. bf16 storage keeps 8 significant bits, so each
#   stored activation is off by up to 2^-9 ~ 2e-3 relative; a loss passes through some ten
#   rounded stores per layer (2 layers), whose errors are of random sign and mostly average out over
#   the 128 tokens of a micro-batch, but the updated weights carry them into later steps: 1e-2
#   (five ulps of bf16) bounds that with room, while a real fault (a wrong index, a missing
#   term) moves the loss by far more (the loss falls by ~2e-2 per step here, so a step out of
#   place would also show).
. "$(dirname "$0")/lib.sh"
PREC=${3:-fp32}
# hs16: head size 16 (C=64, 4 heads), which the flash kernels do not take: attention runs the
# simple kernels with the head size read at run time, in bf16 as in fp32.
if [ "${4:-}" = hs16 ]; then SHAPE=(--layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 64 --seq-len 64); fi
COMMON=("${SHAPE[@]}" --micro-batch 2 --total-batch-tokens $((2 * 2 * T)) --steps 5 --grad-clip 0.5
        --lr 1e-3 --warmup 0 --seed 4321 --val-batches 1 --print-every 1)

# Both precisions: the CPU run, the CUDA run, then the step losses compared (fp32 also the
# clipping and the model files).
TOL=$([ "$PREC" = fp32 ] && echo 1e-5 || echo 1e-2)
ck_cpu=(); ck_cuda=()
[ "$PREC" = fp32 ] && ck_cpu=(--checkpoint-dir "$W/cpu") && ck_cuda=(--checkpoint-dir "$W/cuda")
run cpu --device cpu "${COMMON[@]}" --log "$W/cpu.jsonl" "${ck_cpu[@]}"
run cuda --device cuda --precision "$PREC" "${COMMON[@]}" --log "$W/cuda.jsonl" "${ck_cuda[@]}"
grep -q "precision=$PREC\|backend cuda" "$W/cuda.out" || fail "the CUDA run did not use the CUDA backend"
"$PY" - "$W" "$PREC" "$TOL" <<'PY' || fail "$PREC trajectory differs from the CPU's"
import sys; sys.path.insert(0, sys.argv[1])
import json
from e2e import losses, compare_models
d, prec, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
cpu, cuda = losses(f"{d}/cpu.jsonl"), losses(f"{d}/cuda.jsonl")
assert sorted(cpu) == sorted(cuda) == [1, 2, 3, 4, 5], (cpu, cuda)
if prec == "fp32":
    norms = [r["grad_norm"] for r in map(json.loads, open(f"{d}/cuda.jsonl")) if "event" not in r]
    print("  grad norms (before clipping to 0.5):", " ".join(f"{n:.3f}" for n in norms))
    assert min(norms) > 0.5, "clipping did not bite at every step"
ok = True
for s in cpu:
    rel = abs(cuda[s] - cpu[s]) / abs(cpu[s])
    print(f"  step {s}: cpu {cpu[s]:.9f} cuda {prec} {cuda[s]:.9f} rel {rel:.2e}")
    ok &= rel <= tol
assert ok, f"loss beyond {tol:g} relative"
if prec == "fp32":
    assert compare_models(f"{d}/cuda/model_00000005.bin", f"{d}/cpu/model_00000005.bin", 1e-4, 0.1 * 1e-3)
PY
echo "trajectory ($PREC): OK"
