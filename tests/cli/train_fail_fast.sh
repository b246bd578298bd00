#!/usr/bin/env bash
# Real runs fail fast and clearly: a plan that does not fit is reported (table, shortfall, the
# flags that would fit) before anything is allocated; --device cuda without a GPU is one clear
# error; bad training flags name themselves.
set -u
BUILD=$1
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }

# d48 at B=64 cannot fit 4 GiB: the plan and auto-fit's advice come before any allocation.
# (d48 at B=64 would need ~150 GiB of host memory; finishing in a second proves none was taken.)
start=$(date +%s%N)
err=$("$BIN" --device cpu --model d48 --micro-batch 64 --precision fp32 --gpu-mem 4GiB --steps 1 2>&1 >/dev/null)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 1 ] || fail "a plan that does not fit should exit 1, got $rc"
grep -q "DOES NOT FIT" <<<"$err" || fail "no verdict: $err"
grep -q "^  activations" <<<"$err" || fail "no plan table"
grep -q -- "--micro-batch" <<<"$err" || fail "no suggested flags"
grep -q "train_gpt2: error: --gpu-mem" <<<"$err" || fail "the error line should name --gpu-mem: $err"
[ "$ms" -lt 5000 ] || fail "fail-fast took ${ms} ms"

# --device cuda without a usable GPU: one line naming --device, exit 1.
if ! (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1); then
  err=$("$BIN" --device cuda --layers 2 --heads 4 --width 64 --vocab 256 --steps 1 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 1 ] || fail "--device cuda without a GPU should exit 1, got $rc"
  [ "$(wc -l <<<"$err")" -eq 1 ] || fail "expected one error line: $err"
  grep -q -- "--device" <<<"$err" || fail "the error should name --device: $err"
fi

# Bad values name their flag.
err=$("$BIN" --device cpu --layers 2 --heads 4 --width 64 --vocab 256 --lr-schedule sometimes 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--lr-schedule" <<<"$err" || fail "bad --lr-schedule: rc=$rc $err"
err=$("$BIN" --device cpu --layers 2 --heads 4 --width 64 --vocab 256 --train-data "/nonexistent/*.bin" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "nonexistent" <<<"$err" || fail "missing data should name the pattern: rc=$rc $err"
echo "fail-fast checks passed"
