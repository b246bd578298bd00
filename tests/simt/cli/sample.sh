#!/usr/bin/env bash
# Greedy sampling (temperature 0) on the CUDA backend, through the KV-cache decode path
# (attention_decode), gives the same tokens as the CPU backend from the same fp32 model file and
# prompt. The model is trained briefly on the CPU first (the synthetic stream x -> 5x+3 mod 256),
# so its argmax is decisive rather than a near-tie between two logits.
. "$(dirname "$0")/lib.sh"
run train --device cpu "${SHAPE[@]}" --micro-batch 2 --steps 30 --lr 3e-3 --seed 3 --val-batches 1 \
  --checkpoint-dir "$W/ck" --print-every 100
MODEL="$W/ck/model_00000030.bin"
[ -f "$MODEL" ] || fail "no model file"
S=(--model "$MODEL" --prompt-ids 7,38,193,200,12 --tokens 24 --temperature 0 --ids)
"$SAMPLE" "${S[@]}" --device cpu >"$W/cpu.ids" 2>"$W/cpu.err" || { cat "$W/cpu.err"; fail "sample --device cpu"; }
t0=$SECONDS
"$SAMPLE" "${S[@]}" --device cuda >"$W/cuda.ids" 2>"$W/cuda.err" || { cat "$W/cuda.err"; fail "sample --device cuda"; }
echo "  sample --device cuda: $((SECONDS - t0)) s"
echo "  cpu:  $(cat "$W/cpu.ids")"
echo "  cuda: $(cat "$W/cuda.ids")"
[ -s "$W/cpu.ids" ] || fail "no tokens from the CPU"
[ "$(wc -w <"$W/cpu.ids")" -eq 24 ] || fail "expected 24 token ids, got: $(cat "$W/cpu.ids")"
cmp -s "$W/cpu.ids" "$W/cuda.ids" || fail "greedy tokens differ between the CPU and CUDA backends"
echo "sample: OK"
