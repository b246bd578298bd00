#!/usr/bin/env python3
"""plot: figures from train_gpt2 output, drawn with matplotlib (Agg backend, no display).

Two modes:

  loss curves (the default mode; the word "loss" in front is optional):
    python3 tools/plot.py [loss] run.jsonl [more.jsonl ...] -o loss.png [--x step|tokens] [--smooth 0.9]

  the memory plan of one or two `train_gpt2 --dry-run --json` outputs:
    python3 tools/plot.py plan PLAN.json [PLAN2.json] -o plan.png [--labels A B] [--top N]

The output's extension picks its format: .png, .pdf or .svg (anything else is refused), and it
may not be one of the inputs. Every bad input is one line on stderr and exit status 1.

A loss log is one JSON object per line: step records (step, loss, val_loss when computed, tokens,
...) and event records, which have an "event" key and are never steps. A run_start event opens
each run: {"event": "run_start", "resumed_from": null|STEP, "model": ..., "micro_batch": B,
"seq_len": T, "total_batch_tokens": N, "time": ...}. A log holding several runs (a run_start
with resumed_from null after earlier records, or, in logs without those records, a step that
goes backwards) draws each run as its own curve; a resumed run (resumed_from STEP) continues the
curve, its records replacing those after STEP. A repeated step counts once, the last record
winning. Titles and legends come from the run_start records (model, B, T), else the file names.

A plan figure shows each plan as one bar: the arena split by category, then the reserve held
outside the arena, with the budget as a dashed line; beneath it the N largest buffers, named for
what they hold. Two plans share one scale. Every number is read straight from the JSON. Needs
matplotlib (Debian: python3-matplotlib).
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
        matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable, selectable
        import matplotlib.pyplot as plt
    except ImportError:
        die(f"matplotlib is missing for {sys.executable}; install python3-matplotlib (scripts/install_deps.sh)")
    return plt


# ---------------------------------------------------------------------------------------------
# output files

OUTPUT_FORMATS = ("png", "pdf", "svg")


def check_output(out, inputs):
    """Refuse an output that is one of the inputs or has no known format; returns the format."""
    ext = os.path.splitext(out)[1].lower().lstrip(".")
    if ext not in OUTPUT_FORMATS:
        what = f"'.{ext}'" if ext else "no extension"
        die(f"-o {out}: {what} is not an output format; end the name in .png, .pdf or .svg")
    real_out = os.path.realpath(out)
    for path in inputs:
        if path == "-":
            continue
        same = os.path.realpath(path) == real_out
        if not same and os.path.exists(path) and os.path.exists(out):
            try:
                same = os.path.samefile(path, out)
            except OSError:
                pass
        if same:
            die(f"-o {out} is the input {path}; refusing to overwrite it (give another -o)")
    return ext


def save(fig, out, fmt):
    """Writes the figure in `fmt` beside `out`, then moves it in: a failed write leaves `out` as it was."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format=fmt)
        os.replace(tmp, out)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        die(f"{out}: cannot write ({e.strerror})")
    print(f"plot: wrote {out}")


# ---------------------------------------------------------------------------------------------
# loss curves

def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Run:
    """One training run in a log: its run_start header (or None) and its step records by step."""

    def __init__(self, header):
        self.header = header
        self.records = {}

    def steps(self):
        return [self.records[s] for s in sorted(self.records)]


def read_log(path):
    """The runs of one --log file. A run starts at a run_start record with resumed_from null after
    earlier records, or where the step goes backwards without a run_start that resumes. A resumed
    run (run_start with resumed_from S) continues the run before it from step S: its records
    replace those after S. Records with an "event" key are never steps."""
    runs = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        die(f"{path}: cannot open ({e.strerror})")
    with f:
        try:
            last_step = None
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                where = f"{path}:{lineno}"
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, ValueError) as e:
                    die(f"{where}: not JSON ({e})")
                if not isinstance(rec, dict):
                    die(f"{where}: expected a JSON object, one per line")
                if "event" in rec:
                    if rec["event"] != "run_start":
                        continue
                    resumed = rec.get("resumed_from")
                    if resumed is not None and not (is_number(resumed) and resumed == int(resumed) and resumed >= 0):
                        die(f"{where}: 'resumed_from' must be null or a step number, got {resumed!r}")
                    if resumed is None or not runs:
                        if not runs or runs[-1].records or runs[-1].header is not None:
                            runs.append(Run(rec))
                        else:
                            runs[-1].header = rec
                    else:
                        run = runs[-1]
                        run.records = {s: r for s, r in run.records.items() if s <= resumed}
                        if run.header is None:
                            run.header = rec
                    last_step = None
                    continue
                for key in ("step", "loss"):
                    if key not in rec:
                        die(f"{where}: a record needs 'step' and 'loss' (or an 'event')")
                step = rec["step"]
                if not (is_number(step) and step == int(step) and step >= 0):
                    die(f"{where}: 'step' must be a whole number, got {step!r}")
                if not is_number(rec["loss"]):
                    die(f"{where}: 'loss' must be a number, got {rec['loss']!r}")
                if rec.get("val_loss") is not None and not is_number(rec["val_loss"]):
                    die(f"{where}: 'val_loss' must be a number or null, got {rec['val_loss']!r}")
                if "tokens" in rec and not (is_number(rec["tokens"]) and rec["tokens"] >= 0):
                    die(f"{where}: 'tokens' must be a non-negative number, got {rec['tokens']!r}")
                rec["_where"] = where
                step = int(step)
                if not runs or (last_step is not None and step < last_step):
                    runs.append(Run(None))
                runs[-1].records[step] = rec  # a repeated step: the last record wins
                last_step = step
        except UnicodeDecodeError:
            die(f"{path}: not a text file (invalid UTF-8)")
    runs = [r for r in runs if r.records]
    if not runs:
        die(f"{path}: no step records")
    return runs


def ema(values, alpha):
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def short_model(text):
    """'d12: L=12 C=768 NH=12 maxT=1024 V=50257 (Vp=50304)' without the padded vocabulary."""
    text = str(text)
    cut = text.find(" (Vp=")
    return text[:cut] if cut > 0 else text


def run_shape(header):
    """'B=4 T=64' from a run_start header, or '' without one."""
    if not header:
        return ""
    parts = []
    if header.get("micro_batch") is not None:
        parts.append(f"B={header['micro_batch']}")
    if header.get("seq_len") is not None:
        parts.append(f"T={header['seq_len']}")
    return " ".join(parts)


def loss_main(argv):
    ap = argparse.ArgumentParser(
        prog="plot.py [loss]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Loss curves from train_gpt2 --log JSONL files (the default mode), or, with "
                    "'plan' first, the memory plan of train_gpt2 --dry-run --json output. Each run in "
                    "a log is its own curve: a log that holds several runs (a run_start record, or a "
                    "step that goes backwards) shows them apart; a resumed run continues its curve.",
        epilog="plan mode: plot.py plan PLAN.json [PLAN2.json] -o plan.png [--labels A B] [--top N]\n"
               "  draws each plan's arena by category plus the reserve, against the budget, and the\n"
               "  largest buffers; PLAN may be '-' for stdin. Options: plot.py plan --help\n\n"
               + PLAN_EXAMPLE)
    ap.add_argument("logs", nargs="+", help="JSONL log files (train_gpt2 --log)")
    ap.add_argument("-o", "--out", default="loss.png",
                    help="output file, .png, .pdf or .svg (default loss.png); never one of the logs")
    ap.add_argument("--x", choices=["step", "tokens"], default="step", help="x axis")
    ap.add_argument("--smooth", type=float, default=0.0,
                    help="EMA factor for the train curve, 0..1 (0 = none); the raw curve stays faint behind")
    ap.add_argument("--title", default="", help="figure title (default: the model and batch of the run)")
    ap.add_argument("--labels", nargs="*", help="legend names, one per log (default: from the run_start "
                                                "record, or the file name)")
    ap.add_argument("--logy", action="store_true", help="log-scale loss axis")
    args = ap.parse_args(argv)
    if not 0.0 <= args.smooth < 1.0:
        die("--smooth must be in [0, 1)")
    if args.labels and len(args.labels) != len(args.logs):
        die("give one --labels entry per log")
    fmt = check_output(args.out, args.logs)

    logs = [(path, read_log(path)) for path in args.logs]
    if args.x == "tokens":
        for path, runs in logs:
            for run in runs:
                for r in run.records.values():
                    if "tokens" not in r:
                        die(f"{r['_where']}: --x tokens, but the record has no 'tokens' (plot by step instead)")

    # Names: --labels, else the model of the run_start header when the logs differ in it, else
    # the file name; a log with several runs numbers them.
    headers = [run.header for _, runs in logs for run in runs]
    models = {short_model(h.get("model")) for h in headers if h and h.get("model")}
    one_model = len(models) == 1 and all(h and h.get("model") for h in headers)
    curves = []
    for i, (path, runs) in enumerate(logs):
        stem = os.path.splitext(os.path.basename(path))[0]
        for k, run in enumerate(runs):
            h = run.header
            if args.labels:
                name = args.labels[i]
            elif h and h.get("model") and not one_model:
                name = short_model(h["model"]).split(":")[0]
            else:
                name = stem if len(logs) > 1 else ""
            if len(runs) > 1:
                name = f"{name} run {k + 1}".strip()
            shape = run_shape(h)
            if shape and (len(runs) > 1 or not one_model or len(logs) > 1):
                name = f"{name} ({shape})" if name else shape
            curves.append((name, run))

    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    smooth_note = f", smoothed (EMA {args.smooth:g})" if args.smooth > 0 else ""
    linestyles = ["-", "--", "-.", ":"]
    for c, (name, run) in enumerate(curves):
        recs = run.steps()
        xs = [r[args.x] if args.x == "tokens" else r["step"] for r in recs]
        ys = [r["loss"] for r in recs]
        prefix = f"{name}: " if name else ""
        style = linestyles[c // 10 % len(linestyles)]
        if args.smooth > 0:
            raw, = ax.plot(xs, ys, linewidth=0.8, alpha=0.3, linestyle=style)
            line, = ax.plot(xs, ema(ys, args.smooth), linewidth=1.4, color=raw.get_color(), linestyle=style,
                            label=f"{prefix}train{smooth_note}")
        else:
            line, = ax.plot(xs, ys, linewidth=1.2, linestyle=style, label=f"{prefix}train")
        val = [(r[args.x] if args.x == "tokens" else r["step"], r["val_loss"]) for r in recs
               if r.get("val_loss") is not None]
        if val:
            # one run: val in its own colour; several: the colour of its run's train curve
            color = "#d95f02" if len(curves) == 1 else line.get_color()
            ax.plot([v[0] for v in val], [v[1] for v in val], "o--", color=color, markersize=4,
                    linewidth=1.0, label=f"{prefix}val")
    ax.set_xlabel("tokens" if args.x == "tokens" else "step")
    ax.set_ylabel("loss (nats/token)")
    if args.logy:
        ax.set_yscale("log")
    title = args.title
    if not title:
        h = next((h for h in headers if h and h.get("model")), None)
        if one_model and h:
            shapes = {run_shape(x) for x in headers}
            title = short_model(h["model"])
            if len(shapes) == 1 and run_shape(h):
                title += f", {run_shape(h)}"
                if h.get("total_batch_tokens"):
                    title += f", {h['total_batch_tokens']:,} tokens/step"
        elif len(logs) == 1:
            title = f"{os.path.splitext(os.path.basename(logs[0][0]))[0]}"
        else:
            title = "loss"
        title = f"Loss: {title}" if title != "loss" else "Loss"
        if len(curves) > 1:
            title += f" ({len(curves)} runs)"
    if args.smooth > 0 and "smooth" not in title.lower():
        title += f"\ntrain curve{'s' if len(curves) > 1 else ''} smoothed (EMA {args.smooth:g}), raw behind"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, args.out, fmt)


# ---------------------------------------------------------------------------------------------
# memory plan

# Arena order of engine/plan (parameters first, workspace last); the reserve lies outside.
PLAN_CATEGORIES = ["parameters", "gradients", "master_weights", "adam_m", "adam_v", "activations",
                   "scratch", "logits", "workspace"]
# No category is drawn in the verdicts' green and red.
CATEGORY_COLORS = {
    "parameters": "#1f77b4", "gradients": "#aec7e8", "master_weights": "#9467bd",
    "adam_m": "#c5b0d5", "adam_v": "#7b4173", "activations": "#ff7f0e", "scratch": "#8c564b",
    "logits": "#e377c2", "workspace": "#17becf", "padding": "#ffffff", "reserve": "#c7c7c7",
}
EXTRA_COLORS = ["#7f7f7f", "#bcbd22", "#ffbb78", "#c49c94", "#dbdb8d", "#9edae5"]
FITS_COLOR, NO_FIT_COLOR = "#2ca02c", "#d62728"
CATEGORY_NAMES = {
    "parameters": "parameters (weights)",
    "gradients": "gradients",
    "master_weights": "fp32 master weights",
    "adam_m": "Adam 1st moment (adam_m)",
    "adam_v": "Adam 2nd moment (adam_v)",
    "activations": "activations saved for the backward pass",
    "scratch": "scratch (backward, recompute)",
    "logits": "logits (one chunk of tokens)",
    "workspace": "workspace (cuBLASLt, norms)",
    "padding": "padding",
    "reserve": "reserve (outside the arena: CUDA context)",
}

# What each buffer of engine/plan/memory_plan.cpp holds, for people; the internal name is shown beside.
PARAM_NAMES = {
    "wte": "token embedding", "wpe": "position embedding", "ln1w": "LayerNorm 1 weight",
    "ln1b": "LayerNorm 1 bias", "qkvw": "attention Q,K,V weights", "qkvb": "attention Q,K,V bias",
    "attprojw": "attention projection weights", "attprojb": "attention projection bias",
    "ln2w": "LayerNorm 2 weight", "ln2b": "LayerNorm 2 bias", "fcw": "MLP up-projection weights",
    "fcb": "MLP up-projection bias", "fcprojw": "MLP down-projection weights",
    "fcprojb": "MLP down-projection bias", "lnfw": "final LayerNorm weight", "lnfb": "final LayerNorm bias",
}
ACTIVATION_NAMES = {
    "inputs": "input token ids", "targets": "target token ids",
    "residual": "residual stream, every layer", "ln1": "LayerNorm 1 output",
    "ln1_mean": "LayerNorm 1 means", "ln1_rstd": "LayerNorm 1 reciprocal std", "qkv": "attention Q,K,V",
    "atty": "attention output", "att_lse": "attention log-sum-exp",
    "x2": "residual after attention", "ln2": "LayerNorm 2 output", "ln2_mean": "LayerNorm 2 means",
    "ln2_rstd": "LayerNorm 2 reciprocal std", "fch": "MLP hidden, pre-GELU", "fch_gelu": "MLP hidden, after GELU",
    "lnf": "final LayerNorm output", "lnf_mean": "final LayerNorm means", "lnf_rstd": "final LayerNorm reciprocal std",
    "ln": "LayerNorm output",
}
BUFFER_NAMES = {
    "master_weights": "fp32 master weights", "adam_m": "Adam 1st moment", "adam_v": "Adam 2nd moment",
    "scratch.dresidual": "residual-stream gradient", "scratch.dbtc": "gradient of a B×T×C activation",
    "scratch.dqkv": "attention Q,K,V gradient", "scratch.dfch": "MLP hidden gradient",
    "scratch.att": "attention row statistics", "scratch.encoder_bwd": "embedding backward buckets",
    "scratch.layernorm_bwd": "LayerNorm backward partials",
    "logits.chunk": "logits of one chunk of tokens", "logits.losses": "per-token losses",
    "workspace.cublaslt": "cuBLASLt matmul workspace", "workspace.norm_partials": "gradient-norm partial sums",
    "workspace.norm_result": "gradient norm", "workspace.matmul_bias": "bias-gradient staging",
    "workspace.page_tail": "allocation page tail",
}


def buffer_title(name):
    """'attention output (act.atty)': what a buffer holds, with its name in the plan."""
    prefix, _, rest = name.partition(".")
    if name in BUFFER_NAMES:
        human = BUFFER_NAMES[name]
    elif prefix == "params" and rest in PARAM_NAMES:
        human = PARAM_NAMES[rest]
    elif prefix == "grads" and rest in PARAM_NAMES:
        human = "gradient of " + PARAM_NAMES[rest][0].lower() + PARAM_NAMES[rest][1:]
    elif prefix == "act" and rest in ACTIVATION_NAMES:
        human = ACTIVATION_NAMES[rest]
    elif prefix == "recompute" and rest in ACTIVATION_NAMES:
        human = "recomputed " + ACTIVATION_NAMES[rest][0].lower() + ACTIVATION_NAMES[rest][1:] + ", one layer"
    else:
        return name
    return f"{human} ({name})"


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


def model_name(plan):
    model = plan.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    return str(name) if name else "model"


def default_labels(plans):
    """A name per plan from its JSON: the model for one plan; micro-batch and recompute for two."""
    if len(plans) == 1:
        return [model_name(plans[0])]
    labels = []
    for p in plans:
        c = p["config"]
        label = f"B={c.get('micro_batch', '?')}, recompute {c.get('recompute', '?')}"
        if len({model_name(q) for q in plans}) > 1:
            label = f"{model_name(p)} {label}"
        labels.append(label)
    if labels[0] == labels[1]:
        labels = [f"plan {i + 1}: {l}" for i, l in enumerate(labels)]
    return labels


def spread(wanted, gap, lo, hi):
    """Positions near `wanted` (sorted), at least `gap` apart, within [lo, hi] where they fit."""
    pos = []
    for w in wanted:
        pos.append(max(w, pos[-1] + gap) if pos else max(w, lo))
    for i in range(len(pos) - 1, -1, -1):
        limit = hi if i == len(pos) - 1 else pos[i + 1] - gap
        pos[i] = max(min(pos[i], limit), lo)
    return pos


def plan_main(argv):
    ap = argparse.ArgumentParser(
        prog="plot.py plan",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw one or two memory plans (train_gpt2 --dry-run --json output): per plan one bar "
                    "of the arena split by category plus the reserve outside it, the budget as a dashed "
                    "line, the total and the verdict; categories too narrow to label inside are labelled "
                    "beneath the bar. Beneath, the largest buffers, named for what they hold. Two plans "
                    "are drawn on the same scale, each labelled with its configuration.",
        epilog=PLAN_EXAMPLE)
    ap.add_argument("plans", nargs="+", metavar="PLAN.json",
                    help="one or two plans, each the JSON printed by train_gpt2 --dry-run --json ('-' = stdin)")
    ap.add_argument("-o", "--out", default="plan.png",
                    help="output file, .png, .pdf or .svg (default plan.png); never one of the plans")
    ap.add_argument("--labels", nargs="+", metavar="LABEL",
                    help="a name per plan (default: the model for one plan, micro-batch and recompute for two)")
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
    fmt = check_output(args.out, args.plans)

    plans = [read_plan(p) for p in args.plans]
    labels = args.labels or default_labels(plans)
    plt = import_pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(plans)
    top = args.top
    # Fixed layout, in inches: the title, a row per plan (its label, the bar, the labels of narrow
    # categories beneath), the axis, the legend, then (with --top) the largest buffers.
    row_h = 1.35
    title_h, axis_h, legend_h = 0.75, 0.55, 1.0
    bars_h = row_h * n
    buffers_h = 3.6 if top > 0 else 0.0
    height = title_h + bars_h + axis_h + legend_h + buffers_h
    fig = plt.figure(figsize=(12, height), dpi=100)
    bars_bottom = 1 - (title_h + bars_h) / height
    ax = fig.add_axes([0.02, bars_bottom, 0.96, bars_h / height])

    # --- the bars: one row per plan, top to bottom in the order given
    longest = max(max(p["total_bytes"], p["budget_bytes"], 1) for p in plans)
    unit, size = axis_unit(longest)
    xmax = longest * 1.32 / size  # room right of the longest bar for its verdict
    label_w = 0.07 * xmax         # about 0.8 inch: the room a two-line "name / size" label needs
    used = []
    extra = iter(EXTRA_COLORS)
    colors = dict(CATEGORY_COLORS)
    bar_h = 0.34
    budgets = sorted({p["budget_bytes"] for p in plans})
    for row, plan in enumerate(plans):
        y = n - 1 - row
        x = 0.0
        narrow = []  # (centre, category, bytes) of the segments labelled beneath the bar
        for cat, nbytes in arena_segments(plan) + [("reserve", plan["reserve_bytes"])]:
            if nbytes <= 0:
                continue
            if cat not in colors:
                colors[cat] = next(extra, "#7f7f7f")
            w = nbytes / size
            ax.barh(y, w, left=x, height=bar_h, color=colors[cat], edgecolor="black", linewidth=0.5,
                    hatch="//" if cat in ("reserve", "padding") else None, zorder=3)
            if cat not in used:
                used.append(cat)
            if w >= 1.1 * label_w:  # room for the name and size inside the segment
                dark = cat in ("parameters", "master_weights", "adam_v", "scratch")
                ax.text(x + w / 2, y, f"{cat.replace('_', ' ')}\n{fmt_bytes(nbytes)}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black", zorder=4)
            else:
                narrow.append((x + w / 2, cat, nbytes))
            x += w
        # narrow categories: a label beneath the bar, with a leader line to its segment
        label_y = y - bar_h / 2 - 0.16
        for (cx, cat, nbytes), lx in zip(narrow, spread([c[0] for c in narrow], label_w, label_w / 2,
                                                        xmax - label_w / 2)):
            ax.plot([cx, lx], [y - bar_h / 2, label_y + 0.01], color="#555555", linewidth=0.6, zorder=2)
            ax.text(lx, label_y, f"{cat.replace('_', ' ')}\n{fmt_bytes(nbytes)}", ha="center", va="top",
                    fontsize=7.5, zorder=4)
        # the arena's end, where the reserve (outside the arena) begins
        arena_x = plan["arena_bytes"] / size
        ax.plot([arena_x, arena_x], [y - bar_h / 2 - 0.05, y + bar_h / 2 + 0.05], color="black",
                linewidth=1.6, zorder=5)
        # the budget: across this bar only, so the labels above and beneath stay clear of it
        b = plan["budget_bytes"] / size
        ax.plot([b, b], [y - bar_h / 2 - 0.08, y + bar_h / 2 + 0.08], color="black", linestyle="--",
                linewidth=1.5, zorder=6)
        if len(budgets) > 1:
            ax.text(b, y + bar_h / 2 + 0.09, f"budget {fmt_bytes(plan['budget_bytes'])}", ha="center",
                    va="bottom", fontsize=8, zorder=6)
        ax.text(0, y + bar_h / 2 + 0.1, f"{labels[row]}: {config_text(plan)}", ha="left", va="bottom",
                fontsize=9.5, fontweight="bold", zorder=7)
        # right of the bar, or of the budget line when the plan fits under it
        ax.text(max(x, b) + 0.012 * xmax, y,
                verdict_text(plan).replace(": ", " total\n", 1)
                + f"\narena {fmt_bytes(plan['arena_bytes'])} + reserve {fmt_bytes(plan['reserve_bytes'])}",
                ha="left", va="center", fontsize=8.5, color=FITS_COLOR if plan["fits"] else NO_FIT_COLOR,
                fontweight="bold", zorder=7)
    ax.set_xlim(0, xmax)
    ax.set_ylim(-0.62, n - 1 + 0.5)
    ax.set_yticks([])
    ax.set_xlabel(f"{unit} (arena by category, then the reserve held outside it)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)

    # legend: every category drawn, named for people, with its bytes in each plan; then the lines
    def size_in(plan, cat):
        if cat == "reserve":
            return plan["reserve_bytes"]
        return dict(arena_segments(plan)).get(cat, 0)
    handles = []
    for cat in used:
        sizes = " | ".join(fmt_bytes(size_in(p, cat)) for p in plans)
        handles.append(Patch(facecolor=colors[cat], edgecolor="black", linewidth=0.5,
                             hatch="//" if cat in ("reserve", "padding") else None,
                             label=f"{CATEGORY_NAMES.get(cat, cat)}: {sizes}"))
    if len(budgets) == 1:
        src = plans[0].get("budget_source")
        budget_label = f"budget: {fmt_bytes(budgets[0])}" + (f" ({src})" if src else "")
    else:
        budget_label = "budget: " + " | ".join(fmt_bytes(p["budget_bytes"]) for p in plans)
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.5, label=budget_label))
    handles.append(Line2D([], [], color="black", linewidth=1.6,
                          label="end of the arena; the reserve, outside it, follows"))
    leg_title = "sizes: " + " | ".join(labels) if n > 1 else None
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, bars_bottom - axis_h / height),
               ncol=3, fontsize=8, title=leg_title, title_fontsize=8, frameon=False)

    c0 = plans[0]["config"]
    if n == 1:
        default_title = (f"Memory plan of {model_name(plans[0])}"
                         + (f" ({plans[0]['params']:,} parameters)" if is_count(plans[0].get("params")) else "")
                         + f", B={c0.get('micro_batch', '?')} T={c0.get('seq_len', '?')}"
                         + f" grad accum {c0.get('grad_accum', '?')}, on a budget of {fmt_bytes(budgets[0])}")
    else:
        same_model = len({model_name(p) for p in plans}) == 1
        default_title = ("Memory plans"
                         + (f" of {model_name(plans[0])}" if same_model else "")
                         + (f" ({plans[0]['params']:,} parameters)"
                            if same_model and is_count(plans[0].get("params")) else "")
                         + (f" against a budget of {fmt_bytes(budgets[0])}" if len(budgets) == 1 else ""))
    fig.suptitle(args.title or default_title, fontsize=12, fontweight="bold", y=1 - 0.15 / height)

    # --- the largest buffers of each plan, on one shared scale
    if top > 0:
        label_room = 0.25  # buffer names sit left of each panel
        panel_w = (0.98 - n * label_room - (n - 1) * 0.02) / n
        panel_top = (buffers_h - 0.35) / height
        tops = [sorted(p["buffers"], key=lambda b: (-b["bytes"], b.get("offset", 0)))[:top] for p in plans]
        biggest = max((b["bytes"] for t in tops for b in t), default=1)
        bunit, bsize = axis_unit(biggest)
        for col, (plan, bufs) in enumerate(zip(plans, tops)):
            left = label_room + col * (panel_w + label_room + 0.02)
            bx = fig.add_axes([left, 0.5 / height, panel_w, panel_top - 0.5 / height])
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
                names.append(f"{buffer_title(b['name'])}\n{b.get('dtype', '')} [{dims}]")
            bx.set_yticks(range(len(bufs)))
            bx.set_yticklabels(names, fontsize=7.5, linespacing=1.0)
            bx.invert_yaxis()
            bx.set_xlim(0, biggest / bsize * 1.22)
            bx.set_xlabel(bunit, fontsize=9)
            bx.tick_params(axis="x", labelsize=8)
            bx.grid(True, axis="x", alpha=0.3)
            bx.set_axisbelow(True)
            heading = f"{len(bufs)} largest of {len(plan['buffers'])} buffers"
            bx.set_title(f"{labels[col]}: {heading}" if n > 1 else f"{heading} (colour: category)", fontsize=10)
    save(fig, args.out, fmt)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "plan":
        return plan_main(argv[1:])
    if argv and argv[0] == "loss":
        return loss_main(argv[1:])
    return loss_main(argv)


if __name__ == "__main__":
    main()
