"""What every subcommand shares: exit codes, the run options generated from RunConfig, and the
config they build (defaults < YAML < command line). Subcommand modules import only this."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from typing import Any

from taskgrove.errors import ConfigError

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_NO_CLI = {"mode", "task_config"}
_NONE_WORDS = {"none", "null", "~"}

Command = Callable[[argparse.Namespace], int]
"""A subcommand's handler: parsed arguments in, exit code out (set with ``parser.set_defaults(handler=...)``)."""


# --- options generated from RunConfig ------------------------------------------------------------


def _field_kind(annotation: Any) -> tuple[str, bool]:
    """('list'|'bool'|'scalar', accepts None) for a RunConfig field annotation."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    inner = (
        [a for a in args if a is not type(None)]
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else [annotation]
    )
    base = inner[0] if inner else annotation
    if typing.get_origin(base) is list:
        return "list", optional
    if base is bool:
        return "bool", optional
    return "scalar", optional


def _scalar(optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if optional and text.strip().lower() in _NONE_WORDS else text

    return parse


def add_run_options(parser: argparse.ArgumentParser, *, with_mode: bool = False) -> None:
    """Add one option per RunConfig field; only options the user gives reach the namespace."""
    from taskgrove.config import RunConfig

    parser.add_argument(
        "--config", "-c", dest="config_file", metavar="FILE", help="YAML config; command-line options override it"
    )
    if with_mode:
        parser.add_argument(
            "--mode",
            choices=["inference", "evaluate", "run"],
            default=argparse.SUPPRESS,
            help="inference, evaluate or run",
        )
    for name, info in RunConfig.model_fields.items():
        if name in _NO_CLI:
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        kind, optional = _field_kind(info.annotation)
        help_text = info.description or f"default: {info.default!r}"
        if kind == "list":
            parser.add_argument(  # repeated flags add up: --tasks a --tasks b runs both
                *flags,
                dest=name,
                nargs="+",
                action="extend",
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=help_text,
            )
        elif kind == "bool":
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                *flags, dest=name, type=_scalar(optional), default=argparse.SUPPRESS, metavar="VALUE", help=help_text
            )
    add_task_config_option(parser)


def add_task_config_option(parser: argparse.ArgumentParser) -> None:
    """``--task-config TASK.KEY=VALUE`` (repeatable), read with :func:`parse_task_config`."""
    parser.add_argument(
        "--task-config",
        "--task_config",
        dest="task_config_items",
        action="append",
        default=[],
        metavar="TASK.KEY=VALUE",
        help="per-task override, e.g. fomc.max_tokens=16 or sst2.options.source=file:data/{split}.jsonl (repeatable)",
    )


def config_from_args(args: argparse.Namespace, mode: str | None = None) -> Any:
    """Build the RunConfig: defaults < YAML (--config) < the options given on the command line."""
    from taskgrove.config import RunConfig, build_config

    given = {
        name: getattr(args, name) for name in RunConfig.model_fields if name not in _NO_CLI and hasattr(args, name)
    }
    if hasattr(args, "mode"):
        given["mode"] = args.mode
    if mode is not None:
        given["mode"] = mode
    if getattr(args, "task_config_items", None):
        given["task_config"] = parse_task_config(args.task_config_items)
    stored: dict[str, Any] | None = None
    if given.get("resume") and given.get("mode") != "evaluate":
        from taskgrove.runs.store import RunStore

        run_store = RunStore.open(given["resume"], given.get("output_dir", "results"))
        stored = run_store.read_config()
        stored.pop("run_id", None)
        stored.pop("allow_changed_resume", None)  # an explicit choice of one session, not inherited
        _restore_secrets(stored, given)
        given.setdefault("output_dir", str(run_store.root.parent))
    return build_config(given, yaml_file=getattr(args, "config_file", None), yaml_data=stored)


def _restore_secrets(stored: dict[str, Any], given: dict[str, Any]) -> None:
    """A stored base_url had its credentials masked: a resume must be given the URL again."""
    from taskgrove.redact import is_redacted

    if is_redacted(stored.get("base_url")) and not given.get("base_url"):
        raise ConfigError(
            f"the run's base_url ({stored['base_url']}) held credentials, which are never stored; "
            "pass --base-url again to resume"
        )


def parse_task_config(items: list[str]) -> dict[str, dict[str, Any]]:
    """``TASK.KEY=VALUE`` items (VALUE is YAML) as ``{TASK: {KEY: value}}``; ``TASK.options.NAME=VALUE``
    sets one task option (``{TASK: {options: {NAME: value}}}``)."""
    import yaml

    parsed: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        task, dot, key = target.rpartition(".")
        if not sep or not dot or not task or not key:
            raise ConfigError(f"--task-config {item!r}: expected TASK.KEY=VALUE, e.g. fomc.max_tokens=16")
        if task.endswith(".options"):
            task = task.removesuffix(".options")
            if not task:
                raise ConfigError(f"--task-config {item!r}: expected TASK.options.NAME=VALUE")
            options = parsed.setdefault(task, {}).setdefault("options", {})
            if not isinstance(options, dict):
                raise ConfigError(f"--task-config {item!r}: {task}.options was given whole already")
            options[key] = yaml.safe_load(value)
        else:
            parsed.setdefault(task, {})[key] = yaml.safe_load(value)
    return parsed


def print_summary(root: Any) -> None:
    """Print a run's status and metrics table."""
    from taskgrove.runs.summary import summary_lines

    print("\n".join(summary_lines(root)))


def add_report_to_option(parser: argparse.ArgumentParser, what: str = "curves and in-loop evaluations") -> None:
    """``--report-to tensorboard|wandb|mlflow`` (repeatable or a comma list; default none) for ``what``."""
    parser.add_argument(
        "--report-to",
        dest="report_to",
        action="append",
        default=argparse.SUPPRESS,
        metavar="TRACKER",
        help=f"tensorboard, wandb or mlflow (repeatable or comma list; default none): {what}",
    )
