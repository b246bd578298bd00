#!/usr/bin/env bash
# Optimizer offload in the dry run (engine/plan/autofit.h, throughput_model.h): auto-fit offloads
# only when no plan with the optimizer on the card fits, the offloaded plan's host arena and its
# predicted transfer and host AdamW terms are printed, the JSON says so, and a host budget that is
# too small is named (--host-mem).
. "$(dirname "$0")/lib/common.sh"

# Models that do not fit their card with the optimizer on it: offloaded, with the host arena and
# the three offload ops in the text, and the host budget held.
for case in "d48 rtx4090" "d36 rtx3060-12gb"; do
  read -r model card <<<"$case"
  args=(--dry-run --model "$model" --micro-batch auto --gpu "$card" --host-mem 64GiB --cpu-bandwidth 20)
  out=$("$BIN" "${args[@]}"); rc=$?
  [ $rc -eq 0 ] || fail "$model on $card with offload should fit (exit $rc): $out"
  grep -q "^Run .* offload=optimizer$" <<<"$out" || fail "$model on $card: the Run line does not say offload=optimizer"
  grep -q "host arena (offloaded optimizer" <<<"$out" || fail "$model on $card: no host arena table"
  grep -q "^  host budget .*(--host-mem 64GiB)" <<<"$out" || fail "$model on $card: no host budget line"
  grep -qE "^  [0-9.]+ s/step, [0-9]+ tok/s" <<<"$out" || fail "$model on $card: no predicted tok/s"
  for op in "offload: gradients to host" "offload: host AdamW" "offload: parameters to device"; do
    grep -qE "^  $op +[0-9]+ .*(host link|host memory); offloaded optimizer" <<<"$out" ||
      fail "$model on $card: no '$op' row in the prediction"
  done
  grep -q "^  adamw " <<<"$out" && fail "$model on $card: the device AdamW is still predicted"
  grep -q "no plan with the optimizer on the device fits" <<<"$out" || fail "$model on $card: auto-fit does not say why"
  grep -q "flags: .* --offload optimizer" <<<"$out" || fail "$model on $card: the flags do not reproduce the offload"

  "$BIN" "${args[@]}" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["fits"] is True, j["verdict"]
assert j["config"]["offload"] == "optimizer", j["config"]
h = j["host_arena"]
assert h["budget_bytes"] == 64 * 2**30 and h["budget_source"] == "--host-mem 64GiB", h
assert 0 < h["bytes"] <= h["budget_bytes"], h
names = {b["name"] for b in h["buffers"]}
assert {"master_weights", "adam_m", "adam_v", "offload.grads", "offload.params"} <= names, names
assert sum(b["bytes"] for b in h["buffers"]) == h["bytes"]
assert all(b["category"] not in ("master_weights", "adam_m", "adam_v") for b in j["buffers"])
ops = {o["name"]: o for o in j["prediction"]["ops"]}
assert "adamw" not in ops
for name, bound in (("offload: gradients to host", "host link"), ("offload: host AdamW", "host memory"),
                    ("offload: parameters to device", "host link")):
    assert ops[name]["bound"] == bound and ops[name]["bytes"] > 0 and ops[name]["predicted_s"] > 0, ops[name]
    assert "offloaded optimizer" in ops[name]["note"], ops[name]
# The host AdamW at --cpu-bandwidth 20: bytes / 20 GB/s.
a = ops["offload: host AdamW"]
assert abs(a["predicted_s"] - a["bytes"] / 20e9) < 1e-9 * a["predicted_s"], a
spare = j["budget_bytes"] - j["total_bytes"]
assert spare >= max(256 * 2**20, j["budget_bytes"] // 50), spare
' || fail "$model on $card: offload JSON"
done

# Models that fit their card keep the optimizer there and leave the headroom.
for case in "d12 rtx3060-12gb" "d36 rtx4090"; do
  read -r model card <<<"$case"
  "$BIN" --dry-run --json --model "$model" --micro-batch auto --gpu "$card" --host-mem 64GiB | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["fits"] and j["config"]["offload"] == "none", j["config"]
assert "host_arena" not in j
spare = j["budget_bytes"] - j["total_bytes"]
assert spare >= 256 * 2**20, f"{spare / 2**20:.1f} MiB to spare"
' || fail "$model on $card should fit without offload and leave 256 MiB"
done

# A host budget too small for the host arena: nothing fits, and the error names --host-mem.
err=$("$BIN" --dry-run --model d48 --micro-batch auto --gpu rtx4090 --host-mem 1GiB 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "d48 on rtx4090 with --host-mem 1GiB should exit 1, got $rc: $err"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "error should be one line: $err"
grep -q -- "--host-mem" <<<"$err" || fail "error does not name --host-mem: $err"
grep -q "offloaded" <<<"$err" || fail "error does not say offload was tried: $err"

# --offload none keeps the optimizer on the card: the card is the limit.
err=$("$BIN" --dry-run --model d48 --micro-batch auto --gpu rtx4090 --offload none 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--gpu" <<<"$err" || fail "--offload none on d48/rtx4090: rc=$rc $err"

# An explicit --offload optimizer is kept by auto-fit, though the model fits without it.
"$BIN" --dry-run --json --model d12 --micro-batch auto --gpu rtx3060-12gb --offload optimizer --host-mem 8GiB |
  python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["fits"] and j["config"]["offload"] == "optimizer" and "host_arena" in j, j["config"]
assert "--offload optimizer" in j["autofit"]["flags"], j["autofit"]["flags"]
' || fail "auto-fit did not keep --offload optimizer"

# Offload moves the optimizer off a GPU: the CPU device refuses it, naming --offload.
err=$("$BIN" --dry-run --offload optimizer --device cpu 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q -- "--offload" <<<"$err" || fail "--offload optimizer --device cpu: rc=$rc $err"

echo "dry-run offload checks passed"
