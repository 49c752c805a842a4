"""Entity-level precision/recall/F1.

Main form: each sample is a list of ``(text, type)`` pairs; a predicted entity is correct when an
unmatched gold entity of the same sample has the same normalised text and type (multiset
semantics: an entity listed twice in the gold must be predicted twice to be found twice). Counts
are summed over the corpus (micro average).

An unparsable answer (``None``) is wrong: its gold entities are false negatives and the answer
itself counts as one false positive, so a sample with empty gold and an unreadable reply still
lowers precision (``[]`` is the answer "no entities", which is right when the gold is empty).
With ``numeric=True`` entity texts that read as numbers are compared as numbers ("100.0"
equals "100", "1,000" equals "1000"), as FLaME compares FNXL numerals.

Secondary form: :func:`seqeval_prf` scores BIO/IOB tag sequences with ``seqeval``.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Entity = tuple[str, str]

_STRIP = string.punctuation + string.whitespace + "\u201c\u201d\u2018\u2019"


def normalize_entity_text(text: str) -> str:
    """Casefold, collapse whitespace and strip punctuation/quotes from both ends."""
    return " ".join(str(text).casefold().split()).strip(_STRIP)


def numeral_text(text: str) -> str:
    """A numeral in one canonical form ("100.0", "100" and "1e2" -> "100"; "1,000.50" -> "1000.5");
    text that is not a number is returned unchanged."""
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        return text
    if value != value or value in (float("inf"), float("-inf")):
        return text
    return repr(int(value)) if value.is_integer() else repr(value)


def normalize_entity(entity: Sequence[str], *, numeric: bool = False) -> Entity:
    """Normalise a ``(text, type)`` pair (type: casefolded, whitespace-collapsed; with
    ``numeric``, a text that reads as a number in its canonical form)."""
    if len(entity) != 2:
        raise ValueError(f"an entity is a (text, type) pair, got {entity!r}")
    text, kind = entity
    norm_text = normalize_entity_text(text)
    if numeric:
        norm_text = numeral_text(norm_text)
    return (norm_text, " ".join(str(kind).casefold().split()))


@dataclass(frozen=True)
class EntityScores:
    """Micro-averaged entity scores and the counts they come from."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    n_predicted: int
    n_gold: int


def entity_counts(
    predicted: Iterable[Sequence[str]] | None, gold: Iterable[Sequence[str]] | None, *, numeric: bool = False
) -> tuple[int, int, int]:
    """``(true positives, number predicted, number gold)`` for one sample.

    ``None`` (an unparsable answer) is one wrong prediction: ``(0, 1, number gold)``.
    """
    ref = Counter(normalize_entity(e, numeric=numeric) for e in (gold or ()))
    if predicted is None:
        return 0, 1, sum(ref.values())
    pred = Counter(normalize_entity(e, numeric=numeric) for e in predicted)
    tp = sum((pred & ref).values())
    return tp, sum(pred.values()), sum(ref.values())


def scores_from_counts(tp: int, n_predicted: int, n_gold: int) -> EntityScores:
    """P/R/F1 from counts. With nothing predicted and nothing gold all three are 1.0; otherwise a
    zero denominator gives 0.0."""
    if n_predicted == 0 and n_gold == 0:
        return EntityScores(1.0, 1.0, 1.0, 0, 0, 0)
    p = tp / n_predicted if n_predicted else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return EntityScores(p, r, f, tp, n_predicted, n_gold)


def entity_prf(
    predictions: Sequence[Iterable[Sequence[str]] | None],
    references: Sequence[Iterable[Sequence[str]] | None],
    *,
    numeric: bool = False,
) -> EntityScores:
    """Corpus (micro) entity precision/recall/F1 over per-sample entity lists (``None``: an
    unparsable answer, see :func:`entity_counts`)."""
    if len(predictions) != len(references):
        raise ValueError(f"predictions and references differ in length: {len(predictions)} != {len(references)}")
    tp = n_pred = n_gold = 0
    for pred, gold in zip(predictions, references, strict=False):
        a, b, c = entity_counts(pred, gold, numeric=numeric)
        tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
    return scores_from_counts(tp, n_pred, n_gold)


def seqeval_prf(
    predicted_tags: Sequence[Sequence[str]],
    gold_tags: Sequence[Sequence[str]],
    *,
    scheme: str | None = None,
) -> EntityScores:
    """Span-level micro P/R/F1 over BIO tag sequences via ``seqeval``.

    ``scheme`` (e.g. ``"IOB2"``) switches seqeval to strict mode with that scheme.
    """
    if len(predicted_tags) != len(gold_tags):
        raise ValueError("predicted_tags and gold_tags differ in length")
    pred_lists = [list(t) for t in predicted_tags]
    gold_lists = [list(t) for t in gold_tags]
    if any(len(p) != len(g) for p, g in zip(pred_lists, gold_lists, strict=False)):
        raise ValueError("a predicted tag sequence differs in length from its gold sequence")
    if scheme is None:
        from seqeval.metrics.sequence_labeling import get_entities

        pred_spans = [set(get_entities(p)) for p in pred_lists]
        gold_spans = [set(get_entities(g)) for g in gold_lists]
    else:
        from seqeval import scheme as schemes

        scheme_cls = getattr(schemes, scheme)

        def spans(seqs: list[list[str]]) -> list[set[tuple]]:
            return [{e.to_tuple() for e in sent} for sent in schemes.Entities(seqs, scheme_cls).entities]

        pred_spans, gold_spans = spans(pred_lists), spans(gold_lists)
    tp = sum(len(p & g) for p, g in zip(pred_spans, gold_spans, strict=False))
    return scores_from_counts(tp, sum(map(len, pred_spans)), sum(map(len, gold_spans)))
