"""`taskgrove transfer`: the matrix math on fake runs against hand-computed values, row clustering,
the transfer mixture, the report's heatmap and node view, and usage errors that create nothing."""

import json
import sys
from pathlib import Path

import pytest

from fixtures.report.make_runs import FakeTask, write_run
from taskgrove.cli import main
from taskgrove.report.collect import load_run
from taskgrove.report.stats import benjamini_hochberg
from taskgrove.report.transfer import cluster_order, load_transfer, transfer_grid, transfer_matrix, write_transfer
from taskgrove.train.mixture import mix, mixture_counts, mixture_weights, transfer_multipliers

N = 40
R = 2000


def ones(k: int, n: int = N) -> list[float]:
    """``k`` right answers (the first ``k`` items), then wrong ones."""
    return [1.0 if i < k else 0.0 for i in range(n)]


@pytest.fixture
def matrix_runs(tmp_path):
    # base: 8/40 right on add, 20/40 on sub, 0/40 on x (every item wrong)
    base = write_run(
        tmp_path,
        "base",
        "m",
        {"fam/add": FakeTask(ones(8)), "fam/sub": FakeTask(ones(20)), "other/x": FakeTask(ones(0))},
    )
    # adapter trained on add: right on 28 of add (+20 items), sub unchanged, x right on every item (+40)
    add = write_run(
        tmp_path,
        "add",
        "m",
        {"fam/add": FakeTask(ones(28)), "fam/sub": FakeTask(ones(20)), "other/x": FakeTask(ones(40))},
    )
    # adapter trained on x: loses the 8 right answers on add (-8), sub unchanged, x unchanged
    x = write_run(
        tmp_path, "x", "m", {"fam/add": FakeTask(ones(0)), "fam/sub": FakeTask(ones(20)), "other/x": FakeTask(ones(0))}
    )
    return tmp_path, load_run(base, "base"), {"fam/add": load_run(add, "a_add"), "other/x": load_run(x, "a_x")}


def test_matrix_cells_equal_hand_computed_values(matrix_runs):
    _, base, sources = matrix_runs
    data = transfer_matrix(base, sources, n_resamples=R)
    # "other" holds only other/x, so it would repeat that leaf's column: left out
    assert [t["node"] for t in data["targets"]] == ["(all)", "fam", "fam/add", "fam/sub", "other/x"]
    add, x = data["cells"]["fam/add"], data["cells"]["other/x"]
    assert add["fam/add"]["diff"] == pytest.approx(20 / 40)
    assert (add["fam/add"]["mean_base"], add["fam/add"]["mean_source"]) == (pytest.approx(0.2), pytest.approx(0.7))
    assert add["fam/sub"]["diff"] == 0 and add["fam/sub"]["p_value"] == 1.0  # every pair equal
    assert add["fam"]["diff"] == pytest.approx(20 / 80) and add["fam"]["n"] == 80  # pooled over 80 items
    assert add["(all)"]["diff"] == pytest.approx(60 / 120)
    # every pair of x moves by exactly +1: the interval is [1, 1] and p = 1 / (1 + R)
    assert (add["other/x"]["diff"], add["other/x"]["ci_low"], add["other/x"]["ci_high"]) == (1.0, 1.0, 1.0)
    assert add["other/x"]["p_value"] == pytest.approx(1 / (1 + R))
    assert x["fam/add"]["diff"] == pytest.approx(-8 / 40) and x["fam/add"]["ci_high"] < 0
    assert x["other/x"]["diff"] == 0 and x["other/x"]["verdict"] == "no evidence"
    # BH across the whole matrix (10 cells), not per row
    cells = [c for s in ("fam/add", "other/x") for c in data["cells"][s].values()]
    q = benjamini_hochberg([c["p_value"] for c in cells])
    assert [c["q_value"] for c in cells] == pytest.approx(q)
    assert data["test"]["adjustment"].endswith("all 10 tested cells of the matrix")
    assert add["fam/add"]["verdict"] == "helps" and add["other/x"]["verdict"] == "helps"
    assert x["fam/add"]["verdict"] == "hurts"
    assert add["fam/sub"]["verdict"] == "no evidence"


def test_written_and_reloaded_with_relative_run_dirs(matrix_runs):
    root, base, sources = matrix_runs
    data = transfer_matrix(base, sources, n_resamples=R)
    _, md_path = write_transfer(root / "out", data)
    loaded = load_transfer(root / "out")
    assert loaded["base"]["run_dir"] == "../base" and loaded["sources"][0]["run_dir"] == "../add"
    assert loaded["cells"] == json.loads(json.dumps(data["cells"]))
    md = md_path.read_text()
    assert "| add | +0.500 [" in md and "+1.000 [+1.000, +1.000] *" in md
    assert transfer_grid(loaded).rows[-1][0] == "base score"


def test_rows_cluster_by_profile_and_say_so_without_scipy(monkeypatch):
    profiles = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.9, 1.0, 0.1], [0.1, 0.0, 0.9]]
    order, method = cluster_order(profiles)
    pytest.importorskip("scipy")
    assert sorted(order) == [0, 1, 2, 3] and "clustering" in method
    position = {row: i for i, row in enumerate(order)}
    assert abs(position[0] - position[2]) == 1 and abs(position[1] - position[3]) == 1
    monkeypatch.setitem(sys.modules, "scipy.cluster.hierarchy", None)
    order, method = cluster_order(profiles)
    assert order == [0, 1, 2, 3] and "scipy is not installed" in method


def test_transfer_multipliers_and_weights_by_hand():
    cell = lambda high: {"ci_high": high}  # noqa: E731
    matrix = {
        "cells": {
            "a": {"a": cell(0.5), "b": cell(-0.1), "c": cell(0.05)},  # h = (0.1 + 0) / 2 = 0.05 -> 0.75
            "b": {"a": cell(-0.3), "b": cell(0.2), "c": cell(-0.3)},  # h = 0.3 -> floor 0.1
            "c": {"a": cell(0.0), "b": cell(0.2)},  # h = 0 -> 1
        }
    }
    m = transfer_multipliers(matrix, ["a", "b", "c"])
    assert m == pytest.approx({"a": 0.75, "b": 0.1, "c": 1.0})
    shares = mixture_weights({"a": 100, "b": 100, "c": 50}, "transfer", multipliers=m)
    total = 75 + 10 + 50
    assert shares == pytest.approx({"a": 75 / total, "b": 10 / total, "c": 50 / total})
    examples = {name: [(name, i) for i in range(size)] for name, size in (("a", 100), ("b", 100), ("c", 50))}
    counts = mixture_counts(mix(examples, "transfer", multipliers=m, size=total), lambda e: e[0])
    assert counts == {"a": 75, "b": 10, "c": 50}
    with pytest.raises(Exception, match="no row for d"):
        transfer_multipliers(matrix, ["a", "d"])


def test_report_draws_the_heatmap_and_the_node_view(matrix_runs, capsys):
    root, base, sources = matrix_runs
    write_transfer(root / "out", transfer_matrix(base, sources, n_resamples=R))
    assert main(["report", str(root / "out"), "--html", str(root / "html"), "--format", "markdown"]) == 0
    page = (root / "html" / "index.html").read_text()
    assert 'id="transfer"' in page and '<a href="#transfer">Transfer</a>' in page
    assert 'data-rows="2" data-cols="5"' in page
    assert 'data-source="fam/add" data-target="other/x"' in page and 'stroke-width="3"' in page
    assert "transfer matrix (source adapter - base)" in capsys.readouterr().out
    assert main(["report", str(root / "base"), str(root / "add"), "--html", str(root / "two")]) == 0
    page = (root / "two" / "index.html").read_text()
    assert 'id="moved"' in page and 'data-node="fam/add"' in page and "improved" in page


@pytest.mark.parametrize(
    "argv",
    [
        ["transfer"],
        ["transfer", "--tasks", "treemark/similar/sst2"],
        ["transfer", "--tasks", "treemark/similar", "--config-index", "0"],
        ["transfer", "--tasks", "treemark/similar", "--resamples", "0"],
        ["train", "--tasks", "treemark/similar", "--mixture", "transfer"],
        ["train", "--tasks", "treemark/similar", "--mixture", "transfer", "--mixture-transfer", "nowhere.json"],
    ],
)
def test_usage_errors_exit_2_with_one_line_and_create_nothing(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # trains two adapters of the embedded model for one step each and evaluates three models
def test_transfer_cli_end_to_end_then_reuses_everything(tmp_path, capsys):
    from pathlib import Path

    pytest.importorskip("peft")
    fixtures = Path(__file__).parent / "fixtures" / "train" / "tasks.py"
    argv = [
        "transfer",
        "--tasks",
        "trainfix/similar",
        "--include-path",
        str(fixtures),
        "--config-index",
        "2",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--limit",
        "4",
        "--eval-limit",
        "3",
        "--eval-max-tokens",
        "3",
        "--resamples",
        "500",
        "--output-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    data = load_transfer(tmp_path)
    leaves = ["trainfix/similar/animal", "trainfix/similar/parity"]
    assert [s["task"] for s in data["sources"]] == leaves
    assert [t["node"] for t in data["targets"]] == ["trainfix/similar", *leaves]  # "trainfix" repeats it
    for source in data["sources"]:  # train-compare's names; each evaluation is a normal run folder
        assert Path(source["path"]).name == f"single_{source['task'].rsplit('/', 1)[1]}_similar_LoRA_8"
        run = load_run(tmp_path / source["run_dir"])
        assert sorted(run.tasks) == leaves and all(t.score is not None for t in run.tasks.values())
    for row in data["cells"].values():
        for cell in row.values():
            assert cell["n"] in (3, 6) and cell["ci_low"] <= cell["diff"] <= cell["ci_high"]
    first = capsys.readouterr()
    assert "transfer matrix (source adapter - base)" in first.out
    assert main(argv) == 0  # a second run trains nothing and reuses every evaluation
    again = capsys.readouterr().err
    assert again.count("already trained with this config") == 2 and "starting" not in again
    assert load_transfer(tmp_path)["cells"] == data["cells"]


def test_mixture_transfer_multipliers_are_recorded_in_the_config(tmp_path):
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train.presets import resolve_train_config

    registry = build_registry([])
    names = registry.resolve(["treemark/similar"])
    sst2, mnli, qqp = (next(n for n in names if n.endswith(leaf)) for leaf in ("sst2", "mnli", "qqp"))
    cells = {
        sst2: {mnli: {"ci_high": -0.2}, qqp: {"ci_high": 0.1}},  # h = 0.1 -> 0.5
        mnli: {sst2: {"ci_high": 0.0}, qqp: {"ci_high": 0.3}},  # h = 0 -> 1
        qqp: {sst2: {"ci_high": -0.02}, mnli: {"ci_high": -0.02}},  # h = 0.02 -> 0.9
    }
    (tmp_path / "transfer.json").write_text(json.dumps({"kind": "transfer", "cells": cells}))
    tasks = {name: registry.create(name) for name in names}
    config = resolve_train_config(tasks, cli={"mixture": "transfer", "output_dir": str(tmp_path)})
    assert config.mixture_multipliers == pytest.approx({sst2: 0.5, mnli: 1.0, qqp: 0.9})
    saved = config.model_dump(mode="json")
    assert saved["mixture"] == "transfer" and saved["mixture_multipliers"] == config.mixture_multipliers
    (tmp_path / "transfer.json").unlink()  # a resumed run keeps the multipliers it started with
    again = resolve_train_config(tasks, saved={k: saved[k] for k in ("mixture", "mixture_multipliers", "output_dir")})
    assert again.mixture_multipliers == config.mixture_multipliers


def test_a_finished_run_is_reused_whatever_it_reported_to_and_refused_with_another_config(tmp_path: Path) -> None:
    """One check for train-compare and transfer: trackers and evaluation settings do not make a run differ."""
    from taskgrove.errors import ConfigError
    from taskgrove.train import checkpoint as ckpt
    from taskgrove.train.presets import TrainConfig

    config = TrainConfig(tasks=["trainfix/similar/a"], lora_rank=8)
    run_dir = tmp_path / "single_a_LoRA_8"
    assert not ckpt.finished_same(run_dir, config)  # nothing there yet
    run_dir.mkdir()
    saved = {**config.model_dump(mode="json"), "report_to": ["tensorboard"], "eval_limit": 7}
    ckpt.write_json(run_dir / ckpt.CONFIG_FILE, saved)
    ckpt.write_json(run_dir / ckpt.RESULT_FILE, {"steps": 3, "total_steps": 3})
    assert ckpt.finished_same(run_dir, config)
    with pytest.raises(ConfigError, match="different config \\(lora_rank\\)"):
        ckpt.finished_same(run_dir, config.model_copy(update={"lora_rank": 16}))
