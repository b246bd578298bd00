#!/usr/bin/env python3
"""plot: PNG figures from train_gpt2 output, drawn with matplotlib (Agg backend, no display).

Two modes:

  loss curves (the default mode; the word "loss" in front is optional):
    python3 tools/plot.py [loss] run.jsonl [more.jsonl ...] -o loss.png [--x step|tokens] [--smooth 0.9]

  the memory plan of one or two `train_gpt2 --dry-run --json` outputs:
    python3 tools/plot.py plan PLAN.json [PLAN2.json] -o plan.png [--labels A B] [--top N]

A loss log is one JSON object per line (step, loss, val_loss when computed, ...). A log appended
to by a resumed run may repeat steps; the last record of a step wins.

A plan figure shows each plan as one bar: the arena split by category, then the reserve held
outside the arena, with the budget as a vertical line; beneath it the N largest buffers. Two plans
share one scale. Every number is read straight from the JSON. Needs matplotlib (Debian:
python3-matplotlib).
"""
import argparse
import json
import os
import sys

PLAN_EXAMPLE = """\
example (the seed case: B=64 without recompute against auto-fit's choice, on a 12 GB card):
  train_gpt2 --dry-run --json --model d12 --micro-batch 64 --total-batch-tokens 524288 \\
      --gpu rtx3060-12gb > b64.json            # exits 3: the plan does not fit
  train_gpt2 --dry-run --json --model d12 --micro-batch auto --total-batch-tokens 524288 \\
      --gpu rtx3060-12gb > auto.json
  python3 tools/plot.py plan b64.json auto.json -o plan.png --labels "B=64, no recompute" auto-fit
  train_gpt2 --dry-run --json --model d12 --micro-batch auto --gpu h100-80gb | python3 tools/plot.py plan - -o h100.png
"""


def die(msg):
    """One line on stderr, exit status 1, no traceback."""
    sys.exit(f"plot: {msg}")


def fmt_bytes(n):
    """The units and rounding of train_gpt2's own tables (engine/util/units.cpp format_bytes)."""
    a = abs(n)
    if a >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if a >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if a >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{int(n)} B"


def import_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        die(f"matplotlib is missing for {sys.executable}; install python3-matplotlib (scripts/install_deps.sh)")
    return plt


# ---------------------------------------------------------------------------------------------
# loss curves

def read_log(path):
    records = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        die(f"{path}: cannot open ({e.strerror})")
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    die(f"{path}:{lineno}: not JSON ({e})")
                if not isinstance(rec, dict) or "step" not in rec or "loss" not in rec:
                    die(f"{path}:{lineno}: a record needs 'step' and 'loss'")
                records[rec["step"]] = rec
        except UnicodeDecodeError:
            die(f"{path}: not a text file (invalid UTF-8)")
    if not records:
        die(f"{path}: no records")
    return [records[s] for s in sorted(records)]


def ema(values, alpha):
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def loss_main(argv):
    ap = argparse.ArgumentParser(
        prog="plot.py [loss]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Loss curves from train_gpt2 --log JSONL files (the default mode), or, with "
                    "'plan' first, the memory plan of train_gpt2 --dry-run --json output.",
        epilog="plan mode: plot.py plan PLAN.json [PLAN2.json] -o plan.png [--labels A B] [--top N]\n"
               "  draws each plan's arena by category plus the reserve, against the budget, and the\n"
               "  largest buffers; PLAN may be '-' for stdin. Options: plot.py plan --help\n\n"
               + PLAN_EXAMPLE)
    ap.add_argument("logs", nargs="+", help="JSONL log files (train_gpt2 --log)")
    ap.add_argument("-o", "--out", default="loss.png", help="output PNG (default loss.png)")
    ap.add_argument("--x", choices=["step", "tokens"], default="step", help="x axis")
    ap.add_argument("--smooth", type=float, default=0.0, help="EMA factor for the train curve, 0..1 (0 = none)")
    ap.add_argument("--title", default="", help="figure title")
    ap.add_argument("--labels", nargs="*", help="legend names, one per log (default: file names)")
    ap.add_argument("--logy", action="store_true", help="log-scale loss axis")
    args = ap.parse_args(argv)
    if not 0.0 <= args.smooth < 1.0:
        die("--smooth must be in [0, 1)")
    if args.labels and len(args.labels) != len(args.logs):
        die("give one --labels entry per log")

    logs = [(path, read_log(path)) for path in args.logs]
    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for i, (path, recs) in enumerate(logs):
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
    save(fig, args.out)


def save(fig, out):
    try:
        fig.savefig(out, format="png")
    except OSError as e:
        die(f"{out}: cannot write ({e.strerror})")
    print(f"plot: wrote {out}")


# ---------------------------------------------------------------------------------------------
# memory plan

# Arena order of engine/plan (parameters first, workspace last); the reserve lies outside.
PLAN_CATEGORIES = ["parameters", "gradients", "master_weights", "adam_m", "adam_v", "activations",
                   "scratch", "logits", "workspace"]
CATEGORY_COLORS = {
    "parameters": "#1f77b4", "gradients": "#ff7f0e", "master_weights": "#2ca02c",
    "adam_m": "#17becf", "adam_v": "#9467bd", "activations": "#d62728", "scratch": "#8c564b",
    "logits": "#e377c2", "workspace": "#bcbd22", "padding": "#ffffff", "reserve": "#c7c7c7",
}
EXTRA_COLORS = ["#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94"]


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def read_plan(path):
    """Parse and check one `train_gpt2 --dry-run --json` output; every failure is one line."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        die(f"{name}: cannot open ({e.strerror})")
    except UnicodeDecodeError:
        die(f"{name}: not JSON (not UTF-8 text); expected the output of train_gpt2 --dry-run --json")
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as e:
        die(f"{name}: not JSON ({e}); expected the output of train_gpt2 --dry-run --json")
    if not isinstance(plan, dict):
        die(f"{name}: not a memory plan: expected a JSON object from train_gpt2 --dry-run --json")
    missing = [k for k in ("total_bytes", "arena_bytes", "reserve_bytes", "budget_bytes", "fits",
                           "config", "categories", "buffers") if k not in plan]
    if missing:
        die(f"{name}: not a memory plan (train_gpt2 --dry-run --json): missing "
            + ", ".join(f"'{k}'" for k in missing))
    for k in ("total_bytes", "arena_bytes", "reserve_bytes", "budget_bytes"):
        if not is_count(plan[k]):
            die(f"{name}: '{k}' must be a non-negative integer, got {plan[k]!r}")
    if not isinstance(plan["fits"], bool):
        die(f"{name}: 'fits' must be true or false, got {plan['fits']!r}")
    if not isinstance(plan["config"], dict):
        die(f"{name}: 'config' must be an object")
    cats = plan["categories"]
    if not isinstance(cats, dict) or not all(is_count(v) for v in cats.values()):
        die(f"{name}: 'categories' must map names to non-negative byte counts")
    bufs = plan["buffers"]
    if not isinstance(bufs, list):
        die(f"{name}: 'buffers' must be a list")
    for i, b in enumerate(bufs):
        if not (isinstance(b, dict) and isinstance(b.get("name"), str) and isinstance(b.get("category"), str)
                and is_count(b.get("bytes"))):
            die(f"{name}: buffers[{i}] needs 'name', 'category' and a non-negative 'bytes'")
    arena_sum = sum(v for k, v in cats.items() if k != "reserve")
    if arena_sum > plan["arena_bytes"]:
        die(f"{name}: the categories add up to {arena_sum} bytes, more than arena_bytes {plan['arena_bytes']}")
    if plan["arena_bytes"] + plan["reserve_bytes"] != plan["total_bytes"]:
        print(f"plot: warning: {name}: arena_bytes + reserve_bytes != total_bytes; drawing the parts",
              file=sys.stderr)
    plan["_name"] = name
    return plan


def arena_segments(plan):
    """[(category, bytes)] in arena order: by the lowest buffer offset, known order otherwise."""
    cats = {k: v for k, v in plan["categories"].items() if k != "reserve" and v > 0}
    first = {}
    for b in plan["buffers"]:
        off = b.get("offset")
        if b["category"] in cats and is_count(off):
            first[b["category"]] = min(off, first.get(b["category"], off))
    known = {c: i for i, c in enumerate(PLAN_CATEGORIES)}
    order = sorted(cats, key=lambda c: (first.get(c, float("inf")), known.get(c, len(known)), c))
    segs = [(c, cats[c]) for c in order]
    pad = plan["arena_bytes"] - sum(cats.values())
    if pad > 0:
        segs.append(("padding", pad))
    return segs


def config_text(plan):
    c = plan["config"]

    def g(k):
        return c.get(k, "?")
    rec = str(g("recompute"))
    if rec.startswith("budget") and c.get("recompute_layers"):
        rec = f"budget:{c['recompute_layers']}"
    parts = [f"micro-batch {g('micro_batch')} × {g('seq_len')}", f"grad accum {g('grad_accum')}",
             f"recompute {rec}", f"logits chunk {g('logits_chunk')}", str(g("precision"))]
    if c.get("zero"):
        parts.append(f"ZeRO-{c['zero']} × {g('world_size')}")
    return ", ".join(parts)


def verdict_text(plan):
    total, budget = plan["total_bytes"], plan["budget_bytes"]
    if plan["fits"]:
        return f"{fmt_bytes(total)}: FITS, {fmt_bytes(budget - total)} to spare"
    return f"{fmt_bytes(total)}: DOES NOT FIT, {fmt_bytes(total - budget)} over"


def axis_unit(max_bytes):
    for name, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if max_bytes >= 2 * size:
            return name, size
    return "bytes", 1


def plan_main(argv):
    ap = argparse.ArgumentParser(
        prog="plot.py plan",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw one or two memory plans (train_gpt2 --dry-run --json output) as a PNG: per plan "
                    "one bar of the arena split by category plus the reserve outside it, the budget as a "
                    "vertical line, the total and the verdict; beneath, the largest buffers. Two plans are "
                    "drawn on the same scale, each labelled with its configuration.",
        epilog=PLAN_EXAMPLE)
    ap.add_argument("plans", nargs="+", metavar="PLAN.json",
                    help="one or two plans, each the JSON printed by train_gpt2 --dry-run --json ('-' = stdin)")
    ap.add_argument("-o", "--out", default="plan.png", help="output PNG (default plan.png)")
    ap.add_argument("--labels", nargs="+", metavar="LABEL", help="a name per plan (default: the file names)")
    ap.add_argument("--top", type=int, default=10, metavar="N", help="largest buffers to list per plan (default 10, 0 = none)")
    ap.add_argument("--title", default="", help="figure title (default: the model, its parameters and the budget)")
    args = ap.parse_args(argv)
    if len(args.plans) > 2:
        die("plan mode takes one or two plans")
    if args.plans.count("-") > 1:
        die("only one plan can come from stdin ('-')")
    if args.labels and len(args.labels) != len(args.plans):
        die("give one --labels entry per plan")
    if args.top < 0:
        die("--top must be >= 0")

    plans = [read_plan(p) for p in args.plans]
    labels = args.labels or [os.path.splitext(os.path.basename(p["_name"]))[0] for p in plans]
    plt = import_pyplot()
    from matplotlib.patches import Patch

    n = len(plans)
    top = args.top
    # fixed layout, in inches: title, the bars, their legend, then (with --top) the largest buffers
    bars_h = 0.64 + 0.72 * n
    height = 8.0 if top > 0 else 0.72 + bars_h + 1.25
    fig = plt.figure(figsize=(12, height), dpi=100)
    bars_bottom = 1 - (0.72 + bars_h) / height
    ax = fig.add_axes([0.02, bars_bottom, 0.96, bars_h / height])
    panel_top = 0.44 if n > 1 else 0.54
    label_room = 0.21  # buffer names sit left of each panel
    panel_w = (0.98 - n * label_room - (n - 1) * 0.02) / n

    # --- the bars: one row per plan, top to bottom in the order given
    longest = max(max(p["total_bytes"], p["budget_bytes"], 1) for p in plans)
    unit, size = axis_unit(longest)
    xmax = longest * 1.3 / size  # room right of the longest bar for its verdict
    used = []
    extra = iter(EXTRA_COLORS)
    colors = dict(CATEGORY_COLORS)
    bar_h = 0.42
    for row, plan in enumerate(plans):
        y = n - 1 - row
        x = 0.0
        for cat, nbytes in arena_segments(plan) + [("reserve", plan["reserve_bytes"])]:
            if nbytes <= 0:
                continue
            if cat not in colors:
                colors[cat] = next(extra, "#7f7f7f")
            w = nbytes / size
            ax.barh(y, w, left=x, height=bar_h, color=colors[cat], edgecolor="black", linewidth=0.5,
                    hatch="//" if cat in ("reserve", "padding") else None)
            if cat not in used:
                used.append(cat)
            if w >= 0.075 * xmax:  # room for the name and size inside the segment
                ax.text(x + w / 2, y, f"{cat}\n{fmt_bytes(nbytes)}", ha="center", va="center", fontsize=8,
                        color="black" if cat in ("reserve", "padding", "workspace") else "white")
            x += w
        # the arena's end, where the reserve (outside the arena) begins
        arena_x = plan["arena_bytes"] / size
        ax.plot([arena_x, arena_x], [y - bar_h / 2 - 0.05, y + bar_h / 2 + 0.05], color="black", linewidth=1.2)
        ax.text(0, y + bar_h / 2 + 0.06, f"{labels[row]}: {config_text(plan)}", ha="left", va="bottom",
                fontsize=9.5, fontweight="bold", zorder=7,
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1))
        # right of the bar, or of the budget line when the plan fits under it
        ax.text(max(x, plan["budget_bytes"] / size) + 0.01 * xmax, y,
                verdict_text(plan).replace(": ", " total\n", 1)
                + f"\narena {fmt_bytes(plan['arena_bytes'])} + reserve {fmt_bytes(plan['reserve_bytes'])}",
                ha="left", va="center", fontsize=8.5, color="#2ca02c" if plan["fits"] else "#d62728",
                fontweight="bold", zorder=7, bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1))

    budgets = sorted({p["budget_bytes"] for p in plans})
    for row, plan in enumerate(plans):
        b = plan["budget_bytes"]
        y = n - 1 - row
        if len(budgets) == 1:
            y0, y1 = -0.5, n - 0.5
        else:
            y0, y1 = y - bar_h / 2 - 0.12, y + bar_h / 2 + 0.04
        if len(budgets) > 1 or row == 0:
            ax.plot([b / size, b / size], [y0, y1], color="black", linestyle="--", linewidth=1.5, zorder=5)
            src = plan.get("budget_source")
            text = f"budget {fmt_bytes(b)}" + (f" ({src})" if src else "")
            if len(budgets) == 1:  # above the frame, clear of the bars' labels
                ax.annotate(text, xy=(b / size, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=9, fontweight="bold")
            else:
                ax.text(b / size, y - bar_h / 2 - 0.08, " " + text, ha="left", va="top", fontsize=8.5, zorder=6)
    ax.set_xlim(0, xmax)
    ax.set_ylim(-0.5, n - 0.5 + 0.25)
    ax.set_yticks([])
    ax.set_xlabel(f"{unit} (arena by category, then the reserve held outside it)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)

    # legend: every category drawn, with its bytes in each plan
    def size_in(plan, cat):
        if cat == "reserve":
            return plan["reserve_bytes"]
        return dict(arena_segments(plan)).get(cat, 0)
    handles = []
    for cat in used:
        sizes = " | ".join(fmt_bytes(size_in(p, cat)) for p in plans)
        name = "reserve (outside arena)" if cat == "reserve" else cat
        handles.append(Patch(facecolor=colors[cat], edgecolor="black", linewidth=0.5,
                             hatch="//" if cat in ("reserve", "padding") else None, label=f"{name}: {sizes}"))
    leg_title = "category: " + " | ".join(labels) if n > 1 else None
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, bars_bottom - 0.44 / height),
               ncol=4 if n > 1 else 5, fontsize=8, title=leg_title, title_fontsize=8, frameon=False)

    model = plans[0].get("model", {})
    mname = model.get("name") if isinstance(model, dict) else None
    title = args.title or (f"Memory plan{'s' if n > 1 else ''}"
                           + (f" of {mname}" if mname else "")
                           + (f" ({plans[0]['params']:,} parameters)" if is_count(plans[0].get("params")) else "")
                           + (f" against a budget of {fmt_bytes(budgets[0])}" if len(budgets) == 1 else ""))
    fig.suptitle(title, fontsize=12, fontweight="bold", y=1 - 0.12 / height)

    # --- the largest buffers of each plan, on one shared scale
    if top > 0:
        tops = [sorted(p["buffers"], key=lambda b: (-b["bytes"], b.get("offset", 0)))[:top] for p in plans]
        biggest = max((b["bytes"] for t in tops for b in t), default=1)
        bunit, bsize = axis_unit(biggest)
        for col, (plan, bufs) in enumerate(zip(plans, tops)):
            left = label_room + col * (panel_w + label_room + 0.02)
            bx = fig.add_axes([left, 0.06, panel_w, panel_top - 0.06])
            for i, b in enumerate(bufs):
                cat = b["category"]
                if cat not in colors:
                    colors[cat] = next(extra, "#7f7f7f")
                bx.barh(i, b["bytes"] / bsize, color=colors[cat], edgecolor="black", linewidth=0.5)
                bx.text(b["bytes"] / bsize + biggest / bsize * 0.01, i, fmt_bytes(b["bytes"]), va="center",
                        fontsize=8)
            names = []
            for b in bufs:
                shape = b.get("shape")
                dims = "×".join(str(d) for d in shape) if isinstance(shape, list) else ""
                names.append(f"{b['name']}  {b.get('dtype', '')} [{dims}]")
            bx.set_yticks(range(len(bufs)))
            bx.set_yticklabels(names, fontsize=8)
            bx.invert_yaxis()
            bx.set_xlim(0, biggest / bsize * 1.22)
            bx.set_xlabel(bunit, fontsize=9)
            bx.tick_params(axis="x", labelsize=8)
            bx.grid(True, axis="x", alpha=0.3)
            bx.set_axisbelow(True)
            heading = f"{len(bufs)} largest of {len(plan['buffers'])} buffers"
            bx.set_title(f"{labels[col]}: {heading}" if n > 1 else heading, fontsize=10)
    save(fig, args.out)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "plan":
        return plan_main(argv[1:])
    if argv and argv[0] == "loss":
        return loss_main(argv[1:])
    return loss_main(argv)


if __name__ == "__main__":
    main()
