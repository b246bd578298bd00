"""Compares a fresh kernel_audit report with the checked-in one (kernels/cuda/kernel_audit.json).

Counts (requests, sectors, bytes, wavefronts, mma, resources) must match exactly and predicted
times to a relative 1e-6. Prints every difference as "kernel [shape]: field old -> new" and exits
1 when there is any, 0 otherwise.

usage: compare_report.py FRESH.json CHECKED_IN.json
"""
import json
import sys


def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def entries(report):
    table = {}
    for e in report["kernels"]:
        fields = {}
        flatten("", {k: v for k, v in e.items() if k not in ("kernel", "shape", "worst_sites")}, fields)
        table[(e["kernel"], e["shape"], e["dtype"])] = fields
    return table


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-6 * max(abs(float(a)), abs(float(b)), 1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    fresh_path, ref_path = sys.argv[1], sys.argv[2]
    try:
        with open(fresh_path) as f:
            fresh = entries(json.load(f))
        with open(ref_path) as f:
            ref = entries(json.load(f))
    except (OSError, ValueError, KeyError) as e:
        print(f"compare_report: {e}", file=sys.stderr)
        return 2
    diffs = []
    for key in sorted(set(fresh) | set(ref)):
        name = f"{key[0]} [{key[2]} {key[1]}]"
        if key not in ref:
            diffs.append(f"{name}: new kernel, not in the checked-in report")
            continue
        if key not in fresh:
            diffs.append(f"{name}: in the checked-in report, no longer run")
            continue
        a, b = ref[key], fresh[key]
        for field in sorted(set(a) | set(b)):
            if not same(a.get(field), b.get(field)):
                diffs.append(f"{name}: {field} {a.get(field)} -> {b.get(field)}")
    for d in diffs[:60]:
        print(d)
    if len(diffs) > 60:
        print(f"... and {len(diffs) - 60} more differences")
    if diffs:
        print(f"{len(diffs)} differences from {ref_path}. If the kernel change is meant, regenerate the report "
              "(build-audit/tests/simt/audit/kernel_audit --json kernels/cuda/kernel_audit.json) and commit it "
              "with the change.")
        return 1
    print(f"{len(fresh)} kernels: the same counts, resources and predictions as {ref_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
