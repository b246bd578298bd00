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
echo "dry-run CLI checks passed"
