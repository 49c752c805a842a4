"""Length-normalised multiple-choice picks, as lm-evaluation-harness defines them.

With one log-likelihood per choice, lm-eval (0.4.13, ``ConfigurableTask.process_results``) reports

* ``acc``: the choice with the highest log-likelihood;
* ``acc_norm``: the highest log-likelihood divided by the choice's length in characters
  (``len(choice)``, the choice text without the target delimiter);
* ``acc_bytes``: the same divided by the choice's length in UTF-8 bytes.

For ASCII choices ``acc_norm`` and ``acc_bytes`` agree. Ties go to the first choice (``argmax``).
"""

from __future__ import annotations

from collections.abc import Sequence


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def picks(loglikelihoods: Sequence[float], choices: Sequence[str]) -> dict[str, int]:
    """The index chosen by ``acc``, ``acc_norm`` and ``acc_bytes`` (see the module notes)."""
    if len(loglikelihoods) != len(choices) or not choices:
        raise ValueError(f"{len(loglikelihoods)} log-likelihoods for {len(choices)} choices")
    if any(not choice for choice in choices):
        raise ValueError("an empty choice has no length to normalise by")
    lls = [float(v) for v in loglikelihoods]
    return {
        "acc": _argmax(lls),
        "acc_norm": _argmax([v / len(c) for v, c in zip(lls, choices, strict=True)]),
        "acc_bytes": _argmax([v / len(c.encode("utf-8")) for v, c in zip(lls, choices, strict=True)]),
    }
