"""CodeXGLUE code-to-text's smoothed BLEU-4, computed as the benchmark's evaluator computes it.

The benchmark (``Code-Text/code-to-text`` in microsoft/CodeXGLUE, ``bleu.py``, adapted from the
MOSES script) scores each prediction alone and reports the mean over predictions, times 100:

1. Both sides are stripped, lowercased and split into words and punctuation marks
   (``re.findall(r"[\\w]+|[^\\s\\w]")``, joined by spaces); then NIST-normalised (mteval-v11a:
   XML entities unescaped, punctuation, and periods/commas not between digits, set apart) and
   split on whitespace. The evaluator reads one prediction per line, so line breaks in a
   prediction are read as spaces here (and tabs too: it splits a line on tabs).
2. For n = 1..4: clipped n-gram matches ``c_n`` (against the most frequent count of each n-gram in
   any reference) over the prediction's n-grams ``g_n``. The log precision is
   ``log(c_n + s + tiny) - log(g_n + s + tiny)`` with ``s = 1`` for n > 1 and ``s = 0`` for
   unigrams (Lin & Och's add-one smoothing), ``tiny`` the smallest positive float; their mean is
   the log BLEU.
3. Brevity penalty (in log space) ``min(0, 1 - (r + 1) / (h + 1))`` with ``r`` the shortest
   reference's length and ``h`` the prediction's; ``BLEU = exp(log BLEU + penalty)``.

Values here are on [0, 1] (the benchmark prints them times 100). An unparsable reply (``None``)
scores 0; an empty reply scores what the benchmark gives an empty line (its smoothing and
penalty leave ``exp(1 - (r + 1))``, not 0).
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence

_WORDS = re.compile(r"[\w]+|[^\s\w]")
_NIST_JOIN = (re.compile(r"<skipped>"), re.compile(r"-\n"), re.compile(r"\n"))
_NIST_SPLIT = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation (not the apostrophe)
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma unless after a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period and comma unless before a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # a dash after a digit
)
_TINY = sys.float_info.min
_N = 4


def _words(text: str) -> list[str]:
    """The evaluator's preprocessing: word/punctuation split of the lowercased line, then NIST."""
    line = " ".join(_WORDS.findall(text.replace("\t", " ").replace("\n", " ").strip().lower()))
    line = _NIST_JOIN[0].sub("", line)
    line = _NIST_JOIN[1].sub("", line)
    line = _NIST_JOIN[2].sub(" ", line)
    line = f" {unescape_quot(line)} ".lower()
    for pattern, replacement in _NIST_SPLIT:
        line = pattern.sub(replacement, line)
    return line.split()


def unescape_quot(text: str) -> str:
    """``xml.sax.saxutils.unescape`` with ``&quot;``: only ``&amp; &lt; &gt; &quot;`` are decoded."""
    if "&" not in text:
        return text
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def _ngrams(words: list[str]) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + k]) for k in range(1, _N + 1) for i in range(len(words) - k + 1))


def smoothed_bleu4(prediction: str | None, references: str | Sequence[str]) -> float:
    """CodeXGLUE's smoothed sentence BLEU-4 of one prediction, in [0, 1] (``None``: 0)."""
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("a reference list must hold at least one string")
    if prediction is None:
        return 0.0
    ref_words = [_words(r) for r in refs]
    best: Counter[tuple[str, ...]] = Counter()
    for words in ref_words:
        for gram, count in _ngrams(words).items():
            best[gram] = max(best[gram], count)
    test = _words(prediction)
    correct = [0] * _N
    for gram, count in _ngrams(test).items():
        correct[len(gram) - 1] += min(best.get(gram, 0), count)
    log_bleu = 0.0
    for k in range(_N):
        guess = max(len(test) - k, 0)
        smooth = 1 if k > 0 else 0
        log_bleu += math.log(correct[k] + smooth + _TINY) - math.log(guess + smooth + _TINY)
    log_bleu /= _N
    penalty = min(0.0, 1.0 - (min(len(w) for w in ref_words) + 1) / (len(test) + 1))
    return math.exp(log_bleu + penalty)
