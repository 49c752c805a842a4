"""Multiple choice by log-likelihood picks what lm-evaluation-harness picks, item by item.

Runs ``bench/lmeval_agreement.py``'s comparison on the first 12 of its 30 questions with the
embedded model, in both prompt styles (the bench runs all 30). Skips where lm-eval is not
installed (``pip install lm-eval==0.4.13``, best in a venv made with ``--system-site-packages``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval==0.4.13)")

pytestmark = pytest.mark.slow  # loads the embedded model (twice: lm-eval and taskgrove)

BENCH = Path(__file__).resolve().parent.parent / "bench" / "lmeval_agreement.py"
ITEMS = 12


def _bench():
    spec = importlib.util.spec_from_file_location("lmeval_agreement", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("style", ["completion", "chat"])
def test_choices_agree_with_lm_eval(style: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    bench = _bench()
    theirs = bench.lmeval_lls(bench.model_dir(), chat=style == "chat", limit=ITEMS)
    ours = bench.taskgrove_lls(style, limit=ITEMS)
    result = bench.compare(ours, theirs)
    assert result["items"] == ITEMS
    assert result["agree"] == {"acc": ITEMS, "acc_norm": ITEMS}, result
