"""The report's matrix: rows are tasks then groups, columns are runs; every cell a score or a status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskgrove.report.collect import Run, Score, TaskResult
from taskgrove.report.groups import GroupScore, run_groups
from taskgrove.report.scores import SampleScores, read_sample_scores

GROUP_METHOD = (
    "Groups: 'mean' is the unweighted mean of the member tasks' primary metrics, 'weighted' weighs "
    "each task by its number of scored samples. Group intervals come from a stratified bootstrap over "
    "the tasks' stored per-sample values (not from combining task intervals); a group with a member "
    "whose primary metric is not a per-sample mean is shown without an interval."
)


@dataclass(frozen=True)
class Cell:
    """One run's entry in a row: a score, or a status saying why there is none."""

    score: Score | None
    status: str
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        data.update(self.score.to_json() if self.score else {"value": None, "ci_low": None, "ci_high": None, "n": None})
        data["note"] = self.note
        return data


@dataclass(frozen=True)
class Row:
    """A task (``statistic`` = its primary metric) or a group (``mean`` or ``weighted``)."""

    kind: str
    name: str
    statistic: str
    cells: tuple[Cell, ...]

    @property
    def key(self) -> str:
        return self.name if self.kind == "task" else f"{self.name} ({self.statistic})"


@dataclass
class Leaderboard:
    """Scores of every task and group of ``runs``."""

    runs: list[Run]
    tasks: list[str]
    groups: list[str]
    rows: list[Row]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": r.label, "run_id": r.run_id, "model": r.model, "status": r.status, "path": str(r.root)}
                for r in self.runs
            ],
            "rows": [
                {
                    "kind": row.kind,
                    "name": row.name,
                    "statistic": row.statistic,
                    "cells": [
                        {"run_id": run.run_id, "label": run.label, **cell.to_json()}
                        for run, cell in zip(self.runs, row.cells, strict=False)
                    ],
                }
                for row in self.rows
            ],
            "notes": [GROUP_METHOD],
        }


def build_leaderboard(
    runs: list[Run],
    *,
    sample_scores: Callable[[TaskResult], SampleScores] = read_sample_scores,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Leaderboard:
    """Score every task and group of ``runs`` (groups recomputed from per-sample values)."""
    tasks = sorted({name for run in runs for name in run.tasks})
    per_run = [run_groups(run, tasks, sample_scores=sample_scores, n_resamples=n_resamples, seed=seed) for run in runs]
    groups = list(per_run[0]) if per_run else []
    rows = [Row("task", name, _metric_of(runs, name), tuple(_task_cell(run, name) for run in runs)) for name in tasks]
    for group in groups:
        for statistic in ("mean", "weighted"):
            rows.append(
                Row("group", group, statistic, tuple(_group_cell(scores[group], statistic) for scores in per_run))
            )
    return Leaderboard(runs, tasks, groups, rows)


def _metric_of(runs: list[Run], name: str) -> str:
    metrics = {run.tasks[name].primary_metric for run in runs if name in run.tasks and run.tasks[name].primary_metric}
    return " / ".join(sorted(m for m in metrics if m)) or "-"


def _task_cell(run: Run, name: str) -> Cell:
    task = run.tasks.get(name)
    if task is None:
        return Cell(None, "missing", "not in this run")
    if task.score is None:
        if task.status != "completed":
            return Cell(None, task.status, task.error)
        missing = (
            f"metrics.json has no '{task.primary_metric}'"
            if task.primary_metric
            else "no metrics.json (inference only?)"
        )
        return Cell(None, "unscored", missing)
    note = f"{task.n_failed} sample(s) failed and are not scored" if task.n_failed else None
    return Cell(task.score, "ok", note)


def _group_cell(group: GroupScore, statistic: str) -> Cell:
    score = group.mean if statistic == "mean" else group.weighted
    if score is None:
        return Cell(None, "missing", group.note or "no scored tasks")
    return Cell(score, "ok" if group.complete else "partial", group.note)
