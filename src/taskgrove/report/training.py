"""Base vs single-task vs multi-task comparisons of trained models, read from ``comparison.json``.

A training output directory may hold ``comparison.json`` (``taskgrove train-eval`` writes it) in
this format; fields marked optional may be left out::

    {
      "title": "TreeMark similar tasks, LoRA r=8",          # optional heading
      "metric": "accuracy",                                  # optional (else from the scores)
      "tasks": ["treemark/similar/sst2", "treemark/similar/mnli", "treemark/similar/qqp"],
      "models": [
        {
          "label": "base",                                   # unique; the row name
          "kind": "base",                                    # "base" | "single" | "multi"
          "scores": {
            "treemark/similar/sst2": {"value": 0.51, "ci_low": 0.47, "ci_high": 0.55,
                                      "metric": "accuracy", "n": 872},   # ci_*, metric, n optional
            "treemark/similar/mnli": null,                   # null: evaluation failed
            ...
          },
          "trained_on": [],                                  # optional: tasks the model was trained on
          "config": null,                                    # optional: "FullFT" | "LoRA_<r>"
          "run_dir": "eval-3fa2c1d0e9"                       # optional: its evaluation run directory
        },
        {"label": "single_sst2_LoRA_8", "kind": "single", "trained_on": ["treemark/similar/sst2"], "scores": {...}},
        {"label": "multi_LoRA_8", "kind": "multi", "trained_on": [...], "scores": {...}}
      ],
      "settings": {...}                                      # optional, shown as given
    }

Labels follow ``base``, ``single_<task>_<cfg>`` and ``<type>_<cfg>``; ``kind`` is what the report
relies on (when absent it is inferred from the label: ``base``, ``single_*``, else ``multi``).
A task missing from ``scores`` was not evaluated; ``null`` (or a null/NaN value) means its
evaluation failed. Cells of tasks in ``trained_on`` are outlined in the heatmap. ``run_dir``
(relative to the file's folder, or absolute) adds that run's leaderboard and samples to the report.
Other fields are ignored.

Without a trainer's file, :func:`comparison_from_runs` builds the same comparison from run
directories the user labels on the command line (``--label base=results/x``), using each task's
primary metric.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from taskgrove.errors import ConfigError
from taskgrove.report.collect import Run, Score

KINDS = ("base", "single", "multi", "merged")
FILE_NAME = "comparison.json"


@dataclass(frozen=True)
class TrainedModel:
    """One row of the heatmap: a model's scores per task."""

    label: str
    kind: str
    scores: dict[str, Score]
    run_dir: Path | None = None
    failed: frozenset[str] = frozenset()
    trained_on: frozenset[str] = frozenset()
    config: str | None = None
    vs_base: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per task, the paired difference from the base model (``diff``, ``ci_low``, ``ci_high``, ...)."""


@dataclass
class TrainingComparison:
    """Scores of base, single-task and multi-task models on a list of tasks."""

    tasks: list[str]
    models: list[TrainedModel]
    title: str = "Training comparison"
    metric: str | None = None
    source: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> TrainedModel | None:
        return next((m for m in self.models if m.kind == "base"), None)

    def delta(self, model: TrainedModel, task: str) -> float | None:
        """``model``'s score on ``task`` minus the base model's (None without both)."""
        base = self.base
        if base is None or task not in base.scores or task not in model.scores:
            return None
        return model.scores[task].value - base.scores[task].value

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "metric": self.metric,
            "tasks": self.tasks,
            "models": [
                {"label": m.label, "kind": m.kind, "scores": {t: s.to_json() for t, s in m.scores.items()}}
                for m in self.models
            ],
        }


def infer_kind(label: str) -> str:
    """``base`` for ``base``, ``single`` for ``single_*``, ``merged`` for ``merged_*``, otherwise ``multi``."""
    lowered = label.lower()
    if lowered == "base" or lowered.startswith("base_"):
        return "base"
    if lowered.startswith("merged_"):
        return "merged"
    return "single" if lowered.startswith("single") else "multi"


def find_comparison_file(path: str | Path) -> Path | None:
    """``path`` itself if it is a JSON file, or the ``comparison.json`` inside a folder."""
    path = Path(path)
    if path.is_file():
        return path
    candidate = path / FILE_NAME
    return candidate if candidate.is_file() else None


def load_comparison(path: str | Path) -> TrainingComparison:
    """Read and check a ``comparison.json`` (or the one inside a training output folder)."""
    file = find_comparison_file(path)
    if file is None:
        raise ConfigError(f"{path}: no {FILE_NAME} found")
    try:
        data = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    return parse_comparison(data, source=file)


def parse_comparison(data: Any, *, source: Path | None = None) -> TrainingComparison:
    """Validate the comparison format (see the module docstring); errors name the bad entry."""
    where = str(source or "comparison")
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ConfigError(f"{where}: expected an object with a 'models' list")
    models = []
    labels: set[str] = set()
    metrics: set[str] = set()
    for position, entry in enumerate(data["models"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
            raise ConfigError(f"{where}: models[{position}] needs a string 'label'")
        label = entry["label"]
        if label in labels:
            raise ConfigError(f"{where}: models[{position}]: duplicate label {label!r}")
        labels.add(label)
        kind = entry.get("kind") or infer_kind(label)
        if kind not in KINDS:
            raise ConfigError(f"{where}: models[{position}] ({label}): kind {kind!r} is not one of {', '.join(KINDS)}")
        scores, failed = {}, set()
        for task, value in (entry.get("scores") or {}).items():
            if value is None or (isinstance(value, dict) and _missing(value.get("value"))):
                failed.add(task)
                continue
            score = Score.from_entry(value if isinstance(value, dict) else {"value": value})
            if score is None:
                raise ConfigError(
                    f"{where}: models[{position}] ({label}): score of {task!r} needs a numeric 'value' (or null)"
                )
            scores[task] = score
            if isinstance(value, dict) and isinstance(value.get("metric"), str):
                metrics.add(value["metric"])
        trained_on = entry.get("trained_on") or []
        if not isinstance(trained_on, list):
            raise ConfigError(f"{where}: models[{position}] ({label}): 'trained_on' must be a list of task names")
        run_dir = entry.get("run_dir")
        if run_dir is not None:
            run_dir = Path(
                os.path.normpath(run_dir if source is None or Path(run_dir).is_absolute() else source.parent / run_dir)
            )
        config = entry.get("config")
        vs_base = {
            str(task): delta
            for task, delta in (entry.get("vs_base") or {}).items()
            if isinstance(delta, dict) and isinstance(delta.get("diff"), (int, float))
        }
        models.append(
            TrainedModel(
                label,
                kind,
                scores,
                run_dir,
                frozenset(failed),
                frozenset(map(str, trained_on)),
                str(config) if config else None,
                vs_base,
            )
        )
    tasks = data.get("tasks")
    if tasks is None:
        tasks = sorted({t for m in models for t in (*m.scores, *m.failed)})
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise ConfigError(f"{where}: 'tasks' must be a list of task names")
    models.sort(key=lambda m: KINDS.index(m.kind))  # base, then single-task, then multi-task rows
    metric = data.get("metric") or (" / ".join(sorted(metrics)) or None)
    return TrainingComparison(list(tasks), models, str(data.get("title") or "Training comparison"), metric, source)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def comparison_from_runs(runs: list[Run]) -> TrainingComparison:
    """A comparison of user-labelled runs: each run's primary-metric score per task."""
    tasks = sorted({name for run in runs for name in run.tasks})
    models = [
        TrainedModel(
            run.label,
            infer_kind(run.label),
            {n: t.score for n, t in run.tasks.items() if t.score is not None},
            run.root,
            frozenset(n for n, t in run.tasks.items() if t.score is None),
        )
        for run in runs
    ]
    models.sort(key=lambda m: KINDS.index(m.kind))
    metrics = sorted({t.primary_metric for run in runs for t in run.tasks.values() if t.primary_metric})
    return TrainingComparison(tasks, models, "Labelled runs", " / ".join(metrics) or None)


def delta_cell(delta: dict[str, Any] | None, mark: str = " *") -> str:
    """``+0.350 [+0.25, +0.45] *`` (``mark`` when p < 0.05), or ``-`` when there is nothing to compare."""
    if not delta or not isinstance(delta.get("diff"), (int, float)) or math.isnan(delta["diff"]):
        return "-"
    low, high = delta.get("ci_low"), delta.get("ci_high")
    interval = f" [{low:+.2f}, {high:+.2f}]" if isinstance(low, (int, float)) and isinstance(high, (int, float)) else ""
    return f"{delta['diff']:+.3f}{interval}{mark if delta.get('significant') else ''}"
