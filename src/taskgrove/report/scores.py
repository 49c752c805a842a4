"""Per-sample scores of a task, and whether its primary metric is their mean.

Group intervals and paired comparisons resample samples, which is valid only when the task's
score is a mean of per-sample values (accuracy, exact match, mean reward, ROUGE averaged over
samples...). Corpus statistics (macro F1, MCC, BLEU) are not. Rather than trusting a metric's
name, :func:`read_sample_scores` recomputes the mean of the stored per-sample values of the
primary metric over the scored (error-free) samples and checks it against ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskgrove.report.collect import TaskResult
from taskgrove.report.stats import finite
from taskgrove.runs.store import read_records


@dataclass(frozen=True)
class SampleScores:
    """The per-sample values of ``field`` in one task's samples, keyed by sample id."""

    field: str
    values: dict[str, float]
    n_records: int
    n_errors: int
    is_primary_mean: bool
    reason: str | None = None

    def ordered(self, ids: list[str]) -> list[float]:
        return [self.values[i] for i in ids]


def sample_value(record: dict[str, Any], field: str) -> float | None:
    """A record's per-sample value of ``field`` (``reward`` or a per-sample metric), if numeric."""
    value = record.get("reward") if field == "reward" else (record.get("metrics") or {}).get(field)
    return float(value) if value is not None and finite(value) else None


def read_sample_scores(task: TaskResult, field: str | None = None) -> SampleScores:
    """Per-sample values of ``field`` (default: the task's primary metric) from its samples file.

    Errored samples count as 0 when the task's score counts failed samples as wrong (the
    default), and are left out when it excluded them (``failed_samples: exclude``, older runs);
    the last line of an id wins, as in the store.
    """
    field = field or task.primary_metric or "reward"
    values: dict[str, float] = {}
    errors: set[str] = set()
    if task.samples_path.exists():
        for record in read_records(task.samples_path):
            sample_id = str(record.get("id"))
            values.pop(sample_id, None)
            errors.discard(sample_id)
            if record.get("error"):
                errors.add(sample_id)
                if task.failed_samples == "wrong":
                    values[sample_id] = 0.0
                continue
            value = sample_value(record, field)
            if value is not None:
                values[sample_id] = value
    reason = _mismatch(task, field, values)
    return SampleScores(
        field=field,
        values=values,
        n_records=len(set(values) | errors),
        n_errors=len(errors),
        is_primary_mean=reason is None,
        reason=reason,
    )


def _mismatch(task: TaskResult, field: str, values: dict[str, float]) -> str | None:
    """Why ``values`` do not reproduce the task's primary score as their mean (None: they do)."""
    if task.score is None:
        return f"{task.name} has no stored score ({task.status})"
    if field != task.primary_metric:
        return f"{field} is not the primary metric of {task.name} ({task.primary_metric})"
    if not values:
        return f"{task.name}: samples carry no per-sample '{field}'"
    mean = sum(values.values()) / len(values)
    if abs(mean - task.score.value) > 1e-6 * max(1.0, abs(task.score.value)):
        return f"{task.name}: '{field}' is not the mean of its per-sample values (a corpus-level statistic)"
    if task.score.n is not None and task.score.n != len(values):
        return f"{task.name}: '{field}' rests on {task.score.n} samples but {len(values)} carry a value"
    return None
