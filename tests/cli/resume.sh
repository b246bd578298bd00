#!/usr/bin/env bash
# Exact resume with the real binary and a real SIGKILL:
#  A. 20 steps uninterrupted.
#  B. The same run checkpointing every 10 steps, killed with SIGKILL while it is writing step
#     20's checkpoint (GPT2_TEST_CHECKPOINT_PAUSE, with GPT2_TEST_HOOKS=1, stops the writer
#     halfway, after an fsync).
#     `latest` must still name step 10; resuming from it to step 20 must give losses for steps
#     11-20 bitwise identical to A's (the JSONL values compared as exact strings).
#  C. Resuming with another width or from a truncated state file fails before training,
#     naming the flag or the file.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
W="$BUILD/test_tmp/cli_resume"
rm -rf "$W"; mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2
# Constant LR: the killed run is started with more steps than it will live, so its schedule
# must not depend on --steps.
COMMON=(--device cpu --layers 2 --heads 4 --vocab 256 --max-seq-len 32 --seq-len 32
        --micro-batch 2 --total-batch-tokens 128 --lr 1e-3 --lr-schedule constant --seed 7 --print-every 100)

"$BIN" "${COMMON[@]}" --width 64 --steps 20 --log "$W/a.jsonl" >"$W/a.out" 2>&1 || { cat "$W/a.out"; fail "run A"; }

GPT2_TEST_HOOKS=1 GPT2_TEST_CHECKPOINT_PAUSE=20 "$BIN" "${COMMON[@]}" --width 64 --steps 1000 --checkpoint-dir "$W/ck" --checkpoint-every 10 \
  --log "$W/b1.jsonl" >"$W/b1.out" 2>"$W/b1.err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "paused mid-write" "$W/b1.err" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
grep -q "paused mid-write" "$W/b1.err" || { kill -9 $pid 2>/dev/null; cat "$W/b1.out" "$W/b1.err"; fail "run B never reached step 20's checkpoint"; }
kill -9 $pid
wait $pid 2>/dev/null
[ "$(cat "$W/ck/latest")" = "10" ] || fail "latest should still name step 10, has '$(cat "$W/ck/latest")'"
torn=$(ls "$W"/ck/state_00000020.bin.*.tmp 2>/dev/null)
[ -f "$torn" ] || fail "no torn temporary state file of step 20 (the kill was not mid-write?)"
[ -f "$W/ck/state_00000020.bin" ] && fail "step 20's state file must not exist"

"$BIN" "${COMMON[@]}" --width 64 --steps 20 --checkpoint-dir "$W/ck" --checkpoint-every 10 --resume --log "$W/b2.jsonl" \
  >"$W/b2.out" 2>&1 || { cat "$W/b2.out"; fail "resume"; }
grep -q "resume  from step 10" "$W/b2.out" || fail "did not resume from step 10"
[ "$(cat "$W/ck/latest")" = "20" ] || fail "latest should name step 20 after the resumed run"
[ -f "$torn" ] && fail "the torn temporary file of the killed writer was not cleaned up"
grep -qF "removed $torn" "$W/b2.out" || fail "the clean-up of $torn was not reported: $(cat "$W/b2.out")"

/usr/bin/env python3 - "$W/a.jsonl" "$W/b2.jsonl" <<'PY' || fail "losses differ after resume"
import re, sys
def losses(p):
    out = {}
    for line in open(p):
        if '"event"' in line:   # run_start and other event records carry no loss
            continue
        step = int(re.search(r'"step":(\d+)', line).group(1))
        out[step] = re.search(r'"loss":([^,}]+)', line).group(1)   # the exact text
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(b) == list(range(11, 21)), sorted(b)
bad = [(s, a[s], b[s]) for s in range(11, 21) if a[s] != b[s]]
assert not bad, bad
print("steps 11-20 identical:", [b[s] for s in (11, 20)])
PY

# C. Refusals.
err=$("$BIN" "${COMMON[@]}" --width 128 --steps 20 --checkpoint-dir "$W/ck" --resume 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "mismatched width should exit 1, got $rc"
grep -q -- "--width" <<<"$err" || fail "error does not name --width: $err"
cp "$W/ck/state_00000020.bin" "$W/state.bak"
head -c 5000 "$W/state.bak" >"$W/ck/state_00000020.bin"
out=$("$BIN" "${COMMON[@]}" --width 64 --steps 30 --checkpoint-dir "$W/ck" --resume 2>&1); rc=$?
[ $rc -eq 1 ] || fail "truncated state should exit 1, got $rc"
grep -q "state_00000020.bin" <<<"$out" || fail "error does not name the state file: $out"
grep -q "truncated" <<<"$out" || fail "error does not say truncated: $out"
grep -q "^step" <<<"$out" && fail "training started from a truncated checkpoint"
echo "resume: OK"
