"""Training data from the task tree: each task's train split, rendered with its evaluation prompt."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from taskgrove.core import Task
from taskgrove.errors import ConfigError, TaskDataError, TaskgroveError
from taskgrove.registry import TaskRegistry
from taskgrove.train.examples import TrainExample, encode_example
from taskgrove.train.mixture import mix, mixture_counts
from taskgrove.train.presets import TrainConfig
from taskgrove.train.taskconfig import task_settings

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """The mixed examples of a run and what went into them."""

    examples: list[TrainExample]
    available: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Examples per task in the mixture."""
        return mixture_counts(self.examples, lambda e: e.task)

    @property
    def tokens(self) -> int:
        return sum(len(e) for e in self.examples)


def build_tasks(
    registry: TaskRegistry, names: list[str], config: Any = None, *, split: str = "train"
) -> dict[str, Task]:
    """Build and configure each task the way the executor does (its ``task_config`` options
    included), so prompts match evaluation."""
    tasks: dict[str, Task] = {}
    for name in names:
        own = task_settings(config, name, split=split)
        task = registry.create(name)
        task.configure(
            prompt_format=own["prompt_format"],
            num_fewshot=own["num_fewshot"],
            seed=own["seed"],
            split=own["split"],
            **own["options"],
        )
        tasks[name] = task
    return tasks


def task_examples(
    task: Task, tokenizer: Any, *, split: str, limit: int | None, max_seq_length: int
) -> tuple[list[TrainExample], int]:
    """(examples, number dropped for length) of one task's ``split``."""
    scenarios = task.get_dataset(split)
    if limit is not None:
        scenarios = islice(scenarios, limit)
    examples: list[TrainExample] = []
    dropped = 0
    for scenario in scenarios:
        example = encode_example(tokenizer, task.name, task.training_messages(scenario), max_seq_length=max_seq_length)
        if example is None:
            dropped += 1
        else:
            examples.append(example)
    return examples, dropped


def build_training_data(tasks: Mapping[str, Task], tokenizer: Any, config: TrainConfig) -> TrainingData:
    """Tokenise every task's train split and mix them as ``config`` says."""
    per_task: dict[str, list[TrainExample]] = {}
    dropped: dict[str, int] = {}
    for name, task in tasks.items():
        own = task_settings(config, name)
        try:
            task.pre_train()
            examples, too_long = task_examples(
                task, tokenizer, split=own["split"], limit=own["limit"], max_seq_length=config.max_seq_length
            )
        except ConfigError:
            raise
        except TaskgroveError as exc:  # e.g. a hub dataset offline: SourceError's hint, one line
            raise TaskDataError(f"task {name}: {type(exc).__name__}: {exc}") from exc
        if too_long:
            logger.warning(
                "%s: %d example(s) longer than max_seq_length=%d were left out", name, too_long, config.max_seq_length
            )
            dropped[name] = too_long
        if not examples:
            reason = f" ({too_long} longer than max_seq_length={config.max_seq_length})" if too_long else ""
            raise ConfigError(f"task {name} has no training examples in split {own['split']!r}{reason}")
        per_task[name] = examples
    mixed = mix(
        per_task,
        config.mixture,
        temperature=config.mixture_temperature,
        cap=config.mixture_cap,
        size=config.mixture_size,
        seed=config.seed,
        multipliers=config.mixture_multipliers,
    )
    return TrainingData(mixed, {name: len(items) for name, items in per_task.items()}, dropped)
