#!/usr/bin/env bash
# Data parallelism on the CPU backend over MPI: `mpirun -np 2` gives the same losses as one
# process at the same global batch, for ZeRO-0 and ZeRO-1; ZeRO-0 and ZeRO-1 agree bitwise with
# each other; ranks that disagree on the config stop at start with a message.
# Tolerance vs one process: 1e-6 relative per step (the two ranks' gradients are summed in
# another order than one process accumulates them, so the last bits may differ).
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null || { echo "SKIPPED: mpirun not found (install openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ARGS=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 64 --seq-len 32 --micro-batch 2
      --total-batch-tokens 256 --lr 3e-3 --val-every 0)

OMP_NUM_THREADS=1 "$BIN" "${ARGS[@]}" --steps 6 --log "$dir/one.jsonl" >"$dir/one.out" 2>&1 || fail "one process: $(tail -3 "$dir/one.out")"
"${MPIRUN[@]}" "$BIN" "${ARGS[@]}" --steps 6 --log "$dir/z0.jsonl" >"$dir/z0.out" 2>&1 || fail "2 ranks ZeRO-0: $(tail -5 "$dir/z0.out")"
"${MPIRUN[@]}" "$BIN" "${ARGS[@]}" --steps 6 --zero 1 --log "$dir/z1.jsonl" >"$dir/z1.out" 2>&1 || fail "2 ranks ZeRO-1: $(tail -5 "$dir/z1.out")"
grep -q "2 processes" "$dir/z0.out" || fail "the 2-rank run did not report its ranks"
[ "$(grep -c '^step' "$dir/z0.out")" -eq 6 ] || fail "only rank 0 should print step lines"

python3 - "$dir" <<'PY' || fail "losses differ"
import json, sys
d = sys.argv[1]
load = lambda n: [r["loss"] for r in map(json.loads, open(f"{d}/{n}.jsonl")) if "event" not in r]
one, z0, z1 = load("one"), load("z0"), load("z1")
assert len(one) == len(z0) == len(z1) == 6, (len(one), len(z0), len(z1))
worst = max(abs(a - b) / abs(a) for a, b in zip(one, z0))
print(f"max relative loss difference, 1 process vs 2 ranks: {worst:.2e}")
assert worst <= 1e-6, worst
assert z0 == z1, f"ZeRO-0 and ZeRO-1 differ: {z0} vs {z1}"
assert one[-1] < one[0], "loss did not fall"
PY

# ZeRO-1 checkpoints: each rank saves its optimizer shard; a 2-rank resume continues bitwise, and
# a resume with another number of processes is refused with a message.
CK=(--lr-schedule constant --zero 1 --checkpoint-dir "$dir/ck")
"${MPIRUN[@]}" "$BIN" "${ARGS[@]}" "${CK[@]}" --steps 3 --checkpoint-every 3 >"$dir/c1.out" 2>&1 || fail "checkpointed run: $(tail -5 "$dir/c1.out")"
[ -f "$dir/ck/state_00000003_rank1.bin" ] || fail "rank 1 wrote no state file"
"${MPIRUN[@]}" "$BIN" "${ARGS[@]}" "${CK[@]}" --steps 6 --resume --log "$dir/resumed.jsonl" >"$dir/c2.out" 2>&1 || fail "resume: $(tail -5 "$dir/c2.out")"
"${MPIRUN[@]}" "$BIN" "${ARGS[@]}" --steps 6 --lr-schedule constant --zero 1 --log "$dir/straight.jsonl" >"$dir/c3.out" 2>&1 || fail "straight run"
python3 - "$dir" <<'PY' || fail "resumed 2-rank losses differ from the uninterrupted run"
import json, sys
d = sys.argv[1]
load = lambda n: [r["loss"] for r in map(json.loads, open(f"{d}/{n}.jsonl")) if "event" not in r]
straight, resumed = load("straight"), load("resumed")
assert straight[3:] == resumed, (straight, resumed)
PY
out=$(OMP_NUM_THREADS=1 "$BIN" "${ARGS[@]}" "${CK[@]}" --steps 6 --resume 2>&1)
[ $? -ne 0 ] && grep -q -- "--world-size" <<<"$out" || fail "a 1-process resume of a 2-rank checkpoint should be refused: $out"

# Ranks that disagree on the model shape must refuse to start (MPMD launch: one flag differs).
ARGS3=("${ARGS[@]}")
ARGS3[3]=3  # --layers 3 on the second rank
out=$(mpirun --oversubscribe -x OMP_NUM_THREADS=1 -np 1 "$BIN" "${ARGS[@]}" --steps 2 : -np 1 "$BIN" "${ARGS3[@]}" --steps 2 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "disagreeing ranks should fail"
grep -q "ranks disagree" <<<"$out" || fail "no disagreement message: $out"

# The dry run plans one rank's share: ZeRO-1 over 8 ranks shards master/m/v by 8.
j0=$("$BIN" --dry-run --model d12 --gpu-mem 80GiB --world-size 8 --micro-batch 4 --json)
j1=$("$BIN" --dry-run --model d12 --gpu-mem 80GiB --world-size 8 --micro-batch 4 --zero 1 --json)
python3 - "$j0" "$j1" <<'PY' || fail "ZeRO-1 dry run does not shard the optimizer state"
import json, sys
a, b = json.loads(sys.argv[1])["categories"], json.loads(sys.argv[2])["categories"]
for k in ("master_weights", "adam_m", "adam_v"):
    assert abs(b[k] * 8 - a[k]) <= 8 * 256, (k, a[k], b[k])
assert a["gradients"] == b["gradients"]
PY
echo "MPI data-parallel checks passed"
