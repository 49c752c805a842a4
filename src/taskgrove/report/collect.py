"""Loading run directories for reports: each task's status, primary metric and interval.

A run directory (see :mod:`taskgrove.runs.store`) holds ``run.json`` (status of every task, also of
tasks that failed before writing anything), ``config.yaml`` and per task ``samples.jsonl`` and,
once scored, ``metrics.json``. A task is listed when it appears in any of them.

Scales: metrics.json files written since results moved to one scale carry ``ranges`` (the range of
each metric, [0, 1] for all but MCC). Older files stored sacrebleu's BLEU and chrF on 0-100: they
are read back divided by 100 (:data:`LEGACY_PERCENT`), so every score a report shows or averages is
on the same scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError
from taskgrove.runs.store import RunStore

#: Metrics that metrics.json files without ``ranges`` (older versions) stored on 0-100.
LEGACY_PERCENT = frozenset({"bleu", "chrf"})


@dataclass(frozen=True)
class Score:
    """A value with its 95% interval (``None`` bounds: no interval) and the items it rests on."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    @classmethod
    def from_entry(cls, entry: Any) -> Score | None:
        """A Score from a stored ``{value, ci_low, ci_high, n}`` entry (nan bounds: no interval)."""
        if not isinstance(entry, dict) or not _number(entry.get("value")):
            return None
        low, high = entry.get("ci_low"), entry.get("ci_high")
        if not (_number(low) and _number(high)):
            low = high = None
        n = entry.get("n")
        return cls(
            float(entry["value"]),
            low if low is None else float(low),
            high if high is None else float(high),
            int(n) if isinstance(n, int) else None,
        )


@dataclass(frozen=True)
class TaskResult:
    """One task of one run as stored: status, primary metric and its score (when scored)."""

    name: str
    status: str
    primary_metric: str | None
    score: Score | None
    n: int
    n_failed: int
    metrics: dict[str, Score]
    error: str | None
    directory: Path
    primary_range: tuple[float, float] | None = None
    """The range of the primary metric's values (``None``: not declared)."""
    failed_samples: str = "exclude"
    """How the score treats failed samples: ``wrong`` (counted as wrong) or ``exclude`` (older runs)."""

    @property
    def samples_path(self) -> Path:
        return self.directory / "samples.jsonl"


@dataclass
class Run:
    """A run directory loaded for reporting; ``label`` names its column."""

    root: Path
    run_id: str
    model: str
    status: str
    label: str
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    user_label: bool = False

    @property
    def heading(self) -> str:
        """The column heading on two lines: the label (or model name), then the run id."""
        name = self.label.replace(self.run_id, "").strip() or self.label
        return f"{name}\n{self.run_id}"


def short_model_name(model: str | None) -> str:
    """A compact model name: the factory of ``py:file.py:factory``, the last parts of a path."""
    if not model:
        return "default-model"
    if model.startswith("py:"):
        return model.rsplit(":", 1)[-1]
    kind, sep, rest = model.partition(":")
    target = rest if sep and kind in ("local", "hf") else model
    if target.startswith(("/", ".", "~")):  # a checkpoint directory: its last two parts
        return "/".join([p for p in target.replace("\\", "/").split("/") if p not in ("", ".", "~")][-2:]) or target
    return target


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Load a run directory; ``label`` replaces the default ``<model> <run id>`` column label."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory (expected a run directory such as results/<run_id>)")
    store = RunStore(root)
    status = store.read_status()
    config = _read_config(store)
    names = set(status.get("tasks") or {}) | set(store.task_names()) | _scored_tasks(root)
    if not names and not status and not config:
        raise ConfigError(f"{root} is not a taskgrove run directory (no run.json, config.yaml or task files)")
    tasks = {name: _load_task(store, name, (status.get("tasks") or {}).get(name) or {}) for name in sorted(names)}
    model = status.get("model") or config.get("model") or next((t for t in _task_models(store, tasks)), None)
    run_id = str(status.get("run_id") or root.name)
    default_label = f"{short_model_name(model)} {run_id}"
    return Run(
        root=root,
        run_id=run_id,
        model=model or "default-model",
        status=str(status.get("status") or "unknown"),
        label=label or default_label,
        tasks=tasks,
        user_label=label is not None,
    )


def load_runs(specs: list[tuple[str | Path, str | None]]) -> list[Run]:
    """Load several runs from ``(path, label or None)`` pairs; labels are made unique."""
    runs = [load_run(path, label) for path, label in specs]
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.label, 0)
        seen[run.label] = count + 1
        if count:
            run.label = f"{run.label} #{count + 1}"
    return runs


def _read_config(store: RunStore) -> dict[str, Any]:
    try:
        return store.read_config()
    except ConfigError:
        return {}


def _scored_tasks(root: Path) -> set[str]:
    return {str(p.parent.relative_to(root)).replace("\\", "/") for p in root.rglob("metrics.json")}


def _task_models(store: RunStore, tasks: dict[str, TaskResult]) -> list[str]:
    found = []
    for name in tasks:
        metrics = store.task(name).metrics() or {}
        if metrics.get("model"):
            found.append(str(metrics["model"]))
    return found


def _load_task(store: RunStore, name: str, info: dict[str, Any]) -> TaskResult:
    task_store = store.task(name)
    try:
        stored = task_store.metrics()
    except ValueError as exc:  # orjson's decode error
        raise ConfigError(f"{task_store.metrics_path}: not valid JSON ({exc})") from None
    metrics: dict[str, Score] = {}
    primary = None
    n = int(info.get("samples") or 0)
    n_failed = int(info.get("failed_samples") or 0)
    primary_range = None
    failed_policy = "exclude"
    if stored:
        primary = str(stored.get("primary_metric") or "reward")
        legacy = not isinstance(stored.get("ranges"), dict)
        for key, entry in (stored.get("metrics") or {}).items():
            score = Score.from_entry(entry)
            if score is not None:
                metrics[key] = _percent_to_unit(score) if legacy and key in LEGACY_PERCENT else score
        n = int(stored.get("n") or 0)
        n_failed = int(stored.get("n_failed") or 0)
        primary_range = _range_of(primary, stored.get("ranges") if not legacy else None)
        failed_policy = str(stored.get("failed_samples") or "exclude")
    status = str(info.get("status") or ("completed" if stored else "unscored"))
    score = metrics.get(primary) if primary else None
    return TaskResult(
        name=name,
        status=status,
        primary_metric=primary,
        score=score,
        n=score.n if score is not None and score.n is not None else n,
        n_failed=n_failed,
        metrics=metrics,
        error=info.get("error"),
        directory=task_store.directory,
        primary_range=primary_range,
        failed_samples=failed_policy,
    )


def _percent_to_unit(score: Score) -> Score:
    scaled = [None if v is None else v / 100.0 for v in (score.ci_low, score.ci_high)]
    return Score(score.value / 100.0, scaled[0], scaled[1], score.n)


def _range_of(metric: str, ranges: Any) -> tuple[float, float] | None:
    """The stored range of ``metric``, else (older files) the range the metric registry declares."""
    if isinstance(ranges, dict):
        found = ranges.get(metric)
        if isinstance(found, list) and len(found) == 2 and all(_number(v) for v in found):
            return (float(found[0]), float(found[1]))
        return None
    from taskgrove.metrics.registry import metric_range

    return metric_range(metric)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
