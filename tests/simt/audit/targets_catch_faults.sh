#!/usr/bin/env bash
# check_targets.py fails on each fault it is for: a memory-bound kernel at efficiency 0.5, one
# reading twice its compulsory bytes, one at 25% occupancy, a kernel with spills, a flash kernel
# with 2x its ideal wavefronts. Each is planted in a copy of the checked-in report.
#   targets_catch_faults.sh PYTHON3 check_targets.py kernels/cuda/kernel_audit.json
set -u
py=$1 check=$2 ref=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for fault in efficiency unique occupancy spills wavefronts; do
  "$py" - "$ref" "$tmp/$fault.json" "$fault" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
fault = sys.argv[3]
mem = next(k for k in d["kernels"] if k["kernel"].startswith("residual/"))
flash = next(k for k in d["kernels"] if k["kernel"].startswith("attention/flash_forward"))
if fault == "efficiency": mem["global"]["efficiency"] = 0.5
if fault == "unique": mem["global"]["unique_bytes"] = 2 * mem["global"]["compulsory_bytes"]
if fault == "occupancy": mem["resources"]["sm_90"]["occupancy"] = 0.25
if fault == "spills": flash["resources"]["sm_86"]["spill_bytes"] = 8
if fault == "wavefronts": flash["shared"]["wavefronts"] = 2 * flash["shared"]["ideal_wavefronts"]
json.dump(d, open(sys.argv[2], "w"))
PY
  if out=$("$py" "$check" "$tmp/$fault.json"); then
    echo "FAILED: a planted $fault fault passed the targets"
    status=1
  else
    echo "PASSED: planted $fault fault caught: $(grep -m1 FAILED <<<"$out")"
  fi
done
exit $status
