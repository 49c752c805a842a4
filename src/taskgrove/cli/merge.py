"""`taskgrove merge`: merge LoRA adapters with PEFT's add_weighted_adapter into a new adapter folder."""

from __future__ import annotations

import argparse
import sys
from typing import Any

MERGE_EPILOG = """\
examples:
  taskgrove merge --adapters train_out/single_sst2_lora8 train_out/single_mnli_lora8 --method ties -o merged/ties
  taskgrove merge --adapters A B --method linear --weights 0.7 0.3 -o merged/lin
  taskgrove run --model local:merged/ties --tasks treemark      # the merged adapter is an adapter like any other

Merging is PEFT's own (PeftModel.add_weighted_adapter, combination_type = METHOD). Default weights:
1/n each for linear and svd (the average), 1.0 each for ties and dare_ties; default --density 0.5
(ties, dare_ties). linear, ties and dare_ties need adapters of equal rank.
"""


def add_cli(subparsers: Any) -> None:
    """Add ``merge`` to the ``taskgrove`` command line."""
    from taskgrove.train.merge import METHODS

    merge = subparsers.add_parser(
        "merge",
        help="merge LoRA adapters (linear, ties, dare_ties, svd) into a new adapter",
        description="Merge PEFT LoRA adapters trained on the same base model with PEFT's add_weighted_adapter.",
        epilog=MERGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument("--adapters", nargs="+", required=True, metavar="DIR", help="adapter folders to merge")
    merge.add_argument("--method", choices=METHODS, required=True, help="PEFT combination_type")
    merge.add_argument("--weights", nargs="+", type=float, metavar="W", help="one weight per adapter")
    merge.add_argument("--density", type=float, metavar="D", help="fraction of values kept (ties, dare_ties)")
    merge.add_argument("--base", metavar="MODEL", help="base model (default: the one the adapters name)")
    merge.add_argument("--seed", type=int, default=0, help="torch seed (dare_ties drops values at random)")
    merge.add_argument("--output", "-o", required=True, metavar="DIR", help="new adapter folder (must not exist)")
    merge.set_defaults(handler=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    """``taskgrove merge``."""
    from taskgrove.train.merge import merge_adapters

    out = merge_adapters(
        args.adapters,
        args.method,
        args.output,
        weights=args.weights,
        density=args.density,
        base=args.base,
        seed=args.seed,
    )
    print(f"merged adapter: {out}  (use --model local:{out})", file=sys.stderr)
    return 0
