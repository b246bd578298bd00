#!/usr/bin/env bash
# Records what ptxas allocates for every kernel of kernels/cuda: registers per thread, stack
# frame, spill stores and loads, static shared memory and named barriers, per kernel
# instantiation and per architecture, in one JSON file.
#
# Each kernels/cuda/*.cu is compiled to a cubin with the kernel library's own flags
# (CMakeLists.txt: GPT2_CUDA_LIBRARY_FLAGS, the Release build's -O3 -DNDEBUG, the repository root
# as include path) and `-Xptxas -v`; ptxas's report is parsed, each mangled name is demangled
# with c++filt, and the entries are written sorted by file, name and architecture.
#
# engine/plan/kernel_resources.h computes occupancy and refused launches from this table, and the
# SIMT layer (tests/simt) refuses a launch a real GPU would refuse with it. The checked-in copy,
# kernels/cuda/kernel_resources.json, serves machines without nvcc; the build regenerates the
# table for its own architectures and the test cli.kernel_resources says when the copy is stale.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/kernel_resources.sh [--arch "80 86 89 90 100 120"] [--jobs N] OUT.json

Compiles every kernels/cuda/*.cu with nvcc for each architecture (ptxas -v) and writes the
resources of every kernel instantiation to OUT.json:
  {"compiler": ..., "date": "YYYY-MM-DD", "flags": ..., "kernels": [{"file", "mangled", "name",
   "arch", "registers", "stack_bytes", "spill_store_bytes", "spill_load_bytes", "static_smem",
   "barriers"}, ...]}

Options:
  --arch LIST   architectures, separated by spaces or semicolons (CMake's form: "80;90-real"
                is read as 80 and 90); default: 80 86 89 90 100 120. Architectures this
                nvcc does not know are skipped with a note.
  --jobs N      compilations run at once (default 2).
  -h, --help    this text.

nvcc is $NVCC when set, else the one on PATH, else /usr/local/cuda/bin/nvcc. To refresh the
checked-in table: scripts/kernel_resources.sh kernels/cuda/kernel_resources.json
EOF
}

die() {
  echo "kernel_resources.sh: $*" >&2
  exit 1
}

archs="80 86 89 90 100 120"
jobs=2
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --arch) [ $# -ge 2 ] || die "--arch needs a list, e.g. --arch \"90 86\""; archs=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$out" ] || die "one output file only (got '$out' and '$1')"; out=$1; shift ;;
  esac
done
[ -n "$out" ] || die "no output file given (usage: scripts/kernel_resources.sh [--arch \"90 86\"] OUT.json)"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, not '$jobs'"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvcc=${NVCC:-$(command -v nvcc || true)}
[ -n "$nvcc" ] || nvcc=/usr/local/cuda/bin/nvcc
[ -x "$nvcc" ] || die "nvcc not found (set NVCC, put it on PATH or install CUDA in /usr/local/cuda); machines without it use the checked-in kernels/cuda/kernel_resources.json"
command -v c++filt >/dev/null || die "c++filt not found (Debian package binutils)"
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
[ -n "$python" ] || die "python3 not found"

known=$("$nvcc" --list-gpu-arch 2>/dev/null) || die "'$nvcc --list-gpu-arch' failed"
compiler=$("$nvcc" --version | tail -n 1) || die "'$nvcc --version' failed"
selected=()
for a in ${archs//;/ }; do
  a=${a%-real}
  a=${a%-virtual}
  a=${a#sm_}
  [[ "$a" =~ ^[0-9]+[af]?$ ]] || die "'$a' is not an architecture (write 90, sm_90 or 90a)"
  if grep -qx "compute_${a%[af]}" <<<"$known"; then
    selected+=("$a")
  else
    echo "kernel_resources.sh: note: $nvcc has no sm_$a, skipped" >&2
  fi
done
[ ${#selected[@]} -gt 0 ] || die "none of the architectures '$archs' is known to $nvcc"

# The kernel library's flags (CMakeLists.txt, GPT2_CUDA_LIBRARY_FLAGS, and the Release build's).
flags="-std=c++17 -O3 -DNDEBUG --use_fast_math -lineinfo --expt-relaxed-constexpr"
sources=("$repo"/kernels/cuda/*.cu)
[ -e "${sources[0]}" ] || die "no kernels/cuda/*.cu under $repo"

work=$(mktemp -d) || die "cannot create a temporary folder"
trap 'rm -rf "$work"' EXIT

# One compilation: its ptxas report goes to $work/<file>.<arch>.log, a failure to .err.
compile() {
  local src=$1 arch=$2 base
  base=$(basename "$src" .cu)
  # shellcheck disable=SC2086
  if ! "$nvcc" $flags -cubin -arch="sm_$arch" -Xptxas -v -I"$repo" -o "$work/$base.$arch.cubin" "$src" \
    >"$work/$base.$arch.log" 2>&1; then
    mv "$work/$base.$arch.log" "$work/$base.$arch.err"
    return 1
  fi
}

running=0
failed=0
for arch in "${selected[@]}"; do
  for src in "${sources[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    compile "$src" "$arch" &
    running=$((running + 1))
  done
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if [ "$failed" != 0 ]; then
  first=$(ls "$work"/*.err | head -n 1)
  die "nvcc failed on $(basename "$first" .err | sed 's/\.\([0-9a-z]*\)$/.cu for sm_\1/'):
$(tail -n 20 "$first")"
fi

# Parse every report, demangle and write the table (to a temporary file, then moved into place).
tmp_out="$work/out.json"
"$python" - "$work" "$tmp_out" "$compiler" "$flags" "$(date -u +%Y-%m-%d)" <<'PY' || die "could not parse ptxas's output"
import glob, json, os, re, subprocess, sys

work, out_path, compiler, flags, date = sys.argv[1:6]
entry_re = re.compile(r"Compiling entry function '([^']+)' for '(sm_[0-9a-z]+)'")
props_re = re.compile(r"Function properties for (\S+)")
frame_re = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
used_re = re.compile(r"Used (\d+) registers")
barriers_re = re.compile(r"used (\d+) barriers")
smem_re = re.compile(r"(\d+) bytes smem")

kernels = []
for log in sorted(glob.glob(os.path.join(work, "*.log"))):
    file = os.path.basename(log).split(".")[0]
    current = None   # the entry being read
    frame = {}       # "Function properties" of each function: mangled name -> (stack, spill st, spill ld)
    pending = None   # the function whose properties line comes next
    for line in open(log):
        m = entry_re.search(line)
        if m:
            current = {"file": file, "mangled": m.group(1), "arch": m.group(2)}
            continue
        m = props_re.search(line)
        if m:
            pending = m.group(1)
            continue
        m = frame_re.search(line)
        if m and pending:
            frame[pending] = tuple(int(x) for x in m.groups())
            pending = None
            continue
        m = used_re.search(line)
        if m and current:
            stack, spill_st, spill_ld = frame.get(current["mangled"], (0, 0, 0))
            b = barriers_re.search(line)
            s = smem_re.search(line)
            current.update(registers=int(m.group(1)), stack_bytes=stack, spill_store_bytes=spill_st,
                           spill_load_bytes=spill_ld, static_smem=int(s.group(1)) if s else 0,
                           barriers=int(b.group(1)) if b else 0)
            kernels.append(current)
            current = None
    if current:
        sys.exit(f"{log}: no 'Used N registers' line for {current['mangled']}")

names = [k["mangled"] for k in kernels]
demangled = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True, text=True,
                           check=True).stdout.split("\n")[: len(names)]
for k, d in zip(kernels, demangled):
    k["name"] = d
if not kernels:
    sys.exit("ptxas reported no kernels")

arch_number = lambda a: int(re.match(r"sm_(\d+)", a).group(1))
kernels.sort(key=lambda k: (k["file"], k["name"], arch_number(k["arch"]), k["arch"]))
fields = ["file", "mangled", "name", "arch", "registers", "stack_bytes", "spill_store_bytes",
          "spill_load_bytes", "static_smem", "barriers"]
with open(out_path, "w") as f:
    f.write("{\n")
    f.write(f'  "compiler": {json.dumps(compiler)},\n')
    f.write(f'  "date": {json.dumps(date)},\n')
    f.write(f'  "flags": {json.dumps(flags)},\n')
    f.write('  "kernels": [\n')
    rows = [json.dumps({key: k[key] for key in fields}) for k in kernels]
    f.write(",\n".join("    " + r for r in rows))
    f.write("\n  ]\n}\n")
PY
out_dir=$(dirname "$out")
[ -d "$out_dir" ] || mkdir -p "$out_dir" || die "cannot create the folder $out_dir"
cp "$tmp_out" "$out.tmp.$$" || die "cannot write $out.tmp.$$"
mv "$out.tmp.$$" "$out" || { rm -f "$out.tmp.$$"; die "cannot write $out"; }
count=$(grep -c '"mangled"' "$out") || true
echo "kernel_resources.sh: $count entries (${#selected[@]} architectures: ${selected[*]}) written to $out"
