#!/usr/bin/env bash
# Recompute policies and logits chunks change what is kept, not what is computed: on the CUDA
# backend, one optimizer step under each policy (none, gelu, norm, block, budget:1) gives a
# bitwise-identical loss (the JSONL double compared as text), validation loss and updated model
# file (sha256); each logits chunk (64 tokens, and all 128 tokens of the micro-batch) gives a
# bitwise-identical loss. The updated weights of different chunks may differ in their last bits:
# the lm_head/wte gradient is one GEMM per chunk, accumulated with beta = 1, so two chunks sum
# (Σ first half) + (Σ second half) where one chunk sums all tokens in cuBLASLt's own order.
#   recompute.sh BUILD_DIR SOURCE_DIR [fp32|bf16]
# Each policy and each chunk appears at least once; the policies are compared among the runs of
# one chunk, and the chunks with each other under recompute none.
. "$(dirname "$0")/lib.sh"
PREC=${3:-fp32}
COMMON=(--device cuda --precision "$PREC" "${SHAPE[@]}" --micro-batch 2 --total-batch-tokens $((2 * T)) --steps 1
        --seed 99 --val-batches 1)
CONFIGS=("none 128" "gelu 64" "norm 128" "block 64" "budget:1 128" "none 64")
for cfg in "${CONFIGS[@]}"; do
  set -- $cfg
  name="${1/:/_}_$2"
  run "$name" "${COMMON[@]}" --recompute "$1" --logits-chunk "$2" --log "$W/$name.jsonl" --checkpoint-dir "$W/$name"
  grep -q "recompute=$1 logits_chunk=$2" "$W/$name.out" || fail "$name: the run did not use recompute=$1 logits_chunk=$2: $(grep '^run' "$W/$name.out")"
done
"$PY" - "$W" "${CONFIGS[@]}" <<'PY' || fail "$PREC: recompute policies / logits chunks are not bitwise identical"
import hashlib, re, sys
d, configs = sys.argv[1], sys.argv[2:]
rows = []
for c in configs:
    pol, chunk = c.split()
    name = f"{pol.replace(':', '_')}_{chunk}"
    line = open(f"{d}/{name}.jsonl").read().strip().splitlines()[-1]
    loss = re.search(r'"loss":([^,}]+)', line).group(1)
    val = re.search(r'"val_loss":([^,}]+)', line).group(1)
    sha = hashlib.sha256(open(f"{d}/{name}/model_00000001.bin", "rb").read()).hexdigest()
    rows.append((c, loss, val, sha))
    print(f"  {c:14s} loss {loss:20s} val {val:20s} model sha256 {sha[:16]}")
ok = True
by_chunk = {}
for r in rows: by_chunk.setdefault(r[0].split()[1], []).append(r)
for chunk, group in by_chunk.items():   # the policies, at one chunk
    bad = [r[0] for r in group[1:] if r[1:] != group[0][1:]]
    if bad: print(f"  recompute policies differ at chunk {chunk}: {bad} vs '{group[0][0]}'"); ok = False
firsts = [g[0] for g in by_chunk.values()]   # the chunks, at one policy
if any(r[1] != firsts[0][1] for r in firsts[1:]):
    print(f"  logits chunks give different losses: " + " vs ".join(f"'{r[0]}'" for r in firsts)); ok = False
assert ok
PY
echo "recompute ($PREC): OK"
