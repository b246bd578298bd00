#!/usr/bin/env bash
# tools/plot.py turns JSONL logs (one with validation points, one resumed with a repeated
# step) into a valid PNG: the signature, an IHDR chunk first with the figure's size. In plan
# mode it draws one or two train_gpt2 --dry-run --json plans (from a file or stdin); a file that
# is not JSON, a plan without 'buffers' or a missing file fails with one line naming the file.
# Outputs: the extension picks png, pdf or svg, anything else is refused, and an output that is
# one of the inputs is refused. Logs: fields are checked (one line, no traceback), event records
# are never steps, several runs in one log are drawn apart and named from their run_start
# records, and a smoothed curve says so. Plans: buffers named for people, one plan labelled by
# its model and batch. PLOT=path/to/plot.py overrides the script under test.
set -u
BUILD=$1
SRC=$2
BIN="$BUILD/train_gpt2"
W="$BUILD/test_tmp/cli_plot"
rm -rf "$W"; mkdir -p "$W"
# Every check runs, so one run shows each rule that does not hold.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
"$PY" -c "import matplotlib" 2>/dev/null || { echo "SKIP: matplotlib missing (install python3-matplotlib)"; exit 77; }
PLOT="${PLOT:-$SRC/tools/plot.py}"

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
check_png "$W/plan1.png" 1200 725 || fail "one plan: not a valid PNG"
out=$("$PY" "$PLOT" plan "$W/b64.json" "$W/auto.json" -o "$W/plan2.png" --labels "B=64" auto-fit --top 5 2>&1) \
  || fail "two plans: $out"
check_png "$W/plan2.png" 1200 860 || fail "two plans: not a valid PNG"
out=$("$PY" "$PLOT" plan - "$W/b64.json" -o "$W/plan3.png" --top 0 <"$W/auto.json" 2>&1) || fail "stdin plan: $out"
check_png "$W/plan3.png" 1200 500 || fail "stdin plan, --top 0: not a valid PNG"
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

# refused [PATTERN] CMD...: a non-zero exit and one line without a traceback (matching PATTERN).
refused() {
  local want=$1 err
  shift
  err=$("$@" 2>&1) && { fail "$* should fail"; return; }
  grep -q "Traceback" <<<"$err" && fail "$*: traceback: $err"
  [ "$(grep -c . <<<"$err")" -eq 1 ] || fail "$*: not one line: $err"
  grep -q -- "$want" <<<"$err" || fail "$*: does not say '$want': $err"
}

# --- an output that is one of the inputs is refused, and the input is left as it was
cp "$W/a.jsonl" "$W/keep.jsonl"
refused "a.jsonl" "$PY" "$PLOT" "$W/a.jsonl" -o "$W/a.jsonl"
refused "a.jsonl" "$PY" "$PLOT" "$W/b.jsonl" "$W/a.jsonl" -o "$W/../cli_plot/a.jsonl"
cmp -s "$W/a.jsonl" "$W/keep.jsonl" || fail "the log was overwritten"
cp "$W/auto.json" "$W/keep.json"
refused "auto.json" "$PY" "$PLOT" plan "$W/auto.json" -o "$W/auto.json"
cmp -s "$W/auto.json" "$W/keep.json" || fail "the plan was overwritten"

# --- the extension picks the format; others are refused, and nothing is written
"$PY" "$PLOT" "$W/a.jsonl" -o "$W/loss.pdf" >/dev/null || fail "-o loss.pdf"
[ "$(head -c 5 "$W/loss.pdf")" = "%PDF-" ] || fail "-o loss.pdf did not write a PDF"
cp "$W/auto.json" "$W/zzplanfile.json"
"$PY" "$PLOT" plan "$W/zzplanfile.json" -o "$W/plan.svg" >/dev/null || fail "-o plan.svg"
grep -q "<svg" "$W/plan.svg" || fail "-o plan.svg did not write an SVG"
for bad in x.jpg x; do
  refused "png, .pdf or .svg" "$PY" "$PLOT" "$W/a.jsonl" -o "$W/$bad"
  [ -e "$W/$bad" ] && fail "-o $bad wrote a file"
done

# --- fields are checked: one line naming the file and line
printf '{"step":1,"loss":9.0}\n{"step":"two","loss":8.0}\n' >"$W/strstep.jsonl"
refused "strstep.jsonl:2: 'step'" "$PY" "$PLOT" "$W/strstep.jsonl" -o "$W/x.png"
printf '{"step":1,"loss":"high"}\n' >"$W/strloss.jsonl"
refused "strloss.jsonl:1: 'loss'" "$PY" "$PLOT" "$W/strloss.jsonl" -o "$W/x.png"
printf '{"step":1,"loss":9.0,"val_loss":[1]}\n' >"$W/strval.jsonl"
refused "strval.jsonl:1: 'val_loss'" "$PY" "$PLOT" "$W/strval.jsonl" -o "$W/x.png"
refused "b.jsonl:1: --x tokens" "$PY" "$PLOT" "$W/b.jsonl" -o "$W/x.png" --x tokens

# --- runs: headers name them, event records are never steps, several runs are drawn apart
H='{"event":"run_start","resumed_from":null,"model":"custom: L=2 C=64 NH=4 maxT=64 V=50257 (Vp=50304)","micro_batch":4,"seq_len":64,"total_batch_tokens":256,"time":"2026-01-01T00:00:00Z"}'
R='{"event":"run_start","resumed_from":3,"model":"custom: L=2 C=64 NH=4 maxT=64 V=50257 (Vp=50304)","micro_batch":4,"seq_len":64,"total_batch_tokens":256,"time":"2026-01-01T00:01:00Z"}'
step() { echo "{\"step\":$1,\"loss\":$2,\"tokens\":$(($1 * 256))}"; }
{ echo "$H"; for s in 1 2 3 4 5; do step $s $((10 - s)); done; echo '{"event":"note","step":1,"loss":50}'
  echo "$R"; for s in 4 5 6; do step $s $((9 - s)); done; } >"$W/resumed.jsonl"
{ echo "$H"; for s in 1 2 3 4; do step $s $((10 - s)); done; echo "$H"; for s in 1 2 3; do step $s $((9 - s)); done; } \
  >"$W/two_runs.jsonl"
{ for s in 1 2 3 4; do step $s $((10 - s)); done; for s in 1 2; do step $s $((9 - s)); done; } >"$W/backwards.jsonl"
"$PY" "$PLOT" "$W/resumed.jsonl" -o "$W/resumed.svg" --smooth 0.5 >/dev/null || fail "a log with run_start records"
grep -q "custom: L=2 C=64 NH=4 maxT=64 V=50257, B=4 T=64" "$W/resumed.svg" || fail "the title does not name the run's model and batch"
grep -q "resumed" "$W/resumed.svg" && fail "the figure names the file, not the run"
grep -q "run 2" "$W/resumed.svg" && fail "a resumed run (or an event record) was drawn as a second run"
grep -q "smoothed (EMA 0.5)" "$W/resumed.svg" || fail "a smoothed curve is not marked as smoothed"
"$PY" "$PLOT" "$W/two_runs.jsonl" -o "$W/two_runs.svg" >/dev/null || fail "a log with two runs"
grep -q "run 1" "$W/two_runs.svg" && grep -q "run 2" "$W/two_runs.svg" || fail "two runs in one log are not drawn apart"
"$PY" "$PLOT" "$W/backwards.jsonl" -o "$W/backwards.svg" >/dev/null || fail "a log whose step goes backwards"
grep -q "run 2" "$W/backwards.svg" || fail "a step that goes backwards does not start a new run"
"$PY" "$PLOT" "$W/b.jsonl" -o "$W/b.svg" >/dev/null || fail "b.jsonl"
grep -q "run 2" "$W/b.svg" && fail "a repeated step (a resume) was drawn as a second run"

# --- the plan picture: buffers named for people, one plan labelled by its model and batch
grep -q "attention output (act.atty)" "$W/plan.svg" || fail "buffers are not named for people"
grep -q "MLP hidden, pre-GELU (act.fch)" "$W/plan.svg" || fail "act.fch is not named for people"
grep -q "end of the arena" "$W/plan.svg" || fail "the arena/reserve tick is not explained"
grep -q "zzplanfile" "$W/plan.svg" && fail "one plan is labelled by its file name"
grep -qE "d12.*B=[0-9]+ T=1024" "$W/plan.svg" || fail "one plan's title does not give its model and batch"
[ $failures -eq 0 ] || exit 1
echo "plot: OK"
