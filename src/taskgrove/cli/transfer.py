"""`taskgrove transfer`: the source x target transfer matrix of single-task LoRA adapters on a task tree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taskgrove.cli._common import EXIT_INTERRUPTED, EXIT_OK
from taskgrove.cli._train_args import (
    add_train_options,
    log_step,
    one_line_data_errors,
    resolve_tree_request,
    say,
)
from taskgrove.errors import ConfigError

EPILOG = """\
examples:
  taskgrove transfer --tasks bigbench/mathematics/arithmetic --config-index 2 --limit 64 --max-steps 16 \\
      --eval-limit 40 --output-dir checkpoints/transfer
  taskgrove report checkpoints/transfer --html reports/transfer     # the heatmap

One LoRA adapter per leaf of --tasks (reusing finished single-task runs of the same config in
--output-dir, named as train-compare names them), the base model and every adapter evaluated on
every leaf (held-out split, --eval-split), then source - base on every leaf and group: paired 95%
bootstrap intervals and Benjamini-Hochberg q across the matrix. Writes transfer.json and
transfer.md into --output-dir.
"""


def add_cli(subparsers: Any) -> None:
    """Add ``transfer`` to the ``taskgrove`` command line."""
    parser = subparsers.add_parser(
        "transfer",
        help="one adapter per leaf of a tree, each evaluated on every leaf and group: the transfer matrix",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_options(parser)
    parser.add_argument(
        "--model", dest="base_model", default=argparse.SUPPRESS, help="the base model (same as --base-model)"
    )
    parser.add_argument(
        "--resamples", type=int, default=10000, metavar="N", help="paired bootstrap resamples per cell (default 10000)"
    )
    parser.set_defaults(handler=one_line_data_errors(run_transfer_command))


def resolve_sources(args: argparse.Namespace) -> tuple[Any, list[Any], list[str]]:
    """(registry, one resolved single-task config per leaf, target leaves), as ``train-compare`` resolves them."""
    tree = resolve_tree_request(args, "transfer", "leaves")
    multi, singles = tree.configs()
    if multi.method != "lora":
        raise ConfigError(f"transfer trains LoRA adapters; {multi.label} is not LoRA (use --config-index 1-5)")
    return tree.registry, singles, tree.everything


def run_transfer_command(args: argparse.Namespace) -> int:
    """``taskgrove transfer``."""
    from taskgrove.report.tables import grid_text
    from taskgrove.report.transfer import transfer_grid
    from taskgrove.train.curve import eval_settings
    from taskgrove.train.sft import TrainingInterrupted
    from taskgrove.train.transfer import run_transfer

    if args.resamples < 1:
        raise ConfigError("--resamples must be at least 1")
    registry, singles, targets = resolve_sources(args)
    output_dir = Path(singles[0].output_dir)
    print(
        f"transfer: {len(singles)} source adapter(s) ({singles[0].label}) x {len(targets)} target leaves -> {output_dir}",
        file=sys.stderr,
    )
    try:
        data, path = run_transfer(
            singles,
            targets,
            registry,
            eval_settings(singles[0]),
            output_dir,
            n_resamples=args.resamples,
            say=say,
            log=log_step,
        )
    except TrainingInterrupted as exc:
        print(f"interrupted: {exc}; run transfer again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"transfer matrix written to {path}", file=sys.stderr)
    print(grid_text(transfer_grid(data)))
    return EXIT_OK
