#!/usr/bin/env bash
# SIGTERM / SIGINT stop a run cleanly at the next step boundary:
#  A. SIGTERM mid-run: the run writes a checkpoint of the step it finished, says so, and exits 143;
#     resuming from that checkpoint gives losses bitwise identical to an uninterrupted run's.
#  B. A second signal ends the process at once (here while a checkpoint write is paused halfway
#     by the test hook); the last complete checkpoint still resumes.
#  C. SIGINT without --checkpoint-dir: exit 130 and a line saying nothing was saved.
#  D. (with mpirun) SIGTERM to one of two ranks: both ranks stop after the same step, each with
#     its state file of that step, instead of one rank leaving the other waiting.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
W=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$W"' EXIT
export OMP_NUM_THREADS=2
COMMON=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
        --micro-batch 2 --total-batch-tokens 128 --lr 1e-3 --lr-schedule constant --seed 7 --print-every 1)

# wait_for PATTERN FILE: until FILE has a line matching PATTERN (the run must stay alive).
wait_for() {
  for _ in $(seq 1 600); do
    grep -q "$1" "$2" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || fail "the run ended before '$1': $(cat "$2")"
    sleep 0.05
  done
  fail "no '$1' in $2 after 30 s"
}

# A.
"$BIN" "${COMMON[@]}" --steps 100000 --checkpoint-dir "$W/ck" --checkpoint-every 100000 --log "$W/b1.jsonl" \
  >"$W/b1.out" 2>&1 &
pid=$!
wait_for "^step *3/" "$W/b1.out"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 143 ] || fail "SIGTERM should end the run with 143, got $rc: $(tail -3 "$W/b1.out")"
[ -f "$W/ck/latest" ] || fail "no checkpoint was written on SIGTERM: $(tail -3 "$W/b1.out")"
S=$(cat "$W/ck/latest")
grep -q "stopped by SIGTERM after step $S of 100000.*--resume" "$W/b1.out" ||
  fail "no message naming the signal and step $S: $(tail -3 "$W/b1.out")"
N=$((S + 3))
"$BIN" "${COMMON[@]}" --steps $N --checkpoint-dir "$W/ck" --resume --log "$W/b2.jsonl" >"$W/b2.out" 2>&1 ||
  fail "resume after SIGTERM: $(cat "$W/b2.out")"
"$BIN" "${COMMON[@]}" --steps $N --log "$W/a.jsonl" >"$W/a.out" 2>&1 || fail "uninterrupted run: $(cat "$W/a.out")"
/usr/bin/env python3 - "$W/a.jsonl" "$W/b2.jsonl" "$S" "$N" <<'PY' || fail "losses after the SIGTERM resume differ"
import re, sys
def losses(p):
    out = {}
    for line in open(p):
        if '"event"' in line:
            continue
        out[int(re.search(r'"step":(\d+)', line).group(1))] = re.search(r'"loss":([^,}]+)', line).group(1)
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
s, n = int(sys.argv[3]), int(sys.argv[4])
assert sorted(b) == list(range(s + 1, n + 1)), sorted(b)
bad = [(k, a[k], b[k]) for k in b if a[k] != b[k]]
assert not bad, bad
PY

# B. The first SIGTERM arrives while step 4's checkpoint write is paused; the second ends it.
GPT2_TEST_HOOKS=1 GPT2_TEST_CHECKPOINT_PAUSE=4 "$BIN" "${COMMON[@]}" --steps 100000 --checkpoint-dir "$W/ck2" \
  --checkpoint-every 2 >"$W/c.out" 2>&1 &
pid=$!
wait_for "paused mid-write" "$W/c.out"
kill -TERM "$pid"
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "the first SIGTERM should wait for the step boundary, not kill the run"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 143 ] || fail "the second SIGTERM should kill the run (143), got $rc"
[ "$(cat "$W/ck2/latest")" = "2" ] || fail "latest should still name step 2"
"$BIN" "${COMMON[@]}" --steps 4 --checkpoint-dir "$W/ck2" --resume >"$W/c2.out" 2>&1 ||
  fail "the last complete checkpoint does not resume: $(cat "$W/c2.out")"

# C. SIGINT (job control on, so the background run does not start with SIGINT ignored).
set -m
"$BIN" "${COMMON[@]}" --steps 100000 >"$W/d.out" 2>&1 &
pid=$!
set +m
wait_for "^step *2/" "$W/d.out"
kill -INT "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 130 ] || fail "SIGINT should end the run with 130, got $rc"
grep -q "stopped by SIGINT after step [0-9]* of 100000; no --checkpoint-dir" "$W/d.out" ||
  fail "no message for SIGINT: $(tail -3 "$W/d.out")"

# D.
if command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1 "$BIN" "${COMMON[@]}" --steps 100000 --checkpoint-dir "$W/mck" \
    >"$W/m.out" 2>&1 &
  pid=$!
  wait_for "^step *3/" "$W/m.out"
  ranks=$(pgrep -P "$pid" -x train_gpt2)
  [ "$(wc -w <<<"$ranks")" -eq 2 ] || fail "expected the 2 ranks as children of mpirun, found '$ranks'"
  kill -TERM "$(tail -1 <<<"$ranks")"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "the ranks did not stop together after SIGTERM to one of them"
  wait "$pid"
  pid=""
  [ -f "$W/mck/latest" ] || fail "no checkpoint after SIGTERM to one rank: $(tail -5 "$W/m.out")"
  S=$(cat "$W/mck/latest")
  [ -f "$W/mck/state_$(printf %08d "$S")_rank0.bin" ] && [ -f "$W/mck/state_$(printf %08d "$S")_rank1.bin" ] ||
    fail "both ranks should have saved step $S: $(ls "$W/mck")"
  grep -q "stopped by SIGTERM after step $S of 100000" "$W/m.out" || fail "no stop message: $(tail -5 "$W/m.out")"
fi
echo "ok"
