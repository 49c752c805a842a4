"""Classification metrics (accuracy, precision/recall/F1, MCC) with scikit-learn's definitions.

They are computed from one confusion matrix with numpy (the tests check every average against
scikit-learn on the same inputs), because bootstrap intervals recompute them hundreds of times:
:func:`confusion_statistic` encodes the items once and scores any resample by index in microseconds.

Predictions that are not a valid label (an unparsable answer stored as ``None`` or ``""``, or a
string outside the task's label set) are never a crash: they count as wrong.

How invalid predictions are scored:

* Labels are encoded to integers ``0..k-1``; every invalid prediction becomes one extra code ``k``
  that no reference carries.
* ``accuracy`` and ``mcc`` see that code as one more (always wrong) predicted class.
* ``precision``/``recall``/``f1`` average only over the real labels: an invalid prediction is a
  false negative of its gold class and a false positive of no class. With ``average="micro"`` this
  means precision is TP / (valid predictions) while recall is TP / (all samples).

The label set is ``labels`` when given (anything else predicted is invalid). Without ``labels`` it
is, as in scikit-learn, the union of the references and the predictions, where ``None`` and empty
or blank strings are invalid. With no invalid prediction every function returns exactly what the
scikit-learn function of the same name returns on the raw labels.

Bootstrap resamples (:func:`confusion_statistic`) are scored as scikit-learn scores the same
resample: without ``labels`` the label set of a resample is the labels present in it (a class
absent from a resample's references and predictions is left out of its macro average instead of
counting as F1 = 0); with ``labels`` it is always those labels. A resample whose references hold a
single class has no defined MCC: it is left out of the interval (scikit-learn would say 0.0, which
would put 0 into the interval of a perfect classifier).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

Average = Literal["binary", "macro", "micro", "weighted"]

_AVERAGES = ("binary", "macro", "micro", "weighted")


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _encode(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    labels: Sequence[Hashable] | None,
) -> tuple[list[int], list[int], list[Hashable]]:
    """Map labels to ``0..k-1`` and every invalid prediction to ``k``."""
    if len(predictions) != len(references):
        raise ValueError(f"predictions and references differ in length: {len(predictions)} != {len(references)}")
    if labels is not None:
        label_list = list(dict.fromkeys(labels))
    else:
        label_list = list(dict.fromkeys(references))
        label_list += [p for p in dict.fromkeys(predictions) if not _is_blank(p) and p not in label_list]
    index = {label: i for i, label in enumerate(label_list)}
    invalid = len(label_list)
    missing = [r for r in references if r not in index]
    if missing:
        raise ValueError(f"reference labels outside the label set: {sorted(map(repr, set(missing)))}")
    y_true = [index[r] for r in references]
    y_pred = [index.get(p, invalid) if not _is_blank(p) else invalid for p in predictions]
    return y_true, y_pred, label_list


def confusion(y_true: Any, y_pred: Any, k: int) -> Any:
    """Counts ``[true class, predicted class]`` of int arrays; column ``k`` holds invalid predictions."""
    import numpy as np

    return np.bincount(y_true * (k + 1) + y_pred, minlength=k * (k + 1)).reshape(k, k + 1)


def _safe_divide(numerator: Any, denominator: Any, zero_division: float) -> Any:
    import numpy as np

    out = np.full(np.shape(numerator), float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def prf_from_confusion(
    matrix: Any, *, average: Average, pos_index: int = 0, zero_division: float = 0.0
) -> tuple[float, float, float]:
    """Precision, recall, F1 from :func:`confusion` counts, with scikit-learn's ``average`` rules."""
    p, r, f = prf_from_confusions(matrix[None], average=average, pos_index=pos_index, zero_division=zero_division)
    return (float(p[0]), float(r[0]), float(f[0]))


def prf_from_confusions(
    matrices: Any, *, average: Average, pos_index: int = 0, zero_division: float = 0.0, present_only: bool = False
) -> tuple[Any, Any, Any]:
    """:func:`prf_from_confusion` for a stack of confusion matrices (shape ``(m, k, k + 1)``);
    ``present_only``: macro averages skip labels absent from a matrix's references and valid
    predictions (scikit-learn's label set when it is given no ``labels``)."""
    import numpy as np

    k = matrices.shape[1]
    tp = np.diagonal(matrices[:, :, :k], axis1=1, axis2=2).astype(np.float64)
    predicted = matrices[:, :, :k].sum(axis=1).astype(np.float64)
    support = matrices.sum(axis=2).astype(np.float64)
    if average == "micro":
        tp, predicted, support = (a.sum(axis=1, keepdims=True) for a in (tp, predicted, support))
    precision = _safe_divide(tp, predicted, zero_division)
    recall = _safe_divide(tp, support, zero_division)
    f1 = _safe_divide(2 * tp, predicted + support, zero_division)
    if average == "binary":
        return precision[:, pos_index], recall[:, pos_index], f1[:, pos_index]
    if average == "weighted":
        total = support.sum(axis=1)
        weighted = [_safe_divide((v * support).sum(axis=1), total, zero_division) for v in (precision, recall, f1)]
        return weighted[0], weighted[1], weighted[2]
    if present_only and average == "macro":
        present = (support > 0) | (predicted > 0)
        count = present.sum(axis=1)
        p, r, f = (
            _safe_divide(np.where(present, v, 0.0).sum(axis=1), count, zero_division) for v in (precision, recall, f1)
        )
        return p, r, f
    return precision.mean(axis=1), recall.mean(axis=1), f1.mean(axis=1)


def mcc_from_confusion(matrix: Any, *, single_class: float = 0.0) -> float:
    """Matthews correlation (multiclass form, as scikit-learn) from :func:`confusion` counts;
    ``single_class`` is the value when the references hold one class only (scikit-learn: 0.0)."""
    import numpy as np

    k = matrix.shape[0]
    square = np.zeros((k + 1, k + 1), dtype=np.float64)
    square[:k] = matrix
    t_sum, p_sum = square.sum(axis=1), square.sum(axis=0)
    n = square.sum()
    correct = np.trace(square)
    cov_tp = correct * n - np.dot(t_sum, p_sum)
    cov_pp = n * n - np.dot(p_sum, p_sum)
    cov_tt = n * n - np.dot(t_sum, t_sum)
    if cov_tt == 0:
        return single_class
    denominator = cov_tt * cov_pp
    return 0.0 if denominator == 0 else float(cov_tp / np.sqrt(denominator))


def _arrays(
    predictions: Sequence[Hashable | None], references: Sequence[Hashable], labels: Sequence[Hashable] | None
) -> tuple[Any, Any, list[Hashable]]:
    import numpy as np

    y_true, y_pred, label_list = _encode(predictions, references, labels)
    return np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64), label_list


def _binary_labels(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    labels: Sequence[Hashable] | None,
    pos_label: Hashable,
) -> Sequence[Hashable] | None:
    """The label set for ``average="binary"``: ``pos_label`` is added when no sample carries it."""
    if labels is not None:
        if pos_label not in labels:
            raise ValueError(f"pos_label {pos_label!r} is not in labels {list(labels)!r}")
        return labels
    seen = list(dict.fromkeys(references))
    seen += [p for p in dict.fromkeys(predictions) if not _is_blank(p) and p not in seen]
    return labels if pos_label in seen else [*seen, pos_label]


def accuracy(predictions: Sequence[Hashable | None], references: Sequence[Hashable]) -> float:
    """Fraction of predictions equal to their reference; ``nan`` for empty input."""
    if not references and not predictions:
        return math.nan
    y_true, y_pred, _ = _encode(predictions, references, None)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=False)) / len(y_true)


def precision_recall_f1(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    average: Average = "macro",
    pos_label: Hashable = 1,
    labels: Sequence[Hashable] | None = None,
    zero_division: float = 0.0,
) -> tuple[float, float, float]:
    """Precision, recall and F1 with scikit-learn's ``average`` semantics.

    ``average="binary"`` reports the scores of ``pos_label`` only: when no sample carries it they
    are ``zero_division``; with an explicit ``labels`` it must be one of them.
    Returns ``(nan, nan, nan)`` for empty input.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    if not references and not predictions:
        return (math.nan, math.nan, math.nan)
    if average == "binary":
        labels = _binary_labels(predictions, references, labels, pos_label)
    y_true, y_pred, label_list = _arrays(predictions, references, labels)
    pos_index = label_list.index(pos_label) if average == "binary" else 0
    matrix = confusion(y_true, y_pred, len(label_list))
    return prf_from_confusion(matrix, average=average, pos_index=pos_index, zero_division=zero_division)


def confusion_statistic(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    statistic: Literal["precision", "recall", "f1", "mcc"],
    average: Average = "macro",
    pos_label: Hashable = 1,
    labels: Sequence[Hashable] | None = None,
) -> Callable[[Any], Any]:
    """Encode the items once; return ``score(indices)`` giving the statistic on that resample.

    ``indices`` may also be a 2-D array, one resample per row: then it returns one value per row,
    computed for all rows at once (one ``bincount`` for the whole stack). Each resample is scored
    as scikit-learn scores it (see the module notes): labels absent from a resample leave its
    macro average when ``labels`` is not given; MCC of a single-class resample is ``nan``.
    """
    import numpy as np

    if statistic != "mcc" and average == "binary":
        labels = _binary_labels(predictions, references, labels, pos_label)
    y_true, y_pred, label_list = _arrays(predictions, references, labels)
    k = len(label_list)
    cells = k * (k + 1)
    codes = y_true * (k + 1) + y_pred
    which = ("precision", "recall", "f1").index(statistic) if statistic != "mcc" else -1
    present_only = labels is None
    pos_index = label_list.index(pos_label) if statistic != "mcc" and average == "binary" else 0

    def score(indices: Any) -> Any:
        batch = np.atleast_2d(indices)
        rows = batch.shape[0]
        offsets = (np.arange(rows, dtype=np.int64) * cells)[:, None]
        matrices = np.bincount((codes[batch] + offsets).ravel(), minlength=rows * cells).reshape(rows, k, k + 1)
        if which < 0:
            values = np.array([mcc_from_confusion(m, single_class=math.nan) for m in matrices])
        else:
            values = prf_from_confusions(matrices, average=average, pos_index=pos_index, present_only=present_only)[
                which
            ]
        return values if np.ndim(indices) == 2 else float(values[0])

    return score


def precision(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    average: Average = "macro",
    pos_label: Hashable = 1,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Precision; see :func:`precision_recall_f1`."""
    return precision_recall_f1(predictions, references, average=average, pos_label=pos_label, labels=labels)[0]


def recall(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    average: Average = "macro",
    pos_label: Hashable = 1,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Recall; see :func:`precision_recall_f1`."""
    return precision_recall_f1(predictions, references, average=average, pos_label=pos_label, labels=labels)[1]


def f1(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    average: Average = "macro",
    pos_label: Hashable = 1,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """F1; see :func:`precision_recall_f1`."""
    return precision_recall_f1(predictions, references, average=average, pos_label=pos_label, labels=labels)[2]


def mcc(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    *,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Matthews correlation coefficient (multiclass form); ``nan`` for empty input."""
    if not references and not predictions:
        return math.nan
    y_true, y_pred, label_list = _arrays(predictions, references, labels)
    return mcc_from_confusion(confusion(y_true, y_pred, len(label_list)))
