"""`taskgrove run | infer | evaluate | tasks | show`, and the FLaME-style `main.py` flags."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from taskgrove.cli._common import EXIT_INTERRUPTED, EXIT_OK, add_run_options, config_from_args, print_summary
from taskgrove.errors import MultiTaskError

RUN_COMMANDS = {
    "run": "generate and score",
    "infer": "generate and store only",
    "evaluate": "score stored outputs again, no model calls",
}
_MODES = {"run": "run", "infer": "inference", "evaluate": "evaluate"}


def add_cli(subparsers: Any, command: str | None = None) -> None:
    """Add run, infer, evaluate, tasks and show. The many run options (which need the config
    model) are only built for the run command being parsed, so `--help` and `tasks` start fast."""
    for name, help_text in RUN_COMMANDS.items():
        run_parser = subparsers.add_parser(name, help=help_text, description=help_text)
        if command is None or command == name:
            add_run_options(run_parser)
        run_parser.set_defaults(handler=lambda args, mode=_MODES[name]: execute(args, mode))
    tasks = subparsers.add_parser("tasks", help="print the task tree")
    tasks.add_argument("group", nargs="?", help="a group, leaf or glob to show")
    tasks.add_argument(
        "--include-path", "--include_path", dest="include_path", action="append", help="YAML task file or folder"
    )
    tasks.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="per task: primary metric, handling of unparsable replies, differences from the paper",
    )
    tasks.set_defaults(handler=_cmd_tasks)
    show = subparsers.add_parser("show", help="print a run's status and metrics")
    show.add_argument("run", help="run id or directory")
    show.add_argument("--output-dir", "--output_dir", dest="output_dir", default="results")
    show.set_defaults(handler=_cmd_show)


def execute(args: argparse.Namespace, mode: str | None) -> int:
    """Build the config from ``args`` and run it (``mode`` None: the config's own, as main.py does).

    SIGTERM (a scheduler, ``docker stop``) is handled like Ctrl-C: completed samples are kept,
    run.json says "interrupted" and the exit code is 130."""
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return _execute(args, mode)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """Deliver SIGTERM the way SIGINT is delivered (asyncio's handler while a run goes, else
    KeyboardInterrupt), so both stop a run the same way."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _terminate_as_interrupt:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def _execute(args: argparse.Namespace, mode: str | None) -> int:
    from taskgrove.redact import redact_logging, redact_text
    from taskgrove.runner.executor import Executor

    redact_logging()
    config = config_from_args(args, mode)
    executor = Executor(config)
    print(
        f"run {executor.store.run_id}: {len(executor.task_names)} task(s), mode {config.mode} -> {executor.store.root}",
        file=sys.stderr,
    )
    try:
        result = executor.run()
    except KeyboardInterrupt:
        print(
            f"interrupted: completed samples are saved in {executor.store.root}; continue with --resume {executor.store.run_id}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except MultiTaskError as exc:
        print_summary(executor.store.root)
        exc.args = (redact_text(str(exc)),)
        raise
    print_summary(result.store.root)
    if config.html_report:
        print(f"HTML report: {write_run_report(Path(result.store.root))}")
    if config.next_step:
        print(f"next: {config.next_step}")
    return EXIT_OK


def write_run_report(run_dir: Path) -> Path:
    """Write the HTML report of one run to ``<run_dir>/report/index.html`` and return its path."""
    from taskgrove.report.collect import load_runs
    from taskgrove.report.html import HtmlOptions, write_html
    from taskgrove.report.leaderboard import build_leaderboard

    board = build_leaderboard(load_runs([(run_dir, None)]))
    return Path(write_html(board, run_dir / "report", None, HtmlOptions(title=f"taskgrove run {run_dir.name}")))


def _cmd_tasks(args: argparse.Namespace) -> int:
    from taskgrove.tasks.builtin import build_registry

    registry = build_registry(args.include_path or [])
    if args.verbose:
        names = registry.resolve([args.group]) if args.group else registry.supported()
        for name in names:
            print("\n".join(_task_details(registry.create(name))))
        print(f"{len(names)} task(s)")
        return EXIT_OK
    lines = registry.tree_lines(args.group)
    count = len(registry.resolve([args.group])) if args.group else len(registry)
    print("\n".join(lines))
    print(f"\n{count} task(s)")
    return EXIT_OK


def _task_details(task: Any) -> list[str]:
    """``tasks -v``: a task's summary, primary metric, unparsable handling and differences."""
    spec = getattr(task, "spec", None)
    lines = [task.name]
    summary = (getattr(task, "description", "") or "").strip().splitlines()
    if summary:
        lines.append(f"  {summary[0]}")
    lines.append(f"  primary metric: {task.primary_metric}")
    if spec is not None:
        lines.append(f"  metrics: {', '.join(spec.metric_names)}; unparsable replies: {spec.invalid}")
        differences = (spec.differences or "none documented").strip().splitlines()
        lines.append(f"  differences: {differences[0]}")
        lines.extend(f"    {line}" for line in differences[1:])
    lines.append("")
    return lines


def _cmd_show(args: argparse.Namespace) -> int:
    from taskgrove.runs.store import RunStore

    store = RunStore.open(args.run, args.output_dir)
    print_summary(store.root)
    return EXIT_OK
