#!/usr/bin/env python3
"""calibrate_device: the device-table line that a measured profile implies.

    bench/calibrate_device.py PROFILE.json [--card NAME]

PROFILE.json is what `train_gpt2 --profile-json FILE` wrote. Its `measured_efficiency` holds, per
class of op, the fraction of the device's peak the measured steps reached (FLOPs over time x peak
for matmuls and attention, bytes over time x bandwidth for memory-bound ops). This prints them as
the DeviceEfficiency fields of engine/plan/gpu_catalog.cpp, marked calibrated, so the card's entry
can be replaced by measured figures (bench/gpu_check.sh runs it after its training run)."""
import argparse
import datetime
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", help="the JSON written by train_gpt2 --profile-json")
    ap.add_argument("--card", default="", help="the card's name in the table (default: from the profile)")
    a = ap.parse_args()
    try:
        with open(a.profile) as f:
            j = json.load(f)
        eff = j["measured_efficiency"]
        device = j["device"]
        step = j["step_s"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"calibrate_device: {a.profile}: not a train_gpt2 profile ({e})")
    card = a.card or device.split(" ")[0]
    missing = [k for k in ("matmul_large", "attention", "memory") if k not in eff]
    if missing:
        print(f"// {a.profile}: no measurement for {', '.join(missing)}; those fields keep their estimates",
              file=sys.stderr)
    today = datetime.date.today().isoformat()
    print(f"// {card}: measured by train_gpt2 --profile on {device}, {today}; step "
          f"{step['measured']:.4g} s measured against {step['predicted']:.4g} s predicted")
    fields = []
    for key in ("matmul_large", "matmul_small", "attention", "memory"):
        if key in eff:
            fields.append(f"e.{key} = {eff[key]:.3f};")
    fields.append("e.calibrated = true;")
    fields.append(f'e.basis = "calibrated on {device.split(" (")[0]}, {today}";')
    print(" ".join(fields))


if __name__ == "__main__":
    main()
