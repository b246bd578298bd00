#!/usr/bin/env bash
# train_gpt2 --device cuda --profile under the SIMT layer: the CUDA backend's event timer brackets
# every call, the losses are bitwise the same as without the profile (bf16), and the table and
# JSON list the ops with the roofline prediction beside them.
. "$(dirname "$0")/lib.sh"
ARGS=(--device cuda --precision bf16 "${SHAPE[@]}" --micro-batch 2 --total-batch-tokens 256 --steps 3
      --seed 5 --val-batches 1 --recompute norm)
run plain "${ARGS[@]}" --log "$W/plain.jsonl"
run prof "${ARGS[@]}" --log "$W/prof.jsonl" --profile --profile-json "$W/profile.json"
"$PY" - "$W" <<'PY' || fail "the profile changed the losses or wrote a bad profile"
import json, sys
sys.path.insert(0, sys.argv[1])
from e2e import losses
w = sys.argv[1]
a, b = losses(f"{w}/plain.jsonl", exact=True), losses(f"{w}/prof.jsonl", exact=True)
assert len(a) == 3 and a == b, (a, b)
j = json.load(open(f"{w}/profile.json"))
assert j["steps"] == 2 and j["warmup_steps"] == 1, j
ops = {o["name"]: o for o in j["ops"]}
# 2 layers x 2 micro-batches per step
for name in ("matmul qkv forward", "attention forward", "attention backward", "layernorm recompute",
             "matmul fcproj+gelu backward", "classifier", "adamw"):
    o = ops[name]
    assert o["measured_s"] is not None and o["measured_s"] > 0, o
    assert o["predicted_s"] > 0, o
assert ops["matmul qkv forward"]["calls_per_step"] == 4, ops["matmul qkv forward"]
assert ops["layernorm recompute"]["calls_per_step"] == 8, ops["layernorm recompute"]
print("  losses equal:", list(a.values()))
PY
grep -q "^profile 2 steps after 1 warm-up step" "$W/prof.out" || fail "no profile table: $(tail -30 "$W/prof.out")"
grep -q "matmul lm_head backward" "$W/prof.out" || fail "no lm_head row"
echo "profile: OK"
