#!/usr/bin/env python3
"""plot: loss curves (train and val) from train_gpt2 --log JSONL files, as a PNG.

    python3 tools/plot.py run.jsonl [more.jsonl ...] -o loss.png [--x step|tokens] [--smooth 0.9]

Each log is one JSON object per line (step, loss, val_loss when computed, ...). A log appended
to by a resumed run may repeat steps; the last record of a step wins. Needs matplotlib
(Debian: python3-matplotlib); renders off-screen with the Agg backend.
"""
import argparse
import json
import os
import sys


def read_log(path):
    records = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        sys.exit(f"plot: {path}: cannot open ({e.strerror})")
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot: {path}:{lineno}: not JSON ({e})")
            if "step" not in rec or "loss" not in rec:
                sys.exit(f"plot: {path}:{lineno}: a record needs 'step' and 'loss'")
            records[rec["step"]] = rec
    if not records:
        sys.exit(f"plot: {path}: no records")
    return [records[s] for s in sorted(records)]


def ema(values, alpha):
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Loss curves from train_gpt2 JSONL logs")
    ap.add_argument("logs", nargs="+", help="JSONL log files (train_gpt2 --log)")
    ap.add_argument("-o", "--out", default="loss.png", help="output PNG (default loss.png)")
    ap.add_argument("--x", choices=["step", "tokens"], default="step", help="x axis")
    ap.add_argument("--smooth", type=float, default=0.0, help="EMA factor for the train curve, 0..1 (0 = none)")
    ap.add_argument("--title", default="", help="figure title")
    ap.add_argument("--labels", nargs="*", help="legend names, one per log (default: file names)")
    ap.add_argument("--logy", action="store_true", help="log-scale loss axis")
    args = ap.parse_args(argv)
    if not 0.0 <= args.smooth < 1.0:
        sys.exit("plot: --smooth must be in [0, 1)")
    if args.labels and len(args.labels) != len(args.logs):
        sys.exit("plot: give one --labels entry per log")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot: matplotlib is missing; install python3-matplotlib (scripts/install_deps.sh)")

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for i, path in enumerate(args.logs):
        recs = read_log(path)
        name = args.labels[i] if args.labels else os.path.basename(path)
        xs = [r.get(args.x, r["step"]) for r in recs]
        ys = [r["loss"] for r in recs]
        if args.smooth > 0:
            ys = ema(ys, args.smooth)
        line, = ax.plot(xs, ys, linewidth=1.2, label=f"{name} train")
        val = [(r.get(args.x, r["step"]), r["val_loss"]) for r in recs if r.get("val_loss") is not None]
        if val:
            ax.plot([v[0] for v in val], [v[1] for v in val], "o--", color=line.get_color(), markersize=4,
                    linewidth=1.0, label=f"{name} val")
    ax.set_xlabel("tokens" if args.x == "tokens" else "step")
    ax.set_ylabel("loss (nats/token)")
    if args.logy:
        ax.set_yscale("log")
    if args.title:
        ax.set_title(args.title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, format="png")
    print(f"plot: wrote {args.out}")


if __name__ == "__main__":
    main()
