"""Numeric answer matching with relative and absolute tolerance."""

from __future__ import annotations

import math
from numbers import Real

Number = Real | str | None


def to_float(value: Number) -> float | None:
    """``value`` as a finite float, or ``None`` (``None``, unparsable strings, nan, inf, bools).

    Strings go through :func:`float` after removing thousands separators, so ``"1,234.5"`` works;
    richer text ("$3.5 million") belongs to :mod:`taskgrove.tasks.parsers`.
    """
    if value is None or isinstance(value, bool):
        return None
    text = value.strip().replace(",", "") if isinstance(value, str) else value
    try:
        out = float(text)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def numeric_match(
    prediction: Number,
    reference: Number,
    *,
    rel_tol: float = 1e-4,
    abs_tol: float = 1e-8,
    percent_equivalent: bool = False,
) -> bool:
    """Whether ``|prediction - reference| <= max(rel_tol * max(|p|, |r|), abs_tol)``.

    With ``percent_equivalent`` the prediction also matches when it equals the reference times
    100 or divided by 100 (12 vs 0.12), a common ambiguity in financial QA. An unparsable or
    missing value never matches.

    The tolerance applies to the scaled candidates too: with ``rel_tol=0.01`` any prediction
    within 1% of ``100 * reference`` matches, so which number is compared matters. "Revenue grew
    20% in 2019." once matched a gold of 20 because the parser took the last number, 2019 (within
    1% of 2000); :mod:`taskgrove.tasks.parse_numbers` now takes the final answer and skips years.
    """
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError("tolerances must be non-negative")
    p, r = to_float(prediction), to_float(reference)
    if p is None or r is None:
        return False
    candidates = (r, r * 100.0, r / 100.0) if percent_equivalent else (r,)
    return any(math.isclose(p, c, rel_tol=rel_tol, abs_tol=abs_tol) for c in candidates)
