"""The command line as users call it: exit codes, messages, FLaME-style main.py, start-up speed."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "core"
INCLUDE = ["--include-path", str(FIXTURES / "tasks.py")]
MODEL = ["--model", f"py:{FIXTURES / 'models.py'}:slow_echo"]


def taskgrove(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taskgrove", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def flame(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_unknown_task_exits_2_with_a_suggestion(tmp_path):
    # how fast this fails is measured in bench/overhead.py (no timed tests)
    result = taskgrove("run", "--tasks", "core/count", "core/cuont", *INCLUDE, *MODEL, cwd=tmp_path)
    assert result.returncode == 2
    assert "Task 'core/cuont' not supported" in result.stderr and "core/count" in result.stderr
    assert not (tmp_path / "results").exists()


def test_two_failures_among_four_exit_1_with_the_flame_report(tmp_path):
    result = flame(
        "--mode",
        "run",
        "--tasks",
        "core/count",
        "core/broken_dataset",
        "core/flaky",
        "core/always_fails",
        *INCLUDE,
        *MODEL,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "MultiTaskError: Errors in tasks: core/broken_dataset, core/always_fails" in result.stderr
    assert "Task: core/broken_dataset\nError: FileNotFoundError: Could not find entity dictionary" in result.stderr
    run_dir = next((tmp_path / "results").iterdir())
    assert (run_dir / "core" / "count" / "metrics.json").exists()
    assert (run_dir / "core" / "flaky" / "metrics.json").exists()


def test_flame_config_file_with_cli_override_then_evaluate(tmp_path):
    config = tmp_path / "multi.yaml"
    config.write_text(
        "mode: inference\ntasks:\n  - core/count\n  - core/flaky\n"
        f"model: 'py:{FIXTURES / 'models.py'}:slow_echo'\nmax_tokens: 128\ntemperature: 0.0\n"
        f"include_path: ['{FIXTURES / 'tasks.py'}']\nrun_id: first\n"
    )
    result = flame("--config", str(config), "--max_tokens", "32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = (tmp_path / "results" / "first" / "config.yaml").read_text()
    assert "max_tokens: 32" in saved and "mode: inference" in saved

    missing = flame("--mode", "evaluate", "--tasks", "core/count", *INCLUDE, cwd=tmp_path)
    assert missing.returncode == 2 and "File name is required for evaluation mode" in missing.stderr

    evaluated = flame(
        "--mode",
        "evaluate",
        "--tasks",
        "core/count",
        "core/flaky",
        "--file_name",
        "results/first",
        "--run-id",
        "scored",
        *INCLUDE,
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "results" / "scored" / "core" / "count" / "metrics.json").read_text())
    assert metrics["metrics"]["reward"]["value"] == 0.8
    assert metrics["model"] == "number-model"  # the model that wrote the outputs being re-scored
    assert "core/count" in evaluated.stdout and "0.8000" in evaluated.stdout


def test_show_prints_the_summary(tmp_path):
    assert taskgrove("infer", "--tasks", "core/count", "--run-id", "r1", *INCLUDE, *MODEL, cwd=tmp_path).returncode == 0
    shown = taskgrove("show", "r1", cwd=tmp_path)
    assert shown.returncode == 0 and "core/count" in shown.stdout and "completed" in shown.stdout


def test_tasks_lists_the_tree(tmp_path):
    result = taskgrove("tasks", *INCLUDE, cwd=tmp_path)
    assert result.returncode == 0
    assert "core/" in result.stdout and "count" in result.stdout and "task(s)" in result.stdout
    group = taskgrove("tasks", "core", *INCLUDE, cwd=tmp_path)
    assert group.stdout.splitlines()[0].startswith("core/ (4)")


def test_malformed_yaml_exits_2_naming_the_file(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("tasks: [a\n")
    result = flame("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "bad.yaml" in result.stderr and "line" in result.stderr


def test_help_and_tasks_do_not_import_heavy_libraries(tmp_path):
    code = (
        "import sys, contextlib, io\n"
        "from taskgrove.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['tasks'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'sklearn', 'litellm', 'openai') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_html_report_and_next_step_options(tmp_path):
    result = taskgrove(
        "run",
        "--tasks",
        "core/count",
        "--run-id",
        "r1",
        "--html-report",
        "--next-step",
        "train on the tree: see the README",
        *INCLUDE,
        *MODEL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    page = tmp_path / "results" / "r1" / "report" / "index.html"
    assert page.is_file() and "core/count" in page.read_text()
    assert result.stdout.splitlines()[-2:] == [
        f"HTML report: {Path('results/r1/report/index.html')}",
        "next: train on the tree: see the README",
    ]
    plain = taskgrove("run", "--tasks", "core/count", "--run-id", "r2", *INCLUDE, *MODEL, cwd=tmp_path)
    assert plain.returncode == 0 and not (tmp_path / "results" / "r2" / "report").exists()
    assert "HTML report" not in plain.stdout and "next:" not in plain.stdout
