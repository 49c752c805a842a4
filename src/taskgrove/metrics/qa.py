"""SQuAD v2 exact match and token F1, following the official evaluation script (v2.0).

Scores are fractions in [0, 1] (the official script prints percentages). A reference is one
answer string or a list of them; the sample score is the maximum over the gold answers. Gold
answers that normalise to nothing are dropped, and when none is left (``[]``, ``""``, ``None``)
the question is unanswerable: it scores 1 only if the prediction normalises to nothing too.
A ``None`` prediction is the empty answer.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

Reference = str | Sequence[str] | None

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


_DROP_PUNCT = str.maketrans("", "", string.punctuation)


@lru_cache(maxsize=65536)
def normalize_answer(text: str | None) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official order).

    Cached: EM and F1 normalise the same predictions and gold answers again and again.
    """
    text = (text or "").lower().translate(_DROP_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str | None) -> list[str]:
    return normalize_answer(text).split() if text else []


def gold_answers(reference: Reference) -> list[str]:
    """The answers that count: non-empty after normalisation, or ``[""]`` when unanswerable."""
    if reference is None:
        answers: list[str] = []
    elif isinstance(reference, str):
        answers = [reference]
    else:
        answers = list(reference)
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def _exact(gold: str, pred: str | None) -> float:
    return float(normalize_answer(gold) == normalize_answer(pred))


def _f1(gold: str, pred: str | None) -> float:
    gold_toks, pred_toks = _tokens(gold), _tokens(pred)
    if not gold_toks or not pred_toks or gold_toks == pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred_toks), same / len(gold_toks)
    return 2 * p * r / (p + r)


def squad_exact_match(prediction: str | None, reference: Reference) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    return max(_exact(g, prediction) for g in gold_answers(reference))


def squad_f1(prediction: str | None, reference: Reference) -> float:
    """Bag-of-tokens F1 against the best gold answer."""
    return max(_f1(g, prediction) for g in gold_answers(reference))


def is_answerable(reference: Reference) -> bool:
    """Whether the reference holds at least one non-empty answer."""
    return gold_answers(reference) != [""]


@dataclass(frozen=True)
class SquadScores:
    """Mean scores over a corpus, overall and split by answerability (``nan`` if a split is empty)."""

    exact: float
    f1: float
    has_ans_exact: float
    has_ans_f1: float
    no_ans_exact: float
    no_ans_f1: float
    total: int
    has_ans_total: int
    no_ans_total: int


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def squad_v2(predictions: Sequence[str | None], references: Sequence[Reference]) -> SquadScores:
    """Corpus SQuAD v2 scores (as the official script, with no no-answer threshold)."""
    if len(predictions) != len(references):
        raise ValueError(f"predictions and references differ in length: {len(predictions)} != {len(references)}")
    em = [squad_exact_match(p, r) for p, r in zip(predictions, references, strict=False)]
    f = [squad_f1(p, r) for p, r in zip(predictions, references, strict=False)]
    has = [is_answerable(r) for r in references]
    pick = lambda xs, want: [x for x, h in zip(xs, has, strict=False) if h == want]  # noqa: E731
    return SquadScores(
        exact=_mean(em),
        f1=_mean(f),
        has_ans_exact=_mean(pick(em, True)),
        has_ans_f1=_mean(pick(f, True)),
        no_ans_exact=_mean(pick(em, False)),
        no_ans_f1=_mean(pick(f, False)),
        total=len(em),
        has_ans_total=sum(has),
        no_ans_total=len(has) - sum(has),
    )
