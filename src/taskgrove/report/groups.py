"""Group scores up the task tree.

Every inner node of the task paths is a group (``finance`` and ``finance/classification`` for
``finance/classification/fomc``); when the tasks do not all share one top-level node the whole
set is a group too, named :data:`ALL`. For each run a group has two scores over its member tasks
that have a score in that run:

* **mean** — the unweighted mean of the tasks' primary metrics;
* **weighted** — the mean weighted by each task's number of scored samples.

**One scale.** Only primary metrics known to lie in [0, 1] are averaged (every registry metric
but MCC, BLEU/chrF included since they are stored divided by 100; a reward only when its task
declares its range). A member whose primary metric has another range (MCC) is left out of the
group's scores; one whose metrics.json declares no range (older runs, tasks that declare no
reward range) is averaged only when its value lies in [0, 1], and the note says it was assumed.
The note names every member left out and, when members differ, the metric each contributed.

**Intervals.** Combining the tasks' own bootstrap intervals is not valid, so a group's interval
is recomputed: a stratified bootstrap (each task's stored per-sample values resampled within the
task, 1,000 resamples) of both statistics. This is valid only when every member's primary metric
is the mean of its per-sample values, which :mod:`taskgrove.report.scores` checks against
``metrics.json``. When any member's primary metric is a corpus statistic (macro F1, BLEU...) or
its samples are missing, the group is reported **without an interval** and the note says why.
A group whose run lacks some of its tasks (failed or not run) is scored over the tasks it has,
and the note says how many, since such values are not comparable across runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from taskgrove.report.collect import Run, Score, TaskResult
from taskgrove.report.scores import SampleScores, read_sample_scores
from taskgrove.report.stats import stratified_bootstrap

ALL = "(all)"


@dataclass(frozen=True)
class Member:
    """A task's contribution to a group: its score, size and (if valid) per-sample values."""

    name: str
    value: float
    n: int
    metric: str
    values: Sequence[float] | None = None
    reason: str | None = None
    unit_scale: bool | None = True
    """Whether the metric's values lie in [0, 1] (``None``: not declared)."""


@dataclass(frozen=True)
class GroupScore:
    """A group's mean and size-weighted mean of its member tasks in one run."""

    group: str
    members: tuple[str, ...]
    expected: tuple[str, ...]
    mean: Score | None
    weighted: Score | None
    note: str | None = None

    @property
    def complete(self) -> bool:
        return len(self.members) == len(self.expected)


def group_names(task_names: Iterable[str]) -> list[str]:
    """Every inner node of the task paths (parents before children), plus :data:`ALL` when needed."""
    names = sorted(set(task_names))
    groups = sorted({"/".join(name.split("/")[:depth]) for name in names for depth in range(1, name.count("/") + 1)})
    tops = {name.split("/")[0] for name in names}
    if len(names) > 1 and (len(tops) > 1 or any("/" not in name for name in names)):
        groups.append(ALL)
    return groups


def members_of(group: str, task_names: Iterable[str]) -> list[str]:
    """The tasks under ``group`` (all of them for :data:`ALL`)."""
    if group == ALL:
        return sorted(task_names)
    prefix = group + "/"
    return sorted(name for name in task_names if name.startswith(prefix))


def distinct_groups(task_names: Iterable[str], *, min_members: int = 1) -> list[str]:
    """The tree's groups of ``task_names`` with at least ``min_members`` tasks; of groups with
    the same members only the deepest is kept (parents come first, so the child wins)."""
    tasks = list(task_names)
    by_members: dict[tuple[str, ...], str] = {}
    for group in group_names(tasks):
        members = tuple(members_of(group, tasks))
        if len(members) >= min_members:
            by_members[members] = group
    kept = set(by_members.values())
    return [group for group in group_names(tasks) if group in kept]


def score_group(
    group: str,
    members: Sequence[Member],
    expected: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> GroupScore:
    """Mean and weighted mean of ``members``; bootstrap intervals when every member allows one."""
    notes = []
    assumed = [m for m in members if m.unit_scale is None and 0.0 <= m.value <= 1.0]
    off_scale = [m for m in members if m.unit_scale is False or (m.unit_scale is None and m not in assumed)]
    members = [m for m in members if m not in off_scale]
    if len(members) < len(expected):
        notes.append(f"scored over {len(members)} of {len(expected)} tasks")
    if off_scale:
        notes.append(
            "left out (primary metric not on the [0, 1] scale): "
            + ", ".join(f"{m.name} ({m.metric})" for m in off_scale)
        )
    if assumed:
        notes.append("scale not declared, assumed [0, 1]: " + ", ".join(f"{m.name} ({m.metric})" for m in assumed))
    if not members:
        return GroupScore(group, (), tuple(expected), None, None, "; ".join(notes) or None)
    if len({m.metric for m in members}) > 1:
        notes.append("primary metrics used: " + ", ".join(f"{m.name.rsplit('/', 1)[-1]}={m.metric}" for m in members))
    total = sum(m.n for m in members)
    mean_value = sum(m.value for m in members) / len(members)
    weighted_value = sum(m.value * m.n for m in members) / total if total else mean_value
    blocked = [m.reason or f"{m.name} has no per-sample values" for m in members if m.values is None]
    if blocked:
        notes.append("no interval: " + "; ".join(blocked))
        mean = Score(mean_value, n=total)
        weighted = Score(weighted_value, n=total)
    else:
        interval = stratified_bootstrap([m.values for m in members if m.values is not None], n_resamples, seed)
        mean = Score(mean_value, *interval.mean, n=total)
        weighted = Score(weighted_value, *interval.weighted, n=total)
    return GroupScore(group, tuple(m.name for m in members), tuple(expected), mean, weighted, "; ".join(notes) or None)


def member_of(task: TaskResult, scores: SampleScores | None) -> Member | None:
    """A task as a group member (None when it has no score in its run)."""
    if task.score is None:
        return None
    metric = task.primary_metric or "reward"
    unit = None if task.primary_range is None else task.primary_range == (0.0, 1.0)
    if scores is not None and scores.is_primary_mean:
        values = list(scores.values.values())
        return Member(task.name, task.score.value, len(values), metric, values, unit_scale=unit)
    reason = scores.reason if scores is not None else f"{task.name} has no per-sample values"
    return Member(task.name, task.score.value, task.n, metric, None, reason, unit_scale=unit)


def run_groups(
    run: Run,
    task_names: Sequence[str],
    *,
    sample_scores: Callable[[TaskResult], SampleScores] = read_sample_scores,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, GroupScore]:
    """The score of every group of ``task_names`` (all tasks of the report) in ``run``."""
    members: dict[str, Member] = {}
    for name in task_names:
        task = run.tasks.get(name)
        if task is None or task.score is None:
            continue
        member = member_of(task, sample_scores(task))
        if member is not None:
            members[name] = member
    result = {}
    for group in group_names(task_names):
        expected = members_of(group, task_names)
        present = [members[name] for name in expected if name in members]
        result[group] = score_group(group, present, expected, n_resamples=n_resamples, seed=seed)
    return result
