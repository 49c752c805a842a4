"""``taskgrove compare RUN_A RUN_B``: paired per-task differences with significance.

For every task in both runs, samples are matched by id (the intersection of the ids scored in
both runs; errored samples are left out, as they are of ``metrics.json``) and compared on the
per-sample score behind the primary metric. When the primary metric is not a per-sample mean in
either run (a corpus statistic such as macro F1), the per-sample reward is compared instead and
the note says so. Reported per task:

* the difference ``mean(B) - mean(A)`` over the matched samples, its 95% paired-bootstrap interval
  and bootstrap p-value (10,000 resamples of the pairs);
* when every matched score is 0 or 1: McNemar's exact test and its mid-p variant on the
  discordant pairs (``b`` = right in A only, ``c`` = right in B only).

``significant`` uses McNemar's exact p for 0/1 scores and the bootstrap p otherwise, at 0.05,
without correction for the number of tasks. Tasks present in only one run, failed tasks and id
mismatches are reported, not hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from taskgrove.report.collect import Run, TaskResult
from taskgrove.report.scores import SampleScores, read_sample_scores
from taskgrove.report.stats import McNemarResult, PairedResult, is_binary, mcnemar, paired_bootstrap
from taskgrove.report.tables import Grid, grid_markdown, grid_text

ALPHA = 0.05


@dataclass(frozen=True)
class TaskComparison:
    """One task compared across two runs; ``status`` is ``compared`` or why it is not."""

    task: str
    status: str
    field: str | None = None
    n_a: int = 0
    n_b: int = 0
    only_a: int = 0
    only_b: int = 0
    errors_a: int = 0
    errors_b: int = 0
    paired: PairedResult | None = None
    mcnemar: McNemarResult | None = None
    note: str | None = None

    @property
    def n_paired(self) -> int:
        return self.paired.n if self.paired else 0

    @property
    def p_value(self) -> float | None:
        """The p-value that decides ``significant``: McNemar exact for 0/1 scores, else bootstrap."""
        if self.mcnemar is not None:
            return self.mcnemar.p_exact
        return self.paired.p_value if self.paired else None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task": self.task,
            "status": self.status,
            "field": self.field,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "n_paired": self.n_paired,
            "only_in_a": self.only_a,
            "only_in_b": self.only_b,
            "errors_a": self.errors_a,
            "errors_b": self.errors_b,
            "note": self.note,
        }
        if self.paired:
            p = self.paired
            data["paired_bootstrap"] = {
                "mean_a": p.mean_a,
                "mean_b": p.mean_b,
                "diff": p.diff,
                "ci_low": p.ci_low,
                "ci_high": p.ci_high,
                "p_value": p.p_value,
                "n_resamples": p.n_resamples,
            }
        if self.mcnemar:
            m = self.mcnemar
            data["mcnemar"] = {
                "b_right_in_a_only": m.b,
                "c_right_in_b_only": m.c,
                "p_exact": m.p_exact,
                "p_mid": m.p_mid,
            }
        data["significant"] = self.significant
        return data


@dataclass
class Comparison:
    """Every task of two runs, compared."""

    run_a: Run
    run_b: Run
    tasks: list[TaskComparison]

    def to_json(self) -> dict[str, Any]:
        def describe(run: Run) -> dict[str, Any]:
            return {"label": run.label, "run_id": run.run_id, "model": run.model, "path": str(run.root)}

        return {
            "a": describe(self.run_a),
            "b": describe(self.run_b),
            "difference": "B - A",
            "alpha": ALPHA,
            "tasks": [t.to_json() for t in self.tasks],
        }


def compare_values(
    a: dict[str, float], b: dict[str, float], *, n_resamples: int = 10000, seed: int = 0
) -> tuple[PairedResult | None, McNemarResult | None, list[str]]:
    """Paired bootstrap (and McNemar for 0/1 scores) over the ids in both ``a`` and ``b``."""
    ids = sorted(a.keys() & b.keys())
    if not ids:
        return None, None, ids
    xa = [a[i] for i in ids]
    xb = [b[i] for i in ids]
    paired = paired_bootstrap(xa, xb, n_resamples=n_resamples, seed=seed)
    test = None
    if is_binary(xa) and is_binary(xb):
        test = mcnemar(
            sum(1 for x, y in zip(xa, xb, strict=False) if x == 1 and y == 0),
            sum(1 for x, y in zip(xa, xb, strict=False) if x == 0 and y == 1),
        )
    return paired, test, ids


def compare_task(
    name: str,
    task_a: TaskResult | None,
    task_b: TaskResult | None,
    *,
    sample_scores: Callable[[TaskResult, str | None], SampleScores] = read_sample_scores,
    n_resamples: int = 10000,
    seed: int = 0,
) -> TaskComparison:
    """Compare one task; tasks missing or failed in a run come back with a status saying so."""
    if task_a is None or task_b is None:
        return TaskComparison(name, "only in A" if task_b is None else "only in B")
    for side, task in (("A", task_a), ("B", task_b)):
        if task.score is None:
            return TaskComparison(name, f"{task.status} in {side}", note=task.error)
    primary_a, primary_b = task_a.primary_metric or "reward", task_b.primary_metric or "reward"
    notes = []
    field = primary_a
    scores_a = sample_scores(task_a, field)
    scores_b = sample_scores(task_b, field) if primary_a == primary_b else None
    if scores_b is None or not (scores_a.is_primary_mean and scores_b.is_primary_mean):
        if scores_b is None:
            why = f"primary metrics differ ({primary_a} in A, {primary_b} in B)"
        else:
            sides = " and ".join(side for side, s in (("A", scores_a), ("B", scores_b)) if not s.is_primary_mean)
            why = f"'{field}' is not a per-sample mean in {sides}"
        notes.append(f"{why}; compared per-sample reward instead")
        field = "reward"
        scores_a, scores_b = sample_scores(task_a, field), sample_scores(task_b, field)
    paired, test, ids = compare_values(scores_a.values, scores_b.values, n_resamples=n_resamples, seed=seed)
    only_a, only_b = len(scores_a.values) - len(ids), len(scores_b.values) - len(ids)
    if only_a or only_b:
        notes.append(f"ids differ: {len(scores_a.values)} scored in A, {len(scores_b.values)} in B, {len(ids)} matched")
    if scores_a.n_errors or scores_b.n_errors:
        how = {
            side: "as wrong" if t.failed_samples == "wrong" else "left out"
            for side, t in (("A", task_a), ("B", task_b))
        }
        notes.append(f"errored samples: {scores_a.n_errors} in A ({how['A']}), {scores_b.n_errors} in B ({how['B']})")
    return TaskComparison(
        task=name,
        status="compared" if paired else "no matching samples",
        field=field,
        n_a=len(scores_a.values),
        n_b=len(scores_b.values),
        only_a=only_a,
        only_b=only_b,
        errors_a=scores_a.n_errors,
        errors_b=scores_b.n_errors,
        paired=paired,
        mcnemar=test,
        note="; ".join(notes) or None,
    )


def compare_runs(run_a: Run, run_b: Run, *, n_resamples: int = 10000, seed: int = 0) -> Comparison:
    """Compare every task of either run (B minus A)."""
    names = sorted(set(run_a.tasks) | set(run_b.tasks))
    return Comparison(
        run_a,
        run_b,
        [
            compare_task(name, run_a.tasks.get(name), run_b.tasks.get(name), n_resamples=n_resamples, seed=seed)
            for name in names
        ],
    )


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def comparison_grid(comparison: Comparison) -> Grid:
    """The comparison as a grid: one row per task."""
    header = [
        "task",
        "score",
        "n A/B/paired",
        "A",
        "B",
        "B - A [95% CI]",
        "p boot",
        "McNemar b/c",
        "p exact",
        "p mid",
        "sig",
    ]
    rows = []
    notes: list[str] = []
    for t in comparison.tasks:
        note_mark = ""
        if t.note:
            notes.append(f"[{len(notes) + 1}] {t.task}: {t.note}")
            note_mark = f" [{len(notes)}]"
        if t.paired is None:
            rows.append(
                [t.task + note_mark, t.field or "-", f"{t.n_a}/{t.n_b}/0", "-", "-", t.status, "-", "-", "-", "-", ""]
            )
            continue
        p, m = t.paired, t.mcnemar
        rows.append(
            [
                t.task + note_mark,
                t.field or "-",
                f"{t.n_a}/{t.n_b}/{p.n}",
                f"{p.mean_a:.3f}",
                f"{p.mean_b:.3f}",
                f"{p.diff:+.3f} [{p.ci_low:+.3f}, {p.ci_high:+.3f}]",
                _p(p.p_value),
                f"{m.b}/{m.c}" if m else "-",
                _p(m.p_exact) if m else "-",
                _p(m.p_mid) if m else "-",
                "*" if t.significant else "",
            ]
        )
    notes.append(
        "B - A over samples matched by id. p boot: paired bootstrap (10,000 resamples unless set); McNemar on 0/1 scores "
        "(b = right in A only, c = right in B only). sig: p < 0.05 (McNemar exact for 0/1 scores, else bootstrap), "
        "not corrected for multiple tasks."
    )
    title = f"compare  A = {comparison.run_a.label}  vs  B = {comparison.run_b.label}"
    return Grid(title, header, rows, notes)


def render_comparison(comparison: Comparison, fmt: str, *, width: int | None = None, color: bool = False) -> str:
    """The comparison as a table, markdown or json."""
    if fmt == "table":
        return grid_text(comparison_grid(comparison), width=width, color=color)
    if fmt == "markdown":
        return grid_markdown(comparison_grid(comparison))
    if fmt == "json":
        return orjson.dumps(comparison.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected table, markdown or json")
