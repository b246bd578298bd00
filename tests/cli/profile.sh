#!/usr/bin/env bash
# train_gpt2 --profile / --profile-json on the CPU backend: the losses are bitwise the same with
# and without the profile; the table has a row per op with the prediction beside the measurement;
# the JSON holds the same; bad combinations and an unwritable JSON path fail before step 1.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIPPED: python3 not found"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128 --print-every 1 --steps 4 --recompute gelu)

"$BIN" "${TINY[@]}" >"$TMP/plain.out" 2>&1 || fail "plain run failed: $(tail -5 "$TMP/plain.out")"
"$BIN" "${TINY[@]}" --profile --profile-json "$TMP/profile.json" >"$TMP/prof.out" 2>&1 ||
  fail "profiled run failed: $(tail -5 "$TMP/prof.out")"
# The step lines without their timings: step, loss, lr and norm printed to 4 decimals are not
# enough for "bitwise", so the per-step JSONL logs are compared too.
losses() { grep "^step" "$1" | cut -d'|' -f1-4; }
[ "$(losses "$TMP/plain.out")" == "$(losses "$TMP/prof.out")" ] || fail "the profile changed the step lines"
[ -n "$(losses "$TMP/plain.out")" ] || fail "no step lines"
"$BIN" "${TINY[@]}" --log "$TMP/plain.jsonl" >/dev/null 2>&1 || fail "plain run with --log failed"
"$BIN" "${TINY[@]}" --profile --log "$TMP/prof.jsonl" >/dev/null 2>&1 || fail "profiled run with --log failed"
"$PY" - "$TMP/plain.jsonl" "$TMP/prof.jsonl" <<'PY' || fail "losses differ with --profile"
import json, sys
steps = lambda p: [r for r in map(json.loads, open(p)) if "event" not in r]  # no run_start
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert len(a) == len(b) == 4, (len(a), len(b))
for x, y in zip(a, b):
    # json floats round-trip exactly: equal text means equal bits
    assert (x["loss"], x["grad_norm"]) == (y["loss"], y["grad_norm"]), (x, y)
PY

# The table: a header naming the warm-up, the ops, the step total against the prediction.
grep -q "^profile 3 steps after 1 warm-up step; prediction for cpu" "$TMP/prof.out" || fail "no profile header: $(cat "$TMP/prof.out")"
for op in "matmul qkv forward" "attention backward" "classifier" "adamw" "gelu forward" "matmul fcproj+gelu backward"; do
  grep -F "  $op " "$TMP/prof.out" | grep -qE "^  .* [0-9.]+ +[0-9.]+ +[0-9.]+ .* [0-9.]+  (compute|memory)$" ||
    fail "no row with figures for '$op'"
done
grep -qE "^  step \(median\) .*of the median\)" "$TMP/prof.out" || fail "no step total"
grep -q "measured efficiencies" "$TMP/prof.out" || fail "no measured efficiencies line"
grep -qE "^  model FLOPs .* GFLOP/s at the median, .*% of the peak" "$TMP/prof.out" || fail "no model FLOP/s line"
grep -q "profile written to $TMP/profile.json" "$TMP/prof.out" || fail "no note of the JSON file"

"$PY" - "$TMP/profile.json" <<'PY' || fail "bad profile JSON"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["steps"] == 3 and j["warmup_steps"] == 1, j
assert j["step_s"]["measured"] > 0 and j["step_s"]["median"] > 0 and j["step_s"]["predicted"] > 0
ops = {o["name"]: o for o in j["ops"]}
qkv = ops["matmul qkv forward"]
# 2 layers, 2 micro-batches per step (128 tokens / (2 x 32)), plus none recomputed
assert qkv["calls_per_step"] == 4, qkv
assert qkv["measured_s"] > 0 and qkv["predicted_s"] > 0 and qkv["flops"] > 0
assert ops["gelu forward"]["calls_per_step"] == 4, ops["gelu forward"]
assert ops["adamw"]["calls_per_step"] == 1
assert abs(sum(o["measured_s"] for o in j["ops"] if o["measured_s"] is not None)
           + j["outside_backend_s"] - j["step_s"]["measured"]) < 1e-9
assert set(j["measured_efficiency"]) >= {"memory", "attention"}, j["measured_efficiency"]
assert j["model_flops_per_step"] > 0 and j["peak_flops"] > 0, j
PY

# Refused before anything runs, naming the flag.
expect_error() {
  local flag=$1
  shift
  local rc
  "$BIN" "$@" >"$TMP/o" 2>"$TMP/e"
  rc=$?
  [ "$rc" -ne 0 ] || fail "$* should fail"
  grep -q -- "$flag" "$TMP/e" || fail "$* should name $flag: $(cat "$TMP/e")"
  ! grep -q "^step" "$TMP/o" || fail "$* ran a step"
}
expect_error --profile-json "${TINY[@]}" --profile-json /proc/nope/p.json
expect_error --profile "${TINY[@]}" --profile --eval-only
expect_error --profile --dry-run --device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --profile
expect_error --cpu-gflops --dry-run --device cpu --cpu-gflops nan
expect_error --cpu-bandwidth --dry-run --device cpu --cpu-bandwidth -3
echo "profile: OK"
