#!/usr/bin/env bash
# The include rule between engine/'s folders (see engine/CMakeLists.txt and the README's layout):
# every `#include "engine/..."` in engine/ must go to its own folder or to one the table below
# allows, the folder graph must have no cycle, and kernels/ must include nothing from engine/.
#   bash tests/cli/layering.sh BUILD_DIR SOURCE_DIR
set -u
SRC=${2:-.}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
"$PY" - "$SRC" <<'PY'
import os, re, sys

src = sys.argv[1]
# folder -> folders it may include (besides itself). backend/cuda is reached from the rest of
# the engine only through engine/backend/cuda_backend_factory.h.
allowed = {
    "util": set(),
    "plan": {"util"},
    "backend": {"plan", "util"},
    "backend/cuda": {"backend", "plan", "util"},
    "model": {"backend", "plan", "util"},
    "data": {"util"},
    "train": {"model", "data", "backend", "plan", "util"},
    "cli": {"train", "model", "data", "backend", "plan", "util"},
}
include = re.compile(r'^\s*#\s*include\s*"(engine/[^"]+)"', re.M)

def folder_of(path):  # "engine/backend/cuda/x.cu" -> "backend/cuda"
    return os.path.dirname(path)[len("engine/"):]

bad, edges = [], {}
for root, _, files in os.walk(os.path.join(src, "engine")):
    for name in sorted(files):
        if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
            continue
        rel = os.path.relpath(os.path.join(root, name), src)
        here = folder_of(rel)
        if here not in allowed:
            bad.append(f"{rel}: folder engine/{here} is not in the layer table")
            continue
        text = open(os.path.join(src, rel), encoding="utf-8").read()
        for target in include.findall(text):
            there = folder_of(target)
            if not os.path.exists(os.path.join(src, target)):
                bad.append(f"{rel}: includes {target}, which does not exist")
            if there == here:
                continue
            edges.setdefault(here, set()).add(there)
            if there not in allowed.get(here, set()):
                bad.append(f"{rel}: engine/{here} may not include {target} (engine/{there})")

for kind in ("cpu", "cuda"):
    kdir = os.path.join(src, "kernels", kind)
    for name in sorted(os.listdir(kdir)) if os.path.isdir(kdir) else []:
        text = open(os.path.join(kdir, name), encoding="utf-8", errors="replace").read()
        for target in include.findall(text):
            bad.append(f"kernels/{kind}/{name}: kernels include nothing from engine/, but it includes {target}")

# Any cycle between folders, whatever the table says.
state = {}
def visit(node, stack):
    state[node] = 1
    for nxt in sorted(edges.get(node, ())):
        if state.get(nxt) == 1:
            cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            bad.append("include cycle between folders: " + " -> ".join("engine/" + c for c in cycle))
        elif nxt not in state:
            visit(nxt, stack + [nxt])
    state[node] = 2
for node in sorted(edges):
    if node not in state:
        visit(node, [node])

if bad:
    print("FAIL: the include rule between engine/'s folders is broken:")
    for b in bad:
        print("  " + b)
    sys.exit(1)
n = sum(len(v) for v in edges.values())
print(f"layering ok: {len(allowed)} folders, {n} folder-to-folder include edges, no cycle")
PY
