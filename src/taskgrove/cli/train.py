"""`taskgrove train | train-compare | train-eval`: fine-tuning on the tree and comparing the results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taskgrove.cli._common import EXIT_INTERRUPTED, EXIT_OK, add_report_to_option, add_task_config_option
from taskgrove.cli._train_args import (
    TRAIN_OPTIONS,
    add_train_options,
    given,
    log_step,
    one_line_data_errors,
    report_to_of,
    resolve_eval_tasks,
    resolve_tree_request,
    say,
    task_config_of,
    task_type_requests,
    yaml_of,
)
from taskgrove.errors import ConfigError


def add_cli(subparsers: Any) -> None:
    """Add the training subcommands to the main parser."""
    train = subparsers.add_parser("train", help="fine-tune on tasks (full or LoRA), then compare with the base model")
    add_train_options(train)
    train.set_defaults(handler=one_line_data_errors(_cmd_train))
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN",
        help="continue a run from its last checkpoint (its dir or name; default: the run this config names)",
    )
    compare = subparsers.add_parser(
        "train-compare", help="train one model per task and one on all of them, then compare them with the base"
    )
    add_train_options(compare)
    compare.add_argument(
        "--merge",
        choices=("linear", "ties", "dare_ties", "svd"),
        help="also merge the single-task LoRA adapters (PEFT add_weighted_adapter) and compare the merged model",
    )
    compare.set_defaults(handler=one_line_data_errors(_cmd_train_compare))
    evaluate = subparsers.add_parser(
        "train-eval", help="evaluate trained checkpoints and the base model on tasks; write comparison.json"
    )
    evaluate.set_defaults(handler=one_line_data_errors(_cmd_train_eval))
    evaluate.add_argument("checkpoints", nargs="+", help="training run dirs")
    evaluate.add_argument(
        "--tasks", nargs="+", help="tasks to evaluate on (default: every task the checkpoints were trained on)"
    )
    evaluate.add_argument("--output", help="where comparison.json goes (default: the first checkpoint's dir)")
    evaluate.add_argument(
        "--include-path", "--include_path", dest="include_path", action="append", default=[], help="task file or folder"
    )
    add_task_config_option(evaluate)
    add_report_to_option(evaluate)
    for flags, dest, kind, help_text in TRAIN_OPTIONS:
        if (dest.startswith("eval_") and dest != "eval_every") or dest in ("prompt_format", "num_fewshot", "seed"):
            evaluate.add_argument(*flags, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text)


def _resolve(
    registry: Any,
    requests: list[str],
    yaml_data: dict[str, Any],
    cli: dict[str, Any],
    saved: dict[str, Any] | None = None,
) -> Any:
    from taskgrove.train.presets import resolve_train_config

    names = registry.resolve(requests)
    tasks = {name: registry.create(name) for name in names}
    return resolve_train_config(tasks, requests=requests, yaml_data=yaml_data, cli=cli, saved=saved)


def _saved_layer(run_dir: Path) -> dict[str, Any]:
    from taskgrove.train import checkpoint as ckpt
    from taskgrove.train.presets import TrainConfig

    saved = ckpt.read_json(run_dir / ckpt.CONFIG_FILE)
    return {
        k: v
        for k, v in saved.items()
        if k in TrainConfig.model_fields and k not in ("notes", "kind", "family", "task_type", "tasks")
    }


def _eval_settings(config: Any) -> Any:
    from taskgrove.train.curve import eval_settings

    return eval_settings(config)


def _report(path: Path) -> None:
    print(path.read_text(encoding="utf-8"))


def _cmd_train(args: argparse.Namespace) -> int:
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train import checkpoint as ckpt
    from taskgrove.train.sft import TrainingInterrupted, train_sft

    yaml_data, cli = yaml_of(args), given(args)
    saved: dict[str, Any] | None = None
    if isinstance(args.resume, str):
        run_dir = ckpt.find_run_dir(args.resume, cli.get("output_dir") or yaml_data.get("output_dir") or "checkpoints")
        saved = _saved_layer(run_dir)
        saved["output_dir"] = str(run_dir.parent)
    include = list(
        dict.fromkeys([*(saved or {}).get("include_path", []), *yaml_data.get("include_path", []), *args.include_path])
    )
    cli["include_path"] = include
    yaml_data.pop("include_path", None)
    registry = build_registry(include)
    requests = (
        task_type_requests(args)
        or getattr(args, "tasks", None)
        or yaml_data.get("tasks")
        or (saved or {}).get("requests")
    )
    if not requests:
        raise ConfigError("--tasks is required: name a task, a group or a list of tasks")
    requests = [requests] if isinstance(requests, str) else list(requests)
    yaml_data.pop("tasks", None)
    yaml_tasks = yaml_data.pop("task_config", None)
    names = registry.resolve(requests)
    resolve_eval_tasks(registry, args, yaml_data, cli, saved)
    evaluated = cli.get("eval_tasks") or (saved or {}).get("eval_tasks") or []
    names = [*names, *(n for n in evaluated if n not in names)]
    cli["task_config"] = task_config_of(registry, names, args, (saved or {}).pop("task_config", None), yaml_tasks)
    config = _resolve(registry, requests, yaml_data, cli, saved)
    if args.resume is True:
        run_dir = Path(config.output_dir) / config.run_name
        if not (run_dir / ckpt.CONFIG_FILE).is_file():
            raise ConfigError(f"--resume: {run_dir} holds no training run to continue")
        saved = _saved_layer(run_dir)
        cli["task_config"] = task_config_of(registry, names, args, saved.pop("task_config", None), yaml_tasks)
        config = _resolve(registry, requests, yaml_data, cli, saved)
    for note in config.notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"training {config.run_name} on {len(config.tasks)} task(s): {config.label}, family {config.family}, "
        f"lr {config.learning_rate}, batch {config.batch_size} x accum {config.gradient_accumulation_steps}",
        file=sys.stderr,
    )
    try:
        result = train_sft(config, registry, resume=args.resume is not None, log=log_step, say=say)
    except TrainingInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not result.main_process:  # under accelerate/torchrun only the main process reports and evaluates
        return EXIT_OK
    print(
        f"trained {result.steps} steps, {result.tokens} tokens in {result.seconds:.1f}s ({result.tokens_per_s:.1f} tok/s)"
        f"{_evaluated(result)} -> {result.run_dir}",
        file=sys.stderr,
    )
    if config.evaluate:
        _compare_run(config, registry, result.run_dir)
    return EXIT_OK


def _compare_run(config: Any, registry: Any, run_dir: Path) -> None:
    from taskgrove.train.evaluate import ModelEntry, compare, related_runs, write_comparison

    output_dir = Path(config.output_dir)
    entries = [ModelEntry("base", "base", None, config.base_model)]
    others = [e for e in related_runs(output_dir, config.label, config.tasks) if e.path != run_dir]
    entries += [*others, ModelEntry.from_run(run_dir)]
    comparison = compare(
        entries, config.tasks, registry, _eval_settings(config), output_dir, log=lambda m: print(m, file=sys.stderr)
    )
    _, md = write_comparison(run_dir, comparison)
    print(f"comparison written to {run_dir / 'comparison.json'}", file=sys.stderr)
    _report(md)


def _cmd_train_compare(args: argparse.Namespace) -> int:
    from taskgrove.train import checkpoint as ckpt
    from taskgrove.train.evaluate import ModelEntry, compare, write_comparison
    from taskgrove.train.sft import TrainingInterrupted, train_sft

    tree = resolve_tree_request(args, "train-compare", "tasks")
    registry, names = tree.registry, tree.names
    multi, singles = tree.configs()
    if args.merge and multi.method != "lora":
        raise ConfigError(f"--merge {args.merge} merges LoRA adapters; {multi.label} is not LoRA")
    entries = [ModelEntry("base", "base", None, multi.base_model)]
    try:
        for config in [*singles, multi]:
            run_dir = Path(config.output_dir) / config.run_name
            if ckpt.finished_same(run_dir, config):
                print(f"{config.run_name}: already trained with this config, reusing {run_dir}", file=sys.stderr)
                entries.append(ModelEntry.from_run(run_dir))
                continue
            print(f"training {config.run_name} ({config.label}) on {', '.join(config.tasks)}", file=sys.stderr)
            result = train_sft(config, registry, resume=bool(ckpt.checkpoints(run_dir)), log=log_step, say=say)
            print(
                f"  {result.steps} steps, {result.tokens} tokens, {result.seconds:.1f}s, {result.tokens_per_s:.1f} tok/s"
                f"{_evaluated(result)}",
                file=sys.stderr,
            )
            entries.append(ModelEntry.from_run(result.run_dir))
    except TrainingInterrupted as exc:
        print(f"interrupted: {exc}; run train-compare again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.merge:
        from taskgrove.train.merge import merged_entry

        singles_done = [e for e in entries if e.kind == "single"]
        entries.append(merged_entry(singles_done, args.merge, Path(multi.output_dir), multi.label))
        print(f"merged {len(singles_done)} single-task adapters ({args.merge}): {entries[-1].path}", file=sys.stderr)
    if multi.evaluate:
        output_dir = Path(multi.output_dir)
        comparison = compare(
            entries, names, registry, _eval_settings(multi), output_dir, log=lambda m: print(m, file=sys.stderr)
        )
        target = output_dir / f"compare_{multi.run_name}"
        _, md = write_comparison(target, comparison)
        print(f"comparison written to {target / 'comparison.json'}", file=sys.stderr)
        _report(md)
    return EXIT_OK


def _cmd_train_eval(args: argparse.Namespace) -> int:
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train import checkpoint as ckpt
    from taskgrove.train.evaluate import EvalSettings, ModelEntry, compare, write_comparison

    report_to = report_to_of(args) or []
    registry = build_registry(args.include_path)
    entries = []
    for item in args.checkpoints:
        run_dir = Path(item)
        if not (run_dir / ckpt.CONFIG_FILE).is_file():
            raise ConfigError(f"{run_dir} is not a training run dir (no {ckpt.CONFIG_FILE})")
        entries.append(ModelEntry.from_run(run_dir))
    tasks = (
        registry.resolve(args.tasks) if args.tasks else list(dict.fromkeys(t for e in entries for t in e.trained_on))
    )
    first = ckpt.read_json(entries[0].path / ckpt.CONFIG_FILE)  # type: ignore[operator]
    saved_tasks = [
        {k: v for k, v in (ckpt.read_json(e.path / ckpt.CONFIG_FILE).get("task_config") or {}).items() if k in tasks}  # type: ignore[operator]
        for e in entries
    ]
    settings = EvalSettings(
        split=getattr(args, "eval_split", first.get("eval_split", "test")),
        limit=getattr(args, "eval_limit", first.get("eval_limit")),
        max_tokens=getattr(args, "eval_max_tokens", first.get("eval_max_tokens")),
        batch_size=getattr(args, "eval_batch_size", first.get("eval_batch_size", 16)),
        prompt_format=getattr(args, "prompt_format", first.get("prompt_format", "zero_shot")),
        num_fewshot=getattr(args, "num_fewshot", first.get("num_fewshot", 3)),
        seed=getattr(args, "seed", first.get("seed", 0)),
        task_config=task_config_of(registry, tasks, args, *saved_tasks),
    )
    base = ModelEntry("base", "base", None, entries[0].base_model)
    output_dir = entries[0].path.parent  # type: ignore[union-attr]
    comparison = compare(
        [base, *entries], tasks, registry, settings, output_dir, log=lambda m: print(m, file=sys.stderr)
    )
    target = Path(args.output) if args.output else entries[0].path
    if target is None:
        raise ConfigError("train-eval: name --output (the first checkpoint has no folder)")
    _, md = write_comparison(target, comparison)
    print(f"comparison written to {Path(target) / 'comparison.json'}", file=sys.stderr)
    if report_to:
        from taskgrove.train.trackers import log_comparison

        log_comparison(report_to, comparison)
    _report(md)
    return EXIT_OK


def _evaluated(result: Any) -> str:
    """``, plus 12.3s evaluating in the loop`` when checkpoints were evaluated while training."""
    return f", plus {result.eval_seconds:.1f}s evaluating in the loop" if result.eval_seconds >= 0.05 else ""
