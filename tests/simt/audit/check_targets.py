"""The kernels' targets, asserted on the kernel audit's report (kernels/cuda/kernel_audit.json, which
simt.audit.report_up_to_date keeps equal to what this tree's kernels give):

  - memory-bound kernels (encoder, layernorm, residual, GELU, classifier, AdamW, global norm):
    global efficiency >= 0.90, unique bytes <= 1.15 x compulsory, occupancy >= 50% on sm_86 and
    sm_90 unless EXEMPT below gives the reason;
  - every kernel the audit runs (the instantiations GPT-2 shapes use, head size 64): 0 spill bytes
    on every architecture, except the outstanding ones KNOWN_SPILLS lists byte for byte;
  - the flash attention kernels: shared-memory wavefronts <= 1.25 x ideal.

Prints one line per failed target and exits 1 when any fails.
usage: check_targets.py REPORT.json
"""
import json
import sys

MEMORY_OPS = {"encoder forward", "encoder backward", "layernorm forward", "residual+layernorm forward",
              "layernorm recompute", "layernorm backward", "residual forward", "gelu forward", "gelu backward",
              "classifier", "adamw", "global norm"}

# (kernel, architecture) -> why its occupancy may stay under 50%.
EXEMPT = {
    ("layernorm/layernorm_backward_kernel<bf16, 8, 1>", "sm_90"):
        "register-bound: 64 registers per thread (the cap of __launch_bounds__(1024)) for the 24 fp32 "
        "dweight/dbias accumulators each thread keeps across its rows; 64 registers allow 32 of the SM's 64 "
        "warps, and 3- or 7-warp blocks (C/8 threads) round that down to 30 or 28. Fewer registers would "
        "spill the accumulators; the audit still predicts it DRAM-bound.",
    ("global_norm/global_norm_final_kernel", "sm_86"):
        "a single warp for the whole launch (it adds at most 512 partials): occupancy does not apply.",
    ("global_norm/global_norm_final_kernel", "sm_90"):
        "a single warp for the whole launch (it adds at most 512 partials): occupancy does not apply.",
}

# Spills the targets do not meet yet, exactly as ptxas reports them (kernel, architecture) -> bytes
# (stores + loads). Listed so that CI stays green while they are outstanding, and fails when any
# count changes or a new spill appears: a fixed entry must be removed from here.
KNOWN_SPILLS = {}


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_targets: {e}", file=sys.stderr)
        return 2
    failures, checked = [], 0
    for k in report["kernels"]:
        name = f"{k['kernel']} [{k['dtype']} {k['shape']}]"
        g, s = k["global"], k["shared"]
        if k["op"] in MEMORY_OPS:
            checked += 1
            if g["efficiency"] < 0.90:
                failures.append(f"{name}: global efficiency {g['efficiency']:.3f} < 0.90")
            if g["unique_bytes"] > 1.15 * g["compulsory_bytes"]:
                failures.append(f"{name}: unique bytes {g['unique_bytes']:.0f} > 1.15 x compulsory "
                                f"{g['compulsory_bytes']:.0f}")
            for arch in ("sm_86", "sm_90"):
                r = k["resources"].get(arch)
                if r is None:
                    failures.append(f"{name}: no ptxas resources for {arch}")
                elif r["occupancy"] < 0.5 and (k["kernel"], arch) not in EXEMPT:
                    failures.append(f"{name}: occupancy {r['occupancy']:.2f} on {arch} < 0.50 "
                                    f"(limited by {r['limit']}), and no reason is written in EXEMPT")
        for arch, r in k["resources"].items():
            known = KNOWN_SPILLS.get((k["kernel"], arch), 0)
            if r["spill_bytes"] != known:
                failures.append(f"{name}: {r['spill_bytes']} spill bytes on {arch}" +
                                (f" (KNOWN_SPILLS lists {known})" if known else ""))
        if k["kernel"].startswith("attention/flash_"):
            checked += 1
            if s["wavefronts"] > 1.25 * s["ideal_wavefronts"]:
                failures.append(f"{name}: {s['wavefronts']} shared wavefronts > 1.25 x ideal {s['ideal_wavefronts']}")
    for line in failures:
        print("FAILED " + line)
    if not checked:
        print("FAILED no memory-bound or flash attention kernel in the report")
        return 1
    if failures:
        return 1
    print(f"PASSED: {checked} memory-bound and flash attention kernel entries meet their targets "
          f"({len(EXEMPT)} occupancy exemptions with reasons); spills: {len(KNOWN_SPILLS)} outstanding "
          f"(KNOWN_SPILLS), none elsewhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
