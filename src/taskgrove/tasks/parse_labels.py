"""The label parser: which one of a task's labels a free-text reply gives, by rules you can state.

``mention`` mode (the default) reads a reply in three steps and returns ``None`` (unparsable,
scored as wrong) whenever the reply does not commit to exactly one label:

1. **Final-answer marker.** When the reply has ``Answer:``/``answer is``/``Final answer:``/
   ``Label:``/``Category:``/``Classification:`` or ``\\boxed{...}``, the text after the last
   marker (to the end of its line; the box's content) decides alone: one label there is the
   answer, two or more different labels there are a hedge (``None``). A marker with no label
   after it is ignored.
2. **The whole reply.** Every mention of a label or alias is found (leftmost, longest first);
   negated mentions are dropped. One distinct label left is the answer; none is ``None``.
3. **Several labels.** Two or more distinct labels ("positive or negative", "positive/negative",
   a discussion of each) are resolved only by the answer line: the last line (``line="first"``:
   the first) that mentions a label, if it gives exactly one; otherwise ``None``.

A mention is **negated** when one of the three words before it, in the same clause (no
``,.;:!?`` or line break between), is a negator (not, no, never, neither, nor, without, non,
or a word ending in ``n't``; "no doubt"/"no question" do not count), or when it directly
follows "rather than", "instead of" or "other than". So "The sentiment is not positive, it is
negative." gives negative and "neither positive nor negative" gives nothing.

**Spelled variants** match: case is ignored (unless ``case_sensitive``), and within a label,
spaces, hyphens and underscores are interchangeable ("Refund not showing up" is
``refund_not_showing_up``); a label's trailing ``?`` is optional. **Numerals** match whole numbers
only: with labels ``0``/``1``/``2``, "-1", "1.5" and "10" give no label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Literal

LabelMode = Literal["exact", "insensitive", "mention"]
AnswerLine = Literal["last", "first"]

_EDGE = " \t\r\n\"'`*_.,;:!?()[]{}<>\u201c\u201d\u2018\u2019"
_SEPARATOR = re.compile(r"[\s_\-]+")
_NEGATORS = frozenset({"not", "no", "never", "neither", "nor", "without", "non", "cannot"})
_NOT_NEGATING = frozenset({"doubt", "question", "doubts"})
_NEGATING_PAIRS = frozenset({("rather", "than"), ("instead", "of"), ("other", "than")})
_CLAUSE_END = re.compile(r"[,.;:!?\n]")
_WORD = re.compile(r"[\w']+")
_MARKER = re.compile(
    r"(?:\bfinal\s+answer|\banswer|\blabel|\bcategory|\bclassification)\s*(?:\bis\b|:|=)[ \t*]*",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def norm(text: str) -> str:
    """Casefold, collapse whitespace and strip quotes, markdown emphasis and punctuation at the ends."""
    return " ".join(text.casefold().split()).strip(_EDGE)


def _variant(text: str) -> str:
    """``norm`` with spaces, hyphens and underscores made equal and a trailing ``?`` dropped."""
    return _SEPARATOR.sub(" ", norm(text)).strip(" ?")


def label_table(labels: Sequence[str], aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Surface form -> canonical label (labels map to themselves)."""
    table = {label: label for label in labels}
    for alias, label in (aliases or {}).items():
        if label not in table.values():
            raise ValueError(f"alias {alias!r} maps to {label!r}, which is not one of the labels {list(labels)}")
        table[alias] = label
    return table


def parse_label(
    text: str | None,
    labels: Sequence[str],
    *,
    mode: LabelMode = "mention",
    aliases: Mapping[str, str] | None = None,
    case_sensitive: bool = False,
    line: AnswerLine = "last",
) -> str | None:
    """The canonical label the text gives, or ``None`` (see the module docstring for ``mention``).

    * ``exact``: the stripped text equals a label or alias.
    * ``insensitive``: equal after casefolding, collapsing whitespace, treating spaces, hyphens
      and underscores alike and stripping quotes, ``**bold**`` markers and punctuation at both ends.
    * ``mention``: free text read by the stated rules; ``line`` says which line is the answer
      line when several labels are mentioned (``first`` for prompts that ask for the label on
      the first line).

    ``aliases`` maps other surface forms to labels, e.g. ``{"pos": "positive"}``. Use
    ``case_sensitive=True`` for letter labels (``A``-``D``), which would otherwise match the
    article "a".
    """
    if text is None or not labels:
        return None
    table = label_table(labels, aliases)
    if mode == "exact":
        return table.get(text.strip())
    if mode == "insensitive":
        folded = {_variant(form): label for form, label in table.items()}
        return folded.get(_variant(text))
    if mode != "mention":
        raise ValueError(f"unknown label mode {mode!r}")
    if line not in ("last", "first"):
        raise ValueError(f"line must be 'last' or 'first', got {line!r}")
    pattern, found = _mention_pattern(tuple(table.items()), case_sensitive)
    if pattern is None:
        return None
    return _resolve(text, pattern, found, line)


def _resolve(text: str, pattern: re.Pattern[str], found: list[str], line: AnswerLine) -> str | None:
    span = _answer_span(text)
    if span is not None:
        given = _labels_in(span, pattern, found)
        if len(given) == 1:
            return given.pop()
        if len(given) > 1:
            return None  # a hedge in the final answer itself
    given = _labels_in(text, pattern, found)
    if len(given) <= 1:
        return given.pop() if given else None
    lines = [ln for ln in text.splitlines() if _labels_in(ln, pattern, found, keep_negated=True)]
    if line == "last":
        lines.reverse()
    if lines:
        chosen = _labels_in(lines[0], pattern, found)
        if len(chosen) == 1:
            return chosen.pop()
    return None


def _answer_span(text: str) -> str | None:
    """The text the last final-answer marker introduces (to the end of its line), or the last
    ``\\boxed{}`` content; ``None`` without a marker."""
    boxed = _BOXED.findall(text)
    if boxed:
        return str(boxed[-1])
    last = None
    for match in _MARKER.finditer(text):
        last = match
    if last is None:
        return None
    return text[last.end() :].split("\n", 1)[0]


def _labels_in(text: str, pattern: re.Pattern[str], found: list[str], *, keep_negated: bool = False) -> set[str]:
    """Distinct labels mentioned in ``text`` (negated mentions dropped unless ``keep_negated``)."""
    out = set()
    for match in pattern.finditer(text):
        if keep_negated or not _negated(text, match.start()):
            out.add(found[(match.lastindex or 1) - 1])
    return out


def _negated(text: str, start: int) -> bool:
    clause = _CLAUSE_END.split(text[:start])[-1]
    words = [w.casefold() for w in _WORD.findall(clause)]
    if tuple(words[-2:]) in _NEGATING_PAIRS:
        return True
    window = words[-3:]
    for index, word in enumerate(window):
        if word in _NEGATORS or word.endswith("n't"):
            following = window[index + 1] if index + 1 < len(window) else ""
            if word == "no" and following in _NOT_NEGATING:
                continue
            return True
    return False


def _form_regex(form: str) -> str:
    words = [w for w in _SEPARATOR.split(form.strip()) if w]
    if not words:
        return ""
    last = words[-1]
    optional_q = last.endswith("?") and len(last) > 1
    if optional_q:
        words[-1] = last[:-1]
    body = r"[\s_\-]+".join(map(re.escape, words)) + (r"\??" if optional_q else "")
    if words[0][:1].isdigit():  # a numeral label: whole numbers only ("-1", "1.5", "10" are not "1")
        return r"(?<![\w.\-+\u2212])" + body + r"(?!\w|[.,]\d)"
    return r"(?<!\w)" + body + r"(?!\w)"


@lru_cache(maxsize=256)
def _mention_pattern(
    table: tuple[tuple[str, str], ...], case_sensitive: bool
) -> tuple[re.Pattern[str] | None, list[str]]:
    """One alternation of every form, longest first, so that among mentions starting at the
    same place the longest wins ("not neutral" over "neutral" when both are labels)."""
    forms = sorted(((form, label) for form, label in table if form.split()), key=lambda item: -len(item[0]))
    branches, labels = [], []
    for form, label in forms:
        regex = _form_regex(form)
        if regex:
            branches.append("(" + regex + ")")
            labels.append(label)
    if not branches:
        return None, []
    pattern = re.compile("|".join(branches), 0 if case_sensitive else re.IGNORECASE)
    return pattern, labels
