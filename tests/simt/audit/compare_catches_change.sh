#!/usr/bin/env bash
# The up-to-date check's comparer fails on the fault it is for: a report whose first kernel moves
# four times as many load sectors differs from the checked-in one, naming the kernel and field;
# the checked-in report compared with itself passes.
#   compare_catches_change.sh PYTHON3 compare_report.py kernels/cuda/kernel_audit.json
set -u
py=$1 cmp=$2 ref=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" - "$ref" "$tmp/changed.json" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
d["kernels"][0]["global"]["load_sectors"] *= 4
json.dump(d, open(sys.argv[2], "w"))
PY
out=$("$py" "$cmp" "$tmp/changed.json" "$ref")
rc=$?
echo "$out"
if [ "$rc" != 1 ] || ! grep -q "global.load_sectors" <<<"$out"; then
  echo "FAILED: a changed load_sectors count was not reported (exit $rc)"
  exit 1
fi
if ! "$py" "$cmp" "$ref" "$ref" > /dev/null; then
  echo "FAILED: the report compared with itself differs"
  exit 1
fi
echo "PASSED: the comparer reports a changed count and accepts an identical report"
