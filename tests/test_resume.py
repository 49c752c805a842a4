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
    shown = subprocess.run(
        [sys.executable, "-m", "taskgrove", "show", "killed", "--output-dir", str(tmp_path / "results")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "no process runs it any more (killed?): continue with --resume killed" in shown.stdout

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


def test_ctrl_c_stops_keeps_samples_and_resume_reruns_only_errored(tmp_path):
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
        delay="0.2",  # 300 samples take 30 s: the interrupt lands mid-run even on a busy machine
    )
    wait_for_lines(samples, 20)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)  # a guard against a hang, not a speed check
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


def test_resume_of_a_live_run_fails_fast_and_the_run_stores_every_sample_once(tmp_path):
    samples = tmp_path / "results" / "live" / "core" / "count" / "samples.jsonl"
    first = start(
        tmp_path,
        "--tasks",
        "core/count",
        "--run-id",
        "live",
        "--concurrency",
        "2",
        "--task-config",
        "count.options={size: 300}",
        delay="0.06",  # about 9 s: the resume starts well before the run ends, even on a busy machine
    )
    wait_for_lines(samples, 20)
    second = subprocess.run(
        command(tmp_path, "--resume", "live"), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip()
    assert "\n" not in line and "is in use by pid" in line and f"pid {first.pid} on host" in line, line
    assert first.poll() is None  # refused while the first was still going
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    ids = [json.loads(line)["id"] for line in samples.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 300  # every sample stored once: nothing replaced, nothing run twice


def test_same_run_id_started_at_once_exactly_one_succeeds(tmp_path):
    racers = [
        start(tmp_path, "--tasks", "core/count", "--run-id", "race", "--task-config", "count.options={size: 30}")
        for _ in range(6)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in racers]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2, 2, 2, 2], results
    for code, stderr in results:
        if code == 2:
            assert "already exists" in stderr or "is in use by" in stderr, stderr
    lines = (tmp_path / "results" / "race" / "core" / "count" / "samples.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 30


def test_resume_refuses_another_model_unless_allowed_and_then_records_the_model(tmp_path):
    run_dir = tmp_path / "results" / "mixed"
    first = subprocess.run(
        command(tmp_path, "--tasks", "core/flaky", "--run-id", "mixed", "--max-sample-errors", "0.5"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    samples = run_dir / "core" / "flaky" / "samples.jsonl"
    before = samples.read_bytes()
    other = ["--model", f"py:{FIXTURES / 'models.py'}:other_echo"]
    for change in (other, ["--temperature", "0.7"], ["--task-config", "flaky.max_tokens=5"]):
        refused = subprocess.run(
            [*command(tmp_path, "--resume", "mixed"), *change], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2, refused.stderr
        assert "--allow-changed-resume" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert samples.read_bytes() == before  # nothing touched

    allowed = subprocess.run(
        [*command(tmp_path, "--resume", "mixed", "--allow-changed-resume"), *other],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert allowed.returncode == 0, allowed.stderr
    records = complete_records(samples)
    assert len(records) == 40
    rerun = {i for i, r in records.items() if i.endswith("0")}  # flaky fails these: they ran again
    assert {records[i]["model"] for i in rerun} == {"other-model"}
    assert {r["model"] for i, r in records.items() if i not in rerun} == {"number-model"}
    status = json.loads((run_dir / "run.json").read_text())
    assert any(change.startswith("model:") for change in status["changed_on_resume"])


def test_sigterm_keeps_samples_marks_interrupted_and_exits_130(tmp_path):
    run_dir = tmp_path / "results" / "termed"
    samples = run_dir / "core" / "count" / "samples.jsonl"
    process = start(
        tmp_path,
        "--tasks",
        "core/count",
        "--run-id",
        "termed",
        "--concurrency",
        "2",
        "--task-config",
        "count.options={size: 2000}",
        delay="0.01",
    )
    wait_for_lines(samples, 10)
    deadline = time.monotonic() + 30
    progress = 0
    while time.monotonic() < deadline and progress == 0:  # run.json shows progress while running
        status = json.loads((run_dir / "run.json").read_text())
        progress = status["tasks"]["core/count"]["samples"]
        time.sleep(0.1)
    assert status["status"] == "running" and progress > 0
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert "--resume termed" in stderr and "Traceback" not in stderr
    status = json.loads((run_dir / "run.json").read_text())
    stored = complete_records(samples)
    assert status["status"] == "interrupted" and status["tasks"]["core/count"]["status"] == "interrupted"
    assert status["tasks"]["core/count"]["samples"] == len(stored) > progress
