"""The data order of SFT (seeded, length-grouped batches; a pure function of seed and epoch, so a
resumed run sees the same batches), the sampler that hands it to the HF/TRL trainer, and the
Ctrl-C flag of the training loops."""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from taskgrove.train.presets import TrainConfig


def plan_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Example indices of each batch of one epoch: a seeded shuffle; with length grouping, each
    window of 16 batches is sorted by length and the full batches are shuffled again. A short
    batch (the remainder) always comes last, so the epoch cut into ``batch_size`` pieces gives
    these batches exactly."""
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
        short = batches.pop() if batches and len(batches[-1]) < batch_size else None
        rng.shuffle(batches)
        if short is not None:
            batches.append(short)
    return batches


class EpochOrder:
    """The trainer's sampler: each epoch's :func:`plan_batches`, flattened (example indices).

    The HF ``Trainer`` cuts it into micro-batches of a size that divides ``batch_size`` and sums
    the gradients of a step's micro-batches, so every optimizer step sees whole planned batches.
    ``set_epoch`` (called by the trainer, also on resume) selects the epoch's order.
    """

    def __init__(self, lengths: Sequence[int], config: TrainConfig) -> None:
        self.lengths = list(lengths)
        self.batch_size = config.batch_size
        self.seed = config.seed
        self.group_by_length = config.group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        return plan_batches(
            self.lengths, self.batch_size, seed=self.seed, epoch=self.epoch, group_by_length=self.group_by_length
        )

    def __iter__(self) -> Iterator[int]:
        return (i for batch in self.batches() for i in batch)

    def __len__(self) -> int:
        return len(self.lengths)


def micro_batch_size(config: TrainConfig) -> int:
    """Examples per forward pass: ``micro_batch_size``, else the largest divisor of
    ``batch_size`` up to 8 (a divisor, so micro-batches never straddle two batches)."""
    if config.micro_batch_size is not None:
        return config.micro_batch_size
    return max(d for d in range(1, min(config.batch_size, 8) + 1) if config.batch_size % d == 0)


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
