"""Loading runs and rendering the score table: table, Markdown, CSV, JSON; the `report` command."""

import csv
import io
import json
from pathlib import Path

import pytest

from fixtures.report.make_runs import FakeTask, write_run
from scripted import ScriptedModel
from taskgrove.cli import main
from taskgrove.config import build_config
from taskgrove.errors import ConfigError, MultiTaskError
from taskgrove.report.collect import load_run, load_runs, short_model_name
from taskgrove.report.leaderboard import build_leaderboard
from taskgrove.report.tables import render_leaderboard
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

CORE_TASKS = Path(__file__).parent / "fixtures" / "core" / "tasks.py"


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(
        tmp_path,
        "20260101-000000-aaaa",
        "openai/model-a",
        {
            "g/sub/one": FakeTask([1, 0, 1, 1]),
            "g/sub/two": FakeTask([0, 0, 1, 0, 0, 0, 0, 1]),
            "g/three": FakeTask([0.5, 0.7], primary="f1"),
        },
    )
    b = write_run(
        tmp_path,
        "20260101-000001-bbbb",
        "local:/ckpt/run7/final",
        {"g/sub/one": FakeTask([1, 1, 1, 1]), "g/three": FakeTask([0.0, 1.0], primary="bleu", corpus=0.3)},
        unscored={"g/sub/two": "FileNotFoundError: data missing"},
    )
    return a, b


def executor_run(tmp_path: Path) -> Path:
    """A real run directory of the core test tasks (two of them fail on purpose)."""
    registry = new_registry()
    registry.add_path(CORE_TASKS)

    def reply(messages, tools):
        number = int(messages[-1]["content"].split()[-1])
        return "wrong" if number % 5 == 0 else str(number)

    config = build_config(
        {"mode": "run", "tasks": ["core"], "output_dir": str(tmp_path / "results"), "model": "py:models.py:slow_echo"}
    )
    executor = Executor(config, registry, model=ScriptedModel(reply), progress=PlainProgress(interval=1e9))
    with pytest.raises(MultiTaskError):
        executor.run()
    return executor.store.root


def test_short_model_names():
    assert short_model_name("py:/x/models.py:slow_echo") == "slow_echo"
    assert short_model_name("local:/ckpt/run7/final") == "run7/final"
    assert short_model_name("local:HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert short_model_name("openai/gpt-4o-mini") == "openai/gpt-4o-mini"
    assert short_model_name(None) == "default-model"


def test_load_run_of_a_real_executor_run(tmp_path):
    run = load_run(executor_run(tmp_path))
    assert run.status == "failed" and run.label.startswith("scripted ")  # the model's own name
    assert sorted(run.tasks) == ["core/always_fails", "core/broken_dataset", "core/count", "core/flaky"]
    count, flaky = run.tasks["core/count"], run.tasks["core/flaky"]
    assert count.score.value == pytest.approx(0.8) and count.n == 40 and count.score.has_interval
    assert flaky.n == 40 and flaky.n_failed == 4 and flaky.failed_samples == "wrong"  # failures count as wrong
    assert run.tasks["core/broken_dataset"].score is None and run.tasks["core/broken_dataset"].status == "failed"
    assert "FileNotFoundError" in run.tasks["core/broken_dataset"].error
    board = build_leaderboard([run])
    weighted = next(r for r in board.rows if r.name == "core" and r.statistic == "weighted").cells[0]
    assert weighted.status == "partial"
    assert weighted.score.value == pytest.approx((32 + 32) / 80)  # 32/40 right, 32/40 right (4 failed)


def test_leaderboard_rows_are_tasks_then_groups(two_runs):
    board = build_leaderboard(load_runs([(p, None) for p in two_runs]))
    keys = [(r.kind, r.name, r.statistic) for r in board.rows]
    assert keys == [
        ("task", "g/sub/one", "reward"),
        ("task", "g/sub/two", "reward"),
        ("task", "g/three", "bleu / f1"),
        ("group", "g", "mean"),
        ("group", "g", "weighted"),
        ("group", "g/sub", "mean"),
        ("group", "g/sub", "weighted"),
    ]
    rows = {(r.name, r.statistic): r for r in board.rows}
    a_g, b_g = rows[("g", "mean")].cells
    assert a_g.score.value == pytest.approx((0.75 + 0.25 + 0.6) / 3) and a_g.score.has_interval
    assert b_g.score.value == pytest.approx((1.0 + 0.3) / 2) and not b_g.score.has_interval and b_g.status == "partial"
    assert rows[("g/sub/two", "reward")].cells[1].status == "failed"
    assert rows[("g/sub", "weighted")].cells[0].score.value == pytest.approx(5 / 12)


def test_csv_has_one_line_per_row_and_run_with_known_values(two_runs):
    board = build_leaderboard(load_runs([(p, None) for p in two_runs]))
    lines = list(csv.DictReader(io.StringIO(render_leaderboard(board, "csv"))))
    assert len(lines) == len(board.rows) * 2
    one_a = next(row for row in lines if row["name"] == "g/sub/one" and row["run_id"].endswith("aaaa"))
    assert (
        float(one_a["value"]) == 0.75
        and one_a["n"] == "4"
        and float(one_a["ci_low"]) <= 0.75 <= float(one_a["ci_high"])
    )
    assert one_a["label"] == "openai/model-a 20260101-000000-aaaa" and one_a["model"] == "openai/model-a"
    two_b = next(row for row in lines if row["name"] == "g/sub/two" and row["run_id"].endswith("bbbb"))
    assert two_b["status"] == "failed" and two_b["value"] == "" and "data missing" in two_b["note"]
    weighted_a = next(
        row
        for row in lines
        if row["name"] == "g/sub" and row["statistic"] == "weighted" and row["run_id"].endswith("aaaa")
    )
    assert float(weighted_a["value"]) == pytest.approx(5 / 12)


def test_json_markdown_and_table(two_runs):
    board = build_leaderboard(load_runs([(p, None) for p in two_runs]))
    data = json.loads(render_leaderboard(board, "json"))
    assert [r["run_id"] for r in data["runs"]] == ["20260101-000000-aaaa", "20260101-000001-bbbb"]
    g_mean = next(r for r in data["rows"] if r["name"] == "g" and r["statistic"] == "mean")
    assert (
        g_mean["kind"] == "group"
        and g_mean["cells"][1]["ci_low"] is None
        and "no interval" in g_mean["cells"][1]["note"]
    )
    assert "stratified bootstrap" in data["notes"][0]
    markdown = render_leaderboard(board, "markdown")
    assert (
        "| task / group | metric | openai/model-a 20260101-000000-aaaa | run7/final 20260101-000001-bbbb |" in markdown
    )
    assert "| g/sub/one | reward | 0.750 [" in markdown
    table = render_leaderboard(board, "table")
    assert "g/sub/one" in table and "0.750 [" in table and "failed [" in table and "20260101-000001-bbbb" in table
    with pytest.raises(ValueError):
        render_leaderboard(board, "xml")


def test_report_command_writes_formats_and_html(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert main(["report", str(a), str(b), "--format", "csv", "--output", str(tmp_path / "out" / "s.csv")]) == 0
    assert (tmp_path / "out" / "s.csv").read_text().startswith("kind,name,statistic")
    assert main(["report", str(a)]) == 0
    assert "g/sub/one" in capsys.readouterr().out
    # run ids are looked up under --output-dir, like `taskgrove show`
    assert main(["report", a.name, "--output-dir", str(a.parent), "--html", str(tmp_path / "html")]) == 0
    assert (tmp_path / "html" / "index.html").stat().st_size > 5000
    captured = capsys.readouterr()
    assert captured.out == "" and "HTML report" in captured.err  # --html alone prints no table


def test_report_command_errors_exit_2(tmp_path, capsys):
    assert main(["report"]) == 2
    assert "at least one run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert main(["report", "--label", "base"]) == 2
    assert "LABEL=RUN_DIR" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a taskgrove run directory"):
        load_run(tmp_path / "empty")


def test_unscored_tasks_say_why(tmp_path):
    run_dir = write_run(tmp_path, "r", "m", {"g/a": FakeTask([1, 0]), "g/b": FakeTask([1, 1])})
    (run_dir / "g" / "a" / "metrics.json").unlink()  # as after `taskgrove infer`
    metrics = json.loads((run_dir / "g" / "b" / "metrics.json").read_text())
    metrics["primary_metric"] = "accuracy"  # names a metric it does not hold
    (run_dir / "g" / "b" / "metrics.json").write_text(json.dumps(metrics))
    board = build_leaderboard(load_runs([(run_dir, None)]))
    cells = {row.name: row.cells[0] for row in board.rows if row.kind == "task"}
    assert (cells["g/a"].status, cells["g/a"].note) == ("unscored", "no metrics.json (inference only?)")
    assert (cells["g/b"].status, cells["g/b"].note) == ("unscored", "metrics.json has no 'accuracy'")
    assert next(r for r in board.rows if r.name == "g").cells[0].status == "missing"
