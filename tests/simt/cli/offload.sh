#!/usr/bin/env bash
# Optimizer offload (--offload optimizer) on the CUDA backend: the fp32 master weights, m and v in
# the pinned host arena, the gradients copied to the host on a second stream during the last
# micro-batch's backward, AdamW on the host, the parameters uploaded back. It must not change a
# bit: against the same run without offload, the losses of every step (JSONL text) and the final
# model file (sha256) are identical, in fp32 and bf16 (stochastic rounding), with gradient
# accumulation (2 micro-batches) and without; with `mpirun -np 2 --zero 1` each rank offloads its
# own shard, with the same result. The host arena is pinned at exactly its planned size, and the
# device arena's measured drop equals its plan. Checkpoints cross over: an offloaded run's
# step-2 checkpoint resumes without offload, and the other way round, both ending bit for bit
# where the uninterrupted runs end. The profile of an offloaded run has the offload ops' rows.
#
# Under the descending schedule (GPT2_SIMT_SCHEDULE=descending: the newer stream's work runs
# first at a sync point) only the two accumulating pairs run: what a second schedule can break is
# the order of the copy stream against the compute stream, which those pairs exercise. The
# profile, the checkpoint crossing and ZeRO-1 do not depend on the schedule and run under the
# default one.
. "$(dirname "$0")/lib.sh"
STREAMS_ONLY=$([ "${GPT2_SIMT_SCHEDULE:-}" = descending ] && echo 1 || echo 0)
COMMON=("${SHAPE[@]}" --device cuda --micro-batch 1 --steps 4 --lr 1e-3 --grad-clip 1 --seed 7 --val-batches 1
        --checkpoint-every 2)

# pair NAME ARGS...: the run without and with offload; checks the measured arenas of the latter.
pair() {
  local name=$1; shift
  run "${name}_dev" "${COMMON[@]}" "$@" --log "$W/${name}_dev.jsonl" --checkpoint-dir "$W/${name}_dev"
  run "${name}_off" "${COMMON[@]}" "$@" --offload optimizer --log "$W/${name}_off.jsonl" --checkpoint-dir "$W/${name}_off"
  grep -q "offload=optimizer" "$W/${name}_off.out" || fail "$name: the run does not say offload=optimizer"
  local host
  host=$(grep "host arena planned" "$W/${name}_off.out") || fail "$name: no host arena line"
  [[ $host =~ planned\ ([0-9,]+)\ bytes,\ pinned\ ([0-9,]+)\ bytes ]] || fail "$name: unreadable: $host"
  [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || fail "$name: host arena planned ${BASH_REMATCH[1]}, pinned ${BASH_REMATCH[2]}"
  for r in dev off; do
    grep -q "measured drop in free memory .* (+0 B)" "$W/${name}_$r.out" ||
      fail "$name ($r): the device arena's measured drop differs from the plan: $(grep 'arena planned' "$W/${name}_$r.out")"
  done
}
pair fp32_accum2 --precision fp32 --total-batch-tokens $((2 * T))
pair bf16_accum2 --precision bf16 --total-batch-tokens $((2 * T))
[ $STREAMS_ONLY = 1 ] || pair bf16_accum1 --precision bf16 --total-batch-tokens $T

if [ $STREAMS_ONLY = 0 ]; then
  # The profile of an offloaded run times the three offload ops under the prediction's names.
  run profiled "${COMMON[@]}" --precision bf16 --total-batch-tokens $((2 * T)) --offload optimizer --profile \
    --checkpoint-dir "$W/profiled"
  for op in "offload: gradients to host" "offload: host AdamW" "offload: parameters to device"; do
    grep -q "$op" "$W/profiled.out" || fail "the profile has no row '$op': $(grep -A40 'profile' "$W/profiled.out" | head -50)"
  done

  # Checkpoints across offload settings: resume step 2 of each bf16 run under the other setting.
  for from in dev off; do
    to=$([ $from = dev ] && echo off || echo dev)
    d="$W/cross_$from"
    mkdir -p "$d" && cp "$W/bf16_accum2_$from"/*_00000002* "$d/" && echo 2 >"$d/latest"
    flags=(); [ $to = off ] && flags=(--offload optimizer)
    run "cross_$from" "${COMMON[@]}" --precision bf16 --total-batch-tokens $((2 * T)) "${flags[@]}" \
      --log "$W/cross_$from.jsonl" --checkpoint-dir "$d" --resume
    grep -q "resume  from step 2" "$W/cross_$from.out" || fail "cross_$from: did not resume from step 2"
  done
fi

if [ $STREAMS_ONLY = 1 ]; then
  ZERO1=0
elif command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  MPIRUN=(mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS -x GPT2_SIMT_MEMORY)
  [ -n "${GPT2_SIMT_SCHEDULE:-}" ] && MPIRUN+=(-x GPT2_SIMT_SCHEDULE)
  for r in dev off; do
    flags=(); [ $r = off ] && flags=(--offload optimizer)
    rc=0
    "${MPIRUN[@]}" "$TRAIN" "${COMMON[@]}" --precision bf16 --total-batch-tokens $((2 * T)) --zero 1 "${flags[@]}" \
      --log "$W/zero1_$r.jsonl" --checkpoint-dir "$W/zero1_$r" >"$W/zero1_$r.out" 2>&1 || rc=$?
    [ $rc -eq 0 ] || { tail -20 "$W/zero1_$r.out"; fail "zero1_$r: mpirun exited $rc"; }
  done
  ZERO1=1
else
  echo "  (mpirun not found: the ZeRO-1 pair is not run)"
  ZERO1=0
fi

"$PY" - "$W" "$ZERO1" "$STREAMS_ONLY" <<'PY' || fail "offloaded runs differ from on-device runs"
import hashlib, sys; sys.path.insert(0, sys.argv[1])
from e2e import losses
d, zero1, streams_only = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
h = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
pairs = [("fp32_accum2_dev", "fp32_accum2_off"), ("bf16_accum2_dev", "bf16_accum2_off")]
if not streams_only: pairs.append(("bf16_accum1_dev", "bf16_accum1_off"))
if zero1: pairs.append(("zero1_dev", "zero1_off"))
ok = True
for a, b in pairs:
    la, lb = losses(f"{d}/{a}.jsonl", True), losses(f"{d}/{b}.jsonl", True)
    assert sorted(la) == [1, 2, 3, 4], la
    same_model = h(f"{d}/{a}/model_00000004.bin") == h(f"{d}/{b}/model_00000004.bin")
    print(f"  {a[:-4]:12s} step 4 loss {la[4]} / offloaded {lb[4]}; model files {'identical' if same_model else 'DIFFER'}")
    if la != lb: print(f"  {a[:-4]}: losses differ: {la} vs {lb}"); ok = False
    if not same_model: ok = False
straight = losses(f"{d}/bf16_accum2_dev.jsonl", True)
for src in ([] if streams_only else ["dev", "off"]):
    resumed = losses(f"{d}/cross_{src}.jsonl", True)
    assert sorted(resumed) == [3, 4], resumed
    same = all(resumed[s] == straight[s] for s in resumed)
    same_model = h(f"{d}/cross_{src}/model_00000004.bin") == h(f"{d}/bf16_accum2_dev/model_00000004.bin")
    print(f"  checkpoint of the {'on-device' if src == 'dev' else 'offloaded'} run resumed "
          f"{'with' if src == 'dev' else 'without'} offload: steps 3-4 {'identical' if same else 'DIFFER'}, "
          f"model file {'identical' if same_model else 'DIFFERS'}")
    ok = ok and same and same_model
assert ok
PY
echo "offload: OK"
