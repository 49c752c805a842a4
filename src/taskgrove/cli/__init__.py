"""The `taskgrove` command line and the FLaME-style `main.py` entry point.

Each subcommand lives in its own module (:mod:`.run`, :mod:`.report`, :mod:`.train`, :mod:`.rl`),
which imports only :mod:`._common`; this module collects them. Exit codes: 0 all tasks completed,
1 some task failed, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from taskgrove.cli import merge, report, rl, run, train, transfer
from taskgrove.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TASK_FAILED,
    EXIT_USAGE,
    add_run_options,
    config_from_args,
)
from taskgrove.errors import ConfigError, MultiTaskError

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TASK_FAILED",
    "EXIT_USAGE",
    "build_parser",
    "config_from_args",
    "flame_main",
    "main",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `taskgrove` parser; ``command`` (when known) limits the costly run options to that command."""
    parser = argparse.ArgumentParser(
        prog="taskgrove", description="Run, score, train on and compare LLM tasks on a tree of tasks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_cli(sub, command)
    train.add_cli(sub)
    rl.add_cli(sub)
    report.add_cli(sub)
    merge.add_cli(sub)
    transfer.add_cli(sub)
    return parser


def _quiet_torch_threads() -> None:
    """Torch's busy-waiting OpenMP threads slow generation several-fold on a shared CPU; unless the
    user chose otherwise, let them sleep. Must happen before anything imports torch."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `taskgrove` command."""
    _quiet_torch_threads()
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), "")
    parser = build_parser(command)
    args = parser.parse_args(arguments)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    return _guarded(lambda: args.handler(args))


def flame_main(argv: Sequence[str] | None = None) -> int:
    """`python main.py --mode inference --tasks a b --model M` and `python main.py --config x.yaml`."""
    _quiet_torch_threads()
    parser = argparse.ArgumentParser(prog="main.py", description="FLaME-style multi-task entry point of taskgrove.")
    add_run_options(parser, with_mode=True)
    args = parser.parse_args(argv)
    return _guarded(lambda: run.execute(args, None))


def _guarded(action: Callable[[], int]) -> int:
    try:
        return action()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MultiTaskError as exc:
        print(f"MultiTaskError: {exc}", file=sys.stderr)
        return EXIT_TASK_FAILED
    except KeyboardInterrupt:
        print("interrupted: completed samples are saved; continue with --resume RUN_ID", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `taskgrove tasks | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
