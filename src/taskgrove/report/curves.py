"""Training curves: the in-loop evaluations of a training run (``eval_curve.json``, written by
``taskgrove train --eval-every N``), per task and per group of the tree, with 95% intervals.

Each point is a normal run folder. A task's value at a point is its primary metric with the
run's bootstrap interval; a group's is the group mean of :mod:`taskgrove.report.groups` (a
stratified bootstrap interval, or none when a member's metric is not a per-sample mean).

**Interference.** Step 0 is the base model. A task (or group) *regresses* at a step when the
base model's value lies above that step's whole 95% interval (``ci_high < base``); the text and
HTML reports mark those cells and list the series that end below the base this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from taskgrove.errors import ConfigError
from taskgrove.report.collect import Score, load_run
from taskgrove.report.groups import distinct_groups, run_groups

CURVE_FILE = "eval_curve.json"


@dataclass
class Curve:
    """The evaluations of one training run: a value per (series, step); a series is a task or a group."""

    run: str
    steps: list[int]
    labels: list[str]
    tasks: list[str]
    groups: list[str]
    values: dict[str, list[Score | None]] = field(default_factory=dict)
    source: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def series(self) -> list[str]:
        """Tasks first, then groups."""
        return [*self.tasks, *self.groups]

    def base(self, name: str) -> Score | None:
        """The base model's value of a series (step 0), if the curve starts there."""
        return self.values[name][0] if self.steps and self.steps[0] == 0 else None

    def regressed(self, name: str, index: int) -> bool:
        """Whether point ``index`` of series ``name`` lies wholly below the base value."""
        base, score = self.base(name), self.values[name][index]
        if index == 0 or base is None or score is None or score.ci_high is None:
            return False
        return score.ci_high < base.value

    def interference(self) -> list[str]:
        """Series whose last point regressed below the base model."""
        last = len(self.steps) - 1
        return [name for name in self.series if last > 0 and self.regressed(name, last)]


def find_curve_files(path: str | Path) -> list[Path]:
    """``path`` if it is a curve file, the curve in a training run dir, or those of its subfolders."""
    path = Path(path)
    if path.is_file():
        return [path] if path.name == CURVE_FILE else []
    if (path / CURVE_FILE).is_file():
        return [path / CURVE_FILE]
    return sorted(p / CURVE_FILE for p in path.iterdir() if (p / CURVE_FILE).is_file()) if path.is_dir() else []


def curves_of_comparison(file: Path) -> list[Path]:
    """The curve files of the trained models a ``comparison.json`` lists (their ``path``)."""
    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    found: list[Path] = []
    for model in data.get("models") or [] if isinstance(data, dict) else []:
        where = model.get("path") if isinstance(model, dict) and model.get("kind") != "base" else None
        if isinstance(where, str) and where:
            folder = Path(where) if Path(where).is_absolute() else file.parent / where
            if not folder.is_dir():  # paths written relative to the working directory of the trainer
                folder = Path(where)
            found += [f for f in find_curve_files(folder) if f.parent == folder]
    return list(dict.fromkeys(found))


def _point_dir(source: Path, entry: Any) -> Path | None:
    if not isinstance(entry, str) or not entry:
        return None
    where = Path(entry)
    return where if where.is_absolute() else source.parent / where


def load_curve(path: str | Path, *, n_resamples: int = 1000) -> Curve:
    """Read a curve file; task values come from the file, group values from the point's run folder."""
    file = Path(path)
    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: not a readable {CURVE_FILE} ({exc})") from None
    points = data.get("points") if isinstance(data, dict) else None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(points, list) or not isinstance(tasks, list):
        raise ConfigError(f"{file}: expected {{'tasks': [...], 'points': [...]}}")
    points = sorted(points, key=lambda p: int(p["step"]))
    groups = distinct_groups(tasks)
    curve = Curve(
        run=str(data.get("run") or file.parent.name),
        steps=[int(p["step"]) for p in points],
        labels=[str(p.get("label") or p["step"]) for p in points],
        tasks=list(tasks),
        groups=groups,
        source=file,
    )
    curve.values = {name: [] for name in curve.series}
    for point in points:
        scores = point.get("scores") or {}
        for task in tasks:
            curve.values[task].append(Score.from_entry(scores.get(task)))
        run_dir = _point_dir(file, point.get("run_dir"))
        found = {}
        if groups and run_dir is not None and run_dir.is_dir():
            found = run_groups(load_run(run_dir), tasks, n_resamples=n_resamples)
        elif groups:
            curve.notes.append(f"step {point['step']}: run folder {run_dir} missing, no group values")
        for group in groups:
            score = found.get(group)
            curve.values[group].append(score.mean if score is not None else None)
    return curve


def _cell(curve: Curve, name: str, index: int) -> str:
    score = curve.values[name][index]
    if score is None:
        return "-"
    text = f"{score.value:.3f}"
    if score.has_interval:
        text += f" [{score.ci_low:.2f}, {score.ci_high:.2f}]"
    return text + (" ↓" if curve.regressed(name, index) else "")


def curve_text(curve: Curve) -> str:
    """The curve as a plain-text table: one row per task and group, one column per step."""
    header = ["series", *(f"step {s}" + (" (base)" if s == 0 else "") for s in curve.steps)]
    rows = [
        [name + (" (group)" if name in curve.groups else ""), *(_cell(curve, name, i) for i in range(len(curve.steps)))]
        for name in curve.series
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [f"Evaluation during training: {curve.run}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.append("values: primary metric [95% CI]; ↓ the base model's value lies above the whole interval (regression)")
    regressed = curve.interference()
    if regressed:
        lines.append("interference (below base at the last step): " + ", ".join(regressed))
    lines += [f"note: {note}" for note in curve.notes]
    return "\n".join(lines) + "\n"
