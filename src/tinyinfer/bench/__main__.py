"""Measure tinyinfer's speed on this machine, next to PyTorch (and ONNX Runtime).

  python -m tinyinfer.bench kernels                 every MobileNetV2 conv layer, ms and GFLOP/s
  python -m tinyinfer.bench models                  whole networks, batch 1, each at its own size
  python -m tinyinfer.bench models --models all     every network tinyinfer knows (slow)
  python -m tinyinfer.bench machine                 peak FLOP/s and memory bandwidth (roofline)

The PyTorch and ONNX Runtime columns need the bench extra: pip install -e ".[bench]"
(without it you get tinyinfer's columns only). Measure on an idle machine: other
processes make every number slower; the load average is printed with the results.
"""
# For developers: each subcommand is one function that adds its options to a sub-parser
# and returns the function to run; adding one is that function plus one line in SUBCOMMANDS.
from __future__ import annotations

import argparse
import sys

from ..cli import OneLineParser, one_line
from ..errors import TinyInferError


def _kernels(sub: argparse.ArgumentParser):
    sub.add_argument("--runs", type=int, default=60, help="timed runs per layer (default 60)")
    sub.add_argument("--size", type=int, default=224, help="input resolution (default 224)")
    sub.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    sub.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    sub.add_argument("--variants", default="",
                     help="comma-separated conv variants to time side by side on every layer "
                          "they support (names in kernels/conv.py's VARIANTS), or 'all'")

    def run(args):
        from .kernels import main
        return main(runs=args.runs, size=args.size, batch=args.batch, use_torch=not args.no_torch,
                    variants=args.variants)
    return run


def _models(sub: argparse.ArgumentParser):
    from .models import DEFAULT_MODELS
    sub.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                     help=f"model names (`tinyinfer list`), or 'all' "
                          f"(default: {' '.join(DEFAULT_MODELS)})")
    sub.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    sub.add_argument("--resolution", type=int, default=None,
                     help="input size (default: each model's own, e.g. 600 for efficientnet_b7)")
    sub.add_argument("--runs", type=int, default=30, help="timed calls per round (default 30)")
    sub.add_argument("--rounds", type=int, default=5,
                     help="rounds; the engines take turns and each reports its lowest round "
                          "median (default 5)")

    def run(args):
        from .models import main
        return main(args.models, args.batch, args.resolution, args.runs, args.rounds)
    return run


def _machine(sub: argparse.ArgumentParser):
    def run(args):
        from ..analysis.machine import main
        return main()
    return run


# name -> (help, function that configures the sub-parser and returns the runner)
SUBCOMMANDS = {
    "kernels": ("each conv / linear layer of MobileNetV2: tinyinfer's kernel vs PyTorch's, "
                "ms and GFLOP/s", _kernels),
    "models": ("whole networks: tinyinfer vs PyTorch eager and ONNX Runtime, ms per call "
               "and the first call's compile time", _models),
    "machine": ("this machine's measured peak FLOP/s and memory bandwidth (the roofline)",
                _machine),
}


def main(argv=None) -> int:
    parser = OneLineParser(prog="python -m tinyinfer.bench", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    runners = {}
    for name, (help_text, configure) in SUBCOMMANDS.items():
        runners[name] = configure(subs.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return runners[args.command](args) or 0
    except TinyInferError as e:   # e.g. an unknown model name: one line, as tinyinfer's CLI
        print(f"{parser.prog}: error: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
