"""What a run reports: one outcome per task, and the run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.runs.store import RunStore


@dataclass
class TaskOutcome:
    """What happened to one task of a run."""

    name: str
    status: str = "pending"  # completed | failed | interrupted
    samples: int = 0
    failed_samples: int = 0
    skipped_samples: int = 0
    seconds: float = 0.0
    metrics: dict[str, Any] | None = None
    error: BaseException | None = None
    usage: dict[str, int] = field(default_factory=dict)
    primary_metric: str = "reward"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "samples": self.samples,
            "failed_samples": self.failed_samples,
            "resumed_samples": self.skipped_samples,
            "seconds": round(self.seconds, 3),
            "usage": self.usage,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }


@dataclass
class RunResult:
    """The outcome of a whole run; ``errors`` is empty when every task completed."""

    store: RunStore
    outcomes: dict[str, TaskOutcome]

    @property
    def run_dir(self) -> Path:
        """The run's folder (config.yaml, run.json, one folder of samples and metrics per task)."""
        return self.store.root

    @property
    def errors(self) -> dict[str, BaseException]:
        """The exception of every task that failed, by task name."""
        return {name: o.error for name, o in self.outcomes.items() if o.error is not None}

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Task-level metrics of every scored task: ``{task: {metric: {value, ci_low, ci_high, n}}}``."""
        return {name: o.metrics for name, o in self.outcomes.items() if o.metrics is not None}

    def scores(self) -> dict[str, float]:
        """Each scored task's primary metric value (what the summary table shows first)."""
        return {
            name: o.metrics[o.primary_metric]["value"]
            for name, o in self.outcomes.items()
            if o.metrics and o.primary_metric in o.metrics
        }
