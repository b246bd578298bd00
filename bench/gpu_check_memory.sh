#!/usr/bin/env bash
# GPU check hook: planned versus measured memory, and the seed case's throughput.
#   bench/gpu_check_memory.sh BUILD_DIR LOG_DIR
# 1. train_gpt2 reports, at start-up, the planned arena and the measured drop in free memory
#    across its allocation: they must agree within 1 MiB.
# 2. bench_train runs d12 B=64 T=1024 bf16 unconstrained and with --micro-batch auto at 11 GiB,
#    printing tok/s, MFU, the planned total and the measured peak.
set -u
BUILD=$1
LOG=$2
"$BUILD/train_gpt2" --device cuda --model d12 --micro-batch auto --gpu-mem 11GiB --steps 2 --print-every 1 \
  >"$LOG/memory_train.log" 2>&1 || { cat "$LOG/memory_train.log"; exit 1; }
line=$(grep -E "^memory  arena planned" "$LOG/memory_train.log")
echo "$line"
python3 - "$line" <<'PY' || exit 1
import re, sys
nums = [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) bytes", sys.argv[1])]
planned, measured = nums[0], nums[1]
print(f"planned {planned} measured {measured} diff {measured - planned}")
sys.exit(0 if abs(measured - planned) <= 1 << 20 else 1)
PY
ok=$?
"$BUILD/bench/bench_train" 3 --json "$LOG/bench_train.json" | tee "$LOG/bench_train.out" || exit 1
key=$(grep -E "^auto-fit at 11 GiB" "$LOG/bench_train.out" | head -1)
unc=$(grep -E "^unconstrained" "$LOG/bench_train.out" | awk '{for(i=1;i<=NF;i++) if($i=="tok/s") print $(i-1)}')
echo "KEY: arena planned=measured $( ((ok == 0)) && echo ok || echo MISMATCH ); unconstrained ${unc} tok/s; ${key}"
exit $ok
