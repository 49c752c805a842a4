"""Paired differences of trained models against the base model, for ``comparison.json``.

Each evaluation is a normal run, so the difference on a task is the paired comparison that
``taskgrove compare`` makes (:func:`taskgrove.report.compare.compare_runs`): the same items in
both runs, a 95% paired-bootstrap interval of the mean difference, and McNemar's exact test for
0/1 scores. Tasks that failed in either run get no difference (``None``), never a zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def paired_deltas(base_run: Path, other_run: Path, tasks: list[str]) -> dict[str, dict[str, Any] | None]:
    """Per task, ``other - base`` with its paired 95% interval and p-value (``None`` if not comparable)."""
    from taskgrove.report.collect import load_run
    from taskgrove.report.compare import compare_runs

    comparison = compare_runs(load_run(base_run), load_run(other_run))
    by_task = {t.task: t for t in comparison.tasks}
    deltas: dict[str, dict[str, Any] | None] = {}
    for task in tasks:
        found = by_task.get(task)
        if found is None or found.paired is None:
            deltas[task] = None
            continue
        paired = found.paired
        deltas[task] = {
            "diff": paired.diff,
            "ci_low": paired.ci_low,
            "ci_high": paired.ci_high,
            "p_value": found.p_value,
            "significant": found.significant,
            "n_paired": paired.n,
            "field": found.field,
        }
    return deltas
