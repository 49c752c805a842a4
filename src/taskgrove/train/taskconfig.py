"""Per-task settings of training runs: ``task_config`` exactly as ``taskgrove run`` takes it.

``task_config: {TASK: {KEY: VALUE}}`` (YAML) or ``--task-config TASK.KEY=VALUE`` /
``--task-config TASK.options.NAME=VALUE`` (command line, over the YAML per task) is validated by
the run configuration's own model (:class:`taskgrove.config.TaskOverrides`, same messages) and
its keys are matched to the run's tasks by the executor's rule (one key, one task of the run).
Resolved configs store it keyed by the full task name.

What applies where:

* ``options`` (``source``, ``source_options``, any task option), ``prompt_format``,
  ``num_fewshot`` and ``seed``: the training data and every evaluation of the task;
* ``split`` and ``limit``: the training data (evaluation reads ``--eval-split``/``--eval-limit``);
* generation keys (``max_tokens``, ``temperature``, ``stop``, ...) and ``batch_size``: evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from taskgrove.errors import ConfigError

TRAINING_ONLY = ("split", "limit")


def merge_task_config(*layers: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per-task merge of ``task_config`` layers, lowest first (later keys of a task win, as in ``run``)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigError(f"task_config must map task names to settings, got {type(layer).__name__}")
        for name, values in layer.items():
            if values is not None and not isinstance(values, Mapping):
                raise ConfigError(f"task_config key '{name}': expected a mapping of settings, got {values!r}")
            merged.setdefault(str(name), {}).update(values or {})
    return merged


def resolve_task_config(registry: Any, task_names: list[str], raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate ``raw`` as ``run`` does and key it by full task name (only the keys given are kept)."""
    if not raw:
        return {}
    from taskgrove.config import build_config
    from taskgrove.runner.executor import task_config_targets

    validated = build_config({"task_config": dict(raw)}).task_config
    targets = task_config_targets(registry, task_names, validated)
    return {full: validated[key].model_dump(exclude_unset=True) for full, key in targets.items()}


def check_targets(task_config: Mapping[str, Any], task_names: Iterable[str]) -> None:
    """Every key of a resolved ``task_config`` is one of ``task_names``."""
    names = set(task_names)
    stray = [key for key in task_config if key not in names]
    if stray:
        raise ConfigError(f"task_config key '{stray[0]}' is not among the tasks of this run")


def task_settings(config: Any, name: str, *, split: str | None = None) -> dict[str, Any]:
    """The data settings of task ``name`` in a training run: its ``task_config`` over the run's values."""
    own = dict((getattr(config, "task_config", None) or {}).get(name) or {})
    return {
        "prompt_format": own.get("prompt_format") or getattr(config, "prompt_format", "zero_shot"),
        "num_fewshot": own.get("num_fewshot", getattr(config, "num_fewshot", 3)),
        "seed": own.get("seed", getattr(config, "seed", 0)),
        "split": own.get("split") or split or getattr(config, "split", "train"),
        "limit": own.get("limit", getattr(config, "limit", None)),
        "options": dict(own.get("options") or {}),
    }


def evaluation_task_config(task_config: Mapping[str, Any], tasks: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The part of a resolved ``task_config`` that applies to evaluating ``tasks`` (no training split/limit)."""
    out: dict[str, dict[str, Any]] = {}
    for name in tasks:
        values = {k: v for k, v in (task_config.get(name) or {}).items() if k not in TRAINING_ONLY}
        if values:
            out[name] = values
    return out
