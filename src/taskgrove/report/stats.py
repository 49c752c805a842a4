"""Statistics for reports: resampled means, stratified and paired bootstrap, exact McNemar.

Everything is deterministic for a given ``seed``. numpy is imported inside the functions.

* :func:`stratified_bootstrap` — the interval of a group score (mean of task means, or the
  size-weighted mean) by resampling each member task's per-sample values *within the task*
  (task sizes stay fixed, as they were in the runs).
* :func:`paired_bootstrap` — the difference of means of two runs on the same items, resampling
  items (pairs), with a percentile interval and a two-sided p-value from the bootstrap
  distribution shifted to the null (difference 0).
* :func:`stratified_paired_bootstrap` — the same for a group of tasks: the size-weighted (pooled)
  mean difference, resampling pairs within each task (task sizes stay fixed).
* :func:`benjamini_hochberg` — BH step-up adjusted p-values (q-values) across many tests.
* :func:`mcnemar` — exact two-sided McNemar test and its mid-p variant from the discordant
  pair counts, in exact integer arithmetic (``math.comb``-style recurrence), no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskgrove.metrics.bootstrap import resampled_means

if TYPE_CHECKING:
    import numpy as np


def percentile_interval(stats: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap statistics."""
    import numpy as np

    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class GroupInterval:
    """Bootstrap intervals of a group's mean of task means and of its size-weighted mean."""

    mean: tuple[float, float]
    weighted: tuple[float, float]


def stratified_bootstrap(
    tasks: Sequence[Sequence[float]],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> GroupInterval:
    """Intervals of the mean and of the size-weighted mean of per-task means.

    Each task's values are resampled with replacement within the task (a stratified bootstrap);
    the weighted mean weighs each task by its number of values, i.e. it is the pooled mean.
    """
    import numpy as np

    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in tasks]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("every task needs at least one value")
    rng = np.random.default_rng(seed)
    matrix = np.empty((n_resamples, len(arrays)))
    for column, values in enumerate(arrays):
        if values.min() == values.max():
            matrix[:, column] = values[0]
        else:
            matrix[:, column] = resampled_means(values, n_resamples, rng)
    sizes = np.array([a.size for a in arrays], dtype=np.float64)
    macro = matrix.mean(axis=1)
    pooled = matrix @ (sizes / sizes.sum())
    return GroupInterval(percentile_interval(macro, confidence), percentile_interval(pooled, confidence))


@dataclass(frozen=True)
class PairedResult:
    """Paired bootstrap of ``mean(b) - mean(a)`` over matched items."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedResult:
    """Difference of means ``mean(b) - mean(a)`` of paired values, its percentile interval and p-value.

    The p-value tests "no difference" with the bootstrap distribution shifted to the null:
    ``p = (1 + #{|d* - d| >= |d|}) / (1 + n_resamples)`` where ``d`` is the observed difference
    and ``d*`` the resampled ones. When every pair has the same difference the interval is that
    value and the p-value is 1 if it is 0, else ``1 / (1 + n_resamples)``.
    """
    import numpy as np

    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    if xa.size != xb.size:
        raise ValueError(f"paired values must have equal lengths, got {xa.size} and {xb.size}")
    if xa.size == 0:
        raise ValueError("no paired values")
    diffs = xb - xa
    observed = float(diffs.mean())
    if diffs.min() == diffs.max():
        low = high = observed
        p_value = 1.0 if observed == 0 else 1.0 / (1 + n_resamples)
    else:
        rng = np.random.default_rng(seed)
        stats = resampled_means(diffs, n_resamples, rng)
        low, high = percentile_interval(stats, confidence)
        # a tiny tolerance so that float noise in |d* - d| never decides a tie
        extreme = int(np.count_nonzero(np.abs(stats - observed) >= abs(observed) - 1e-12))
        p_value = min(1.0, (1 + extreme) / (1 + n_resamples))
    return PairedResult(
        n=int(xa.size),
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        diff=observed,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        n_resamples=n_resamples,
    )


def stratified_paired_bootstrap(
    tasks: Sequence[tuple[Sequence[float], Sequence[float]]],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedResult:
    """Pooled difference ``mean(b) - mean(a)`` over the pairs of several tasks, resampled within each task.

    Each task is a pair of equal-length sequences (its matched items in A and B). Every item weighs
    the same, so a task weighs by its number of pairs (the report's size-weighted group score). The
    pairs of each task are resampled with replacement within the task, the interval is the percentile
    interval of the pooled resampled difference and the p-value is that of :func:`paired_bootstrap`
    (with one task the result is identical to :func:`paired_bootstrap`).
    """
    import numpy as np

    if not tasks:
        raise ValueError("no tasks")
    diffs = []
    for a, b in tasks:
        xa = np.asarray(a, dtype=np.float64).ravel()
        xb = np.asarray(b, dtype=np.float64).ravel()
        if xa.size != xb.size:
            raise ValueError(f"paired values must have equal lengths, got {xa.size} and {xb.size}")
        if xa.size == 0:
            raise ValueError("every task needs at least one pair")
        diffs.append((xa, xb, xb - xa))
    if len(tasks) == 1:
        return paired_bootstrap(tasks[0][0], tasks[0][1], n_resamples=n_resamples, seed=seed, confidence=confidence)
    all_a = np.concatenate([d[0] for d in diffs])
    all_b = np.concatenate([d[1] for d in diffs])
    all_d = all_b - all_a
    observed = float(all_d.mean())
    if all_d.min() == all_d.max():
        low = high = observed
        p_value = 1.0 if observed == 0 else 1.0 / (1 + n_resamples)
    else:
        rng = np.random.default_rng(seed)
        stats = np.zeros(n_resamples)
        for _, _, d in diffs:
            weight = d.size / all_d.size
            stats += weight * (d[0] if d.min() == d.max() else resampled_means(d, n_resamples, rng))
        low, high = percentile_interval(stats, confidence)
        extreme = int(np.count_nonzero(np.abs(stats - observed) >= abs(observed) - 1e-12))
        p_value = min(1.0, (1 + extreme) / (1 + n_resamples))
    return PairedResult(
        n=int(all_d.size),
        mean_a=float(all_a.mean()),
        mean_b=float(all_b.mean()),
        diff=observed,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        n_resamples=n_resamples,
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given.

    With the ``m`` p-values sorted ascending, ``q_(i) = min_{j >= i} min(1, m * p_(j) / j)``;
    rejecting every test with ``q <= alpha`` controls the false discovery rate at ``alpha``
    (independent or positively dependent tests).
    """
    m = len(p_values)
    if any(not (0.0 <= p <= 1.0) for p in p_values):
        raise ValueError("p-values must lie in [0, 1]")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, m * p_values[index] / rank)
        adjusted[index] = min(1.0, running)
    return adjusted


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired 0/1 outcomes: ``b`` = right in A only, ``c`` = right in B only."""

    b: int
    c: int
    p_exact: float
    p_mid: float


def mcnemar(b: int, c: int) -> McNemarResult:
    """Exact two-sided McNemar test (binomial, p = 1/2, on the b + c discordant pairs) and mid-p.

    ``p_exact = min(1, 2 * P(X <= min(b, c)))`` and ``p_mid = min(1, 2 * P(X <= min(b, c)) - P(X = min(b, c)))``
    with ``X ~ Binomial(b + c, 1/2)`` (both are 1 when b == c). Computed with exact
    integers, so it is right for any count.
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be non-negative")
    n, k = b + c, min(b, c)
    if n == 0:
        return McNemarResult(b, c, 1.0, 1.0)
    term = 1  # C(n, 0)
    cumulative = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)  # C(n, i + 1), exact
        cumulative += term
    total = 1 << n
    tail = cumulative / total  # int / int is correctly rounded in Python
    point = term / total
    return McNemarResult(b, c, min(1.0, 2 * tail), min(1.0, 2 * tail - point))


def is_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1 (accuracy-like scores)."""
    return all(v in {0, 1} for v in values)


def finite(value: object) -> bool:
    """True for an int or float that is neither nan nor infinite (bools count as 0/1)."""
    return isinstance(value, (int, float)) and math.isfinite(value)
