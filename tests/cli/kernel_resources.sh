#!/usr/bin/env bash
# The checked-in kernel resource table (kernels/cuda/kernel_resources.json, the copy machines
# without nvcc use) must match what this build's ptxas reports (BUILD/kernel_resources.json,
# written by scripts/kernel_resources.sh in the CUDA build) for every architecture built: the
# same kernels, with the same registers, stack, spills, static shared memory and barriers.
# Mangled names are not compared (a kernel in an anonymous namespace carries a hash of the
# source path). Skipped (77) in a build without nvcc.
# Before comparing, the check is run on a copy of the build's table with one register count
# changed, and must fail there naming that kernel and field.
#   bash tests/cli/kernel_resources.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$1
SRC=${2:-.}
fail() { echo "FAIL: $*"; exit 1; }
fresh="$BUILD/kernel_resources.json"
checked_in="$SRC/kernels/cuda/kernel_resources.json"
if [ ! -f "$fresh" ]; then
  echo "SKIPPED: $fresh does not exist (the build writes it where nvcc is found)"
  exit 77
fi
[ -f "$checked_in" ] || fail "$checked_in is missing: run scripts/kernel_resources.sh kernels/cuda/kernel_resources.json"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

compare() {  # compare FRESH CHECKED_IN: prints each difference, exits 1 when there is one
  "$PY" - "$1" "$2" <<'PY'
import json, sys

fresh_path, checked_path = sys.argv[1:3]
fresh, checked = json.load(open(fresh_path)), json.load(open(checked_path))
fields = ["file", "registers", "stack_bytes", "spill_store_bytes", "spill_load_bytes", "static_smem", "barriers"]
archs = {k["arch"] for k in fresh["kernels"]}
new = {(k["name"], k["arch"]): k for k in fresh["kernels"]}
old = {(k["name"], k["arch"]): k for k in checked["kernels"] if k["arch"] in archs}
problems = []
for key in sorted(new):
    if key not in old:
        problems.append(f"{key[0]} on {key[1]}: not in the checked-in table")
        continue
    for f in fields:
        if new[key][f] != old[key][f]:
            problems.append(f"{key[0]} on {key[1]}: {f} is {new[key][f]}, the checked-in table says {old[key][f]}")
for key in sorted(set(old) - set(new)):
    problems.append(f"{key[0]} on {key[1]}: in the checked-in table, but ptxas no longer reports it")
for p in problems:
    print(p)
print(f"compared {len(new)} entries on {', '.join(sorted(archs))} ({fresh['compiler']} against "
      f"{checked['compiler']} of {checked['date']}): {len(problems)} differences")
sys.exit(1 if problems else 0)
PY
}

# The check catches its fault: one register count changed in a copy of the build's table.
"$PY" - "$fresh" "$TMP/planted.json" <<'PY' || fail "could not write the planted table"
import json, sys
t = json.load(open(sys.argv[1]))
k = t["kernels"][0]
k["registers"] += 8
json.dump(t, open(sys.argv[2], "w"))
print(f"planted: {k['name']} on {k['arch']} with {k['registers']} registers")
PY
out=$(compare "$fresh" "$TMP/planted.json") && fail "a planted register difference was not reported: $out"
grep -q ": registers is " <<<"$out" || fail "the planted difference was reported without the field: $out"
echo "the planted difference is reported: $(head -n 1 <<<"$out")"

out=$(compare "$fresh" "$checked_in")
status=$?
echo "$out"
[ "$status" = 0 ] || fail "kernels/cuda/kernel_resources.json is stale for this compiler; run scripts/kernel_resources.sh kernels/cuda/kernel_resources.json"
echo "kernel resource table ok"
