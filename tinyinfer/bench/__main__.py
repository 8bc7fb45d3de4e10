"""python -m tinyinfer.bench SUBCOMMAND [options]

Each subcommand is one function that adds its options to a sub-parser and returns the
function to run; adding one is that function plus one line in SUBCOMMANDS.
"""
from __future__ import annotations

import argparse
import sys


def _kernels(sub: argparse.ArgumentParser):
    sub.add_argument("--runs", type=int, default=60, help="timed runs per layer (default 60)")
    sub.add_argument("--size", type=int, default=224, help="input resolution (default 224)")
    sub.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    sub.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")

    def run(args):
        from .kernels import main
        return main(runs=args.runs, size=args.size, batch=args.batch, use_torch=not args.no_torch)
    return run


def _models(sub: argparse.ArgumentParser):
    from .models import DEFAULT_MODELS
    sub.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                     help="model names, or 'all'")
    sub.add_argument("--batch", type=int, default=1)
    sub.add_argument("--resolution", type=int, default=None,
                     help="input size (default: each model's own, e.g. 600 for efficientnet_b7)")
    sub.add_argument("--runs", type=int, default=30, help="timed calls per round (default 30)")
    sub.add_argument("--rounds", type=int, default=5, help="rounds per engine (default 5)")

    def run(args):
        from .models import main
        return main(args.models, args.batch, args.resolution, args.runs, args.rounds)
    return run


def _machine(sub: argparse.ArgumentParser):
    def run(args):
        from ..machine import main
        return main()
    return run


# name -> (help, function that configures the sub-parser and returns the runner)
SUBCOMMANDS = {
    "kernels": ("conv / linear layers of MobileNetV2, tinyinfer vs PyTorch", _kernels),
    "models": ("whole networks, tinyinfer vs PyTorch eager (and ONNX Runtime)", _models),
    "machine": ("this machine's measured peak FLOP/s and memory bandwidth (the roofline)",
                _machine),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyinfer.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    runners = {}
    for name, (help_text, configure) in SUBCOMMANDS.items():
        runners[name] = configure(subs.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return runners[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
