"""The command line: tinyinfer run | summary | profile | list."""
from __future__ import annotations

import argparse
import sys

from .errors import TinyInferError


def cmd_run(args):
    from .api import run
    weights = args.weights or "pretrained"
    for label, p in run(args.model, args.image, topk=args.topk, weights=weights):
        print(f"{p:8.4f}  {label}")


def cmd_summary(args):
    from .api import load
    kwargs = {"width_mult": args.width} if args.width is not None else {}
    model = load(args.model, weights=None, **kwargs)
    rep = model.summary(resolution=args.resolution, batch=args.batch, itemsize=args.itemsize,
                        convention=args.convention)
    _print_report(rep, args.format)


def _print_report(rep, fmt):
    if fmt == "csv":
        print(rep.to_csv(), end="")
    elif fmt == "markdown":
        print(rep.to_markdown())
    else:
        print(rep)


def cmd_profile(args):
    """Per-layer measured time on one image (random weights unless --weights is given:
    the time does not depend on the weights' values)."""
    from .api import load
    model = load(args.model, weights=args.weights)
    rep = model.profile(args.image, runs=args.runs, itemsize=args.itemsize,
                        convention=args.convention)
    _print_report(rep, args.format)


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
    for name in list_models():
        spec = get_spec(name)
        pre = "pretrained" if spec.pretrained else ""
        print(f"{name:22s} {spec.reference:40s} layouts: {', '.join(spec.layouts):22s} {pre}")


def _report_options(p):
    from .conventions import CONVENTIONS
    p.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="paper",
                   help="also count as this tool/convention does (see tinyinfer/conventions.py)")
    p.add_argument("--itemsize", type=int, default=4,
                   help="bytes per element for the bytes and memory columns (2: float16)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tinyinfer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="classify an image: top-k ImageNet labels")
    r.add_argument("model")
    r.add_argument("image")
    r.add_argument("--topk", type=int, default=5)
    r.add_argument("--weights", help="checkpoint path (default: the pretrained weights)")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("summary", help="per-layer MACs, FLOPs, params, bytes (no weights needed)")
    s.add_argument("model")
    s.add_argument("--resolution", type=int, default=None)
    s.add_argument("--width", type=float, default=None, help="width multiplier")
    s.add_argument("--batch", type=int, default=1)
    _report_options(s)
    s.set_defaults(fn=cmd_summary)
    pr = sub.add_parser("profile", help="per-layer measured time, GFLOP/s and %% of this "
                                        "machine's peak, next to the counts")
    pr.add_argument("model")
    pr.add_argument("image", help="an image file (preprocessed as the model expects)")
    pr.add_argument("--runs", type=int, default=5, help="timed runs (fastest per layer)")
    pr.add_argument("--weights", default=None,
                    help="checkpoint path or 'pretrained' (default: random weights)")
    _report_options(pr)
    pr.set_defaults(fn=cmd_profile)
    ls = sub.add_parser("list", help="the models tinyinfer knows")
    ls.add_argument("--markdown", action="store_true", help="as the README's table")
    ls.set_defaults(fn=cmd_list)
    args = p.parse_args(argv)
    try:
        args.fn(args)
    except TinyInferError as e:
        print(f"tinyinfer: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tinyinfer summary ... | head`: the reader left early
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
