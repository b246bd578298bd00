#!/usr/bin/env bash
# tools/plot.py turns JSONL logs (one with validation points, one resumed with a repeated
# step) into a valid PNG: the signature, an IHDR chunk first with the figure's size. In plan
# mode it draws one or two train_gpt2 --dry-run --json plans (from a file or stdin); a file that
# is not JSON, a plan without 'buffers' or a missing file fails with one line naming the file.
set -u
BUILD=$1
SRC=$2
BIN="$BUILD/train_gpt2"
W="$BUILD/test_tmp/cli_plot"
rm -rf "$W"; mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
"$PY" -c "import matplotlib" 2>/dev/null || { echo "SKIP: matplotlib missing (install python3-matplotlib)"; exit 77; }
PLOT="$SRC/tools/plot.py"

# check_png FILE WIDTH HEIGHT: signature, IHDR first with that size and a good CRC, IEND last.
check_png() {
  "$PY" - "$@" <<'PY'
import struct, sys, zlib
path, want = sys.argv[1], (int(sys.argv[2]), int(sys.argv[3]))
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
length, kind = struct.unpack(">I4s", data[8:16])
assert kind == b"IHDR" and length == 13, kind
w, h, depth, color = struct.unpack(">IIBB", data[16:26])
assert (w, h) == want, (w, h)
assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0], "IHDR CRC"
assert data[-8:-4] == b"IEND", "IEND"
print("png ok", path.rsplit("/", 1)[-1], w, h, len(data), "bytes")
PY
}

# --- loss curves (the default mode, with and without the word "loss")
for s in 1 2 3 4 5 6; do
  v=""; [ $((s % 3)) -eq 0 ] && v=",\"val_loss\":$((10 - s)).25"
  echo "{\"step\":$s,\"loss\":$((10 - s)).5,\"lr\":0.001,\"tokens\":$((s * 64))$v}" >>"$W/a.jsonl"
done
printf '{"step":1,"loss":9.0}\n{"step":2,"loss":8.0}\n{"step":2,"loss":7.5}\n{"step":3,"loss":7.0}\n' >"$W/b.jsonl"
"$PY" "$PLOT" "$W/a.jsonl" "$W/b.jsonl" -o "$W/loss.png" --title test || fail "plot.py failed"
check_png "$W/loss.png" 700 420 || fail "not a valid PNG"
"$PY" "$PLOT" loss "$W/a.jsonl" -o "$W/loss2.png" --x tokens || fail "plot.py loss failed"
check_png "$W/loss2.png" 700 420 || fail "loss mode: not a valid PNG"
err=$("$PY" "$PLOT" "$W/missing.jsonl" -o "$W/x.png" 2>&1) && fail "a missing log should fail"
printf 'not json\n' >"$W/bad.jsonl"
err=$("$PY" "$PLOT" "$W/bad.jsonl" -o "$W/x.png" 2>&1) && fail "a bad log should fail"
grep -q "bad.jsonl:1" <<<"$err" || fail "error does not name the line: $err"

# --- memory plans: the seed case (B=64 without recompute does not fit 12 GB: exit 3) and auto-fit
"$PY" "$PLOT" --help | grep -q "plot.py plan" || fail "--help does not document plan mode"
"$PY" "$PLOT" plan --help | grep -q "example" || fail "plan --help has no example"
"$BIN" --dry-run --json --model d12 --micro-batch 64 --total-batch-tokens 524288 --gpu rtx3060-12gb \
  >"$W/b64.json"; rc=$?
[ $rc -eq 3 ] || fail "B=64 dry run should exit 3 (does not fit), got $rc"
"$BIN" --dry-run --json --model d12 --micro-batch auto --total-batch-tokens 524288 --gpu rtx3060-12gb \
  >"$W/auto.json" || fail "auto-fit dry run failed"
out=$("$PY" "$PLOT" plan "$W/auto.json" -o "$W/plan1.png" 2>&1) || fail "one plan: $out"
check_png "$W/plan1.png" 1200 800 || fail "one plan: not a valid PNG"
out=$("$PY" "$PLOT" plan "$W/b64.json" "$W/auto.json" -o "$W/plan2.png" --labels "B=64" auto-fit --top 5 2>&1) \
  || fail "two plans: $out"
check_png "$W/plan2.png" 1200 800 || fail "two plans: not a valid PNG"
out=$("$PY" "$PLOT" plan - "$W/b64.json" -o "$W/plan3.png" --top 0 <"$W/auto.json" 2>&1) || fail "stdin plan: $out"
check_png "$W/plan3.png" 1200 405 || fail "stdin plan, --top 0: not a valid PNG"
[ -s "$W/plan2.png" ] || fail "empty PNG"

# bad input: one line naming the file, a non-zero exit, no traceback, no PNG
printf 'not json\n' >"$W/bad.json"
"$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); del j['buffers']; json.dump(j, open(sys.argv[2], 'w'))" \
  "$W/auto.json" "$W/nobuf.json"
printf '[1, 2]\n' >"$W/list.json"
for f in bad.json nobuf.json list.json missing.json; do
  rm -f "$W/x.png"
  err=$("$PY" "$PLOT" plan "$W/auto.json" "$W/$f" -o "$W/x.png" 2>&1) && fail "plan $f should fail"
  grep -q "$f" <<<"$err" || fail "plan $f: error does not name the file: $err"
  grep -q "Traceback" <<<"$err" && fail "plan $f: traceback: $err"
  [ "$(wc -l <<<"$err")" -eq 1 ] || fail "plan $f: more than one line: $err"
  [ -e "$W/x.png" ] && fail "plan $f: wrote a PNG anyway"
done
grep -q "'buffers'" <<<"$("$PY" "$PLOT" plan "$W/nobuf.json" -o "$W/x.png" 2>&1)" || fail "no word of 'buffers'"
echo "plot: OK"
