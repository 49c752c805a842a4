"""Default task-level scoring: means of per-sample rewards and metrics with bootstrap intervals,
and corpus metrics over stored (prediction, reference) pairs resampled by item.

Every value is ``{"value", "ci_low", "ci_high", "n"}`` where ``n`` counts *items* (scenarios):
an item sampled several times (``num_samples`` > 1) contributes the mean of its outputs to mean
metrics and all its outputs to corpus metrics, and its outputs are resampled together
(clustered bootstrap), so neither the interval nor ``n`` treats repeated outputs as new items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

_NUMBERS = (int, float, bool)
DEFAULT_RESAMPLES = 1000


def metric_value(value: float, low: float, high: float, n: int) -> dict[str, float]:
    """The stored form of one task-level metric."""
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def mean_metrics(
    records: list[dict[str, Any]], *, seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES
) -> dict[str, dict[str, float]]:
    """Mean reward and mean of every numeric per-sample metric over ``records`` (one value per
    record: the mean of its outputs), each with a 95% interval over ``n_resamples`` resamples."""
    from taskgrove.metrics.bootstrap import mean_interval

    columns: dict[str, list[float]] = {"reward": []}
    rewards = columns["reward"]
    for record in records:
        reward = record.get("reward")
        if isinstance(reward, _NUMBERS) and reward == reward:  # not None, not nan
            rewards.append(float(reward))
        for key, value in (record.get("metrics") or {}).items():
            if type(value) in _NUMBERS and value == value:  # numbers (bools count as 0/1), not nan
                column = columns.get(key)
                if column is None:
                    column = columns[key] = []
                column.append(value)
    result = {}
    for key, values in columns.items():
        if not values:
            continue
        low, high = mean_interval(values, n_resamples=n_resamples, seed=seed)
        result[key] = metric_value(sum(values) / len(values), low, high, len(values))
    return result


def stored_items(
    records: Sequence[dict[str, Any]], *, drop_unparsed: bool = False
) -> tuple[list[tuple[Any, Any]], list[int]]:
    """The ``(prediction, reference)`` pair of every stored output (without the unparsed ones when
    ``drop_unparsed``) and the number of outputs of each record that has any (the clusters of a
    clustered bootstrap)."""
    items: list[tuple[Any, Any]] = []
    clusters: list[int] = []
    for record in records:
        kept = 0
        for output in record.get("outputs") or ():
            prediction = (output.get("metadata") or {}).get("prediction")
            if prediction is None and drop_unparsed:
                continue
            items.append((prediction, record.get("reference")))
            kept += 1
        if kept:
            clusters.append(kept)
    return items, clusters


def corpus_metrics(
    records: Sequence[dict[str, Any]],
    metrics: Sequence[tuple[str, Any]],
    *,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    drop_unparsed: bool = False,
) -> dict[str, dict[str, float]]:
    """Each corpus ``(name, Metric)`` over every stored output's prediction (unparsed ones left
    out when ``drop_unparsed``), with an interval that resamples records (with all their
    outputs); ``n`` is the number of records scored."""
    items, clusters = stored_items(records, drop_unparsed=drop_unparsed)
    result: dict[str, dict[str, float]] = {}
    if not items:
        return result
    for name, metric in metrics:
        value = metric.compute(items)
        low, high = (
            metric.interval(items, n_resamples=n_resamples, seed=seed, clusters=clusters)
            if not math.isnan(value)
            else (math.nan, math.nan)
        )
        result[name] = metric_value(value, low, high, len(clusters))
    return result
