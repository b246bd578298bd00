#!/usr/bin/env bash
# Data parallelism on the CUDA backend (the layer's NCCL over MPI): `mpirun -np 2` in fp32 with
# ZeRO-0 and ZeRO-1 gives the losses of one process at the same global batch within 1e-6
# relative per step (the two ranks' gradients are summed in another order than one process
# accumulates them), ZeRO-0 and ZeRO-1 agree bitwise, and a 2-rank ZeRO-1 checkpoint resumes bit
# for bit (losses of the resumed steps as exact JSONL text, and the final model file's sha256).
. "$(dirname "$0")/lib.sh"
command -v mpirun >/dev/null || { echo "SKIPPED: mpirun not found (install openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Leak detection stays on: the layer ships suppressions for the MPI libraries' own allocations
# (__lsan_default_suppressions in tests/simt/src/runtime.cpp), so the README's command works as written.
export ASAN_OPTIONS=detect_leaks=1
MPIRUN=(mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS -x GPT2_SIMT_MEMORY)
[ -n "${GPT2_SIMT_SCHEDULE:-}" ] && MPIRUN+=(-x GPT2_SIMT_SCHEDULE)
# Global batch 2 sequences: one process accumulates 2 micro-batches of 1; two ranks take one each.
ARGS=(--device cuda --precision fp32 "${SHAPE[@]}" --micro-batch 1 --total-batch-tokens $((2 * T)) --steps 3
      --lr 1e-3 --grad-clip 1 --seed 11 --val-batches 1)
mrun() {
  local name=$1; shift
  local t0=$SECONDS
  local rc=0
  "${MPIRUN[@]}" "$TRAIN" "$@" >"$W/$name.out" 2>&1 || rc=$?
  [ $rc -eq 0 ] || { tail -20 "$W/$name.out"; fail "$name: mpirun exited $rc"; }
  echo "  $name: $((SECONDS - t0)) s"
}

OMP_NUM_THREADS=2 run one "${ARGS[@]}" --log "$W/one.jsonl"
mrun z0 "${ARGS[@]}" --zero 0 --log "$W/z0.jsonl"
mrun z1 "${ARGS[@]}" --zero 1 --log "$W/z1.jsonl" --checkpoint-dir "$W/ck" --checkpoint-every 1
grep -q "2 processes" "$W/z0.out" || fail "the 2-rank run did not report its ranks"
grep -q "ZeRO-1" "$W/z1.out" || fail "the ZeRO-1 run did not say ZeRO-1"
[ -f "$W/ck/state_00000001_rank1.bin" ] || fail "rank 1 wrote no ZeRO-1 state file"

"$PY" - "$W" <<'PY' || fail "multi-rank losses differ"
import hashlib, sys; sys.path.insert(0, sys.argv[1])
from e2e import losses
d = sys.argv[1]
one, z0, z1 = losses(f"{d}/one.jsonl"), losses(f"{d}/z0.jsonl"), losses(f"{d}/z1.jsonl")
assert sorted(one) == sorted(z0) == sorted(z1) == [1, 2, 3], (one, z0, z1)
worst = 0
for s in one:
    rel = max(abs(z0[s] - one[s]), abs(z1[s] - one[s])) / abs(one[s])
    worst = max(worst, rel)
    print(f"  step {s}: 1 process {one[s]:.9f}  ZeRO-0 {z0[s]:.9f}  ZeRO-1 {z1[s]:.9f}  rel {rel:.2e}")
assert worst <= 1e-6, f"1 process vs 2 ranks: {worst:.2e} > 1e-6"
assert losses(f"{d}/z0.jsonl", True) == losses(f"{d}/z1.jsonl", True), "ZeRO-0 and ZeRO-1 differ"
PY

# Resume from step 1 of the ZeRO-1 run: point `latest` back at it and remove the later steps.
cp "$W/ck/model_00000003.bin" "$W/straight_model_3.bin"
rm -f "$W/ck"/*_0000000[23]*.bin
echo 1 >"$W/ck/latest"
mrun resumed "${ARGS[@]}" --zero 1 --log "$W/resumed.jsonl" --checkpoint-dir "$W/ck" --checkpoint-every 1 --resume
grep -q "resume  from step 1" "$W/resumed.out" || fail "did not resume from step 1: $(head -20 "$W/resumed.out")"

"$PY" - "$W" <<'PY' || fail "the resumed 2-rank ZeRO-1 run differs from the uninterrupted one"
import hashlib, sys; sys.path.insert(0, sys.argv[1])
from e2e import losses
d = sys.argv[1]
straight, resumed = losses(f"{d}/z1.jsonl", True), losses(f"{d}/resumed.jsonl", True)
assert sorted(resumed) == [2, 3], resumed
bad = [(s, straight[s], resumed[s]) for s in resumed if straight[s] != resumed[s]]
assert not bad, f"resumed steps differ: {bad}"
h = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
assert h(f"{d}/straight_model_3.bin") == h(f"{d}/ck/model_00000003.bin"), "resumed model file differs"
print("  ZeRO-1 resume from step 1: steps 2-3 and the step-3 model file bitwise identical")
PY
echo "multirank: OK"
