"""Multi-task mixtures: how many examples of each task a training run sees, seeded and reproducible.

Strategies (``sizes`` are the tasks' example counts, each first capped at ``cap`` when given):

* ``concatenate``: every (capped) example once, all tasks shuffled together.
* ``proportional``: task i gets a share ``n_i / sum n``.
* ``temperature``: share ``n_i^(1/T) / sum n^(1/T)`` (T=1 is proportional, large T tends to equal).
* ``equal``: share ``1 / K``.
* ``transfer``: share ``n_i m_i / sum n m``, proportional down-weighted by evidence from a transfer
  matrix (``taskgrove transfer``): ``m_i`` from :func:`transfer_multipliers`.

Sampled strategies draw ``size`` examples in all (default: the capped total), split by the
largest-remainder method so the counts match the shares as closely as integers can. A task
asked for more examples than it has cycles through fresh seeded permutations of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from taskgrove.errors import ConfigError

T = TypeVar("T")
STRATEGIES = ("concatenate", "proportional", "temperature", "equal", "transfer")
#: the weight of a source whose adapter surely costs the other targets ``h`` on average is ``1 - HARM_SLOPE * h``...
HARM_SLOPE = 5.0
#: ... but never below this (no task leaves the mixture)
MIN_MULTIPLIER = 0.1


def transfer_multipliers(matrix: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    """Each task's multiplier ``m_i`` from a transfer matrix (the ``transfer.json`` data).

    ``h_i`` is the mean, over the *other* trained tasks ``t`` that are columns of the matrix, of
    ``max(0, -ci_high(i, t))``: the part of the drop that the 95% interval of ``adapter_i - base`` on
    ``t`` is sure of (0 when the interval reaches 0 or above). ``m_i = max(0.1, 1 - 5 h_i)``: a sure
    average drop of 0.1 (ten points of accuracy) halves a task's weight, 0.18 or more leaves a tenth.
    A task with no row in the matrix is an error (its adapter was never measured).
    """
    cells = matrix.get("cells") or {}
    missing = [t for t in tasks if t not in cells]
    if missing:
        raise ConfigError(f"--mixture transfer: the transfer matrix has no row for {', '.join(missing)}")
    multipliers = {}
    for task in tasks:
        row = cells[task]
        others = [row[t] for t in tasks if t != task and t in row and row[t].get("ci_high") is not None]
        harm = sum(max(0.0, -float(c["ci_high"])) for c in others) / len(others) if others else 0.0
        multipliers[task] = max(MIN_MULTIPLIER, 1.0 - HARM_SLOPE * harm)
    return multipliers


def mixture_weights(
    sizes: Mapping[str, int],
    strategy: str,
    *,
    temperature: float = 1.0,
    cap: int | None = None,
    multipliers: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each task's share of the mixture (summing to 1); ``multipliers`` are the ``transfer`` strategy's ``m_i``."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown mixture {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if temperature <= 0:
        raise ConfigError(f"mixture temperature must be > 0, got {temperature}")
    capped = {name: min(n, cap) if cap is not None else n for name, n in sizes.items()}
    empty = [name for name, n in capped.items() if n <= 0]
    if empty:
        raise ConfigError(f"no training examples for: {', '.join(empty)}")
    if strategy == "equal":
        raw = dict.fromkeys(capped, 1.0)
    elif strategy == "transfer":
        if multipliers is None or set(multipliers) != set(capped):
            raise ConfigError("the transfer mixture needs one multiplier per task (from a transfer matrix)")
        raw = {name: n * float(multipliers[name]) for name, n in capped.items()}
    elif strategy == "temperature":
        raw = {name: n ** (1.0 / temperature) for name, n in capped.items()}
    else:  # proportional and concatenate
        raw = {name: float(n) for name, n in capped.items()}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def allocate(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer counts summing to ``total`` closest to ``weights * total`` (largest remainder)."""
    exact = {name: w * total for name, w in weights.items()}
    counts = {name: math.floor(x) for name, x in exact.items()}
    short = total - sum(counts.values())
    order = sorted(exact, key=lambda name: (-(exact[name] - counts[name]), list(exact).index(name)))
    for name in order[:short]:
        counts[name] += 1
    return counts


def mix(
    examples: Mapping[str, Sequence[T]],
    strategy: str = "concatenate",
    *,
    temperature: float = 1.0,
    cap: int | None = None,
    size: int | None = None,
    seed: int = 0,
    multipliers: Mapping[str, float] | None = None,
) -> list[T]:
    """The mixed, shuffled training examples of several tasks (one task's examples pass through shuffled)."""
    rng = random.Random(seed)
    sizes = {name: len(items) for name, items in examples.items()}
    weights = mixture_weights(sizes, strategy, temperature=temperature, cap=cap, multipliers=multipliers)
    pools = {name: _shuffled(items, rng) for name, items in examples.items()}
    if strategy == "concatenate":
        counts = {name: min(n, cap) if cap is not None else n for name, n in sizes.items()}
    else:
        total = size if size is not None else sum(min(n, cap) if cap is not None else n for n in sizes.values())
        counts = allocate(weights, total)
    mixed: list[T] = []
    for name, count in counts.items():
        mixed.extend(_draw(pools[name], count, rng, capped=cap))
    rng.shuffle(mixed)
    return mixed


def mixture_counts(items: Sequence[T], task_of: Callable[[T], str]) -> dict[str, int]:
    """How many of ``items`` come from each task (``task_of(item)`` names it)."""
    counts: dict[str, int] = {}
    for item in items:
        name = task_of(item)
        counts[name] = counts.get(name, 0) + 1
    return counts


def _shuffled(items: Sequence[T], rng: random.Random) -> list[T]:
    pool = list(items)
    rng.shuffle(pool)
    return pool


def _draw(pool: list[T], count: int, rng: random.Random, *, capped: int | None) -> list[T]:
    """``count`` examples from ``pool`` (already shuffled); past its end, fresh permutations of it."""
    source = pool[:capped] if capped is not None else pool
    out = list(source[:count])
    while len(out) < count:
        again = list(source)
        rng.shuffle(again)
        out.extend(again[: count - len(out)])
    return out
