"""The HTML report in headless Chromium: after a real run, `taskgrove report RUN --html DIR` gives a
page whose tables, charts, heatmap and sample browser are there once its JavaScript has run.

Chromium comes from Debian's `chromium` package (scripts/install_chromium.sh installs it; CI calls
that script). Without Chromium the test skips locally, and fails when the CI variable is set.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.report.make_runs import comparison_json, treemark_runs

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "tests" / "fixtures" / "core"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """The Chromium binary: $TASKGROVE_CHROMIUM, else the first of the usual names on PATH."""
    explicit = os.environ.get("TASKGROVE_CHROMIUM")
    if explicit:
        return explicit
    return next(
        (
            path
            for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
            if (path := shutil.which(name))
        ),
        None,
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Chromium is missing: run scripts/install_chromium.sh before the tests")
        pytest.skip(
            "Chromium is not installed (bash scripts/install_chromium.sh installs it); with CI set this test fails instead"
        )
    return binary


def browse(binary: str, url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def taskgrove(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taskgrove", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_report_of_a_real_run_renders_in_chromium(chromium, tmp_path):
    run = taskgrove(
        "run",
        "--include-path",
        str(CORE / "tasks.py"),
        "--tasks",
        "core",
        "--model",
        f"py:{CORE / 'models.py'}:slow_echo",
        "--no-progress",
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr  # two core tasks fail on purpose
    (run_dir,) = (tmp_path / "results").iterdir()
    report = taskgrove("report", f"results/{run_dir.name}", "--html", "reports/core", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = tmp_path / "reports" / "core" / "index.html"
    dom = browse(chromium, page.as_uri(), tmp_path / "profile", "--dump-dom").stdout
    assert 'id="overview-table"' in dom and dom.count('<tr class="task-row"') == 4
    assert dom.count('class="bar-chart"') == 4 + 2  # every task and the core group's two scores
    # every stored sample, errored ones too: 40 count + 40 flaky (4 errored) + 5 always_fails (all errored)
    assert re.search(r'<span id="sample-count"[^>]*>85 of 85 samples</span>', dom)
    assert dom.count('<li class="sample') == 50  # the first page of 50, rendered by the script
    assert 'data-samples-shown="50"' in dom


def test_training_report_tables_charts_heatmap_and_samples_in_chromium(chromium, tmp_path):
    runs = treemark_runs(tmp_path / "results", n=60)
    comparison = comparison_json(tmp_path / "train" / "comparison.json", runs)
    report = taskgrove(
        "report", str(comparison.parent), "--html", "reports/treemark", "--title", "TreeMark report", cwd=tmp_path
    )
    assert report.returncode == 0, report.stderr
    page = tmp_path / "reports" / "treemark" / "index.html"

    dom = browse(chromium, page.as_uri(), tmp_path / "p1", "--dump-dom").stdout
    assert dom.count('<tr class="task-row"') == 6 and dom.count('<tr class="group-row') == 6
    assert dom.count('class="bar-chart"') == 12 and dom.count('class="whisker"') == 3 * 6 + 3 * 2
    assert 'id="heatmap-svg"' in dom and dom.count('<g class="cell') == 18
    total = 3 * (60 * 3 + 60 + 30 + 30) + 1
    assert f"{total} of {total} samples" in dom
    assert dom.count('<li class="sample') == 50 and 'data-samples-shown="50"' in dom
    options = re.search(r'<select id="sample-task">(.*?)</select>', dom, re.S).group(1)
    assert options.count("<option") == 1 + 6  # "all tasks" and one per task, filled in by the script

    # the wrong-answer filter, set from the address: only sst2 samples with reward below 1
    wrong = sum(
        1
        for run_dir in runs.values()
        for line in (run_dir / "treemark" / "similar" / "sst2" / "samples.jsonl").read_text().splitlines()
        if '"reward":1.0' not in line
    )
    filtered = browse(
        chromium, page.as_uri() + "?task=treemark/similar/sst2&wrong=1", tmp_path / "p2", "--dump-dom"
    ).stdout
    assert f'data-samples-filtered="{wrong}"' in filtered and 0 < wrong < 180
    assert filtered.count('<li class="sample wrong"') == min(50, wrong) and '<li class="sample right"' not in filtered

    shot = tmp_path / "report.png"
    browse(
        chromium, page.as_uri(), tmp_path / "p3", f"--screenshot={shot}", "--window-size=1400,1000", "--hide-scrollbars"
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    # a blank 1400x1000 page compresses to about 6 KB; tables and text make it far larger
    assert len(data) > 40_000, f"screenshot looks empty ({len(data)} bytes)"
    keep = os.environ.get("TASKGROVE_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


@pytest.mark.parametrize(
    ("ci", "code", "outcome", "message"),
    [("", 0, "1 skipped", "Chromium is not installed"), ("1", 1, "1 error", "CI is set but Chromium is missing")],
)
def test_missing_chromium_skips_locally_and_fails_in_ci(tmp_path, ci, code, outcome, message):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TASKGROVE_CHROMIUM")}
    env["PATH"] = str(tmp_path)  # no chromium to be found
    if ci:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-k", "real_run", "-rsf", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == code and outcome in result.stdout and message in result.stdout, result.stdout[-3000:]
