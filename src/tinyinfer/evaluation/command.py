"""`tinyinfer eval`: the command line of tinyinfer.evaluate (cli.py adds this subcommand)."""
from __future__ import annotations

import sys


def add_eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a model over a labelled dataset: top-1, top-5, "
                                    "one JSON row per image; in process or on a Dask cluster")
    e.add_argument("model")
    e.add_argument("dataset", help="a folder of class folders (n01440764/ ... or 0/ ... 999/) "
                                   "or a CSV file of path,label rows")
    e.add_argument("--output", help="JSON-lines file, one row per image; an existing file is "
                                    "resumed (its images are not evaluated again)")
    e.add_argument("--batch-size", type=int, default=16,
                   help="images per decoding batch / Dask task (default 16)")
    e.add_argument("--scheduler", help="local:N (a Dask LocalCluster of N worker processes) "
                                       "or tcp://HOST:PORT (an existing Dask scheduler); "
                                       "default: in this process")
    e.add_argument("--limit", type=int, help="only the dataset's first N images")
    e.add_argument("--weights", default="pretrained",
                   help="checkpoint path (default: the pretrained weights)")
    e.add_argument("--compare-with", choices=("torch",),
                   help="also run the PyTorch reference on every image and report agreement")
    e.add_argument("--send-images", action="store_true",
                   help="with --scheduler: send image bytes with each task (default: workers "
                        "read the dataset path themselves)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(fn=cmd_eval)


def cmd_eval(args) -> int:
    from ..evaluate import evaluate
    try:
        ev = evaluate(args.model, args.dataset, output=args.output, batch_size=args.batch_size,
                      scheduler=args.scheduler, limit=args.limit, weights=args.weights,
                      compare_with=args.compare_with, progress=not args.quiet,
                      send_images=args.send_images)
    except KeyboardInterrupt:   # every finished batch is already in the output file
        resume = f"; rerun with --output {args.output} to resume" if args.output else ""
        print(f"tinyinfer: interrupted{resume}", file=sys.stderr)
        return 130
    print(ev.summary())
    return 0
