"""The command line: tinyinfer run | summary | profile | report | list.

Every error is one line on stderr, "tinyinfer: error: ...", exit status 2 (argparse's usage
errors too); warnings are one line each, "tinyinfer: warning: ...".
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import ImageError, InputError, TinyInferError

# A folder given to `run` contributes the files directly inside it with these suffixes.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                  ".ppm", ".pgm")

# --width / --depth set whichever of these options the model declares (its own name for it).
OPTION_FLAGS = {"width": ("width_mult", "width"), "depth": ("depth_mult",)}


# ---- run ---------------------------------------------------------------------------------
def cmd_run(args):
    from .api import check_topk, load
    from .io.image import top_classes
    topk = check_topk(args.topk, "--topk")     # everything the user typed, before any work
    paths = image_paths(args.images)
    weights = None if args.weights == "random" else args.weights
    model = load(args.model, weights=weights, **architecture_options(args))
    if weights is None:
        warnings.warn("random weights (--weights random): the labels mean nothing")
    results, failed = [], 0
    for path in paths:
        try:
            top = top_classes(model(model.preprocess(path))[0], topk)
        except TinyInferError as e:   # one bad photo among many: say so and go on
            failed += 1
            message = str(e) if str(path) in str(e) else f"{path}: {e}"
            results.append({"path": str(path), "error": message})
            print(f"tinyinfer: error: {one_line(message)}", file=sys.stderr)
            continue
        results.append({"path": str(path), "top": [
            {"index": i, "label": label, "probability": p} for i, label, p in top]})
        if not args.json:
            _print_top(results[-1], header=len(paths) > 1)
    if args.json:
        print(json.dumps(results, indent=2))
    return 2 if failed else 0


def _print_top(result, header: bool):
    if header:
        print(result["path"])
    for t in result["top"]:
        print(f"{'  ' if header else ''}{t['probability']:8.4f}  {t['label']}")


def image_paths(names: list[str]) -> list[Path]:
    """The images named on the command line, each folder replaced by the image files
    directly inside it (sorted; subfolders are not searched). Checked before any work."""
    paths, missing = [], []
    for name in names:
        p = Path(name)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.name.startswith(".") and f.is_file())
            if not found:
                raise ImageError(f"{name}: no image files directly in this folder (looked for "
                                 f"{' '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif p.exists():
            paths.append(p)
        else:
            missing.append(name)
    if missing:
        raise ImageError(f"no such file or folder: {', '.join(missing)}")
    return paths


# ---- architecture options ----------------------------------------------------------------
def architecture_options(args) -> dict:
    """--width, --depth and --option NAME=VALUE as the model's own options, each value
    converted to the type of the model's registered value (tinyinfer.load checks the rest)."""
    from .models.registry import get_spec
    spec = get_spec(args.model)
    declared = ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "none"
    texts = {}
    for flag, names in OPTION_FLAGS.items():
        text = getattr(args, flag)
        if text is not None:
            name = next((n for n in names if n in spec.defaults), None)
            if name is None:
                raise InputError(f"{spec.name} has no --{flag} option (it would set "
                                 f"{' or '.join(names)}); its architecture options: {declared}")
            texts[name] = (f"--{flag}", text)
    for item in args.option:
        name, eq, text = item.partition("=")
        if not eq:
            raise InputError(f"--option takes NAME=VALUE, got {item!r}; the architecture "
                             f"options of {spec.name}: {declared}")
        texts[name.strip()] = (f"--option {name.strip()}", text)
    return {name: _convert(spec, name, flag, text) for name, (flag, text) in texts.items()}


def _convert(spec, name: str, flag: str, text: str):
    if name not in spec.defaults:
        return text            # tinyinfer.load names the model's options in its error
    default = spec.defaults[name]
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False}[text.lower()]
        if isinstance(default, (int, float)):
            return type(default)(text)
    except (KeyError, ValueError):
        raise InputError(f"{flag}: {text!r} is not {type(default).__name__} like {spec.name}'s "
                         f"{name}={default!r}") from None
    return text


# ---- summary, profile, list --------------------------------------------------------------
def cmd_summary(args):
    from .api import build
    model = build(args.model, **architecture_options(args))
    counted = _training_form(model) if args.form == "train" else model
    rep = counted.summary(args.resolution, args.batch, args.itemsize, args.convention)
    _print_report(rep, args.format)
    if args.form == "train":    # both forms' MACs: what re-parameterization saves
        runs = model.summary(args.resolution, args.batch, args.itemsize, args.convention)
        print(f"\nMACs: training form {rep.macs:,}, re-parameterized (what runs) {runs.macs:,}")


def _training_form(model):
    """The multi-branch network a re-parameterized model is trained as: the model files
    that fold branches at load time (models/mobileone.py) define ``training_form``."""
    import importlib
    module = importlib.import_module(model.spec.build.__module__)
    if not hasattr(module, "training_form"):
        raise InputError(f"--form train: {model.spec.name} is not re-parameterized, its "
                         f"training form is the network itself; drop --form (MobileOne "
                         f"models have one)")
    return module.training_form(model)


def cmd_profile(args):
    """Per-layer measured time on one image (random weights unless --weights is given:
    the time does not depend on the weights' values)."""
    from .api import load
    from .analysis.plots import check_png_path
    for path in (args.plot, args.plot_macs_time):
        if path:
            check_png_path(path)          # a wrong name fails now, not after the runs
    weights = None if args.weights == "random" else args.weights
    model = load(args.model, weights=weights, **architecture_options(args))
    rep = model.profile(args.image, runs=args.runs, itemsize=args.itemsize,
                        convention=args.convention)
    _print_report(rep, args.format)
    if args.format == "text":
        print(f"\nms: each layer's fastest of {args.runs} timed runs, after 1 warm-up run")
    _write_plots(rep, args)


def _write_plots(rep, args):
    from .analysis import plots
    if args.plot:
        from .analysis.machine import machine
        print(f"roofline: {plots.roofline_png(rep, machine(), args.plot)}", file=sys.stderr)
    if args.plot_macs_time:
        print(f"MACs vs time: {plots.macs_time_png(rep, args.plot_macs_time)}",
              file=sys.stderr)


def cmd_report(args):
    """A self-contained HTML page: per-layer table, MACs vs time, roofline, memory."""
    from .analysis.html_report import write_html_report
    from .analysis.machine import busy_note, machine
    from .api import load
    from .io.image import bundled_photo
    weights = None if args.weights == "random" else args.weights
    model = load(args.model, weights=weights, **architecture_options(args))
    note = busy_note()          # before we run: our own threads would raise the load
    rep = model.profile(args.image or bundled_photo(), runs=args.runs)
    path = write_html_report(rep, machine(), args.output,
                             note=f"Measured with {note}." if note else "")
    print(f"wrote {path}")


def cmd_latency_table(args):
    """Measure (or extend) the per-operator latency table of the given models; with --check,
    time each network whole instead and record predicted vs measured in the table."""
    from .analysis.latency_table import LatencyTable, check, check_threads, measure
    from .analysis.machine import busy_note
    from .api import list_models
    from .model import positive_int
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in list_models()]
    if not names or unknown:
        raise InputError(f"--models: unknown model(s) {', '.join(unknown) or '(none given)'}; "
                         f"`tinyinfer list` shows the names")
    runs = positive_int(args.runs, "--runs")
    resolution = None if args.resolution is None else positive_int(args.resolution,
                                                                    "--resolution")
    if args.check and not Path(args.output).exists():
        raise InputError(f"--check: there is no table at {args.output}; measure one first "
                         f"(the same command without --check)")
    table = LatencyTable.load(args.output)
    check_threads(table)        # a bad file or thread count: refused before any work
    note = busy_note()          # before we run: our own threads would raise the load
    if note:
        warnings.warn(f"{note} (and on one Numba thread: NUMBA_NUM_THREADS=1)")
    if args.check:
        check(table, names, runs=runs, resolution=resolution)
        table.save(args.output)
    else:
        measure(names, args.output, runs=runs, resolution=resolution)


def _print_report(rep, fmt):
    if fmt == "csv":
        print(rep.to_csv(), end="")
    elif fmt == "markdown":
        print(rep.to_markdown())
    else:
        print(rep)


def models_markdown() -> str:
    """The README's model table, generated from the registry (a test keeps them equal)."""
    from .models.registry import get_spec, list_models
    lines = ["| name | reference implementation | checkpoint layouts accepted | pretrained |",
             "|---|---|---|---|"]
    for name in list_models():
        spec = get_spec(name)
        pre = f"`{spec.pretrained.filename}`" if spec.pretrained else "-"
        lines.append(f"| `{name}` | `{spec.reference}` | {', '.join(spec.layouts)} | {pre} |")
    return "\n".join(lines)


def cmd_list(args):
    from .models.registry import get_spec, list_models
    if args.markdown:
        print(models_markdown())
        return
    rows = [("model", "reference", "weights", "architecture options (registered values)")]
    for name in list_models():
        spec = get_spec(name)
        rows.append((name, spec.reference, "pretrained" if spec.pretrained else "-",
                     " ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])


# ---- the parser --------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors are two lines (usage, then the error); ours are one."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _weights_option(p, default: str, what: str):
    p.add_argument("--weights", default=default, metavar="PATH|pretrained|random",
                   help=f"a checkpoint (.pth, .safetensors, .npz), 'pretrained' or 'random' "
                        f"(default: {default}{what})")


def _architecture_options(p):
    g = p.add_argument_group("architecture options (the model's own; `tinyinfer list` "
                             "shows each model's)")
    g.add_argument("--width", help="width multiplier: the model's width_mult (or width)")
    g.add_argument("--depth", help="depth multiplier: the model's depth_mult")
    g.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="any architecture option, e.g. --option bn_eps=1e-5 (repeatable)")


def _report_options(p):
    from .analysis.conventions import CONVENTIONS
    p.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="paper",
                   help="also count as this tool/convention does (see tinyinfer/analysis/conventions.py)")
    p.add_argument("--itemsize", type=int, default=4,
                   help="bytes per element for the bytes and memory columns (1, 2, 4 or 8; "
                        "default 4: float32)")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="tinyinfer", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tinyinfer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="classify images: top-k ImageNet labels")
    r.add_argument("model")
    r.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files and folders (a folder: the images directly inside it)")
    r.add_argument("--topk", type=int, default=5, help="labels per image (default 5)")
    r.add_argument("--json", action="store_true",
                   help="print one JSON list: per image its path and top-k (index, label, "
                        "probability), or its error")
    _weights_option(r, "pretrained", "")
    _architecture_options(r)
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("summary", help="per-layer MACs, FLOPs, params, bytes (no weights needed)")
    s.add_argument("model")
    s.add_argument("--resolution", type=int, default=None,
                   help="input height and width (default: the model's own)")
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--form", choices=("deployed", "train"), default="deployed",
                   help="train: count the multi-branch network before re-parameterization "
                        "(MobileOne) and print both forms' MACs")
    _architecture_options(s)
    _report_options(s)
    s.set_defaults(fn=cmd_summary)

    pr = sub.add_parser("profile", help="per-layer measured time, GFLOP/s and %% of this "
                                        "machine's peak, next to the counts")
    pr.add_argument("model")
    pr.add_argument("image", help="an image file (preprocessed as the model expects)")
    pr.add_argument("--runs", type=int, default=5,
                    help="timed runs; each layer's time is its fastest run (default 5)")
    pr.add_argument("--plot", metavar="FILE.png",
                    help="also draw each layer on this machine's roofline (matplotlib)")
    pr.add_argument("--plot-macs-time", metavar="FILE.png",
                    help="also draw each layer's MACs vs its measured time")
    _weights_option(pr, "random", ": the time does not depend on the values")
    _architecture_options(pr)
    _report_options(pr)
    pr.set_defaults(fn=cmd_profile)

    rp = sub.add_parser("report", help="one self-contained HTML page: per-layer table, "
                                       "MACs vs time, roofline, memory timeline")
    rp.add_argument("model")
    rp.add_argument("-o", "--output", required=True, metavar="FILE.html")
    rp.add_argument("--image", help="the image to time (default: the bundled photo)")
    rp.add_argument("--runs", type=int, default=5,
                    help="timed runs; each layer's time is its fastest run (default 5)")
    _weights_option(rp, "random", ": the time does not depend on the values")
    _architecture_options(rp)
    rp.set_defaults(fn=cmd_report)

    lt = sub.add_parser("latency-table", help="measure a per-operator latency lookup table "
                                              "on this machine (resumable)")
    lt.add_argument("--models", required=True, help="comma-separated model names")
    lt.add_argument("-o", "--output", default="latency_table.json", metavar="FILE.json",
                    help="the table; entries already in it are not measured again")
    lt.add_argument("--runs", type=int, default=5, help="each entry: fastest of this many")
    lt.add_argument("--resolution", type=int, default=None)
    lt.add_argument("--check", action="store_true",
                    help="time each network whole (fastest of --runs) and record predicted "
                         "vs measured ms in the table's checks; measures no entries")
    lt.set_defaults(fn=cmd_latency_table)

    ls = sub.add_parser("list", help="the models tinyinfer knows, with their options")
    ls.add_argument("--markdown", action="store_true", help="as the README's table")
    ls.set_defaults(fn=cmd_list)

    from .evaluation.command import add_eval_parser
    add_eval_parser(sub)
    return p


# ---- one line per message ----------------------------------------------------------------
def one_line(text: str) -> str:
    """``text`` as one line: its lines joined (after a colon with a space, else with "; "),
    and control characters escaped (a checkpoint key could hold a terminal escape code)."""
    out = ""
    for part in (line.strip() for line in str(text).splitlines()):
        if part:
            out += part if not out else (" " if out.endswith(":") else "; ") + part
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in out)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"tinyinfer: warning: {one_line(message)}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.fn(args) or 0
    except TinyInferError as e:
        print(f"tinyinfer: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyinfer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tinyinfer summary ... | head`: the reader left early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
