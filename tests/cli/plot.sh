#!/usr/bin/env bash
# tools/plot.py turns JSONL logs (one with validation points, one resumed with a repeated
# step) into a valid PNG: the signature, an IHDR chunk first with the figure's size.
set -u
BUILD=$1
SRC=$2
W="$BUILD/test_tmp/cli_plot"
rm -rf "$W"; mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
"$PY" -c "import matplotlib" 2>/dev/null || { echo "SKIP: matplotlib missing (install python3-matplotlib)"; exit 77; }
for s in 1 2 3 4 5 6; do
  v=""; [ $((s % 3)) -eq 0 ] && v=",\"val_loss\":$((10 - s)).25"
  echo "{\"step\":$s,\"loss\":$((10 - s)).5,\"lr\":0.001,\"tokens\":$((s * 64))$v}" >>"$W/a.jsonl"
done
printf '{"step":1,"loss":9.0}\n{"step":2,"loss":8.0}\n{"step":2,"loss":7.5}\n{"step":3,"loss":7.0}\n' >"$W/b.jsonl"
"$PY" "$SRC/tools/plot.py" "$W/a.jsonl" "$W/b.jsonl" -o "$W/loss.png" --title test || fail "plot.py failed"
"$PY" - "$W/loss.png" <<'PY' || fail "not a valid PNG"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
length, kind = struct.unpack(">I4s", data[8:16])
assert kind == b"IHDR" and length == 13, kind
w, h, depth, color = struct.unpack(">IIBB", data[16:26])
assert (w, h) == (700, 420), (w, h)
assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0], "IHDR CRC"
assert data[-12:-4] == b"\x00\x00\x00\x00IEND"[-8:] or b"IEND" in data[-12:], "IEND"
print("png ok", w, h)
PY
err=$("$PY" "$SRC/tools/plot.py" "$W/missing.jsonl" -o "$W/x.png" 2>&1) && fail "a missing log should fail"
printf 'not json\n' >"$W/bad.jsonl"
err=$("$PY" "$SRC/tools/plot.py" "$W/bad.jsonl" -o "$W/x.png" 2>&1) && fail "a bad log should fail"
grep -q "bad.jsonl:1" <<<"$err" || fail "error does not name the line: $err"
echo "plot: OK"
