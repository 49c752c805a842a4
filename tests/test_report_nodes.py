"""Significance at every node: planted differences found, null ones not, BH checked by hand."""

import json

import pytest

from fixtures.report.make_runs import FakeTask, bernoulli, uniform, write_run
from taskgrove.cli import main
from taskgrove.report.collect import load_run
from taskgrove.report.compare import compare_runs
from taskgrove.report.nodes import compare_nodes
from taskgrove.report.stats import benjamini_hochberg, paired_bootstrap, stratified_paired_bootstrap


@pytest.fixture
def planted(tmp_path):
    # fam/add and fam/sub: B right on 30 more of 80 items (a planted gain); fam/mul and other/x: B = A
    n = 80
    base = bernoulli(n, 0.4, 1)
    better = [1.0 if i < 30 else v for i, v in enumerate(base)]
    same = bernoulli(n, 0.5, 2)
    a = write_run(
        tmp_path,
        "a",
        "m-a",
        {
            "fam/add": FakeTask(base),
            "fam/sub": FakeTask(base),
            "fam/mul": FakeTask(same),
            "other/x": FakeTask(uniform(n, 0.2, 0.8, 3), primary="f1"),
            "other/bleu": FakeTask(uniform(n, 0.0, 1.0, 4), primary="bleu", corpus=0.3),
        },
    )
    b = write_run(
        tmp_path,
        "b",
        "m-b",
        {
            "fam/add": FakeTask(better),
            "fam/sub": FakeTask(better),
            "fam/mul": FakeTask(same),
            "other/x": FakeTask(uniform(n, 0.2, 0.8, 3), primary="f1"),
            "other/bleu": FakeTask(uniform(n, 0.0, 1.0, 5), primary="bleu", corpus=0.9),
        },
    )
    return tmp_path, load_run(a), load_run(b)


def nodes_by_name(a, b, **kw):
    return {n.node: n for n in compare_nodes(compare_runs(a, b, n_resamples=2000), n_resamples=2000, **kw)}


def test_planted_difference_found_null_not(planted):
    _, a, b = planted
    nodes = nodes_by_name(a, b)
    assert list(nodes) == [
        "(all)",
        "fam",
        "fam/add",
        "fam/mul",
        "fam/sub",
        "other",
        "other/bleu",
        "other/x",
    ]
    gained = sum(1 for i, v in enumerate(bernoulli(80, 0.4, 1)) if i < 30 and v == 0)
    assert nodes["fam/add"].paired.diff == pytest.approx(gained / 80)
    assert nodes["fam/add"].verdict == "improved" and nodes["fam/sub"].verdict == "improved"
    assert nodes["fam/mul"].verdict == "no evidence" and nodes["fam/mul"].paired.diff == 0
    assert nodes["other/x"].verdict == "no evidence"
    # fam pools 240 items: the gain of add and sub spread over three tasks of equal size
    assert nodes["fam"].paired.n == 240
    assert nodes["fam"].paired.diff == pytest.approx(2 * gained / 240)
    assert nodes["fam"].verdict == "improved"
    assert nodes["fam"].paired.ci_low > 0
    # the corpus-BLEU leaf is tested on reward, but left out of its groups, which say so
    assert nodes["other"].members == ["other/x"] and nodes["other"].left_out == ["other/bleu"]
    assert "primary metric is not a per-sample mean" in nodes["other"].note
    assert nodes["other"].verdict == "no evidence"
    assert nodes["(all)"].members == ["fam/add", "fam/mul", "fam/sub", "other/x"]
    assert nodes["(all)"].depth == 0 and nodes["fam"].depth == 1 and nodes["fam/add"].depth == 2


def test_null_runs_have_no_evidence_anywhere(tmp_path):
    tasks = {f"g/t{i}": FakeTask(bernoulli(50, 0.5, 10 + i)) for i in range(3)}
    a = load_run(write_run(tmp_path, "a", "m", tasks))
    b = load_run(write_run(tmp_path, "b", "m", tasks))
    nodes = nodes_by_name(a, b)
    assert {n.verdict for n in nodes.values()} == {"no evidence"}
    assert all(n.paired.diff == 0 and n.q_value == 1.0 for n in nodes.values())


def test_q_values_are_bh_of_the_raw_p_values(planted):
    _, a, b = planted
    nodes = [n for n in nodes_by_name(a, b).values() if n.paired]
    assert [n.q_value for n in nodes] == benjamini_hochberg([n.paired.p_value for n in nodes])


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20, 0.005]
    # sorted: 0.005 (1), 0.01 (2), 0.03 (3), 0.04 (4), 0.20 (5); m = 5
    # m p / rank: 0.025, 0.025, 0.05, 0.05, 0.20; running minimum from the top keeps them
    assert benjamini_hochberg(p) == pytest.approx([0.025, 0.05, 0.05, 0.20, 0.025])
    # monotone step-up: 0.04 at rank 2 (3 * 0.04 / 2 = 0.06) is pulled down by 0.045 at rank 3 (3 * 0.045 / 3)
    assert benjamini_hochberg([0.001, 0.04, 0.045]) == pytest.approx([0.003, 0.045, 0.045])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])
    assert benjamini_hochberg([]) == []
    with pytest.raises(ValueError):
        benjamini_hochberg([1.5])


def test_stratified_paired_bootstrap():
    a, b = [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]
    assert stratified_paired_bootstrap([(a, b)], n_resamples=500) == paired_bootstrap(a, b, n_resamples=500)
    pooled = stratified_paired_bootstrap([(a, b), ([0.5, 0.5], [0.5, 0.5])], n_resamples=500)
    assert pooled.n == 6 and pooled.diff == pytest.approx(1 / 6)
    assert pooled.mean_a == pytest.approx(3 / 6) and pooled.mean_b == pytest.approx(4 / 6)
    assert pooled.ci_low >= 0 and pooled.ci_high <= 1 / 6 * 4 / 1 + 1e-9


def test_cli_compare_nodes_table_and_json(planted, capsys):
    root, _, _ = planted
    assert main(["compare", "a", "b", "--output-dir", str(root), "--resamples", "500", "--view", "nodes"]) == 0
    out = capsys.readouterr().out
    assert "what really moved" in out and "improved" in out and "no evidence" in out
    assert "Benjamini-Hochberg" in out
    assert main(["compare", "a", "b", "--output-dir", str(root), "--resamples", "500", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["tasks"]) == 5 and len(data["nodes"]) == 8
    fam = next(n for n in data["nodes"] if n["node"] == "fam")
    assert fam["verdict"] == "improved" and fam["q_value"] >= fam["p_value"]
    assert set(fam) >= {"diff", "ci_low", "ci_high", "p_value", "q_value", "verdict", "members", "left_out"}
