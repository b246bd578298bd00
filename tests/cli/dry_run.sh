#!/usr/bin/env bash
# Runs the real train_gpt2 binary: dry-run tables, JSON, exit codes and one-line errors.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }

out=$("$BIN" --dry-run --model d12 --micro-batch 64 --gpu rtx3060-12gb); rc=$?
[ $rc -eq 3 ] || fail "seed case should exit 3 (does not fit), got $rc"
grep -q "DOES NOT FIT" <<<"$out" || fail "no DOES NOT FIT verdict"
grep -q "10 largest buffers" <<<"$out" || fail "no largest-buffer table"
grep -q "^  activations" <<<"$out" || fail "no category table"

out=$("$BIN" --dry-run --model d12 --micro-batch auto --gpu-mem 11GiB); rc=$?
[ $rc -eq 0 ] || fail "auto-fit in 11GiB should exit 0, got $rc"
grep -q "flags: --micro-batch" <<<"$out" || fail "auto-fit printed no flags"

json=$("$BIN" --dry-run --model d12 --micro-batch auto --gpu-mem 11GiB --json); rc=$?
[ $rc -eq 0 ] || fail "--json exit $rc"
/usr/bin/env python3 - "$json" <<'PY' || fail "JSON fields"
import json, sys
j = json.loads(sys.argv[1])
for k in ("params", "total_bytes", "budget_bytes", "fits", "config", "buffers"):
    assert k in j, k
c = j["config"]
for k in ("micro_batch", "seq_len", "grad_accum", "recompute", "logits_chunk", "precision", "zero", "world_size"):
    assert k in c, k
assert j["params"] == 124475904
assert j["fits"] is True and j["total_bytes"] <= j["budget_bytes"] == 11 * 2**30
assert c["micro_batch"] * c["seq_len"] * c["grad_accum"] * c["world_size"] == 524288
assert all({"name", "category", "offset", "bytes"} <= set(b) for b in j["buffers"])
assert sum(b["bytes"] for b in j["buffers"]) + j["reserve_bytes"] == j["total_bytes"]
PY

err=$("$BIN" --dry-run --heads 7 --gpu-mem 12GiB 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "bad heads should exit 1, got $rc"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "error should be one line: $err"
grep -q -- "--heads" <<<"$err" || fail "error does not name --heads: $err"

err=$("$BIN" --dry-run --gpu-mem 12XB 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--gpu-mem" <<<"$err" || fail "malformed size: rc=$rc $err"

"$BIN" --help | grep -q -- "--dry-run" || fail "--help"
"$BIN" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag should exit 2"

cfg=$(mktemp)
printf 'model = "d24"\nmicro-batch = "2"\nrecompute = "block"\ngpu-mem = "24GiB"\ndry-run = true\n' >"$cfg"
out=$("$BIN" --config "$cfg"); rc=$?
rm -f "$cfg"
[ $rc -eq 0 ] || fail "--config run exit $rc"
grep -q "recompute=block" <<<"$out" && grep -q "L=24" <<<"$out" || fail "--config values not applied"
# The roofline prediction: in the text, in the JSON, and auto-fit's MFU marked as an estimate.
out=$("$BIN" --dry-run --model d12 --micro-batch auto --gpu rtx3060-12gb) || fail "auto-fit dry run"
grep -q "^Predicted step time (roofline per op, rtx3060-12gb" <<<"$out" || fail "no prediction section"
grep -qE "^  [0-9.]+ s/step, [0-9]+ tok/s, MFU [0-9.]+% of 25.6 TFLOP/s \(estimate\)" <<<"$out" ||
  fail "no predicted MFU marked as an estimate: $(grep -A1 Predicted <<<"$out")"
grep -qE "chose B=[0-9]+ .* tok/s at MFU [0-9]+% predicted \(estimate\)" <<<"$out" || fail "auto-fit prints no MFU"
# Headroom: the fastest plans fill these cards to within 18 MiB (d12, RTX 3060) and 36 MiB (d36,
# RTX 4090); auto-fit takes a plan predicted within 3 % that leaves max(256 MiB, 2 % of the budget).
grep -q "headroom rule: of the plans predicted within 3% of the fastest" <<<"$out" || fail "auto-fit prints no headroom rule"
for case in "d12 rtx3060-12gb" "d36 rtx4090"; do
  read -r model card <<<"$case"
  "$BIN" --dry-run --json --model "$model" --micro-batch auto --total-batch-tokens 524288 --gpu "$card" | python3 -c '
import json, sys
j = json.load(sys.stdin)
spare = j["budget_bytes"] - j["total_bytes"]
need = max(256 * 2**20, j["budget_bytes"] // 50)
assert j["fits"] and spare >= need, f"{spare / 2**20:.1f} MiB to spare, want {need / 2**20:.1f}"
' || fail "auto-fit for $model on $card leaves less than the headroom"
done
"$BIN" --dry-run --json --model d12 --micro-batch 8 --gpu rtx3060-12gb --recompute gelu | python3 -c '
import json, sys
p = json.load(sys.stdin)["prediction"]
assert p["device"] == "rtx3060-12gb" and p["estimate"] is True, p
assert p["step_s"] > 0 and p["tokens_per_s"] > 0 and 0.2 < p["mfu"] < 0.7, p
ops = {o["name"]: o for o in p["ops"]}
assert abs(sum(o["predicted_s"] for o in p["ops"]) - p["step_s"]) < 1e-9 * p["step_s"]
assert ops["gelu forward"]["calls"] == 12 and ops["matmul qkv forward"]["bound"] == "compute"
assert ops["adamw"]["bound"] == "memory" and ops["adamw"]["flops"] > 0 and ops["adamw"]["bytes"] > 0
' || fail "bad prediction JSON"
# The CPU as a device: the flags replace the probe, and the figures scale with them.
cpu=(--dry-run --json --device cpu --layers 6 --heads 6 --width 384 --micro-batch 4 --seq-len 256)
a=$("$BIN" "${cpu[@]}" --cpu-gflops 400 --cpu-bandwidth 20 | python3 -c 'import json,sys; print(json.load(sys.stdin)["prediction"]["step_s"])')
b=$("$BIN" "${cpu[@]}" --cpu-gflops 200 --cpu-bandwidth 10 | python3 -c 'import json,sys; print(json.load(sys.stdin)["prediction"]["step_s"])')
python3 -c "import sys; a, b = $a, $b; sys.exit(0 if 1.9 < b / a < 2.01 else 1)" || fail "CPU prediction does not follow --cpu-gflops/--cpu-bandwidth: $a vs $b"
# Head sizes: the CUDA attention takes any up to 256 (HS=16 plans like any other); a larger one
# is refused before anything is planned, naming --heads and the limit; the CPU backend has none.
"$BIN" --dry-run --device cuda --layers 2 --heads 4 --width 64 --gpu rtx4090 >/dev/null 2>&1 ||
  fail "head size 16 on cuda should plan"
err=$("$BIN" --dry-run --device cuda --layers 2 --heads 1 --width 512 --gpu rtx4090 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "head size 512 on cuda should exit 1, got $rc: $err"
grep -q -- "--heads: head size 512 .*at most 256" <<<"$err" || fail "head size 512 not refused by --heads: $err"
"$BIN" --dry-run --device cpu --layers 2 --heads 1 --width 512 >/dev/null 2>&1 || fail "head size 512 on the cpu should plan"
echo "dry-run CLI checks passed"
