"""Group scores up the task tree: known means, weights, honest intervals, partial groups."""

import pytest

from fixtures.report.make_runs import FakeTask, write_run
from taskgrove.report.collect import load_run
from taskgrove.report.groups import ALL, Member, group_names, members_of, run_groups, score_group


def test_group_names_are_every_inner_node_parents_first():
    names = ["fin/cls/fomc", "fin/cls/numclaim", "fin/qa/convfinqa", "tm/sim/sst2"]
    assert group_names(names) == ["fin", "fin/cls", "fin/qa", "tm", "tm/sim", ALL]
    assert group_names(["core/a", "core/b"]) == ["core"]  # one root: no extra (all) group
    assert group_names(["a", "b"]) == [ALL]
    assert group_names(["only/one"]) == ["only"]
    assert members_of("fin", names) == ["fin/cls/fomc", "fin/cls/numclaim", "fin/qa/convfinqa"]
    assert members_of("fin/cls", names) == ["fin/cls/fomc", "fin/cls/numclaim"]
    assert members_of("fi", names) == []  # a prefix of a segment is not a group
    assert members_of(ALL, names) == sorted(names)


def test_mean_and_weighted_mean_hand_values():
    # A: 3 of 4 right (0.75); B: 2 of 8 right (0.25) -> mean 0.5, weighted (3 + 2) / 12
    a = Member("g/a", 0.75, 4, "accuracy", [1, 0, 1, 1])
    b = Member("g/b", 0.25, 8, "accuracy", [0, 0, 1, 0, 0, 0, 0, 1])
    group = score_group("g", [a, b], ["g/a", "g/b"])
    assert group.mean.value == pytest.approx(0.5)
    assert group.weighted.value == pytest.approx(5 / 12)
    assert group.mean.n == group.weighted.n == 12
    assert group.complete and group.note is None
    assert group.mean.ci_low < 0.5 < group.mean.ci_high
    assert group.weighted.ci_low < 5 / 12 < group.weighted.ci_high


def test_corpus_metric_member_gives_no_interval_and_says_why():
    a = Member("g/a", 0.75, 4, "accuracy", [1, 0, 1, 1])
    f1 = Member(
        "g/b",
        0.40,
        10,
        "macro_f1",
        None,
        "g/b: 'macro_f1' is not the mean of its per-sample values (a corpus-level statistic)",
    )
    group = score_group("g", [a, f1], ["g/a", "g/b"])
    assert group.mean.value == pytest.approx(0.575)
    assert group.weighted.value == pytest.approx((0.75 * 4 + 0.4 * 10) / 14)
    assert not group.mean.has_interval and not group.weighted.has_interval
    assert "no interval" in group.note and "macro_f1" in group.note
    assert "primary metrics used: a=accuracy, b=macro_f1" in group.note


def test_partial_and_empty_groups():
    a = Member("g/a", 1.0, 2, "reward", [1, 1])
    partial = score_group("g", [a], ["g/a", "g/b", "g/c"])
    assert not partial.complete
    assert partial.mean.value == 1.0 and "scored over 1 of 3 tasks" in partial.note
    empty = score_group("g", [], ["g/a"])
    assert empty.mean is None and empty.weighted is None


def test_run_groups_reads_samples_and_checks_the_primary_metric(tmp_path):
    run_dir = write_run(
        tmp_path,
        "r1",
        "m",
        {
            "x/sim/a": FakeTask([1, 0, 1, 1]),  # reward 0.75, n 4
            "x/sim/b": FakeTask([0, 0, 1, 0, 0, 0, 0, 1, None, None]),  # 2 errored samples: 0.25 over 8
            "x/gen/c": FakeTask([0.2, 0.4, 0.6], primary="rougeL"),  # per-sample mean 0.4
            "x/gen/d": FakeTask([0.0, 1.0], primary="bleu", corpus=0.3),  # corpus statistic
        },
        unscored={"x/gen/e": "FileNotFoundError: gone"},
    )
    run = load_run(run_dir)
    names = sorted(run.tasks)
    groups = run_groups(run, names)
    assert list(groups) == ["x", "x/gen", "x/sim"]
    sim = groups["x/sim"]
    assert sim.mean.value == pytest.approx(0.5) and sim.weighted.value == pytest.approx(5 / 12)
    assert sim.mean.has_interval and sim.complete
    gen = groups["x/gen"]
    assert gen.members == ("x/gen/c", "x/gen/d") and gen.expected == ("x/gen/c", "x/gen/d", "x/gen/e")
    assert gen.mean.value == pytest.approx((0.4 + 0.3) / 2)
    assert gen.weighted.value == pytest.approx((0.4 * 3 + 0.3 * 2) / 5)
    assert not gen.mean.has_interval
    assert "x/gen/d: 'bleu' is not the mean" in gen.note and "scored over 2 of 3 tasks" in gen.note
    top = groups["x"]
    assert top.mean.value == pytest.approx((0.75 + 0.25 + 0.4 + 0.3) / 4)
    assert top.weighted.value == pytest.approx((3 + 2 + 1.2 + 0.6) / (4 + 8 + 3 + 2))
