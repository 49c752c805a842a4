"""The number parser: the final answer of a reply as a number, by rules you can state.

``which="final"`` (the default) reads the reply's final answer, not any number in the text:

1. **Where.** The content of the last ``\\boxed{...}``; else the text after the last
   ``answer is``/``Answer:``/``Final answer:`` marker (to the end of its line); else the last
   line that holds a number. If that text has ``=``, only what follows the last ``=`` counts
   ("12.5 - 10 = 2.5" gives 2.5).
2. **Which number there.** Years (a bare 1900-2099 integer: no sign, separator, decimals,
   percent, currency or scale) are skipped when another number is present ("Revenue grew 20%
   in 2019." gives 20). After a marker or in a box the first number is the answer ("The answer
   is 5.2, half of 10.4" gives 5.2); on a last line, the last ("So the total is 10 + 2 = 12").

``which="last"``/``"first"`` take the last/first number anywhere in the text instead.

Number forms: thousands separators ("1,234.5"), signs and the Unicode minus, currency symbols
and codes ("$3.5", "USD 3.5"), exponents ("1e-3"). **Accounting parentheses** are negative:
"(1,234)" is -1234. **Percentages**: "12%" / "12 percent" is 12 with ``percent="number"``
(default), 0.12 with ``percent="fraction"``. **Scale words** ("thousand", "million", "billion",
"trillion") and suffixes ("k", "m"/"mm"/"mn", "b"/"bn", "t"/"tn") multiply with
``scale_words=True``; with ``scale_words=False`` they are ignored, for datasets whose gold is in
the units of the source table ("$10 million" gives 10). A task sets the option its gold uses.
European decimal commas ("1.234,5") are not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Which = Literal["final", "last", "first"]
Percent = Literal["number", "fraction"]

_SCALES = {
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "k": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "bn": 1e9,
    "b": 1e9,
    "t": 1e12,
    "tn": 1e12,
}
_NUMBER = re.compile(
    r"""
    (?P<open>\(\s*)?
    (?<![\w.])
    (?P<sign>[-+\u2212](?=\s*[$\u20ac\u00a3\u00a5]?\s*[\d.]))?
    \s*(?P<cur>[$\u20ac\u00a3\u00a5]|USD|EUR|GBP)?\s*
    (?P<sign2>[-+\u2212])?
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?P<exp>[eE][-+]?\d+)?
    (?:
        \s*(?P<pct>%|percent\b|per\ cent\b)
      | \s+(?P<word>thousand|million|billion|trillion)\b
      | (?P<suffix>k|mm|mn|m|bn|b|tn|t)\b
    )?
    (?P<close>\s*\))?
    (?:\s+(?P<word2>thousand|million|billion|trillion)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_MARKER = re.compile(r"(?:\banswer\s+is|\banswer\s*[:=]|\bfinal\s+answer\s*(?:is|[:=])?)[ \t*:]*", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_YEAR = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True)
class _Found:
    value: float
    year: bool


def _numbers(text: str, percent: Percent, scale_words: bool) -> list[_Found]:
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group("num")
        value = float(raw.replace(",", "") + (m.group("exp") or ""))
        negative = (m.group("sign") or m.group("sign2") or "") in ("-", "\u2212")
        if negative:
            value = -value
        accounting = bool(m.group("open") and m.group("close"))
        if accounting:
            value = -abs(value)
        if m.group("pct") and percent == "fraction":
            value /= 100.0
        scale = m.group("word") or m.group("suffix") or m.group("word2")
        if scale and scale_words:
            value *= _SCALES[scale.lower()]
        year = (
            _YEAR.fullmatch(raw) is not None
            and not (negative or m.group("exp") or m.group("pct") or m.group("cur") or scale)
            and not (m.group("sign") or m.group("sign2"))
        )
        out.append(_Found(value, year))
    return out


def _final(text: str, percent: Percent, scale_words: bool) -> float | None:
    boxed = _BOXED.findall(text)
    markers = list(_MARKER.finditer(text))
    if boxed:
        span, first = str(boxed[-1]), True
    elif markers:
        span, first = text[markers[-1].end() :].split("\n", 1)[0], True
        if not _numbers(span, percent, scale_words):  # "The answer is:" then the number below
            rest = [ln for ln in text[markers[-1].end() :].splitlines() if _numbers(ln, percent, scale_words)]
            span = rest[0] if rest else ""
    else:
        lines = [ln for ln in text.splitlines() if _numbers(ln, percent, scale_words)]
        if not lines:
            return None
        span, first = lines[-1], False
    span = span.rsplit("=", 1)[-1]
    found = _numbers(span, percent, scale_words)
    if not found:
        return None
    kept = [f for f in found if not f.year] or found
    return (kept[0] if first else kept[-1]).value


def parse_number(
    text: str | None,
    *,
    which: Which = "final",
    percent: Percent = "number",
    scale_words: bool = True,
) -> float | None:
    """The reply's number by the module's rules (``which``: ``final``, ``last`` or ``first``), or ``None``."""
    if which not in ("final", "last", "first"):
        raise ValueError(f"which must be 'final', 'last' or 'first', got {which!r}")
    if percent not in ("number", "fraction"):
        raise ValueError(f"percent must be 'number' or 'fraction', got {percent!r}")
    if text is None:
        return None
    if which == "final":
        return _final(text, percent, scale_words)
    values = _numbers(text, percent, scale_words)
    if not values:
        return None
    return values[-1].value if which == "last" else values[0].value
