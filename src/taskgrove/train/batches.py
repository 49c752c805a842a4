"""The data order of SFT (seeded, length-grouped batches; a pure function of seed and step, so a
resumed run sees the same batches) and the Ctrl-C flag of the training loops."""

from __future__ import annotations

import math
import random
import signal
import threading
from collections.abc import Sequence
from typing import Any

from taskgrove.train.presets import TrainConfig


def plan_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Example indices of each batch of one epoch: a seeded shuffle; with length grouping, each
    window of 16 batches is sorted by length and the batches are shuffled again."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * 16
        order = [
            i
            for start in range(0, len(order), window)
            for i in sorted(order[start : start + window], key=lambda i: -lengths[i])
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def steps_per_epoch(num_examples: int, config: TrainConfig, world: int = 1) -> int:
    batches = math.ceil(num_examples / config.batch_size)
    return max(1, math.ceil(batches / (config.gradient_accumulation_steps * world)))


def total_steps(num_examples: int, config: TrainConfig, world: int = 1) -> int:
    """Optimizer steps of the run: ``max_steps`` or ``num_epochs`` epochs."""
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.num_epochs * steps_per_epoch(num_examples, config, world)))


def step_batches(
    step: int, lengths: Sequence[int], config: TrainConfig, *, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """The batches this process runs at optimizer step ``step`` (0-based), deterministic for resume."""
    per_epoch = steps_per_epoch(len(lengths), config, world)
    epoch, within = divmod(step, per_epoch)
    batches = plan_batches(
        lengths, config.batch_size, seed=config.seed, epoch=epoch, group_by_length=config.group_by_length
    )
    span = config.gradient_accumulation_steps * world
    mine = batches[within * span : (within + 1) * span][rank::world]
    if not mine:  # a short last step: every process must still join the gradient all-reduce
        mine = [batches[rank % len(batches)]]
    return mine


class StopFlag:
    """SIGINT sets the flag (the loop stops after the current step); a second SIGINT raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
