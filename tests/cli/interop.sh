#!/usr/bin/env bash
# Model files with the real binaries: a checkpoint's model file converts to safetensors and
# back to the same bytes (fp32 and bf16); train_gpt2 --model starts from either file with the
# same first loss; sample is deterministic for a seed; corrupt files are refused by name.
set -u
BUILD=$1
W="$BUILD/test_tmp/cli_interop"
rm -rf "$W"; mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2
SHAPE=(--layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32)
RUN=(--device cpu --seq-len 32 --micro-batch 2 --lr 1e-3 --print-every 100)

"$BUILD/train_gpt2" "${SHAPE[@]}" "${RUN[@]}" --steps 3 --checkpoint-dir "$W/ck" >"$W/t.out" 2>&1 || { cat "$W/t.out"; fail "train"; }
M="$W/ck/model_00000003.bin"
[ -f "$M" ] || fail "no final checkpoint"
"$BUILD/convert" --in "$M" --out "$W/m.safetensors" >/dev/null || fail "bin -> safetensors"
"$BUILD/convert" --in "$W/m.safetensors" --out "$W/back.bin" >/dev/null || fail "safetensors -> bin"
cmp -s "$M" "$W/back.bin" || fail "bin -> safetensors -> bin is not byte-identical"
"$BUILD/convert" --in "$M" --out "$W/m16.bin" --dtype bf16 >/dev/null || fail "bin -> bf16 bin"
"$BUILD/convert" --in "$W/m16.bin" --out "$W/m16.safetensors" >/dev/null || fail "bf16 bin -> safetensors"
"$BUILD/convert" --in "$W/m16.safetensors" --out "$W/m16b.bin" >/dev/null || fail "bf16 safetensors -> bin"
cmp -s "$W/m16.bin" "$W/m16b.bin" || fail "bf16 round trip is not byte-identical"
[ "$(stat -c %s "$W/m16.bin")" -eq $(( ( $(stat -c %s "$M") - 1024 ) / 2 + 1024 )) ] || fail "bf16 file size"

# Pretrained init from both formats: the same first loss, and not the random-init loss.
first_loss() { grep -o '"loss":[^,]*' "$1" | head -1; }
"$BUILD/train_gpt2" --model "$M" "${RUN[@]}" --steps 1 --log "$W/l1.jsonl" >"$W/l1.out" 2>&1 || { cat "$W/l1.out"; fail "--model .bin"; }
"$BUILD/train_gpt2" --model "$W/m.safetensors" "${RUN[@]}" --steps 1 --log "$W/l2.jsonl" >"$W/l2.out" 2>&1 || { cat "$W/l2.out"; fail "--model .safetensors"; }
"$BUILD/train_gpt2" "${SHAPE[@]}" "${RUN[@]}" --steps 1 --log "$W/l3.jsonl" >/dev/null 2>&1 || fail "random init"
grep -q "init    weights from" "$W/l1.out" || fail "no pretrained-init line"
[ "$(first_loss "$W/l1.jsonl")" = "$(first_loss "$W/l2.jsonl")" ] || fail "bin and safetensors init differ"
[ "$(first_loss "$W/l1.jsonl")" != "$(first_loss "$W/l3.jsonl")" ] || fail "pretrained init gave the random-init loss"

# Sampling: deterministic for a seed (token ids, no tokenizer needed); checkpoint dirs work.
s1=$("$BUILD/sample" --model "$W/ck" --prompt-ids 1,2,3 --tokens 40 --seed 5 --ids) || fail "sample"
s2=$("$BUILD/sample" --model "$M" --prompt-ids 1,2,3 --tokens 40 --seed 5 --ids) || fail "sample 2"
s3=$("$BUILD/sample" --model "$W/m.safetensors" --prompt-ids 1,2,3 --tokens 40 --seed 6 --ids) || fail "sample 3"
[ "$s1" = "$s2" ] || fail "sampling is not deterministic: $s1 vs $s2"
[ "$s1" != "$s3" ] || fail "another seed gave the same 40 tokens"
[ "$(wc -w <<<"$s1")" -eq 40 ] || fail "expected 40 tokens: $s1"

# Corrupt files: named, exit 1.
head -c 3000 "$M" >"$W/trunc.bin"
err=$("$BUILD/convert" --in "$W/trunc.bin" --out "$W/x.safetensors" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "truncated input should exit 1, got $rc"
grep -q "trunc.bin" <<<"$err" && grep -q "truncated" <<<"$err" || fail "bad truncation message: $err"
printf 'not a model at all, just some text padding it out to more than the header..............' >"$W/junk.bin"
head -c 2000 /dev/zero >>"$W/junk.bin"
err=$("$BUILD/train_gpt2" --model "$W/junk.bin" "${RUN[@]}" --steps 1 2>&1); rc=$?
[ $rc -eq 1 ] || fail "junk model should exit 1, got $rc"
grep -q "junk.bin" <<<"$err" && grep -q "bad magic" <<<"$err" || fail "bad magic message: $err"
# HellaSwag from an llm.c-format eval .bin written here: 3 examples, --eval-only on the checkpoint.
/usr/bin/env python3 - "$W/hs.bin" <<'PY' || fail "writing the eval fixture"
import struct, sys
exs = [([1, 2, 3, 4], [[5, 6], [7], [8, 9, 10], [11]], 2), ([20, 21], [[22], [23], [24], [25, 26]], 0),
       ([30] * 5, [[31], [32], [33], [34]], 3)]
body = b""
for i, (ctx, ends, label) in enumerate(exs):
    s = [65535, 0, i, label, len(ends), len(ctx)] + ctx
    for e in ends:
        s += [len(e)] + e
    s[1] = 2 * len(s)
    body += struct.pack("<%dH" % len(s), *s)
hdr = [20240522, 1, len(exs), 0] + [0] * 252
open(sys.argv[1], "wb").write(struct.pack("<256i", *hdr) + body)
PY
out=$("$BUILD/train_gpt2" --model "$M" "${RUN[@]}" --steps 1 --eval-only --hellaswag "$W/hs.bin" 2>&1) || { echo "$out"; fail "--hellaswag"; }
grep -Eq "hellaswag accuracy [0-3]/3 = " <<<"$out" || fail "no HellaSwag accuracy line: $out"
grep -q "^step" <<<"$out" && fail "--eval-only trained"
head -c 1100 "$W/hs.bin" >"$W/hs_trunc.bin"
err=$("$BUILD/train_gpt2" --model "$M" "${RUN[@]}" --steps 1 --eval-only --hellaswag "$W/hs_trunc.bin" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "hs_trunc.bin" <<<"$err" || fail "truncated eval file: rc $rc, $err"

# --sample-every without tokenizer files: a clear error naming the fetch script, before training.
err=$("$BUILD/train_gpt2" "${SHAPE[@]}" "${RUN[@]}" --steps 2 --sample-every 1 --tokenizer-dir "$W/none" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "fetch_tokenizer.sh" <<<"$err" || fail "missing tokenizer: rc $rc, $err"
grep -q "^step" <<<"$err" && fail "trained without a tokenizer for --sample-every"
if [ -f "$2/data/tokenizer/encoder.json" ]; then
  out=$("$BUILD/train_gpt2" --layers 1 --heads 2 --width 32 --max-seq-len 32 --device cpu --seq-len 16 --micro-batch 1 \
        --steps 2 --sample-every 2 --sample-prompt "Hello" --sample-tokens 8 --tokenizer-dir "$2/data/tokenizer" 2>&1) \
    || { echo "$out"; fail "--sample-every"; }
  grep -q "^sample  (step 2) Hello" <<<"$out" || fail "no sample line: $out"
else
  echo "note: data/tokenizer missing, --sample-every text path not exercised"
fi
echo "interop: OK"
