"""Metric tests: hand-computed values and cross-checks against the reference libraries."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
from fractions import Fraction
from math import comb

import numpy as np
import pytest

from taskgrove.metrics import (
    accuracy,
    available_metrics,
    bleu,
    chrf,
    compute_metric,
    entity_counts,
    entity_prf,
    f1,
    get_metric,
    mcc,
    mean_interval,
    mean_pass_at_k,
    normalize_answer,
    numeric_match,
    pass_at_k,
    precision,
    precision_recall_f1,
    recall,
    rouge,
    rouge_per_sample,
    seqeval_prf,
    squad_exact_match,
    squad_f1,
    squad_v2,
    statistic_interval,
)

approx = pytest.approx

# --- classification --------------------------------------------------------------------------

REFS = ["a", "a", "b", "b", "c", "c"]
PREDS = ["a", "b", "b", "b", "c", None]  # the last answer did not parse


def test_accuracy_hand_value_and_invalid_counts_wrong():
    assert accuracy(PREDS, REFS) == approx(4 / 6)
    assert accuracy(["a", "", "  "], ["a", "a", "a"]) == approx(1 / 3)
    assert accuracy(["x", "y"], ["a", "b"]) == 0.0
    assert math.isnan(accuracy([], []))


def test_prf_hand_values_with_invalid_prediction():
    # per class  a: P=1 R=1/2   b: P=2/3 R=1   c: P=1 R=1/2
    f_a, f_b, f_c = 2 / 3, 0.8, 2 / 3
    p, r, f = precision_recall_f1(PREDS, REFS, average="macro")
    assert (p, r, f) == approx(((1 + 2 / 3 + 1) / 3, (0.5 + 1 + 0.5) / 3, (f_a + f_b + f_c) / 3))
    # micro: TP=4, FP=1 (the b predicted for an a), FN=2; the invalid answer is no FP of any class
    p, r, f = precision_recall_f1(PREDS, REFS, average="micro")
    assert (p, r) == approx((4 / 5, 4 / 6))
    assert f == approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert f1(PREDS, REFS, average="weighted") == approx((f_a + f_b + f_c) / 3)  # equal supports


def test_prf_and_mcc_match_sklearn_with_a_sentinel_for_invalid():
    from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

    sentinel = ["__invalid__" if p is None else p for p in PREDS]
    for average in ("macro", "micro", "weighted"):
        kw = {"labels": ["a", "b", "c"], "average": average, "zero_division": 0}
        assert f1(PREDS, REFS, average=average) == approx(f1_score(REFS, sentinel, **kw))
        assert precision(PREDS, REFS, average=average) == approx(precision_score(REFS, sentinel, **kw))
        assert recall(PREDS, REFS, average=average) == approx(recall_score(REFS, sentinel, **kw))
    assert mcc(PREDS, REFS) == approx(matthews_corrcoef(REFS, sentinel))


def test_without_invalid_predictions_equals_sklearn_on_raw_labels():
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    rng = np.random.default_rng(3)
    labels = ["pos", "neg", "neutral", "other"]
    refs = [labels[i] for i in rng.integers(0, 4, 200)]
    preds = [labels[i] for i in rng.integers(0, 4, 200)]
    preds[:3] = ["surprise", "surprise", "pos"]  # a label never in the references: a real class
    assert accuracy(preds, refs) == approx(accuracy_score(refs, preds))
    for average in ("macro", "micro", "weighted"):
        assert f1(preds, refs, average=average) == approx(f1_score(refs, preds, average=average))
    assert mcc(preds, refs) == approx(matthews_corrcoef(refs, preds))


def test_explicit_label_set_makes_outside_predictions_invalid():
    # "maybe" is outside the label set: wrong, but not a class of its own in the macro average
    refs, preds = ["yes", "no", "yes"], ["yes", "maybe", "yes"]
    assert f1(preds, refs, average="macro", labels=["yes", "no"]) == approx((1.0 + 0.0) / 2)
    # without labels, "maybe" is a class (sklearn semantics): macro over yes/no/maybe
    assert f1(preds, refs, average="macro") == approx(1 / 3)


def test_binary_prf_hand_values_and_pos_label():
    refs, preds = [1, 0, 1, 1, 0], [1, 1, 0, 1, None]
    assert precision_recall_f1(preds, refs, average="binary") == approx((2 / 3, 2 / 3, 2 / 3))
    refs_s = ["yes", "no", "no", "yes"]
    preds_s = ["yes", "yes", "no", ""]
    assert precision(preds_s, refs_s, average="binary", pos_label="yes") == approx(0.5)
    assert recall(preds_s, refs_s, average="binary", pos_label="yes") == approx(0.5)
    assert recall(preds_s, refs_s, average="binary", pos_label="no") == approx(0.5)
    assert precision(preds_s, refs_s, average="binary", pos_label="no") == approx(1.0)
    # pos_label absent from the sample (e.g. a bootstrap resample): zero, not a crash
    assert f1(["no"], ["no"], average="binary", pos_label="yes") == 0.0
    with pytest.raises(ValueError):
        f1(["no"], ["no"], average="binary", pos_label="yes", labels=["no", "maybe"])


def test_classification_input_errors():
    with pytest.raises(ValueError):
        accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        f1(["a"], ["a"], average="samples")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        f1(["a"], ["z"], labels=["a", "b"])  # a reference outside the label set is a task bug


# --- entities ----------------------------------------------------------------------------------


def test_entity_prf_hand_values_multiset_and_normalisation():
    preds = [
        [("Apple", "ORG"), ("apple ", "org"), ("Tim  Cook", "PER")],
        None,
        [("Paris", "PER")],
    ]
    golds = [
        [("Apple", "ORG"), ("Tim Cook", "per"), ("Cupertino", "LOC")],
        [("Paris", "LOC")],
        [],
    ]
    assert entity_counts(preds[0], golds[0]) == (2, 3, 3)  # Apple predicted twice, gold once
    s = entity_prf(preds, golds)
    # the unparsable answer (None) is one false positive and misses its gold Paris
    assert (s.true_positives, s.n_predicted, s.n_gold) == (2, 5, 4)
    assert (s.precision, s.recall, s.f1) == approx((0.4, 0.5, 2 * 0.4 * 0.5 / 0.9))
    assert entity_counts([("A", "X"), ("A", "X")], [("a", "x"), ("A.", "X")]) == (2, 2, 2)
    assert entity_counts([("Paris", "LOC")], [("Paris", "GPE")]) == (0, 1, 1)  # type must match


def test_entity_prf_unparsable_is_wrong_even_with_empty_gold():
    assert entity_counts(None, []) == (0, 1, 0)
    assert entity_prf([None], [[]]).f1 == 0.0
    assert entity_prf([[]], [[]]).f1 == 1.0  # "no entities" is right when there are none


def test_entity_prf_numeric_compares_numerals_as_numbers():
    pred, gold = (
        [[("100.0", "us-gaap:Revenue"), ("1,000", "other")]],
        [[("100", "us-gaap:revenue"), ("1000.00", "other")]],
    )
    assert entity_prf(pred, gold).true_positives == 0  # as text
    assert entity_prf(pred, gold, numeric=True).f1 == 1.0
    assert entity_prf([[("1e2", "x")]], [[("100", "x")]], numeric=True).f1 == 1.0
    assert entity_prf([[("100.5", "x")]], [[("100", "x")]], numeric=True).f1 == 0.0


def test_entity_prf_edge_cases():
    assert entity_prf([[]], [[]]).f1 == 1.0  # nothing to find, nothing claimed
    s = entity_prf([[]], [[("a", "b")]])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    s = entity_prf([[("a", "b"), ("c", "d")]], [[("a", "b")]])
    assert (s.precision, s.recall, s.f1) == approx((0.5, 1.0, 2 / 3))


def test_seqeval_prf_matches_seqeval():
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"], ["O", "B-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "I-ORG", "O"], ["O", "B-MISC"]]
    s = seqeval_prf(pred, gold)
    assert s.precision == approx(precision_score(gold, pred))
    assert s.recall == approx(recall_score(gold, pred))
    assert s.f1 == approx(f1_score(gold, pred))
    assert (s.true_positives, s.n_predicted, s.n_gold) == (3, 4, 4)  # lenient: I-ORG starts a span
    strict = seqeval_prf(pred, gold, scheme="IOB2")
    assert strict.f1 == approx(f1_score(gold, pred, mode="strict", scheme=IOB2))
    assert strict.true_positives == 2  # strict IOB2: a span may not start with I-


# --- QA ------------------------------------------------------------------------------------


def test_squad_normalisation_official_order():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # articles only as whole words
    assert normalize_answer(None) == ""


def test_squad_em_f1_hand_values():
    assert squad_exact_match("the cat", ["A cat!", "dog"]) == 1.0
    assert squad_exact_match("cat sat", "cat") == 0.0
    # pred {big, cat, sat} vs gold {cat, sat, down}: 2 common -> P = R = 2/3
    assert squad_f1("the big cat sat", "a cat sat down") == approx(2 / 3)
    assert squad_f1("cat", ["dog", "cat sat"]) == approx(2 / 3)  # max over golds
    assert squad_f1("cat cat", "cat") == approx(2 * 0.5 * 1 / 1.5)  # bag of tokens, not a set
    assert squad_f1("dog", "cat") == 0.0


def test_squad_unanswerable():
    for gold in ([], "", None, ["", "  "]):
        assert squad_exact_match("", gold) == 1.0
        assert squad_exact_match(None, gold) == 1.0
        assert squad_f1("", gold) == 1.0
        assert squad_exact_match("Paris", gold) == 0.0
        assert squad_f1("Paris", gold) == 0.0
    assert squad_f1("the", []) == 1.0  # official: "the" normalises to the empty answer
    assert squad_exact_match("", ["", "Paris"]) == 0.0  # empty golds are dropped when others exist
    assert squad_f1("", "Paris") == 0.0


def test_squad_v2_corpus_split():
    s = squad_v2(["Paris", "", "blue", "nope"], [["Paris"], [], ["blue sky"], ""])
    assert (s.total, s.has_ans_total, s.no_ans_total) == (4, 2, 2)
    assert s.exact == approx(2 / 4)
    assert s.has_ans_exact == approx(1 / 2) and s.no_ans_exact == approx(1 / 2)
    assert s.has_ans_f1 == approx((1 + 2 / 3) / 2)
    assert s.f1 == approx((1 + 1 + 2 / 3 + 0) / 4)


# --- generation ----------------------------------------------------------------------------


def test_rouge_hand_values():
    s = rouge_per_sample(["the cat sat"], ["the cat sat on the mat"])[0]
    assert s["rouge1"] == approx(2 / 3)  # P = 1, R = 3/6
    assert s["rouge2"] == approx(4 / 7)  # P = 1, R = 2/5
    assert s["rougeL"] == approx(2 / 3)
    assert rouge(["cats"], ["cat"])["rouge1"] == 1.0  # stemming on
    assert rouge(["cats"], ["cat"], use_stemmer=False)["rouge1"] == 0.0
    assert rouge([None], ["cat"])["rouge1"] == 0.0


def test_rouge_matches_rouge_score_and_lsum_uses_newlines():
    from rouge_score import rouge_scorer

    preds = ["the quick brown fox\njumps over the dog", "a b c d", "police killed the gunman"]
    refs = ["the fox jumps\nover the lazy brown dog", "a c b d e", "the gunman was shot down by police"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    expected = [scorer.score(r, p) for p, r in zip(preds, refs, strict=False)]
    got = rouge(preds, refs)
    for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert got[t] == approx(sum(e[t].fmeasure for e in expected) / 3)
    # sentences swapped: token-level LCS is 2 of 4, the per-sentence union LCS is 4 of 4
    per = rouge_per_sample(["a b\nc d"], ["c d\na b"])[0]
    assert (per["rougeL"], per["rougeLsum"]) == approx((0.5, 1.0))


def test_rouge_multiple_references_take_the_best():
    s = rouge_per_sample(["the cat"], [["a dog", "the cat"]])[0]
    assert s["rouge1"] == 1.0


def test_bleu_chrf_match_sacrebleu():
    import sacrebleu

    hyps = ["the cat is on the mat", "there is a cat here", "hello world again"]
    refs1 = ["the cat is on the mat", "a cat is here", "hello there world"]
    refs2 = ["a cat sits on the mat", "there is a cat here too", "hello world"]
    assert bleu(hyps, refs1) == approx(sacrebleu.corpus_bleu(hyps, [refs1]).score)
    assert bleu(hyps, [[a, b] for a, b in zip(refs1, refs2, strict=False)]) == approx(
        sacrebleu.corpus_bleu(hyps, [refs1, refs2]).score
    )
    assert chrf(hyps, refs1) == approx(sacrebleu.corpus_chrf(hyps, [refs1]).score)
    assert chrf(hyps, refs1, word_order=2) == approx(sacrebleu.corpus_chrf(hyps, [refs1], word_order=2).score)
    assert bleu(["the cat is on the mat"], ["the cat is on the mat"]) == approx(100.0)
    assert chrf(["abc"], ["abc"]) == approx(100.0)
    assert bleu([None], ["the cat is on the mat"]) == 0.0
    assert math.isnan(bleu([], []))


def test_bleu_ragged_references():
    import sacrebleu

    hyps = ["the cat sat on the mat today", "hello there my good friend"]
    refs = [["the cat sat on a mat today", "a cat was on the mat"], ["hello there my friend"]]
    # a duplicated reference changes neither clipped counts nor the closest length
    expected = sacrebleu.corpus_bleu(hyps, [[refs[0][0], refs[1][0]], [refs[0][1], refs[1][0]]]).score
    assert bleu(hyps, refs) == approx(expected)
    assert 0 < expected < 100
    assert bleu(["a b c d e"], [["x y", "a b c d e"]]) == approx(100.0)


# --- numeric and code ------------------------------------------------------------------------


def test_numeric_match():
    assert numeric_match(3.14159, 3.1416, rel_tol=1e-4)
    assert not numeric_match(3.14, 3.1416, rel_tol=1e-4)
    assert numeric_match(0.0, 1e-9)  # absolute tolerance near zero
    assert not numeric_match(0.0, 1e-6)
    assert numeric_match("1,234.5", 1234.5)
    assert not numeric_match(None, 1.0)
    assert not numeric_match("n/a", 1.0)
    assert not numeric_match(float("nan"), float("nan"))
    assert not numeric_match(True, 1.0)
    assert numeric_match(12, 0.12, percent_equivalent=True)
    assert numeric_match(0.12, 12, percent_equivalent=True)
    assert not numeric_match(12, 0.12)
    assert numeric_match(105, 100, rel_tol=0.05) and not numeric_match(106, 100, rel_tol=0.05)


def test_pass_at_k_hand_values_and_exact_combinatorics():
    assert pass_at_k(5, 2, 1) == approx(0.4)
    assert pass_at_k(5, 2, 2) == approx(1 - comb(3, 2) / comb(5, 2))  # 0.7
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 7, 5) == 1.0  # fewer than k failures: some draw always passes
    for n, c, k in [(200, 50, 100), (200, 3, 10), (1000, 1, 1), (300, 299, 2)]:
        exact = 1 - Fraction(comb(n - c, k), comb(n, k))
        assert pass_at_k(n, c, k) == approx(float(exact), rel=1e-12, abs=1e-15)
    assert mean_pass_at_k([(5, 2), (5, 0)], 1) == approx(0.2)
    assert math.isnan(mean_pass_at_k([], 1))
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


# --- bootstrap -----------------------------------------------------------------------------


def test_mean_interval_basic_properties():
    assert all(math.isnan(x) for x in mean_interval([]))
    assert mean_interval([0.7]) == (0.7, 0.7)
    assert mean_interval([0.3] * 50) == (0.3, 0.3)
    values = np.random.default_rng(0).random(500)
    a, b = mean_interval(values, seed=1), mean_interval(values, seed=1)
    assert a == b  # deterministic for a seed
    assert mean_interval(values, seed=2) != a
    low, high = a
    assert low < values.mean() < high
    lo90, hi90 = mean_interval(values, seed=1, confidence=0.90)
    assert low <= lo90 and hi90 <= high


def test_mean_interval_matches_normal_theory():
    # binary scores take the multinomial path, continuous ones the index path
    rng = np.random.default_rng(5)
    for drawn in (rng.random(4000) < 0.3, rng.normal(2.0, 1.0, 4000)):
        values = drawn.astype(float)
        m, se = values.mean(), values.std() / math.sqrt(values.size)
        low, high = mean_interval(values, n_resamples=2000)
        assert low == approx(m - 1.96 * se, abs=0.15 * 1.96 * se)
        assert high == approx(m + 1.96 * se, abs=0.15 * 1.96 * se)


def test_mean_interval_20k_values_memory():
    values = np.random.default_rng(0).random(20_000)  # continuous: the chunked index path
    mean_interval(values[:100])  # warm up numpy
    tracemalloc.start()
    low, high = mean_interval(values, n_resamples=1000)  # its speed: bench/hot_paths.py
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert low < values.mean() < high
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_statistic_interval_for_a_corpus_metric():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(2)
    refs = list(rng.integers(0, 3, 300))
    preds = [r if rng.random() < 0.7 else int(rng.integers(0, 3)) for r in refs]
    items = list(zip(preds, refs, strict=False))

    def macro_f1(sample: list) -> float:
        p, r = zip(*sample, strict=False)
        return f1_score(r, p, average="macro")

    low, high = statistic_interval(items, macro_f1, seed=0)
    assert (low, high) == statistic_interval(items, macro_f1, seed=0)
    assert low < macro_f1(items) < high
    assert 0.02 < high - low < 0.3
    assert statistic_interval([], macro_f1) == pytest.approx((math.nan, math.nan), nan_ok=True)
    assert statistic_interval([(1, 1)], macro_f1) == (1.0, 1.0)
    # resamples where the statistic is undefined are skipped
    assert statistic_interval([1, 2, 3], lambda s: math.nan) == pytest.approx((math.nan, math.nan), nan_ok=True)


# --- registry ------------------------------------------------------------------------------

EXPECTED_KINDS = {
    "accuracy": "mean",
    "f1_macro": "corpus",
    "f1_micro": "corpus",
    "f1_weighted": "corpus",
    "f1_binary": "corpus",
    "precision_macro": "corpus",
    "recall_macro": "corpus",
    "mcc": "corpus",
    "entity_f1": "corpus",
    "entity_precision": "corpus",
    "entity_recall": "corpus",
    "squad_em": "mean",
    "squad_f1": "mean",
    "rouge1": "mean",
    "rouge2": "mean",
    "rougeL": "mean",
    "rougeLsum": "mean",
    "bleu": "corpus",
    "chrf": "corpus",
    "numeric_match": "mean",
    "pass_at_1": "mean",
}


def test_registry_names_and_kinds():
    names = set(available_metrics())
    assert set(EXPECTED_KINDS) <= names
    for name, kind in EXPECTED_KINDS.items():
        metric = get_metric(name)
        assert metric.kind == kind, name
        assert metric.name == name
    for name in [*EXPECTED_KINDS, "smoothed_bleu_4"]:
        low, high = get_metric(name).range  # every metric states its scale
        assert (low, high) == ((-1.0, 1.0) if name == "mcc" else (0.0, 1.0)), name
    assert get_metric("bleu").native_scale == 100.0 and get_metric("accuracy").native_scale == 1.0
    hyps, refs = ["the cat sat on the mat"], ["the cat sat on a mat"]
    assert compute_metric("bleu", list(zip(hyps, refs, strict=True))) == approx(bleu(hyps, refs) / 100)
    assert get_metric("pass_at_10").name == "pass_at_10"
    with pytest.raises(KeyError):
        get_metric("f2_macro")
    with pytest.raises(TypeError):
        get_metric("f1_macro", pos_label="yes")  # only the binary variants take pos_label
    with pytest.raises(TypeError):
        get_metric("accuracy", labels=["a"])


def test_registry_values_equal_the_direct_functions():
    items = list(zip(PREDS, REFS, strict=False))
    assert compute_metric("accuracy", items) == approx(accuracy(PREDS, REFS))
    assert compute_metric("f1_macro", items) == approx(f1(PREDS, REFS, average="macro"))
    assert compute_metric("f1_micro", items) == approx(f1(PREDS, REFS, average="micro"))
    assert compute_metric("mcc", items) == approx(mcc(PREDS, REFS))
    assert compute_metric("f1_binary", [("y", "y"), ("n", "y")], pos_label="y") == approx(2 / 3)
    assert compute_metric("f1_macro", [("maybe", "yes")], labels=["yes", "no"]) == 0.0
    ent = [([("Apple", "ORG")], [("apple", "org"), ("Paris", "LOC")])]
    assert compute_metric("entity_recall", ent) == 0.5
    assert compute_metric("entity_precision", ent) == 1.0
    assert compute_metric("squad_f1", [("the big cat sat", "a cat sat down"), ("", [])]) == approx((2 / 3 + 1) / 2)
    assert compute_metric("squad_em", [("Paris", ["paris"]), ("x", "y")]) == 0.5
    assert compute_metric("rouge2", [("the cat sat", "the cat sat on the mat")]) == approx(4 / 7)
    assert compute_metric("bleu", [("the cat is on the mat", "the cat is on the mat")]) == approx(1.0)
    assert compute_metric("chrf", [("abc", "abc")]) == approx(1.0)
    assert compute_metric("numeric_match", [("12%", 12), (0.12, 12)], percent_equivalent=True) == 0.5
    assert compute_metric("pass_at_1", [(10, 3), (10, 0)]) == approx(0.15)
    assert compute_metric("pass_at_2", [(5, 2)]) == approx(0.7)
    assert math.isnan(compute_metric("accuracy", []))


def test_registry_sample_scores_and_intervals():
    acc = get_metric("accuracy")
    items = list(zip(PREDS, REFS, strict=False)) * 20
    assert acc.sample_scores(items[:6]) == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    low, high = acc.interval(items)
    assert low < 4 / 6 < high
    assert acc.interval(items) == mean_interval(acc.sample_scores(items))
    macro = get_metric("f1_macro")
    with pytest.raises(TypeError):
        macro.sample_scores(items)
    low, high = macro.interval(items, n_resamples=100, seed=3)
    assert low < macro.compute(items) < high
    assert (low, high) == statistic_interval(items, macro.compute, n_resamples=100, seed=3)


# --- import cost ---------------------------------------------------------------------------


def test_importing_metrics_and_parsers_loads_no_heavy_library():
    heavy = ["numpy", "sklearn", "rouge_score", "sacrebleu", "seqeval", "scipy", "torch", "nltk"]
    code = (
        "import sys, taskgrove\n"
        f"heavy = {heavy!r}\n"
        "before = {m for m in heavy if m in sys.modules}\n"
        "import taskgrove.metrics, taskgrove.metrics.registry, taskgrove.tasks.parsers, taskgrove.sandbox\n"
        "print(sorted({m for m in heavy if m in sys.modules} - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_confusion_statistics_equal_sklearn_on_random_resamples():
    import random

    import numpy as np
    from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

    from taskgrove.metrics.classification import confusion_statistic

    rng = random.Random(7)
    labels = ["a", "b", "c", "d"]
    refs = [rng.choice(labels) for _ in range(300)]
    preds = [r if rng.random() < 0.6 else rng.choice([*labels, None, "zzz"]) for r in refs]
    code = {label: i for i, label in enumerate(labels)}
    sentinel = len(labels)
    for _ in range(20):
        idx = np.array([rng.randrange(300) for _ in range(300)])
        y_true = [code[refs[i]] for i in idx]
        y_pred = [code.get(preds[i], sentinel) for i in idx]
        for average in ("macro", "micro", "weighted"):
            for name, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
                score = confusion_statistic(preds, refs, statistic=name, average=average, labels=labels)
                expected = fn(y_true, y_pred, labels=list(range(4)), average=average, zero_division=0)
                assert score(idx) == pytest.approx(expected, abs=1e-12), (name, average)
        binary = confusion_statistic(preds, refs, statistic="f1", average="binary", labels=labels, pos_label="b")
        assert binary(idx) == pytest.approx(f1_score(y_true, y_pred, labels=[1], average=None, zero_division=0)[0])
        mcc_score = confusion_statistic(preds, refs, statistic="mcc", labels=labels)
        assert mcc_score(idx) == pytest.approx(matthews_corrcoef(y_true, y_pred), abs=1e-12)


def test_indexed_interval_matches_the_generic_bootstrap():
    from taskgrove.metrics.bootstrap import statistic_interval
    from taskgrove.metrics.registry import get_metric

    refs = ["x", "y", "z"] * 40
    preds = ["x", "y", "y", "z", None, "x"] * 20
    items = list(zip(preds, refs, strict=False))
    metric = get_metric("f1_macro")
    fast = metric.interval(items, n_resamples=300, seed=3)
    slow = statistic_interval(items, metric.compute, n_resamples=300, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)
