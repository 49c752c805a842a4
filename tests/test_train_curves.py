"""Reports of training: curves of the in-loop evaluations (tasks and groups, intervals, regressions
below the base), the comparison in the terminal and HTML, and a training output folder reported
whole. The runs are real executor runs of a scripted model on the TreeMark fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.errors import ConfigError
from taskgrove.report.curve_svg import curve_charts, curves_section
from taskgrove.report.curves import find_curve_files, load_curve
from taskgrove.report.svg import heatmap
from taskgrove.report.training import load_comparison
from taskgrove.runner.executor import Executor
from taskgrove.runs.store import RunStore
from taskgrove.tasks.builtin import build_registry
from taskgrove.train.evaluate import read_scores, write_comparison

CATALOG = Path(__file__).parent / "fixtures" / "catalog" / "treemark" / "similar"
TASKS = ["treemark/similar/sst2", "treemark/similar/qqp"]
RUN = "similar_LoRA_8"


def _run(root: Path, run_id: str, reply: str) -> Path:
    """An executor run of a model that always answers ``reply`` on both fixture tasks."""
    config = build_config(
        {
            "mode": "run",
            "tasks": TASKS,
            "output_dir": str(root),
            "run_id": run_id,
            "progress": False,
            "task_config": {
                t: {"options": {"source": f"file:{CATALOG / t.rsplit('/', 1)[-1]}/{{split}}.jsonl"}} for t in TASKS
            },
        }
    )
    Executor(config, build_registry(plugins=False), model=ScriptedModel(lambda m, t: reply)).run()
    return root / run_id


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """checkpoints/: a base evaluation, and a trained run with a curve (step 0 base, 2, 4) and a comparison."""
    out = tmp_path_factory.mktemp("checkpoints")
    run_dir = out / RUN
    run_dir.mkdir()
    (run_dir / "train_config.json").write_text(json.dumps({"name": RUN, "tasks": TASKS, "kind": "multi"}))
    base = _run(out, "base-eval-0123456789", "positive")  # sst2 3 of 4 right, qqp unparsable
    step2 = _run(run_dir / "steps" / "step-2", "eval-aaaa", "yes")  # sst2 unparsable: a regression
    final = _run(run_dir, "eval-bbbb", "positive")
    points = [
        {"step": step, "label": label, "run_dir": str(where), "scores": read_scores(RunStore(where), TASKS)}
        for step, label, where in [(0, "base", base), (2, f"{RUN}@2", step2), (4, RUN, final)]
    ]
    (run_dir / "eval_curve.json").write_text(json.dumps({"run": RUN, "tasks": TASKS, "points": points}))
    comparison = {
        "tasks": TASKS,
        "models": [
            {"label": "base", "kind": "base", "trained_on": [], "scores": points[0]["scores"], "run_dir": str(base)},
            {
                "label": RUN,
                "kind": "multi",
                "path": str(run_dir),
                "config": "LoRA_8",
                "trained_on": TASKS,
                "scores": points[2]["scores"],
                "run_dir": str(final),
            },
        ],
    }
    write_comparison(run_dir, comparison)
    return out


def test_comparison_records_its_runs_relative_to_the_file(output: Path) -> None:
    saved = json.loads((output / RUN / "comparison.json").read_text())
    assert [m["run_dir"] for m in saved["models"]] == ["../base-eval-0123456789", "eval-bbbb"]
    assert [m.run_dir for m in load_comparison(output / RUN).models] == [
        output / "base-eval-0123456789",
        output / RUN / "eval-bbbb",
    ]


def test_curve_has_tasks_and_the_distinct_group_with_intervals(output: Path) -> None:
    assert find_curve_files(output) == [output / RUN / "eval_curve.json"]
    curve = load_curve(output / RUN / "eval_curve.json", n_resamples=200)
    assert curve.steps == [0, 2, 4] and curve.labels == ["base", f"{RUN}@2", RUN]
    assert curve.groups == ["treemark/similar"]  # "treemark" has the same members: not repeated
    sst2 = curve.values["treemark/similar/sst2"]
    assert [s.value for s in sst2] == [0.75, 0.0, 0.75]  # 3 of the 4 fixture sentences are positive
    group = curve.values["treemark/similar"]
    assert all(g is not None and g.has_interval for g in group)
    assert group[0].value == pytest.approx((sst2[0].value + curve.values["treemark/similar/qqp"][0].value) / 2)


def test_regressions_below_the_base_are_marked(output: Path) -> None:
    curve = load_curve(output / RUN / "eval_curve.json", n_resamples=200)
    assert curve.regressed("treemark/similar/sst2", 1)  # 0.0 [0, 0] under the base value 0.75
    assert not curve.regressed("treemark/similar/sst2", 2)  # back at the base value
    assert not curve.regressed("treemark/similar/sst2", 0)
    assert curve.interference() == []  # nothing ends below the base
    charts = curve_charts(curve)
    assert charts.count('class="curve"') == 3 and charts.count('class="regressed"') >= 1
    assert 'class="band"' in charts and 'class="base"' in charts
    assert 'id="curves"' in curves_section([curve])


def test_report_of_a_training_folder_shows_runs_comparison_and_curve(
    output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taskgrove.cli import main

    assert main(["report", str(output)]) == 0
    out = capsys.readouterr().out
    assert "base-eval-0123456789/" not in out  # the folder is not read as one run of odd task names
    for text in (
        "treemark/similar/sst2",
        "Training comparison",
        f"{RUN}  multi LoRA_8",
        "Evaluation during training: similar_LoRA_8",
        "↓",
    ):
        assert text in out
    rows = [line for line in out.splitlines() if line.startswith("│ treemark/similar/sst2")]
    assert rows and "0.750" in rows[0]  # the leaderboard has the runs' scores


def test_html_report_of_a_training_folder(output: Path, tmp_path: Path) -> None:
    from taskgrove.cli import main

    assert main(["report", str(output), "--html", str(tmp_path / "html")]) == 0
    page = (tmp_path / "html" / "index.html").read_text()
    for section in ('id="training"', 'id="curves"', 'id="samples"', 'id="heatmap-svg"'):
        assert section in page
    assert f">{RUN}<" in page  # the row label whole


def test_heatmap_never_cuts_labels_and_shows_intervals(output: Path) -> None:
    comparison = load_comparison(output / RUN)
    long = "single_a_very_long_task_name_of_forty_characters_dissimilar_LoRA_16"
    comparison.models[1] = type(comparison.models[1])(long, "single", comparison.models[1].scores)
    svg = heatmap(comparison)
    assert f">{long}<" in svg and "…" not in svg
    base = comparison.models[0].scores["treemark/similar/sst2"]
    assert base.has_interval and f">[{base.ci_low:.2f}, {base.ci_high:.2f}]<" in svg


@pytest.mark.slow
def test_train_evaluates_checkpoints_in_the_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("peft")
    from taskgrove.cli import main
    from taskgrove.report.collect import load_run

    fixtures = Path(__file__).parent / "fixtures" / "train" / "tasks.py"
    args = ["train", "--include-path", str(fixtures), "--tasks", "trainfix/similar/parity", "--config-index", "2"]
    args += ["--max-steps", "3", "--eval-every", "2", "--batch-size", "2", "--grad-accum", "1", "--limit", "4"]
    args += ["--lr", "1e-3", "--eval-limit", "3", "--eval-max-tokens", "3", "--output-dir", str(tmp_path)]
    assert main(args) == 0
    run_dir = tmp_path / "single_parity_similar_LoRA_8"
    curve = json.loads((run_dir / "eval_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [0, 2, 3]
    assert [p["label"] for p in curve["points"]] == [
        "base",
        "single_parity_similar_LoRA_8@2",
        "single_parity_similar_LoRA_8",
    ]
    folders = [
        Path(p["run_dir"]) if Path(p["run_dir"]).is_absolute() else run_dir / p["run_dir"] for p in curve["points"]
    ]
    assert (
        folders[1].parent == run_dir / "steps" / "step-2"
        and (folders[1].parent / "adapter_model.safetensors").is_file()
    )
    for folder, point in zip(folders, curve["points"], strict=True):
        run = load_run(folder)  # a normal run folder
        assert run.status == "completed" and run.tasks["trainfix/similar/parity"].n == 3
        assert point["scores"]["trainfix/similar/parity"]["n"] == 3
    comparison = load_comparison(run_dir)  # the base and final runs are the curve's, not evaluated twice
    assert [m.run_dir.resolve() for m in comparison.models] == [folders[0].resolve(), folders[2].resolve()]
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    assert "Evaluation during training: single_parity_similar_LoRA_8" in capsys.readouterr().out


def test_improvement_over_base_is_a_paired_difference_with_interval(output: Path) -> None:
    """comparison.md shows each trained model minus base on the same items, with a paired interval."""
    from taskgrove.train.deltas import paired_deltas
    from taskgrove.train.evaluate import comparison_markdown

    base = output / "base-eval-0123456789"
    step2 = output / RUN / "steps" / "step-2" / "eval-aaaa"
    deltas = paired_deltas(base, step2, TASKS)
    qqp_rows = [json.loads(line) for line in (CATALOG / "qqp" / "validation.jsonl").read_text().splitlines()]
    expected = {
        "treemark/similar/sst2": 0.0 - 0.75,  # "positive" gets 3 of 4 right; "yes" is not a sentiment label
        "treemark/similar/qqp": sum(r["label"] == 1 for r in qqp_rows) / len(qqp_rows) - 0.0,
    }
    for task, diff in expected.items():
        delta = deltas[task]
        assert delta is not None and delta["n_paired"] == 4
        assert delta["diff"] == pytest.approx(diff)
        assert delta["ci_low"] <= delta["diff"] <= delta["ci_high"]
    with pytest.raises(ConfigError, match="not a directory"):
        paired_deltas(base, output / "missing", TASKS)  # an evaluation that left no run is an error

    comparison = json.loads((output / RUN / "comparison.json").read_text())
    for model in comparison["models"]:
        if model["kind"] != "base":
            model["vs_base"] = deltas
    text = comparison_markdown(comparison)
    assert f"| {RUN} - base |" in text
    assert "| treemark/similar/sst2 | -0.750 [" in text

    from taskgrove.report.training import parse_comparison
    from taskgrove.report.training_html import improvement_table
    from taskgrove.report.training_text import comparison_text

    parsed = parse_comparison(comparison)
    low, high = deltas["treemark/similar/sst2"]["ci_low"], deltas["treemark/similar/sst2"]["ci_high"]  # type: ignore[index]
    assert f"-0.750 [{low:+.2f}, {high:+.2f}]" in comparison_text(parsed)
    html = improvement_table(parsed)
    assert f"{RUN} − base" in html and f"-0.750 [{low:+.2f}, {high:+.2f}]" in html
