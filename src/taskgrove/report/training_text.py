"""Training comparisons in the terminal, and what a training output folder holds for a report.

A training output folder (``checkpoints/``: one folder per trained model, ``base-eval-*`` runs of
the base model, ``compare_*`` folders of ``train-compare``) is not a run: reported whole, it gives
its newest comparison (a ``compare_*`` one first) and, without any comparison, its evaluation runs
labelled by model name (``base``, the trained model's name).
"""

from __future__ import annotations

from pathlib import Path

from taskgrove.report.training import FILE_NAME, TrainingComparison, delta_cell

TRAIN_CONFIG = "train_config.json"


def is_training_output(path: Path) -> bool:
    """A folder holding trained models or base-model evaluations, and not itself a run."""
    if not path.is_dir() or (path / "run.json").exists():
        return False
    return any(
        child.is_dir() and ((child / TRAIN_CONFIG).is_file() or child.name.startswith("base-eval-"))
        for child in path.iterdir()
    )


def training_output(path: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the comparison file to show or None, evaluation runs with their model labels)."""
    files = [c / FILE_NAME for c in path.iterdir() if (c / FILE_NAME).is_file()]
    if files:
        newest = max(files, key=lambda f: (f.parent.name.startswith("compare_"), f.stat().st_mtime))
        return newest, []
    runs: list[tuple[Path, str]] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("base-eval-") and (child / "run.json").is_file():
            runs.append((child, "base"))
        elif (child / TRAIN_CONFIG).is_file():
            runs += [(e, child.name) for e in sorted(child.glob("eval-*")) if (e / "run.json").is_file()]
    return None, runs


def _names(tasks: list[str]) -> list[str]:
    """Task leaves when they are unique, else the full names."""
    leaves = [t.rsplit("/", 1)[-1] for t in tasks]
    return leaves if len(set(leaves)) == len(leaves) else list(tasks)


def comparison_text(comparison: TrainingComparison) -> str:
    """Models (rows) x tasks: value [95% CI] and the difference from the base; * = trained on it."""
    names = _names(comparison.tasks)
    header = ["model", "kind", *names]
    rows = []
    for model in comparison.models:
        cells = [model.label, model.kind + (f" {model.config}" if model.config else "")]
        for task in comparison.tasks:
            score = model.scores.get(task)
            if score is None:
                cells.append("failed" if task in model.failed else "-")
                continue
            text = f"{score.value:.3f}"
            if score.has_interval:
                text += f" [{score.ci_low:.2f}, {score.ci_high:.2f}]"
            delta = comparison.delta(model, task)
            paired = model.vs_base.get(task)
            if paired is not None:  # the paired difference on the same items, with its interval
                text += " " + delta_cell(paired, mark="!")
            elif delta is not None and model is not comparison.base:
                text += f" {delta:+.3f}"
            cells.append(text + (" *" if task in model.trained_on else ""))
        rows.append(cells)
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    metric = f" ({comparison.metric})" if comparison.metric else ""
    lines = [f"{comparison.title}{metric}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.append(
        "value [95% CI] and difference from base (paired on the same items, with its 95% interval where "
        "known; ! p < 0.05); * the model was trained on that task"
    )
    if names != comparison.tasks:
        lines.append("tasks: " + ", ".join(comparison.tasks))
    return "\n".join(lines) + "\n"
