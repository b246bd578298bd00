# Shared by the SIMT end-to-end scripts (sourced, not run): the CUDA backend of the real binaries,
# running on the CPU through the SIMT layer, at a tiny shape. Each script takes BUILD_DIR SOURCE_DIR.
set -u
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TRAIN="$BUILD/train_gpt2"
SAMPLE="$BUILD/sample"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIPPED: python3 not found"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/gpt2_simt_cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export GPT2_SIMT_MEMORY=${GPT2_SIMT_MEMORY:-512MiB}
# L=2 C=128 NH=2 (head size 64: the flash attention kernels), T=64, V=256.
SHAPE=(--layers 2 --heads 2 --width 128 --vocab 256 --max-seq-len 64 --seq-len 64)
T=64
# run NAME ARGS...: runs train_gpt2, output in $W/NAME.out; fails the test on a non-zero exit.
run() {
  local name=$1; shift
  local t0=$SECONDS
  local rc=0
  "$TRAIN" "$@" >"$W/$name.out" 2>&1 || rc=$?
  [ $rc -eq 0 ] || { tail -20 "$W/$name.out"; fail "$name: train_gpt2 exited $rc"; }
  echo "  $name: $((SECONDS - t0)) s"
}
# The helper for numbers: losses from a JSONL log, llm.c model files.
cat >"$W/e2e.py" <<'PY'
import array, json, re, struct, sys

def losses(path, exact=False):
    """Step -> loss; exact=True gives the JSON text (bitwise comparison of the double)."""
    out = {}
    for line in open(path):
        if '"event"' in line:  # run_start and other event records carry no loss
            continue
        if exact:
            step = int(re.search(r'"step":(\d+)', line).group(1))
            out[step] = re.search(r'"loss":([^,}]+)', line).group(1)
        else:
            d = json.loads(line)
            out[d["step"]] = d["loss"]
    return out

def model(path):
    """An llm.c model file as a list of (name, float array) in file order."""
    raw = open(path, "rb").read()
    h = struct.unpack("<256i", raw[:1024])
    assert h[0] == 20240326, f"{path}: bad magic {h[0]}"
    maxT, V, L, NH, C, Vp = (h[i] for i in (2, 3, 4, 5, 6, 7))
    if h[1] == 3:
        data = array.array("f", raw[1024:])
    elif h[1] == 5:
        bits = array.array("H", raw[1024:])
        data = array.array("f", b"".join(struct.pack("<I", b << 16) for b in bits))
    else:
        raise SystemExit(f"{path}: version {h[1]}")
    assert sys.byteorder == "little"
    shapes = [("wte", Vp * C), ("wpe", maxT * C), ("ln1w", L * C), ("ln1b", L * C), ("qkvw", L * 3 * C * C),
              ("qkvb", L * 3 * C), ("attprojw", L * C * C), ("attprojb", L * C), ("ln2w", L * C), ("ln2b", L * C),
              ("fcw", L * 4 * C * C), ("fcb", L * 4 * C), ("fcprojw", L * C * 4 * C), ("fcprojb", L * C),
              ("lnfw", C), ("lnfb", C)]
    assert sum(n for _, n in shapes) == len(data), (path, len(data))
    out, o = [], 0
    for name, n in shapes:
        out.append((name, data[o:o + n]))
        o += n
    return out

def compare_models(a, b, tol, abs_tol=0.0):
    """Every element: |a-b| <= tol * max|b over its tensor| + abs_tol (b the reference).
    Prints the worst tensor and how many elements need abs_tol; returns ok."""
    ok, worst, loose = True, (0.0, ""), []
    for (name, x), (_, y) in zip(model(a), model(b)):
        scale = max(max(abs(v) for v in y), 1e-30)
        d = [abs(u - v) for u, v in zip(x, y)]
        diff = max(d)
        if diff / scale > worst[0]: worst = (diff / scale, name)
        n = sum(1 for t in d if t > tol * scale)
        if n: loose.append(f"{name} {n}/{len(d)} (max|d| {diff:.2e})")
        if not diff <= tol * scale + abs_tol:
            print(f"  {name}: max|d| {diff:.3e} > {tol:g} * max|ref| {scale:.3e} + {abs_tol:.1e}")
            ok = False
    print(f"  parameters: worst tensor {worst[1]}, max|d| = {worst[0]:.2e} of its max|ref|")
    if loose: print(f"  elements beyond {tol:g} * max|ref| alone: " + ", ".join(loose))
    return ok
PY
