"""The options of `taskgrove train | train-compare | train-eval` and the helpers that read them."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from taskgrove.cli._common import (
    EXIT_TASK_FAILED,
    Command,
    add_report_to_option,
    add_task_config_option,
    parse_task_config,
)
from taskgrove.errors import ConfigError, TaskDataError

# (flags, dest, type, help) of the options shared by train and train-compare; dest = TrainConfig field
TRAIN_OPTIONS: list[tuple[tuple[str, ...], str, Any, str]] = [
    (("--config-index",), "config_index", int, "0 full fine-tuning; 1-5 LoRA rank 4, 8, 16, 32, 64 (default 3)"),
    (("--method",), "method", str, "full or lora"),
    (("--rank", "--lora-rank"), "lora_rank", int, "LoRA rank"),
    (("--lora-alpha",), "lora_alpha", int, "LoRA alpha (default 2 x rank)"),
    (("--lora-dropout",), "lora_dropout", float, "LoRA dropout (preset 0.1)"),
    (("--epochs", "--num-epochs"), "num_epochs", float, "epochs over the mixture (default 1)"),
    (("--max-steps",), "max_steps", int, "optimizer steps (overrides --epochs)"),
    (("--learning-rate", "--lr"), "learning_rate", float, "peak learning rate (preset 1e-5)"),
    (("--batch-size",), "batch_size", int, "examples per batch per process (preset 32 or 128)"),
    (
        ("--micro-batch-size",),
        "micro_batch_size",
        int,
        "examples per forward pass, a divisor of --batch-size (memory only; default the largest up to 8)",
    ),
    (
        ("--grad-accum", "--gradient-accumulation-steps"),
        "gradient_accumulation_steps",
        int,
        "batches per optimizer step (preset 4)",
    ),
    (("--weight-decay",), "weight_decay", float, "AdamW weight decay"),
    (("--warmup-ratio",), "warmup_ratio", float, "share of steps with linear warm-up"),
    (("--lr-scheduler",), "lr_scheduler", str, "linear, cosine or constant"),
    (("--max-seq-length",), "max_seq_length", int, "longer examples are left out (default 1024)"),
    (("--base-model",), "base_model", str, "'default' (embedded SmolLM2-135M-Instruct), a model dir, .gguf or hub id"),
    (("--output-dir",), "output_dir", str, "where run dirs go (default checkpoints/)"),
    (("--name",), "name", str, "run name (default single_<task>_<cfg> or <type>_<cfg>)"),
    (("--limit",), "limit", int, "training scenarios read per task"),
    (("--split",), "split", str, "split trained on (default train)"),
    (("--mixture",), "mixture", str, "concatenate (default), proportional, temperature, equal or transfer"),
    (("--mixture-transfer",), "mixture_transfer", str, "transfer.json (or its dir) for --mixture transfer"),
    (("--mixture-temperature",), "mixture_temperature", float, "T of the temperature mixture (default 2)"),
    (("--mixture-cap",), "mixture_cap", int, "at most this many examples per task"),
    (("--mixture-size",), "mixture_size", int, "examples drawn by a sampled mixture (default: all)"),
    (("--seed",), "seed", int, "seed of data order, mixture and initialisation"),
    (("--prompt-format",), "prompt_format", str, "zero_shot or few_shot (as in evaluation)"),
    (("--num-fewshot",), "num_fewshot", int, "few-shot examples per prompt"),
    (("--save-steps",), "save_steps", int, "checkpoint every N steps"),
    (("--logging-steps",), "logging_steps", int, "log every N steps (default 10)"),
    (("--eval-every",), "eval_every", int, "evaluate a checkpoint every N steps on the held-out split"),
    (("--eval-split",), "eval_split", str, "split evaluated after training (default test)"),
    (("--eval-limit",), "eval_limit", int, "scenarios evaluated per task"),
    (("--eval-max-tokens",), "eval_max_tokens", int, "max new tokens in evaluation"),
    (("--eval-batch-size",), "eval_batch_size", int, "sequences per generation batch in evaluation"),
]

# (flag, dest, help) of the on/off options (each also takes --no-...); dest = TrainConfig field
SWITCHES: list[tuple[str, str, str]] = [
    ("--evaluate", "evaluate", "evaluate after training (default on)"),
    ("--packing", "packing", "pack several examples into each sequence, as TRL packs (default off)"),
    ("--gradient-checkpointing", "gradient_checkpointing", "recompute activations to save memory (default off)"),
]


def add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks", nargs="+", default=argparse.SUPPRESS, help="leaves, groups or globs of the task tree"
    )
    parser.add_argument(
        "--config", "-c", dest="config_file", help="YAML of training options (keys as in train_config.json)"
    )
    parser.add_argument(
        "--include-path", "--include_path", dest="include_path", action="append", default=[], help="task file or folder"
    )
    add_task_config_option(parser)
    parser.add_argument(
        "--task-type",
        choices=["similar", "dissimilar"],
        default=None,
        help="TreeMark's task type: the same as --tasks treemark/similar or treemark/dissimilar",
    )
    parser.add_argument(
        "--eval-tasks",
        nargs="+",
        default=argparse.SUPPRESS,
        metavar="TREE",
        help="tasks, groups or globs evaluated every --eval-every steps (default: the trained tasks)",
    )
    for flag, dest, help_text in SWITCHES:
        parser.add_argument(
            flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
        )
    add_report_to_option(parser)
    for flags, dest, kind, help_text in TRAIN_OPTIONS:
        parser.add_argument(*flags, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text)


def report_to_of(args: argparse.Namespace) -> list[str] | None:
    """The trackers named by ``--report-to`` (``None`` when not given); unknown names and missing
    packages are usage errors, before anything is created."""
    if not hasattr(args, "report_to"):
        return None
    from taskgrove.train.trackers import parse_report_to, require

    try:
        names = parse_report_to(args.report_to)
    except ValueError as exc:
        raise ConfigError(f"--report-to: {exc}") from None
    require(names)
    return names


def one_line_data_errors(handler: Command) -> Command:
    """A task whose data cannot be read (a hub dataset offline, ...) ends the command with one line, exit 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except TaskDataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_TASK_FAILED

    return run


def task_config_of(
    registry: Any, names: list[str], args: argparse.Namespace, *layers: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """``task_config`` of the run: the given layers (lowest first) < ``--task-config``, validated as
    ``run`` validates it and keyed by full task name."""
    from taskgrove.train.taskconfig import merge_task_config, resolve_task_config

    merged = merge_task_config(*layers, parse_task_config(getattr(args, "task_config_items", [])))
    return resolve_task_config(registry, names, merged)


def resolve_eval_tasks(
    registry: Any, args: argparse.Namespace, yaml_data: dict[str, Any], cli: dict[str, Any], saved: Any
) -> None:
    """Resolve ``--eval-tasks`` (or YAML ``eval_tasks``) to full names into ``cli``."""
    requests = getattr(args, "eval_tasks", None) or yaml_data.pop("eval_tasks", None)
    yaml_data.pop("eval_tasks", None)
    if requests:
        cli["eval_tasks"] = registry.resolve([requests] if isinstance(requests, str) else list(requests))


def task_type_requests(args: argparse.Namespace) -> list[str] | None:
    """``--task-type similar|dissimilar`` as TreeMark's multi-task script takes it: the TreeMark group."""
    chosen = getattr(args, "task_type", None)
    if chosen is None:
        return None
    if getattr(args, "tasks", None):
        raise ConfigError("give --tasks or --task-type, not both")
    return [f"treemark/{chosen}"]


def say(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """Training options the user gave on the command line."""
    values = {dest: getattr(args, dest) for _, dest, _, _ in TRAIN_OPTIONS if hasattr(args, dest)}
    values.update({dest: getattr(args, dest) for _, dest, _ in SWITCHES if hasattr(args, dest)})
    report_to = report_to_of(args)
    if report_to is not None:
        values["report_to"] = report_to
    return values


def yaml_of(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--config`` YAML (empty without one)."""
    from taskgrove.config import load_yaml

    return load_yaml(args.config_file) if getattr(args, "config_file", None) else {}


def log_step(record: dict[str, Any]) -> None:
    """One training log record on stderr."""
    print(
        f"step {record['step']}: loss {record['loss']:.4f}  lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tok/s",
        file=sys.stderr,
        flush=True,
    )


@dataclass
class TreeRequest:
    """What ``train-compare`` and ``transfer`` resolve first: the tree's leaves and their options."""

    registry: Any
    requests: list[str]
    names: list[str]
    evaluated: list[str]
    everything: list[str]
    task_config: dict[str, Any]
    yaml_data: dict[str, Any]
    cli: dict[str, Any]

    def configs(self) -> tuple[Any, list[Any]]:
        """(the multi-task config, one single-task config per leaf): ``train-compare``'s configs, which
        ``transfer`` shares so that either command reuses the other's runs. Each single run sees the
        task_config of its task and of the evaluated tasks."""
        from taskgrove.train.presets import resolve_train_config

        tasks = {name: self.registry.create(name) for name in self.names}
        multi = resolve_train_config(
            tasks, requests=self.requests, yaml_data=self.yaml_data, cli={**self.cli, "task_config": self.task_config}
        )
        singles = []
        for name in self.names:
            own = {k: v for k, v in self.task_config.items() if k == name or k in self.evaluated}
            layer = {**self.cli, "family": multi.family, "eval_tasks": self.evaluated, "task_config": own}
            singles.append(
                resolve_train_config({name: tasks[name]}, requests=[name], yaml_data=self.yaml_data, cli=layer)
            )
        return multi, singles


def resolve_tree_request(args: argparse.Namespace, command: str, what: str) -> TreeRequest:
    """Registry, requested leaves (at least two), evaluated tasks and task_config of ``command``."""
    from taskgrove.tasks.builtin import build_registry

    yaml_data, cli = yaml_of(args), given(args)
    include = list(dict.fromkeys([*yaml_data.pop("include_path", []), *args.include_path]))
    cli["include_path"] = include
    registry = build_registry(include)
    requests = task_type_requests(args) or getattr(args, "tasks", None) or yaml_data.pop("tasks", None)
    if not requests:
        raise ConfigError(f"--tasks is required: name a group or a list of {what}")
    requests = [requests] if isinstance(requests, str) else list(requests)
    yaml_data.pop("tasks", None)
    cli.pop("name", None)
    names = registry.resolve(requests)
    if len(names) < 2:
        raise ConfigError(f"{command} needs at least two {what}; {' '.join(requests)} names {len(names)}")
    resolve_eval_tasks(registry, args, yaml_data, cli, None)
    evaluated = cli.get("eval_tasks") or names
    everything = [*names, *(n for n in evaluated if n not in names)]
    task_config = task_config_of(registry, everything, args, yaml_data.pop("task_config", None))
    return TreeRequest(registry, requests, names, evaluated, everything, task_config, yaml_data, cli)
