"""`taskgrove rl`: RL from task rewards (see :mod:`taskgrove.train.rl`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from taskgrove.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TASK_FAILED,
    add_report_to_option,
    add_task_config_option,
    parse_task_config,
)
from taskgrove.errors import ConfigError, TaskDataError

_RL_OPTIONS: list[tuple[tuple[str, ...], str, Any, str]] = [
    (("--steps",), "steps", int, "policy updates (default 30)"),
    (("--scenarios-per-step",), "scenarios_per_step", int, "scenarios per update (default 4)"),
    (
        ("--samples", "--samples-per-scenario"),
        "samples_per_scenario",
        int,
        "samples per scenario, k (default: the task's, else 8)",
    ),
    (("--temperature",), "temperature", float, "sampling temperature (default 1.0)"),
    (("--top-p",), "top_p", float, "nucleus sampling (default 1.0)"),
    (("--max-tokens",), "max_tokens", int, "max new tokens per reply (default 32)"),
    (("--learning-rate", "--lr"), "learning_rate", float, "AdamW learning rate (default 2e-4)"),
    (("--weight-decay",), "weight_decay", float, "AdamW weight decay (default 0)"),
    (("--rank", "--lora-rank"), "lora_rank", int, "LoRA rank (default 16)"),
    (("--lora-alpha",), "lora_alpha", int, "LoRA alpha (default 2 x rank)"),
    (("--micro-batch-size",), "micro_batch_size", int, "replies per forward pass in the update"),
    (("--base-model",), "base_model", str, "'default' (embedded SmolLM2) or a model dir"),
    (("--output-dir",), "output_dir", str, "where the run dir goes (default checkpoints/)"),
    (("--name",), "name", str, "run name (default rl_<task>_LoRA_<r>)"),
    (("--limit",), "limit", int, "training scenarios read per task"),
    (("--split",), "split", str, "split trained on (default train)"),
    (("--seed",), "seed", int, "seed of scenario order and sampling"),
    (("--prompt-format",), "prompt_format", str, "zero_shot or few_shot"),
    (("--kl-coef", "--beta"), "kl_coef", float, "weight of the KL penalty to the base model (default 0.04; 0: none)"),
    (("--clip-epsilon",), "clip_epsilon", float, "PPO clipping of the importance ratio (default 0.2)"),
    (("--updates-per-step",), "updates_per_step", int, "optimizer steps per batch of samples (default 1)"),
    (("--save-steps",), "save_steps", int, "checkpoint every N steps (default 10; also on Ctrl-C and at the end)"),
]


def add_cli(subparsers: Any) -> None:
    """Add ``rl`` to the main parser."""
    parser = subparsers.add_parser("rl", help="reinforcement learning from task rewards (GRPO-style, LoRA)")
    parser.set_defaults(handler=_cmd_rl)
    parser.add_argument("--tasks", nargs="+", required=True, help="leaves, groups or globs of the task tree")
    parser.add_argument("--config", "-c", dest="config_file", help="YAML of RL options")
    parser.add_argument(
        "--include-path", "--include_path", dest="include_path", action="append", default=[], help="task file or folder"
    )
    add_task_config_option(parser)
    parser.add_argument(
        "--resume", action="store_true", help="continue this run from its newest checkpoint (give the same options)"
    )
    add_report_to_option(parser, "the reward/KL curve")
    for flags, dest, kind, help_text in _RL_OPTIONS:
        parser.add_argument(*flags, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text)


def _cmd_rl(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from taskgrove.config import load_yaml
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train.rl import RLConfig, RLInterrupted, train_rl
    from taskgrove.train.taskconfig import merge_task_config, resolve_task_config
    from taskgrove.train.trackers import parse_report_to, require

    values: dict[str, Any] = load_yaml(args.config_file) if args.config_file else {}
    try:
        values["report_to"] = parse_report_to(getattr(args, "report_to", None) or values.get("report_to"))
    except ValueError as exc:
        raise ConfigError(f"--report-to: {exc}") from None
    require(values["report_to"])  # a missing package: usage error, before anything is created
    include = list(dict.fromkeys([*(values.pop("include_path", None) or []), *args.include_path]))
    registry = build_registry(include)
    values.update({dest: getattr(args, dest) for _, dest, _, _ in _RL_OPTIONS if hasattr(args, dest)})
    values["include_path"] = include
    values["requests"] = list(args.tasks)
    values["tasks"] = registry.resolve(args.tasks)
    merged = merge_task_config(values.pop("task_config", None), parse_task_config(args.task_config_items))
    values["task_config"] = resolve_task_config(registry, values["tasks"], merged)
    try:
        config = RLConfig(**values)
    except ValidationError as exc:
        raise ConfigError(f"Invalid RL configuration: {exc}") from None
    print(
        f"rl {config.run_name} on {', '.join(config.tasks)}: {config.steps} steps x {config.scenarios_per_step} scenarios",
        file=sys.stderr,
    )

    def log(record: dict[str, Any]) -> None:
        print(
            f"step {record['step']}: mean reward {record['mean_reward']:.3f}  loss {record['loss']:.4f}  kl {record['kl']:.4f}  "
            f"trained replies {record['trained_replies']}  sample {record['sample_s']}s update {record['update_s']}s",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = train_rl(config, registry, log=log, resume=args.resume)
    except RLInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INTERRUPTED
    except TaskDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TASK_FAILED
    first = result.curve[0]["mean_reward"] if result.curve else float("nan")
    last = result.curve[-1]["mean_reward"] if result.curve else float("nan")
    print(
        f"done: {result.steps} steps in {result.seconds:.0f}s; mean reward {first:.3f} -> {last:.3f}; adapter in {result.run_dir}",
        file=sys.stderr,
    )
    return EXIT_OK
