#!/usr/bin/env bash
# The CPU backend's roofline prediction against its measured steps: config A (L=6 C=384 NH=6,
# B=4 T=256) and d12 at B=4 T=128, the configurations of bench/RESULTS.md ("Where the time goes"),
# d12 at B=1 T=1024 and, out of the calibration sample, L=8 C=512 NH=8 at B=2 T=512; all fp32, no
# recompute, synthetic data.
#
#   bench/cpu_prediction.sh [BUILD_DIR] [STEPS] [OUT_DIR]     (defaults: build, 8, a temp dir)
#
# Prints each run's per-op profile table (measured ms beside predicted ms), then one line per
# configuration: the median step, the predicted step and the error. Exit 0 when all are within
# 15 %. Run it on an otherwise idle machine: other processes on the cores slow every OpenMP
# region (both threads wait for the slower one), which the prediction does not model.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
STEPS=${2:-8}
OUT=${3:-$(mktemp -d)}
mkdir -p "$OUT"
BIN="$BUILD/train_gpt2"
[ -x "$BIN" ] || { echo "cpu_prediction: $BIN not found (build first)" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
run() {
  local name=$1
  shift
  "$BIN" --device cpu --steps "$STEPS" --val-batches 1 --print-every 1000 "$@" --profile \
    --profile-json "$OUT/$name.json" >"$OUT/$name.out" 2>&1 || { tail -5 "$OUT/$name.out"; status=1; return; }
  echo "== $name: $*"
  sed -n '/^profile /,/measured efficiencies/p' "$OUT/$name.out"
}
run config_a --layers 6 --heads 6 --width 384 --micro-batch 4 --seq-len 256
run d12_b4_t128 --model d12 --micro-batch 4 --seq-len 128
run d12_b1_t1024 --model d12 --micro-batch 1 --seq-len 1024
run l8_c512_b2_t512 --layers 8 --heads 8 --width 512 --micro-batch 2 --seq-len 512
for name in config_a d12_b4_t128 d12_b1_t1024 l8_c512_b2_t512; do
  [ -f "$OUT/$name.json" ] || continue
  python3 - "$OUT/$name.json" "$name" <<'PY' || status=1
import json, sys
j = json.load(open(sys.argv[1]))
med, pred = j["step_s"]["median"], j["step_s"]["predicted"]
err = (pred - med) / med
rate = j["model_flops_per_step"] / med
print(f"{sys.argv[2]}: median step {med * 1e3:.1f} ms over {j['steps']} steps, predicted {pred * 1e3:.1f} ms, "
      f"error {100 * err:+.1f}%; model FLOPs {rate / 1e9:.1f} GFLOP/s, {100 * rate / j['peak_flops']:.1f}% of the "
      f"probed peak")
sys.exit(0 if abs(err) <= 0.15 else 1)
PY
done
exit $status
