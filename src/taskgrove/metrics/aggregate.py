"""Default task-level scoring: means of per-sample rewards and metrics with bootstrap intervals."""

from __future__ import annotations

from typing import Any

_NUMBERS = (int, float, bool)


def metric_value(value: float, low: float, high: float, n: int) -> dict[str, float]:
    """The stored form of one task-level metric."""
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def mean_metrics(records: list[dict[str, Any]], *, seed: int = 0) -> dict[str, dict[str, float]]:
    """Mean reward and mean of every numeric per-sample metric over ``records``, each with a 95% CI."""
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
        low, high = mean_interval(values, seed=seed)
        result[key] = metric_value(sum(values) / len(values), low, high, len(values))
    return result
