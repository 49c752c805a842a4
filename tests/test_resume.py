"""Crash safety for real: kill -9 a run mid-task, resume it, and lose or duplicate nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "core"
SIZE = 120


def command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "taskgrove",
        "run",
        "--output-dir",
        str(tmp_path / "results"),
        "--include-path",
        str(FIXTURES / "tasks.py"),
        "--model",
        f"py:{FIXTURES / 'models.py'}:slow_echo",
        *extra,
    ]


def start(tmp_path: Path, *extra: str, delay: str = "0.02") -> subprocess.Popen:
    env = {**os.environ, "TASKGROVE_TEST_DELAY": delay}
    return subprocess.Popen(
        command(tmp_path, *extra), env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {count} lines")


def complete_records(path: Path) -> dict[str, dict]:
    records = {}
    for line in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        records[record["id"]] = record
    return records


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    samples = tmp_path / "results" / "killed" / "core" / "count" / "samples.jsonl"
    process = start(
        tmp_path,
        "--tasks",
        "core/count",
        "--run-id",
        "killed",
        "--concurrency",
        "4",
        "--task-config",
        f"count.options={{size: {SIZE}}}",
    )
    wait_for_lines(samples, 15)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    before = complete_records(samples)
    assert 15 <= len(before) < SIZE

    resumed = subprocess.run(
        [*command(tmp_path, "--resume", "killed")],
        env={**os.environ, "TASKGROVE_TEST_DELAY": "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    raw = [json.loads(line) for line in samples.read_text().splitlines()]
    ids = [r["id"] for r in raw]
    assert len(ids) == len(set(ids)) == SIZE  # nothing duplicated, nothing missing
    after = {r["id"]: r for r in raw}
    for sample_id, record in before.items():  # completed samples were kept, not re-run
        assert after[sample_id]["timing"] == record["timing"]
    metrics = json.loads((samples.parent / "metrics.json").read_text())
    assert metrics["n"] == SIZE
    assert metrics["metrics"]["reward"]["value"] == (SIZE - SIZE // 5) / SIZE
    status = json.loads((tmp_path / "results" / "killed" / "run.json").read_text())
    assert status["status"] == "completed" and status["tasks"]["core/count"]["resumed_samples"] == len(before)


def test_ctrl_c_stops_promptly_keeps_samples_and_resume_reruns_only_errored(tmp_path):
    samples = tmp_path / "results" / "interrupted" / "core" / "flaky" / "samples.jsonl"
    process = start(
        tmp_path,
        "--tasks",
        "core/flaky",
        "--run-id",
        "interrupted",
        "--concurrency",
        "2",
        "--task-config",
        "flaky.options={size: 300}",
        delay="0.01",
    )
    wait_for_lines(samples, 20)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert time.monotonic() - sent < 5
    assert process.returncode == 130, stderr
    assert "--resume interrupted" in stderr
    before = complete_records(samples)
    errored = {i for i, r in before.items() if r["error"]}
    assert errored  # ids ending in 0 fail in this task
    status = json.loads((tmp_path / "results" / "interrupted" / "run.json").read_text())
    assert status["status"] == "interrupted"

    resumed = subprocess.run(
        command(tmp_path, "--resume", "interrupted", "--max-sample-errors", "0.5"),
        env={**os.environ},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = complete_records(samples)
    lines = samples.read_text().splitlines()
    assert len(lines) == len(after) == 300
    for sample_id, record in before.items():
        if sample_id in errored:
            assert after[sample_id]["timing"] != record["timing"]  # errored samples ran again
        else:
            assert after[sample_id]["timing"] == record["timing"]
