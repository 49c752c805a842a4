"""Progress per task: a rich bar on a terminal, plain lines elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class TaskProgress(Protocol):
    def advance(self, reward: float | None, failed: bool = False) -> None: ...
    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, name: str, total: int | None) -> TaskProgress: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


class _Counter:
    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.reward_sum = 0.0
        self.reward_n = 0
        self.started = time.perf_counter()

    def add(self, reward: float | None, failed: bool) -> None:
        self.done += 1
        if failed:
            self.failed += 1
        elif reward is not None:
            self.reward_sum += reward
            self.reward_n += 1

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.reward_n if self.reward_n else None

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total}" if self.total is not None else ""
        mean = f" mean reward {self.mean_reward:.3f}" if self.mean_reward is not None else ""
        eta = ""
        if self.total and rate > 0 and self.done < self.total:
            eta = f" ETA {(self.total - self.done) / rate:.0f}s"
        failed = f" failed {self.failed}" if self.failed else ""
        return f"{self.done}{total} samples{failed}{mean} {rate:.1f}/s{eta}"


class PlainTaskProgress:
    """Writes a line at most every ``interval`` seconds and one at the end."""

    def __init__(self, name: str, total: int | None, stream: Any, interval: float) -> None:
        self.name = name
        self.counter = _Counter(total)
        self.stream = stream
        self.interval = interval
        self._next = time.perf_counter() + interval

    def advance(self, reward: float | None, failed: bool = False) -> None:
        self.counter.add(reward, failed)
        if self.counter.done & 63 == 0 or (self.counter.total is not None and self.counter.done == self.counter.total):
            now = time.perf_counter()
            if now >= self._next:
                self._next = now + self.interval
                print(f"[{self.name}] {self.counter.summary()}", file=self.stream, flush=True)

    def close(self) -> None:
        print(f"[{self.name}] done: {self.counter.summary()}", file=self.stream, flush=True)


class PlainProgress:
    def __init__(self, stream: Any = None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval

    def task(self, name: str, total: int | None) -> TaskProgress:
        print(f"[{name}] starting ({total if total is not None else '?'} samples)", file=self.stream, flush=True)
        return PlainTaskProgress(name, total, self.stream, self.interval)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def stop(self) -> None:
        return None


class RichTaskProgress:
    def __init__(self, bar: Any, name: str, total: int | None) -> None:
        self.bar = bar
        self.counter = _Counter(total)
        self.id = bar.add_task(name, total=total, reward="")

    def advance(self, reward: float | None, failed: bool = False) -> None:
        self.counter.add(reward, failed)
        mean = self.counter.mean_reward
        self.bar.update(self.id, advance=1, reward=f"{mean:.3f}" if mean is not None else "-")

    def close(self) -> None:
        self.bar.update(self.id, refresh=True)


def _rate_column_class() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed or 0.0:.1f}/s", style="cyan")

    return RateColumn


class RichProgress:
    """One bar per task: done/total, running mean reward, rate and ETA."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        _RateColumn = _rate_column_class()
        self.bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("reward {task.fields[reward]}"),
            _RateColumn(),
            TimeRemainingColumn(),
            refresh_per_second=4,
            transient=False,
        )
        self.bar.start()

    def task(self, name: str, total: int | None) -> TaskProgress:
        return RichTaskProgress(self.bar, name, total)

    def message(self, text: str) -> None:
        self.bar.console.print(text)

    def stop(self) -> None:
        self.bar.stop()


def make_progress(enabled: bool = True) -> Progress:
    """Rich bars on an interactive terminal, plain periodic lines otherwise."""
    if enabled and sys.stderr.isatty():
        return RichProgress()
    return PlainProgress(interval=10.0 if enabled else float("inf"))
