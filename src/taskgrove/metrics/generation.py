"""Text-generation metrics: ROUGE via ``rouge-score``, corpus BLEU and chrF via ``sacrebleu``.

Scales follow the libraries: ROUGE F-measures are in [0, 1], BLEU and chrF in [0, 100].
A reference is a string or a list of strings (several references for one prediction); a ``None``
prediction is the empty string. ROUGE uses rouge-score's default tokenizer (lowercase, ASCII
letters and digits only), so it is meant for English text; ``rougeLsum`` splits summaries into
sentences on newlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Reference = str | Sequence[str]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _refs(reference: Reference) -> list[str]:
    refs = [reference] if isinstance(reference, str) else list(reference)
    if not refs:
        raise ValueError("a reference list must hold at least one string")
    return refs


def _check_lengths(predictions: Sequence[object], references: Sequence[object]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"predictions and references differ in length: {len(predictions)} != {len(references)}")


def rouge_per_sample(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = True,
) -> list[dict[str, float]]:
    """ROUGE F-measure of each prediction (maximum over its references), one dict per sample."""
    _check_lengths(predictions, references)
    unknown = set(rouge_types) - set(ROUGE_TYPES)
    if unknown:
        raise ValueError(f"unknown ROUGE types {sorted(unknown)}; known: {ROUGE_TYPES}")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    out = []
    for prediction, ref in zip(predictions, references, strict=False):
        refs = _refs(ref)
        pred = prediction or ""
        scores = scorer.score(refs[0], pred) if len(refs) == 1 else scorer.score_multi(refs, pred)
        out.append({t: float(scores[t].fmeasure) for t in rouge_types})
    return out


def rouge(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = True,
) -> dict[str, float]:
    """Mean ROUGE F-measure per type over the corpus (``nan`` for empty input)."""
    per_sample = rouge_per_sample(predictions, references, rouge_types=rouge_types, use_stemmer=use_stemmer)
    n = len(per_sample)
    return {t: (sum(s[t] for s in per_sample) / n if n else float("nan")) for t in rouge_types}


def _ref_streams(references: Sequence[Reference]) -> list[list[str | None]]:
    """Transpose per-sample references into sacrebleu's reference streams (``None`` pads)."""
    per_sample = [_refs(r) for r in references]
    width = max((len(r) for r in per_sample), default=1)
    return [[r[i] if i < len(r) else None for r in per_sample] for i in range(width)]


def bleu(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    tokenize: str | None = None,
    lowercase: bool = False,
) -> float:
    """Corpus BLEU (0-100) with sacrebleu's defaults (13a tokenizer, exponential smoothing)."""
    _check_lengths(predictions, references)
    if not predictions:
        return float("nan")
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    streams: Any = _ref_streams(references)  # sacrebleu accepts None for a missing reference
    return float(metric.corpus_score([p or "" for p in predictions], streams).score)


def chrf(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    word_order: int = 0,
) -> float:
    """Corpus chrF (0-100); ``word_order=2`` gives chrF++."""
    _check_lengths(predictions, references)
    if not predictions:
        return float("nan")
    from sacrebleu.metrics import CHRF

    metric = CHRF(word_order=word_order)
    streams: Any = _ref_streams(references)  # sacrebleu accepts None for a missing reference
    return float(metric.corpus_score([p or "" for p in predictions], streams).score)
