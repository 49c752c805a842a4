"""Significance at every node of the task tree: "what really moved" between two runs.

Every leaf (task) and every group of the tree (:func:`taskgrove.report.groups.group_names`) is
tested for ``B - A`` with a paired bootstrap over items matched by sample id:

* a **leaf** is its task's matched pairs (the field :func:`taskgrove.report.compare.compare_task`
  compared: the primary metric, or the per-sample reward when the primary metric is a corpus
  statistic — the leaf's note says so);
* a **group** pools the matched items of its member tasks, each item weighing the same, so a task
  weighs by its number of matched items — the report's size-weighted group score, which is the
  only group score that is itself a mean over items (the mean of task means is not). Pairs are
  resampled within each task (:func:`taskgrove.report.stats.stratified_paired_bootstrap`).
  A member joins only when it was compared on its primary metric as a per-sample mean in both
  runs; members left out (corpus metric, missing or failed in a run, no matched ids) are named in
  the group's note.

The raw p-values of all tested nodes are adjusted together with Benjamini–Hochberg (nodes are
nested, so their tests are positively dependent, the case BH covers). ``verdict``: ``improved`` /
``regressed`` when ``q < 0.05`` (by the sign of the difference), else ``no evidence``; nodes with
nothing to test are ``not tested``. Every p-value here is the bootstrap one, for leaves too, so
that leaves and groups are tested alike (McNemar per task stays in the per-task table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskgrove.report.collect import TaskResult
from taskgrove.report.compare import ALPHA, Comparison, TaskComparison
from taskgrove.report.groups import ALL, group_names, members_of
from taskgrove.report.scores import SampleScores, read_sample_scores
from taskgrove.report.stats import PairedResult, benjamini_hochberg, stratified_paired_bootstrap
from taskgrove.report.tables import Grid

Pairs = tuple[list[float], list[float]]


@dataclass
class NodeResult:
    """One node of the tree compared across two runs."""

    node: str
    kind: str  # "leaf" or "group"
    depth: int
    members: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    paired: PairedResult | None = None
    q_value: float | None = None
    note: str | None = None

    @property
    def verdict(self) -> str:
        if self.paired is None or self.q_value is None:
            return "not tested"
        if self.q_value < ALPHA and self.paired.diff != 0:
            return "improved" if self.paired.diff > 0 else "regressed"
        return "no evidence"

    def to_json(self) -> dict[str, Any]:
        p = self.paired
        return {
            "node": self.node,
            "kind": self.kind,
            "depth": self.depth,
            "members": self.members,
            "left_out": self.left_out,
            "n_paired": p.n if p else 0,
            "mean_a": p.mean_a if p else None,
            "mean_b": p.mean_b if p else None,
            "diff": p.diff if p else None,
            "ci_low": p.ci_low if p else None,
            "ci_high": p.ci_high if p else None,
            "p_value": p.p_value if p else None,
            "q_value": self.q_value,
            "verdict": self.verdict,
            "note": self.note,
        }


def _tree_order(nodes: list[str]) -> list[str]:
    """Depth-first order: :data:`ALL` first, each group before its children."""
    return sorted(nodes, key=lambda n: () if n == ALL else tuple(n.split("/")))


def _pairs(
    t: TaskComparison,
    task_a: TaskResult,
    task_b: TaskResult,
    sample_scores: Callable[[TaskResult, str | None], SampleScores],
) -> tuple[Pairs, bool]:
    """The matched values of the field ``t`` compared, and whether it is the primary metric in both runs."""
    scores_a, scores_b = sample_scores(task_a, t.field), sample_scores(task_b, t.field)
    ids = sorted(scores_a.values.keys() & scores_b.values.keys())
    pairs = ([scores_a.values[i] for i in ids], [scores_b.values[i] for i in ids])
    return pairs, scores_a.is_primary_mean and scores_b.is_primary_mean


def compare_nodes(
    comparison: Comparison,
    *,
    sample_scores: Callable[[TaskResult, str | None], SampleScores] = read_sample_scores,
    n_resamples: int = 10000,
    seed: int = 0,
) -> list[NodeResult]:
    """Every leaf and group of the two runs' tree, tested and BH-adjusted together, in tree order."""
    leaves: dict[str, Pairs] = {}
    poolable: dict[str, str | None] = {}  # task -> why it cannot join a group (None: it can)
    results: dict[str, NodeResult] = {}
    offset = 1 if ALL in group_names(t.task for t in comparison.tasks) else 0
    for t in comparison.tasks:
        node = NodeResult(t.task, "leaf", t.task.count("/") + offset, [t.task], note=t.note)
        results[t.task] = node
        if t.paired is None:
            poolable[t.task] = f"{t.task}: {t.status}"
            continue
        task_a, task_b = comparison.run_a.tasks[t.task], comparison.run_b.tasks[t.task]
        pairs, primary = _pairs(t, task_a, task_b, sample_scores)
        leaves[t.task] = pairs
        node.paired = stratified_paired_bootstrap([pairs], n_resamples=n_resamples, seed=seed)
        poolable[t.task] = None if primary else f"{t.task}: primary metric is not a per-sample mean"
    names = [t.task for t in comparison.tasks]
    by_task = {t.task: t for t in comparison.tasks}
    for group in group_names(names):
        members = members_of(group, names)
        joined = [m for m in members if poolable[m] is None]
        depth = 0 if group == ALL else group.count("/") + offset
        node = NodeResult(group, "group", depth, joined, [m for m in members if poolable[m] is not None])
        notes: list[str] = []
        fields = sorted({by_task[m].field or "-" for m in joined})
        if len(fields) > 1:
            notes.append(f"mixes metrics: {', '.join(fields)}")
        if node.left_out:
            left = "; ".join(str(poolable[m]) for m in node.left_out)
            notes.append(f"pooled over {len(joined)} of {len(members)} tasks; left out: {left}")
        node.note = "; ".join(notes) or None
        if joined:
            node.paired = stratified_paired_bootstrap([leaves[m] for m in joined], n_resamples=n_resamples, seed=seed)
        results[group] = node
    tested = [r for r in results.values() if r.paired is not None]
    for r, q in zip(tested, benjamini_hochberg([r.paired.p_value for r in tested if r.paired]), strict=True):
        r.q_value = q
    return [results[n] for n in _tree_order(list(results))]


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def nodes_grid(comparison: Comparison, nodes: list[NodeResult]) -> Grid:
    """The "what really moved" view: the tree with each node's difference, interval, p, q and verdict."""
    header = ["node", "tasks", "n paired", "A", "B", "B - A [95% CI]", "p", "q (BH)", "verdict"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for r in nodes:
        label = "  " * r.depth + (r.node if r.depth == 0 or r.node == ALL else r.node.rsplit("/", 1)[-1])
        if r.note:
            notes.append(f"[{len(notes) + 1}] {r.node}: {r.note}")
            label += f" [{len(notes)}]"
        tasks = str(len(r.members)) + (f"/{len(r.members) + len(r.left_out)}" if r.left_out else "")
        p = r.paired
        if p is None:
            rows.append([label, tasks, "0", "-", "-", "-", "-", "-", r.verdict])
            continue
        rows.append(
            [
                label,
                tasks,
                str(p.n),
                f"{p.mean_a:.3f}",
                f"{p.mean_b:.3f}",
                f"{p.diff:+.3f} [{p.ci_low:+.3f}, {p.ci_high:+.3f}]",
                _p(p.p_value),
                _p(r.q_value),
                r.verdict,
            ]
        )
    resamples = next((r.paired.n_resamples for r in nodes if r.paired), 0)
    notes.append(
        f"B - A over items matched by sample id; groups pool their tasks' items (each item weighs the same, "
        f"so tasks weigh by size). p: paired bootstrap ({resamples:,} resamples, within each task); "
        f"q: Benjamini-Hochberg across all {sum(1 for r in nodes if r.paired)} tested nodes; "
        f"improved/regressed when q < {ALPHA}."
    )
    title = f"what really moved  A = {comparison.run_a.label}  vs  B = {comparison.run_b.label}"
    return Grid(title, header, rows, notes)


def render_with_nodes(
    comparison: Comparison,
    nodes: list[NodeResult],
    fmt: str,
    *,
    tasks: bool = True,
    width: int | None = None,
    color: bool = False,
) -> str:
    """The node view, after the per-task comparison when ``tasks``, as table, markdown or json."""
    import orjson

    from taskgrove.report.compare import comparison_grid
    from taskgrove.report.tables import grid_markdown, grid_text

    if fmt == "json":
        data = comparison.to_json()
        if not tasks:
            del data["tasks"]
        data["nodes"] = [n.to_json() for n in nodes]
        data["node_test"] = {
            "statistic": "B - A, items matched by sample id; groups pool items (task weight = matched items)",
            "p_value": "paired bootstrap, resampling pairs within each task",
            "adjustment": "Benjamini-Hochberg across all tested nodes",
            "alpha": ALPHA,
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt not in ("table", "markdown"):
        raise ValueError(f"unknown format {fmt!r}; expected table, markdown or json")
    grids = ([comparison_grid(comparison)] if tasks else []) + [nodes_grid(comparison, nodes)]
    if fmt == "table":
        return "\n".join(grid_text(g, width=width, color=color) for g in grids)
    return "\n".join(grid_markdown(g) for g in grids)
