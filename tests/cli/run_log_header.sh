#!/usr/bin/env bash
# Every run opens its --log records with one run_start record, so runs appended to one log can
# be told apart: a fresh run's has "resumed_from": null, a resumed run's the step it resumed from;
# the step records follow.
. "$(dirname "$0")/lib/common.sh"
TINY+=(--print-every 100 --checkpoint-dir "$TMP/ck" --log "$TMP/run.jsonl")
"$BIN" "${TINY[@]}" --steps 2 >"$TMP/out" 2>&1 || fail "fresh run: $(cat "$TMP/out")"
"$BIN" "${TINY[@]}" --steps 4 --resume >"$TMP/out" 2>&1 || fail "resumed run: $(cat "$TMP/out")"
/usr/bin/env python3 - "$TMP/run.jsonl" <<'PY' || fail "the log's run records are wrong: $(cat "$TMP/run.jsonl")"
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
kinds = [r.get("event", r.get("step")) for r in recs]
assert kinds == ["run_start", 1, 2, "run_start", 3, 4], kinds
first, second = recs[0], recs[3]
assert first["resumed_from"] is None and second["resumed_from"] == 2, (first, second)
for r in (first, second):
    assert r["model"].startswith("custom: L=2 C=64 NH=4"), r
    assert (r["micro_batch"], r["seq_len"], r["total_batch_tokens"]) == (2, 32, 128), r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]), r
PY
echo "ok"
