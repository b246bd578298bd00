#!/usr/bin/env bash
# GPU check hook: a short real training run of GPT-2 124M on the GPU, showing the loss falling,
# then the same code path through NCCL with world size 1 (mpirun -np 1, forced communicator). The
# d12 run is profiled (--profile-json LOG/profile_d12.json) and bench/calibrate_device.py turns the
# profile into measured efficiencies for the card's entry in the device table (LOG/calibration.txt).
#   bench/gpu_check_train.sh BUILD_DIR LOG_DIR
# Uses the Brown corpus shards when they travelled with the tree (data/brown), else the
# synthetic stream. Prints "KEY: ..." for the summary table.
set -u
BUILD=$1
LOG=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$BUILD/train_gpt2"
DATA=()
if compgen -G "$ROOT/data/brown/train_*.bin" >/dev/null; then
  DATA=(--train-data "$ROOT/data/brown/train_*.bin" --val-data "$ROOT/data/brown/val_*.bin")
  src=brown
else
  src=synthetic
fi
rm -rf "$LOG/train.jsonl" "$LOG/ckpt"  # a fresh run each time (a used --checkpoint-dir needs --resume)
"$BIN" --device cuda --model d12 --seq-len 1024 --micro-batch 16 --total-batch-tokens 65536 --steps 30 --lr 1e-3 \
  --warmup 5 --val-every 15 --val-batches 2 "${DATA[@]}" --log "$LOG/train.jsonl" --checkpoint-dir "$LOG/ckpt" \
  --profile --profile-json "$LOG/profile_d12.json" || exit 1
# The per-op profile against the roofline, as device-table fields (engine/plan/gpu_catalog.cpp).
python3 "$ROOT/bench/calibrate_device.py" "$LOG/profile_d12.json" >"$LOG/calibration.txt" 2>&1 &&
  sed 's/^/calibration: /' "$LOG/calibration.txt"
summary=$(python3 - "$LOG/train.jsonl" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "event" not in r]  # steps only
first, last = rows[0]["loss"], rows[-1]["loss"]
tail = rows[len(rows) // 2:]
tok = sum(r["tok_per_s"] for r in tail) / len(tail)
mfu = [r["mfu"] for r in tail if r.get("mfu") is not None]
mfu_s = f", MFU {100 * sum(mfu) / len(mfu):.1f}%" if mfu else ""
print(f"loss {first:.3f} -> {last:.3f}, {tok:,.0f} tok/s{mfu_s}")
sys.exit(0 if last < first - 0.5 else 1)
PY
)
ok=$?
echo "d12 on $src: $summary"
# Sampling on the GPU from the checkpoint just written (KV-cache decoding, bf16).
if "$BUILD/sample" --device cuda --model "$LOG/ckpt" --prompt-ids 50256 -n 16 --ids --seed 1 >"$LOG/sample.log" 2>&1; then
  echo "sample: $(cat "$LOG/sample.log")"
else
  echo "sample --device cuda FAILED: $(tail -2 "$LOG/sample.log")"
  ok=1
fi
nccl="nccl: mpirun not found"
if command -v mpirun >/dev/null 2>&1; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  if GPT2_FORCE_COMMUNICATOR=1 mpirun -np 1 -x GPT2_FORCE_COMMUNICATOR "$BIN" --device cuda --layers 4 --heads 4 \
      --width 256 --vocab 512 --max-seq-len 256 --seq-len 256 --micro-batch 4 --steps 5 --zero 1 \
      >"$LOG/train_nccl.log" 2>&1 && grep -q "NCCL, rank 0 of 1" "$LOG/train_nccl.log"; then
    nccl="nccl world 1 ZeRO-1: ok"
  else
    nccl="nccl world 1: FAILED (train_nccl.log)"
    ok=1
  fi
fi
echo "KEY: $summary; $nccl"
exit $ok
