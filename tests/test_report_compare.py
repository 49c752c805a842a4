"""`taskgrove compare`: paired differences by sample id, McNemar, one-sided tasks, id mismatches."""

import json

import pytest

from fixtures.report.make_runs import FakeTask, write_run
from taskgrove.cli import main
from taskgrove.report.collect import load_run
from taskgrove.report.compare import compare_runs, compare_values, render_comparison


@pytest.fixture
def runs(tmp_path):
    # t/acc: A right on q0..q5; B right on q0..q3 and q6..q9 -> on the matched ids q2..q9:
    #   A = 1,1,1,1,0,0,0,0  B = 1,1,0,0,1,1,1,1 -> b (A only) = 2, c (B only) = 4
    a = write_run(
        tmp_path,
        "run-a",
        "model-a",
        {
            "t/acc": FakeTask([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], ids=[f"q{i}" for i in range(10)]),
            "t/only_a": FakeTask([1, 0]),
            "t/f1": FakeTask([0.0, 1.0, 1.0], primary="macro_f1", corpus=0.5),
            "t/rouge": FakeTask([0.1, 0.2, 0.3, 0.4], primary="rougeL"),
            "t/broken": FakeTask([1.0]),
        },
    )
    b = write_run(
        tmp_path,
        "run-b",
        "model-b",
        {
            "t/acc": FakeTask([1, 1, 0, 0, 1, 1, 1, 1, 0, 0], ids=[f"q{i}" for i in range(2, 12)]),
            "t/only_b": FakeTask([1]),
            "t/f1": FakeTask([1.0, 1.0, 1.0], primary="macro_f1", corpus=0.9),
            "t/rouge": FakeTask([0.3, 0.4, 0.5, None], primary="rougeL"),
        },
        unscored={"t/broken": "RuntimeError: boom"},
    )
    return load_run(a), load_run(b)


def by_task(comparison):
    return {t.task: t for t in comparison.tasks}


def test_matched_ids_mcnemar_and_bootstrap(runs):
    result = by_task(compare_runs(*runs, n_resamples=2000))
    acc = result["t/acc"]
    assert acc.status == "compared" and acc.field == "reward"
    assert (acc.n_a, acc.n_b, acc.n_paired, acc.only_a, acc.only_b) == (10, 10, 8, 2, 2)
    assert "ids differ: 10 scored in A, 10 in B, 8 matched" in acc.note
    assert (acc.mcnemar.b, acc.mcnemar.c) == (2, 4)
    assert acc.mcnemar.p_exact == pytest.approx(2 * (1 + 6 + 15) / 64)  # 2 * P(X <= 2), X ~ Bin(6, 1/2)
    assert acc.mcnemar.p_mid == pytest.approx((2 * 22 - 15) / 64)
    assert acc.paired.mean_a == pytest.approx(0.5) and acc.paired.mean_b == pytest.approx(0.75)
    assert acc.paired.diff == pytest.approx(0.25)
    assert acc.paired.ci_low < 0.25 < acc.paired.ci_high
    assert acc.p_value == acc.mcnemar.p_exact and not acc.significant


def test_one_sided_failed_and_corpus_tasks(runs):
    result = by_task(compare_runs(*runs, n_resamples=500))
    assert result["t/only_a"].status == "only in A" and result["t/only_b"].status == "only in B"
    assert result["t/broken"].status == "failed in B" and "boom" in result["t/broken"].note
    f1 = result["t/f1"]
    assert (
        f1.field == "reward"
        and "'macro_f1' is not a per-sample mean in A and B; compared per-sample reward instead" in f1.note
    )
    rouge = result["t/rouge"]
    assert rouge.field == "rougeL" and rouge.mcnemar is None  # not 0/1 scores: no McNemar
    assert (
        rouge.n_paired == 3
        and rouge.errors_b == 1
        and "errored samples: 0 in A (left out), 1 in B (left out)" in rouge.note
    )
    assert rouge.paired.diff == pytest.approx(0.2)  # every matched pair differs by exactly 0.2
    assert rouge.paired.ci_low == pytest.approx(0.2) and rouge.paired.ci_high == pytest.approx(0.2)
    assert rouge.significant  # a constant non-zero difference: p = 1 / (1 + resamples)


def test_compare_values_without_overlap():
    paired, test, ids = compare_values({"a": 1.0}, {"b": 0.0})
    assert paired is None and test is None and ids == []


def test_renderings(runs):
    comparison = compare_runs(*runs, n_resamples=300)
    table = render_comparison(comparison, "table")
    assert "B - A [95% CI]" in table and "+0.250 [" in table and "2/4" in table and "only in A" in table
    data = json.loads(render_comparison(comparison, "json"))
    acc = next(t for t in data["tasks"] if t["task"] == "t/acc")
    assert acc["mcnemar"] == {
        "b_right_in_a_only": 2,
        "c_right_in_b_only": 4,
        "p_exact": pytest.approx(0.6875),
        "p_mid": pytest.approx(29 / 64),
    }
    assert acc["n_paired"] == 8 and acc["only_in_a"] == 2 and data["difference"] == "B - A"
    assert "| t/acc [" in render_comparison(comparison, "markdown")


def test_compare_command(runs, tmp_path, capsys):
    a, b = runs
    assert (
        main(
            [
                "compare",
                str(a.root),
                str(b.root),
                "--resamples",
                "200",
                "--format",
                "json",
                "-o",
                str(tmp_path / "c.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "c.json").read_text())["a"]["run_id"] == "run-a"
    assert main(["compare", "run-a", "run-b", "--output-dir", str(a.root.parent), "--resamples", "200"]) == 0
    assert "t/acc" in capsys.readouterr().out
    assert main(["compare", str(a.root), str(tmp_path / "missing")]) == 2
