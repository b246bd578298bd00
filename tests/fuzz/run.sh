#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a while (CI: a smoke run): the
# shard and tokenizer readers, the tokenizer, model files (llm.c .bin, .safetensors), checkpoint
# state files, --config files and HellaSwag files (tests/fuzz/CMakeLists.txt lists them).
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR]     (defaults: 20, build-fuzz)
#
# Every target runs for SECONDS_PER_TARGET (6 targets: CI's 20 s make 2 minutes, plus the build),
# with -rss_limit_mb=2048: a loader that allocates more than that for a small input is a bug.
# Needs clang and libclang-rt-14-dev (scripts/install_deps.sh), and the tokenizer files
# (data/fetch_tokenizer.sh). Exits non-zero when a target finds a crash; the crashing input is
# left in BUILD_DIR/artifacts/.
set -euo pipefail
SECONDS_PER_TARGET="${1:-20}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${2:-$ROOT/build-fuzz}"
CXX_BIN="${CXX_FUZZ:-clang++}"
command -v "$CXX_BIN" >/dev/null 2>&1 || { echo "fuzz: $CXX_BIN not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
[ -f "$ROOT/data/tokenizer/encoder.json" ] || { echo "fuzz: tokenizer files missing: run data/fetch_tokenizer.sh" >&2; exit 1; }

cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

# Seed corpora, one folder per target, written from the formats documented in the headers (small
# valid files, so mutations start from the interesting paths; each under -max_len=8192). The
# first byte of a seed is the target's selector, where it has one.
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"; mkdir -p "$BUILD/artifacts"
for t in shard text model state config hellaswag text_inputs; do mkdir -p "$SEEDS/$t"; done
python3 - "$SEEDS" "$ROOT" <<'PY'
import glob, json, os, struct, sys
seeds, root = sys.argv[1], sys.argv[2]
def put(name, data):
    open(f"{seeds}/{name}", "wb").write(data)

# fuzz_shard: a good llm.c shard, a nanoGPT file, a small tokenizer .bin.
toks = struct.pack("<20H", *range(100, 120))
hdr = struct.pack("<256i", 20240520, 1, 20, *([0] * 253))
for sel, body in ((0, hdr + toks), (1, hdr + toks), (2, toks), (0, toks)):
    put(f"shard/s{sel}_{len(body)}", bytes([sel]) + body)
vocab = [bytes([b]) for b in range(256)] + [b"<|endoftext|>"]
tok = struct.pack("<256I", 20240328, 2, len(vocab), 256, *([0] * 252))
tok += b"".join(bytes([len(t)]) + t for t in vocab)
put("shard/tokbin", bytes([3]) + tok)

# fuzz_tokenizer: text.
texts = ["Hello world, it's 2024!", "caf\u00e9 \u4f60\u597d \U0001F600", "  \n\n  x"]
for i, t in enumerate(texts):
    put(f"text/t{i}", t.encode())
put("text/invalid", b"ok \xc0\xaf \xed\xa0\x80 \xff end\xe4")
for p in sorted(glob.glob(f"{root}/data/brown/text/*.txt"))[:5]:
    put("text/" + os.path.basename(p), open(p, "rb").read()[:2000])

# fuzz_model_file: tiny llm.c models (fp32, bf16; L=1 NH=2 C=4 maxT=4 V=10 Vp=128) and
# safetensors files of the same shape (F32, BF16, F16), in llm.c / HF tensor order.
L, NH, C, T, V, Vp = 1, 2, 4, 4, 10, 128
def floats(n, k=0):
    return [((i * 7 + k) % 13 - 6) / 8.0 for i in range(n)]
llmc_sizes = [Vp * C, T * C] + [L * n for n in (C, C, 3 * C * C, 3 * C, C * C, C, C, C, 4 * C * C, 4 * C, 4 * C * C, C)] + [C, C]
def bf16(v):
    return struct.unpack("<I", struct.pack("<f", v))[0] >> 16
for ver, name in ((3, "fp32"), (5, "bf16")):
    h = struct.pack("<256i", 20240326, ver, T, V, L, NH, C, Vp, *([0] * 248))
    vals = floats(sum(llmc_sizes))
    body = struct.pack(f"<{len(vals)}f", *vals) if ver == 3 else struct.pack(f"<{len(vals)}H", *map(bf16, vals))
    put(f"model/llmc_{name}", bytes([0]) + h + body)
    put(f"model/llmc_{name}_fit", bytes([1]) + h)  # selector 1 pads the body back
    put(f"model/llmc_{name}_cfg", bytes([2]) + h)
hf = [("wte.weight", [V, C]), ("wpe.weight", [T, C])]
for l in range(L):
    p = f"h.{l}."
    hf += [(p + "ln_1.weight", [C]), (p + "ln_1.bias", [C]), (p + "attn.c_attn.weight", [C, 3 * C]),
           (p + "attn.c_attn.bias", [3 * C]), (p + "attn.c_proj.weight", [C, C]), (p + "attn.c_proj.bias", [C]),
           (p + "ln_2.weight", [C]), (p + "ln_2.bias", [C]), (p + "mlp.c_fc.weight", [C, 4 * C]),
           (p + "mlp.c_fc.bias", [4 * C]), (p + "mlp.c_proj.weight", [4 * C, C]), (p + "mlp.c_proj.bias", [C])]
hf += [("ln_f.weight", [C]), ("ln_f.bias", [C])]
for dt, esize, prefix in (("F32", 4, ""), ("BF16", 2, "transformer."), ("F16", 2, "")):
    header, data = {"__metadata__": {"format": "pt", "n_head": str(NH)}}, b""
    for name, shape in hf:
        n = 1
        for d in shape:
            n *= d
        vals = floats(n, len(data))
        raw = (struct.pack(f"<{n}f", *vals) if dt == "F32" else
               struct.pack(f"<{n}H", *map(bf16, vals)) if dt == "BF16" else struct.pack(f"<{n}e", *vals))
        header[prefix + name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    hs = json.dumps(header, separators=(",", ":")).encode()
    hs += b" " * (-len(hs) % 8)
    st = struct.pack("<Q", len(hs)) + hs + data
    put(f"model/st_{dt}", bytes([3]) + st)
    put(f"model/st_{dt}_cfg", bytes([4]) + st)
put("model/st_hint2", bytes([3 + 5 * 2]) + st)  # --heads 2

# fuzz_checkpoint_state: a state file as train_gpt2 writes it (JSON header of a real run, the
# synthetic data position, 8 master weights, m and v), whole (selector 0) and as a payload that
# the target wraps (selector 1).
meta = {"model_bytes": 4144, "model_file": "model_00000001.bin", "model_fnv1a64": "ac62429441064f11",
        "plan_hash": "b24ba51345335f49", "rank": 0, "seed": 1337, "shard_elems": 8, "step": 1, "updates": 1,
        "world_size": 1, "settings": {"--device": "cpu", "--heads": 2, "--layers": 1, "--lr": 0.0006,
        "--lr-schedule": "cosine", "--micro-batch": 1, "--precision": "fp32", "--seed": 1337, "--seq-len": 4,
        "--train-data": "synthetic", "--vocab": 10, "--width": 4, "--world-size": 1, "--zero": 0}}
js = json.dumps(meta, separators=(",", ":")).encode()
pos = bytes.fromhex("4f50325453594e31390500000000000040000000000000000100000000000000")
payload = struct.pack("<Q", len(js)) + js + struct.pack("<Q", len(pos)) + pos
for k in range(3):
    payload += struct.pack("<Q8f", 8, *floats(8, k))
def fnv1a64(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
state = b"GPT2CKPT" + struct.pack("<IIQ", 1, 0, len(payload)) + payload + struct.pack("<Q", fnv1a64(payload)) + b"CKPTEND\0"
put("state/state", bytes([0]) + state)
put("state/payload", bytes([1]) + payload)
put("state/payload_nomaster", bytes([1]) + payload.replace(struct.pack("<Q8f", 8, *floats(8, 0)), struct.pack("<Q", 0)))

# fuzz_config: --config files.
put("config/run", b"# tiny run\nmodel = d12\nlr = 6e-4\nsteps = 10\n\n; batch\nmicro-batch = 4\nseq_len = 64\n"
                  b"train-data = \"data/tinyshakespeare/*.bin\"\r\n  checkpoint-dir=ckpt  \n")
put("config/empty", b"")
put("config/bad", b"steps = 10\nwarmup 5\n")

# fuzz_hellaswag: jsonl lines (selector 1; 2 picks by content) and an llm.c eval .bin
# (selector 0; 2 picks it by its magic), with the layout of write_eval_bin.
lines = [{"ind": 4, "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he",
          "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                      "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "label": 3},
         {"ctx_a": "Caf\u00e9 \u4f60\u597d:", "ctx_b": "then", "endings": ["x", ""], "label": "0"}]
jl = "\n".join(json.dumps(l) for l in lines).encode() + b"\n"
put("hellaswag/jsonl", bytes([1]) + jl)
put("hellaswag/jsonl_auto", bytes([2]) + jl)
stream, longest = [], 0
for i, (ctx, ends, label) in enumerate((([10, 11, 12], [[5], [6, 7], [8]], 1), ([], [[1, 2], [3]], 0))):
    ex = [65535, 0, i, label, len(ends), len(ctx)] + ctx
    for e in ends:
        ex += [len(e)] + e
    ex[1] = 2 * len(ex)
    longest = max(longest, 2 * len(ex))
    stream += ex
evalbin = struct.pack("<256i", 20240522, 1, 2, longest, *([0] * 252)) + struct.pack(f"<{len(stream)}H", *stream)
put("hellaswag/bin", bytes([0]) + evalbin)
put("hellaswag/bin_auto", bytes([2]) + evalbin)

# fuzz_text_inputs: a small tokenizer that satisfies the merge count (256 bytes, one special,
# merges making the rest), and prepro inputs: .jsonl documents and plain text in pieces.
byte_chars = [chr(c) for c in range(ord("!"), ord("~") + 1)] + [chr(c) for c in range(0xA1, 0xAD)] + \
             [chr(c) for c in range(0xAE, 0x100)]
extra = 0
byte_map = {}
for b in range(256):
    byte_map[b] = chr(b) if chr(b) in byte_chars else chr(256 + extra)
    extra += 0 if chr(b) in byte_chars else 1
enc = {byte_map[b]: b for b in range(256)}
merges = [("\u0120", "t"), ("h", "e"), ("\u0120t", "he"), ("i", "n")]
for a, b in merges:
    enc[a + b] = len(enc)
enc["<|endoftext|>"] = len(enc)
bpe = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
put("text_inputs/tokenizer", bytes([0]) + json.dumps(enc).encode() + b"\0" + bpe.encode())
put("text_inputs/tokenizer_cut", bytes([0]) + json.dumps(enc).encode() + b"\0" + bpe.encode()[:-6])
put("text_inputs/jsonl", bytes([1]) + b'{"text": "The first document."}\n{"text": "caf\\u00e9 \\u4f60"}\n\n{"text": ""}\n')
put("text_inputs/plain", bytes([2]) + "Первая строка.\n    indented line\nthird line, CRLF\r\n\nend".encode())
PY

status=0
run() {
  local name=$1 corpus=$2
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s"
  if ! GPT2_TOKENIZER_DIR="$ROOT/data/tokenizer" "$BUILD/$name" -max_total_time="$SECONDS_PER_TARGET" \
      -max_len=8192 -rss_limit_mb=2048 -artifact_prefix="$BUILD/artifacts/$name-" -print_final_stats=1 "$corpus" \
      >"$BUILD/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; see $BUILD/$name.log and $BUILD/artifacts/" >&2
    tail -30 "$BUILD/$name.log" >&2
    status=1
  else
    grep -E "stat::(number_of_executed_units|average_exec_per_sec)" "$BUILD/$name.log" | sed "s/^/  /" || true
  fi
}
run fuzz_shard "$SEEDS/shard"
run fuzz_tokenizer "$SEEDS/text"
run fuzz_model_file "$SEEDS/model"
run fuzz_checkpoint_state "$SEEDS/state"
run fuzz_config "$SEEDS/config"
run fuzz_hellaswag "$SEEDS/hellaswag"
run fuzz_text_inputs "$SEEDS/text_inputs"
exit $status
