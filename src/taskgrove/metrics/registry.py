"""Metrics by name, so a declarative task can say ``metrics: [accuracy, f1_macro]``.

Every metric is computed from stored per-sample *items*, each a ``(prediction, reference)`` pair:

==============================  ==========================================================
metric                          item
==============================  ==========================================================
accuracy, f1_*, precision_*,    ``(predicted_label | None, gold_label)``
recall_*, mcc
entity_f1/precision/recall      ``(list[(text, type)] | None, list[(text, type)])``
squad_em, squad_f1              ``(answer | None, gold answer or list of them; [] = none)``
exact_match                     ``(text | None, reference or list of references)``
rouge1/2/L/Lsum, bleu, chrf,    ``(text | None, reference or list of references)``
smoothed_bleu_4
numeric_match                   ``(number | numeric string | None, number)``
pass_at_<k> (e.g. pass_at_1)    ``(n samples, c correct)`` for one problem
==============================  ==========================================================

A metric's ``kind`` says how the corpus value is formed: ``"mean"`` metrics score each item and
average (:meth:`Metric.sample_scores`); ``"corpus"`` metrics need all items at once (F1, MCC,
BLEU, chrF, entity P/R/F1). Either way :meth:`Metric.compute` gives the corpus value and
:meth:`Metric.interval` a bootstrap interval.

**One scale.** Every metric value is stored on the unit scale: ``Metric.range`` is ``(0, 1)`` for
all of them except MCC (``(-1, 1)``). Metrics whose library reports another scale are converted
and say so in ``native_scale``: sacrebleu's BLEU and chrF are 0-100, stored divided by 100 (a
sacrebleu BLEU of 34.0 is stored as 0.34). Reports and group scores rely on this.

Options are bound by :func:`get_metric`, e.g. ``get_metric("f1_binary", pos_label="yes")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal["mean", "corpus"]
Item = tuple[Any, Any]
BatchScorer = Callable[[Sequence[Any], Sequence[Any]], list[float]]
CorpusScorer = Callable[[Sequence[Any], Sequence[Any]], float]
IndexedScorer = Callable[[Sequence[Any], Sequence[Any]], Callable[[Any], float]]


@dataclass(frozen=True)
class Metric:
    """A named metric with its options bound."""

    name: str
    kind: Kind
    description: str
    range: tuple[float, float] = (0.0, 1.0)
    """The interval every value of the metric lies in (its stored scale)."""
    native_scale: float = 1.0
    """The full scale of the library value the metric converts (100 for sacrebleu's BLEU/chrF):
    stored values are ``library value / native_scale``."""
    sample_scorer: BatchScorer | None = None
    corpus_scorer: CorpusScorer | None = None
    indexed_scorer: IndexedScorer | None = None
    """For corpus metrics that can encode their items once and score resamples by index (fast)."""

    def _split(self, items: Sequence[Item]) -> tuple[list[Any], list[Any]]:
        predictions, references = [], []
        for item in items:
            prediction, reference = item
            predictions.append(prediction)
            references.append(reference)
        return predictions, references

    def sample_scores(self, items: Sequence[Item]) -> list[float]:
        """Per-item scores (only for ``kind == "mean"``)."""
        if self.sample_scorer is None:
            raise TypeError(f"{self.name} is a corpus-level metric: it has no per-sample score")
        return [float(x) for x in self.sample_scorer(*self._split(items))]

    def compute(self, items: Sequence[Item]) -> float:
        """The corpus value over ``items``; ``nan`` when there are none."""
        items = list(items)
        if not items:
            return math.nan
        if self.kind == "mean":
            scores = self.sample_scores(items)
            return sum(scores) / len(scores)
        assert self.corpus_scorer is not None
        return float(self.corpus_scorer(*self._split(items)))

    def interval(
        self,
        items: Sequence[Item],
        *,
        n_resamples: int = 1000,
        seed: int = 0,
        confidence: float = 0.95,
        clusters: Sequence[int] | None = None,
    ) -> tuple[float, float]:
        """Percentile bootstrap interval over ``n_resamples`` resamples: of the per-item scores
        for ``mean`` metrics, of the corpus value for ``corpus`` metrics (by index for
        classification). ``clusters`` (outputs per item, in order) resamples items with all their
        outputs, for items sampled several times; a ``mean`` metric then resamples item means."""
        from taskgrove.metrics.bootstrap import indexed_interval, mean_interval, statistic_interval

        items = list(items)
        if self.kind == "mean":
            scores = self.sample_scores(items)
            if clusters is not None:
                scores = _cluster_means(scores, clusters)
            return mean_interval(scores, n_resamples=n_resamples, seed=seed, confidence=confidence)
        if self.indexed_scorer is not None:
            score = self.indexed_scorer(*self._split(items))
            return indexed_interval(
                len(items), score, n_resamples=n_resamples, seed=seed, confidence=confidence, clusters=clusters
            )
        return statistic_interval(
            items, self.compute, n_resamples=n_resamples, seed=seed, confidence=confidence, clusters=clusters
        )


def _cluster_means(scores: list[float], clusters: Sequence[int]) -> list[float]:
    if sum(clusters) != len(scores):
        raise ValueError(f"clusters cover {sum(clusters)} outputs but there are {len(scores)}")
    means, start = [], 0
    for size in clusters:
        means.append(sum(scores[start : start + size]) / size)
        start += size
    return means


# --- factories: each takes the metric's options as keyword arguments -------------------------


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _accuracy() -> Metric:
    def scores(preds: Sequence[Any], refs: Sequence[Any]) -> list[float]:
        return [float(not _is_blank(p) and p == r) for p, r in zip(preds, refs, strict=False)]

    return Metric("accuracy", "mean", "fraction of exact label matches", sample_scorer=scores)


def _prf(which: int, average: str) -> Callable[..., Metric]:
    label = ("precision", "recall", "f1")[which]

    def build(labels: Sequence[Any] | None, pos_label: Any) -> Metric:
        from taskgrove.metrics.classification import confusion_statistic, precision_recall_f1

        def corpus(preds: Sequence[Any], refs: Sequence[Any]) -> float:
            return precision_recall_f1(
                preds,
                refs,
                average=average,  # type: ignore[arg-type]
                labels=labels,
                pos_label=pos_label,
            )[which]

        def indexed(preds: Sequence[Any], refs: Sequence[Any]) -> Callable[[Any], float]:
            return confusion_statistic(
                preds,
                refs,
                statistic=label,  # type: ignore[arg-type]
                average=average,  # type: ignore[arg-type]
                labels=labels,
                pos_label=pos_label,
            )

        return Metric(
            f"{label}_{average}",
            "corpus",
            f"{average} {label} (scikit-learn's definition)",
            corpus_scorer=corpus,
            indexed_scorer=indexed,
        )

    if average == "binary":

        def binary(*, labels: Sequence[Any] | None = None, pos_label: Any = 1) -> Metric:
            return build(labels, pos_label)

        return binary

    def averaged(*, labels: Sequence[Any] | None = None) -> Metric:
        return build(labels, 1)

    return averaged


def _mcc(*, labels: Sequence[Any] | None = None) -> Metric:
    from taskgrove.metrics.classification import confusion_statistic, mcc

    return Metric(
        "mcc",
        "corpus",
        "Matthews correlation coefficient (-1 to 1)",
        range=(-1.0, 1.0),
        corpus_scorer=lambda p, r: mcc(p, r, labels=labels),
        indexed_scorer=lambda p, r: confusion_statistic(p, r, statistic="mcc", labels=labels),
    )


def _entity(which: str) -> Callable[..., Metric]:
    def factory(*, numeric: bool = False) -> Metric:
        from taskgrove.metrics.entities import entity_prf

        return Metric(
            f"entity_{which}",
            "corpus",
            f"micro entity {which} over (text, type) pairs"
            + (" (numeral texts compared as numbers)" if numeric else "")
            + "; an unparsable answer is one false positive and misses its gold",
            corpus_scorer=lambda p, r: getattr(entity_prf(p, r, numeric=numeric), which),
        )

    return factory


def _squad(which: str) -> Callable[[], Metric]:
    def factory() -> Metric:
        from taskgrove.metrics.qa import squad_exact_match, squad_f1

        fn = squad_exact_match if which == "em" else squad_f1
        return Metric(
            f"squad_{which}",
            "mean",
            f"SQuAD v2 {'exact match' if which == 'em' else 'token F1'}",
            sample_scorer=lambda preds, refs: [fn(p, r) for p, r in zip(preds, refs, strict=False)],
        )

    return factory


def _rouge(rouge_type: str) -> Callable[..., Metric]:
    def factory(*, use_stemmer: bool = True) -> Metric:
        from taskgrove.metrics.generation import rouge_per_sample

        def scores(preds: Sequence[Any], refs: Sequence[Any]) -> list[float]:
            per = rouge_per_sample(preds, refs, rouge_types=[rouge_type], use_stemmer=use_stemmer)
            return [s[rouge_type] for s in per]

        return Metric(rouge_type, "mean", f"{rouge_type} F-measure (rouge-score)", sample_scorer=scores)

    return factory


def _from_percent(value: float) -> float:
    """A 0-100 library score on [0, 1] (sacrebleu's perfect BLEU is 100.00000000000004: clipped)."""
    return value if math.isnan(value) else min(1.0, max(0.0, value / 100.0))


def _bleu(*, tokenize: str | None = None, lowercase: bool = False) -> Metric:
    from taskgrove.metrics.generation import bleu

    return Metric(
        "bleu",
        "corpus",
        "corpus BLEU (sacrebleu's score / 100, in [0, 1])",
        native_scale=100.0,
        corpus_scorer=lambda p, r: _from_percent(bleu(p, r, tokenize=tokenize, lowercase=lowercase)),
    )


def _chrf(*, word_order: int = 0) -> Metric:
    from taskgrove.metrics.generation import chrf

    return Metric(
        "chrf",
        "corpus",
        "corpus chrF (sacrebleu's score / 100, in [0, 1])",
        native_scale=100.0,
        corpus_scorer=lambda p, r: _from_percent(chrf(p, r, word_order=word_order)),
    )


def _smoothed_bleu4() -> Metric:
    from taskgrove.metrics.code_text import smoothed_bleu4

    return Metric(
        "smoothed_bleu_4",
        "mean",
        "CodeXGLUE code-to-text's smoothed sentence BLEU-4, averaged over samples (the benchmark's / 100)",
        native_scale=100.0,
        sample_scorer=lambda preds, refs: [smoothed_bleu4(p, r) for p, r in zip(preds, refs, strict=False)],
    )


def _numeric(*, rel_tol: float = 1e-4, abs_tol: float = 1e-8, percent_equivalent: bool = False) -> Metric:
    from taskgrove.metrics.numeric import numeric_match

    def scores(preds: Sequence[Any], refs: Sequence[Any]) -> list[float]:
        return [
            float(numeric_match(p, r, rel_tol=rel_tol, abs_tol=abs_tol, percent_equivalent=percent_equivalent))
            for p, r in zip(preds, refs, strict=False)
        ]

    return Metric("numeric_match", "mean", "numeric match within tolerance", sample_scorer=scores)


def _exact_match(*, strip: bool = True) -> Metric:
    def scores(preds: Sequence[Any], refs: Sequence[Any]) -> list[float]:
        out = []
        for pred, ref in zip(preds, refs, strict=False):
            golds = ref if isinstance(ref, (list, tuple)) else [ref]
            if pred is None:
                out.append(0.0)
                continue
            text = str(pred).strip() if strip else str(pred)
            out.append(float(any(text == (str(g).strip() if strip else str(g)) for g in golds)))
        return out

    return Metric(
        "exact_match",
        "mean",
        "the answer equals the reference (or one of a list of them), as BIG-bench's exact_str_match; "
        "surrounding whitespace ignored unless strip=False",
        sample_scorer=scores,
    )


def _pass_at(k: int) -> Callable[[], Metric]:
    def factory() -> Metric:
        from taskgrove.metrics.code import pass_at_k

        return Metric(
            f"pass_at_{k}",
            "mean",
            f"unbiased pass@{k} over (n, c) per problem",
            sample_scorer=lambda ns, cs: [pass_at_k(int(n), int(c), k) for n, c in zip(ns, cs, strict=False)],
        )

    return factory


_FACTORIES: MappingProxyType[str, Callable[..., Metric]] = MappingProxyType(
    {
        "accuracy": _accuracy,
        **{f"f1_{a}": _prf(2, a) for a in ("macro", "micro", "weighted", "binary")},
        **{f"precision_{a}": _prf(0, a) for a in ("macro", "micro", "weighted", "binary")},
        **{f"recall_{a}": _prf(1, a) for a in ("macro", "micro", "weighted", "binary")},
        "mcc": _mcc,
        "entity_f1": _entity("f1"),
        "entity_precision": _entity("precision"),
        "entity_recall": _entity("recall"),
        "squad_em": _squad("em"),
        "squad_f1": _squad("f1"),
        **{t: _rouge(t) for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
        "bleu": _bleu,
        "chrf": _chrf,
        "smoothed_bleu_4": _smoothed_bleu4,
        "numeric_match": _numeric,
        "exact_match": _exact_match,
        "pass_at_1": _pass_at(1),
    }
)

_PASS_AT = re.compile(r"pass_at_([1-9]\d*)")


def available_metrics() -> list[str]:
    """Names accepted by :func:`get_metric` (plus any ``pass_at_<k>``)."""
    return sorted(_FACTORIES)


def get_metric(name: str, **options: Any) -> Metric:
    """The metric called ``name`` with ``options`` bound; ``KeyError`` for an unknown name and
    ``TypeError`` for an option the metric does not take."""
    factory = _FACTORIES.get(name)
    if factory is None:
        match = _PASS_AT.fullmatch(name)
        if match is None:
            raise KeyError(f"unknown metric {name!r}; known: {', '.join(available_metrics())}, pass_at_<k>")
        factory = _pass_at(int(match.group(1)))
    return factory(**options)


def metric_range(name: str) -> tuple[float, float] | None:
    """The stored range of the metric called ``name`` (``None`` when no metric has that name)."""
    try:
        return get_metric(name).range
    except (KeyError, TypeError):
        return None


def compute_metric(name: str, items: Sequence[Item], **options: Any) -> float:
    """Shorthand for ``get_metric(name, **options).compute(items)``."""
    return get_metric(name, **options).compute(items)
