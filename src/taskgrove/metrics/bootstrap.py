"""Percentile bootstrap confidence intervals.

* :func:`mean_interval` — for per-sample metrics whose corpus value is a mean (accuracy, EM,
  ROUGE...). Vectorised with numpy and chunked: 20,000 values x 1,000 resamples peaks at about
  25 MB. Values with few distinct levels (0/1 scores and the like) are resampled exactly through
  multinomial counts of each level, which costs almost nothing.
* :func:`statistic_interval` — for corpus metrics that are not a mean (macro F1, MCC, BLEU,
  entity F1): resamples item indices and recomputes the statistic in Python each time, so its
  default is 200 resamples (each tail of a 95% interval then rests on about 5 resamples: good
  enough for a leaderboard, raise ``n_resamples`` for publication).

* :func:`indexed_interval` — for statistics that score resamples given as index arrays
  (classification metrics, encoded once).

**Clustered resampling.** When one item has several outputs (``num_samples`` > 1), the outputs
of an item are not independent draws: ``clusters`` (the number of outputs of each item, in
order) makes :func:`statistic_interval` and :func:`indexed_interval` resample *items* and take
all outputs of each drawn item, so the interval rests on the number of items, not outputs.

Resamples whose statistic is undefined (``nan``, e.g. MCC on a resample holding one true class)
are left out of the percentiles. All functions are deterministic for a given ``seed``, return
``(nan, nan)`` for empty input and ``(v, v)`` when every resample must give the same value (a
single item, or all values equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

# Elements per chunk of resampled indices: 2**21 int32 indices + the gathered float64 values
# is ~24 MB at the peak.
_CHUNK_ELEMENTS = 2**21
# Up to this many distinct values, resample the counts of each value (multinomial) instead.
_MAX_LEVELS = 64


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _percentiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    import numpy as np

    alpha = (1.0 - confidence) / 2.0
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return (math.nan, math.nan)
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` bootstrap means of ``values`` (a non-empty 1-d float array): exact
    multinomial draws over the distinct values when there are few (0/1 scores), else chunked
    index resampling within the memory bound."""
    import numpy as np

    n = values.size
    levels, counts = np.unique(values, return_counts=True)
    if levels.size <= _MAX_LEVELS:
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return (draws @ levels) / n
    means = np.empty(n_resamples)
    if n <= _CHUNK_ELEMENTS:
        rows = max(1, _CHUNK_ELEMENTS // n)
        for start in range(0, n_resamples, rows):
            stop = min(start + rows, n_resamples)
            idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
            means[start:stop] = values[idx].mean(axis=1)
            del idx
        return means
    for r in range(n_resamples):  # very large inputs: one resample at a time, in pieces
        total = 0.0
        for start in range(0, n, _CHUNK_ELEMENTS):
            size = min(_CHUNK_ELEMENTS, n - start)
            total += float(values[rng.integers(0, n, size=size)].sum())
        means[r] = total / n
    return means


def mean_interval(
    values: Sequence[float],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``(nan, nan)`` when empty or
    when any value is ``nan``)."""
    _check(n_resamples, confidence)
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or np.isnan(arr).any():
        return (math.nan, math.nan)
    if arr.min() == arr.max():
        return (float(arr[0]), float(arr[0]))
    rng = np.random.default_rng(seed)
    return _percentiles(resampled_means(arr, n_resamples, rng), confidence)


class Clusters:
    """Items made of consecutive outputs: ``sizes[i]`` outputs belong to item ``i``."""

    def __init__(self, sizes: Sequence[int]) -> None:
        import numpy as np

        self.sizes = np.asarray(sizes, dtype=np.int64)
        if self.sizes.ndim != 1 or (self.sizes < 1).any():
            raise ValueError("every item needs at least one output")
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.equal = bool(self.sizes.size) and bool((self.sizes == self.sizes[0]).all())

    @property
    def n_items(self) -> int:
        return int(self.sizes.size)

    @property
    def n_outputs(self) -> int:
        return int(self.sizes.sum())

    def outputs(self, items: Any) -> Any:
        """Output indices of the drawn ``items``: one row per row of a 2-D ``items`` when every
        item has as many outputs (a 2-D array), else a list of 1-D arrays."""
        import numpy as np

        items = np.atleast_2d(items)
        if self.equal:
            m = int(self.sizes[0])
            return (self.starts[items][..., None] + np.arange(m)).reshape(items.shape[0], -1)
        return [
            np.concatenate([np.arange(self.starts[i], self.starts[i] + self.sizes[i]) for i in row]) for row in items
        ]


def _clusters(n: int, clusters: Sequence[int] | None) -> Clusters | None:
    if clusters is None:
        return None
    grouped = Clusters(clusters)
    if grouped.n_outputs != n:
        raise ValueError(f"clusters cover {grouped.n_outputs} outputs but there are {n}")
    return None if grouped.n_items == n else grouped


def statistic_interval(
    items: Sequence[T],
    statistic: Callable[[list[T]], float],
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    clusters: Sequence[int] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resampled ``items`` (resampled by
    cluster when ``clusters`` gives the number of consecutive items of each cluster).

    Resamples whose statistic is ``nan`` are ignored; a single item (cluster) gives ``(v, v)``.
    """
    _check(n_resamples, confidence)
    import numpy as np

    items = list(items)
    n = len(items)
    if n == 0:
        return (math.nan, math.nan)
    grouped = _clusters(n, clusters)
    units = grouped.n_items if grouped is not None else n
    if units == 1:
        v = float(statistic(items))
        return (v, v)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, units, size=units)
        picked = idx if grouped is None else grouped.outputs(idx)[0]
        stats[r] = float(statistic([items[i] for i in picked]))
    return _percentiles(stats, confidence)


def resample_indices(n: int, n_resamples: int, seed: int = 0) -> Any:
    """The ``(n_resamples, n)`` index matrix :func:`indexed_interval` draws for ``seed`` (without
    clusters), in order: tests compare a statistic with its reference on exactly these resamples."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    return np.concatenate(
        [rng.integers(0, n, size=(min(start + rows, n_resamples) - start, n)) for start in range(0, n_resamples, rows)]
    )


def indexed_interval(
    n: int,
    score: Callable[[Any], Any],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    clusters: Sequence[int] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic that scores resamples given as index arrays
    (a 2-D array of indices, one resample per row, returning one value per row); resampled by
    cluster when ``clusters`` gives the number of consecutive items of each cluster.

    For statistics whose items were encoded once (see
    :func:`taskgrove.metrics.classification.confusion_statistic`): no per-resample list building.
    """
    _check(n_resamples, confidence)
    import numpy as np

    if n == 0:
        return (math.nan, math.nan)
    grouped = _clusters(n, clusters)
    units = grouped.n_items if grouped is not None else n
    if units == 1:
        v = float(score(np.arange(n, dtype=np.int64)))
        return (v, v)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)  # resamples scored together, within the memory bound
    stats = np.empty(n_resamples)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        drawn = rng.integers(0, units, size=(stop - start, units))
        if grouped is None:
            stats[start:stop] = score(drawn)
        elif grouped.equal:
            stats[start:stop] = score(grouped.outputs(drawn))
        else:
            stats[start:stop] = [float(score(row)) for row in grouped.outputs(drawn)]
    return _percentiles(stats, confidence)
