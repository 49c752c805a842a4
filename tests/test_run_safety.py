"""Runs nobody can corrupt: names that stay names, secrets that stay out of files, usage errors
that create nothing, and inputs that would lose data refused."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from taskgrove.errors import ConfigError
from taskgrove.redact import redact, redact_text
from taskgrove.runs.lock import RunBusyError, RunLock, is_owned
from taskgrove.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "core"
INCLUDE = ["--include-path", str(FIXTURES / "tasks.py")]
MODEL = ["--model", f"py:{FIXTURES / 'models.py'}:slow_echo"]


def taskgrove(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taskgrove", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def created(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line_usage_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- names are data, not paths --------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../ESCAPED", "/tmp/abs-run", "a/b", "..", ".hidden", "-x"])
def test_run_ids_that_are_paths_are_refused_and_create_nothing(tmp_path, run_id):
    work = tmp_path / "work"
    work.mkdir()
    result = taskgrove("run", "--tasks", "core/count", *INCLUDE, *MODEL, f"--run-id={run_id}", cwd=work)
    assert "is not a plain name" in one_line_usage_error(result)
    assert created(tmp_path) == ["work"]
    assert not Path("/tmp/abs-run").exists()


def test_a_task_named_like_a_path_is_refused_at_registration(tmp_path):
    include = ["--include-path", str(FIXTURES / "escaping_task.py")]
    result = taskgrove("run", "--tasks", "../../escaped", *include, *MODEL, cwd=tmp_path)
    line = one_line_usage_error(result)
    assert "escaping_task.py" in line and "'../../escaped'" in line
    assert created(tmp_path) == []


def test_the_store_never_writes_outside_the_run_folder(tmp_path):
    store = RunStore.create(tmp_path / "results", "r1")
    for name in ("../../x", "/etc/x", "a/../../x", "a//b", ".hidden/x", "a\\..\\b"):
        with pytest.raises(ConfigError):
            store.task(name)
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "group").symlink_to(outside)  # a folder swapped for a link out of the run
    with pytest.raises(ConfigError, match="outside the run folder"):
        store.task("group/leaf")
    task = store.task("group2/leaf")
    assert task.directory == store.root / "group2" / "leaf"
    task.directory.mkdir(parents=True)
    task.samples_path.symlink_to(outside / "stolen.jsonl")  # a samples file swapped for a link
    with pytest.raises(OSError):
        task.writer()
    assert not (outside / "stolen.jsonl").exists()
    store.unlock()


# --- one owner -------------------------------------------------------------------------------------


def test_a_second_owner_is_refused_and_named_until_the_first_lets_go(tmp_path):
    store = RunStore.create(tmp_path, "owned")
    assert is_owned(store.root)
    with pytest.raises(RunBusyError, match=rf"in use by pid {os.getpid()} on host .+ since \d{{4}}-"):
        RunStore(tmp_path / "owned").lock()
    with pytest.raises(RunBusyError):
        RunLock(store.root, shared=True).acquire()  # not even read while it is written
    store.unlock()
    assert not is_owned(store.root)
    with RunLock(store.root, shared=True), RunLock(store.root, shared=True):
        with pytest.raises(RunBusyError):
            RunStore(tmp_path / "owned").lock()  # nor written while it is read
    other = RunStore(tmp_path / "owned")
    other.lock()
    other.unlock()


def test_evaluate_refuses_a_run_that_is_still_being_written(tmp_path):
    first = taskgrove("run", "--tasks", "core/count", *INCLUDE, *MODEL, "--run-id", "src", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    held = RunStore.open(tmp_path / "results" / "src")
    held.lock()  # as a resume in progress would
    try:
        result = taskgrove(
            "evaluate", "--tasks", "core/count", *INCLUDE, "--file_name", "results/src", "--run-id", "ev", cwd=tmp_path
        )
        assert "cannot evaluate a run that is still being written" in one_line_usage_error(result)
        samples = "results/src/core/count/samples.jsonl"  # nor one of its samples files
        result = taskgrove("evaluate", "--tasks", "core/count", *INCLUDE, "--file_name", samples, cwd=tmp_path)
        assert "cannot evaluate a run that is still being written" in one_line_usage_error(result)
        assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["src"]
    finally:
        held.unlock()


# --- secrets ---------------------------------------------------------------------------------------


def test_url_credentials_and_keys_stay_out_of_every_file_and_message(tmp_path):
    key = "sk-test-1234567890abcdefXYZ"
    result = taskgrove(
        "run",
        "--tasks",
        "core/count",
        *INCLUDE,
        "--model",
        f"py:{FIXTURES / 'models.py'}:leaky",
        "--base-url",
        "http://user:s3cret-pass@127.0.0.1:9/v1",
        "--api-key-env",
        "TASKGROVE_TEST_KEY",
        "--run-id",
        "leaky",
        "--no-progress",
        cwd=tmp_path,
        env={"TASKGROVE_TEST_KEY": key},
    )
    assert result.returncode == 1, result.stderr  # every sample fails: the task fails
    assert "s3cret" not in result.stderr + result.stdout and key not in result.stderr + result.stdout
    assert "RuntimeError: POST http://user:***@127.0.0.1:9/v1 failed; key *** refused" in result.stderr
    run_dir = tmp_path / "results" / "leaky"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.yaml", "run.json", "samples.jsonl", ".lock"}
    for path in files:
        text = path.read_text()
        assert "s3cret" not in text and key not in text, path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path  # private to the user who ran it
    assert "base_url: http://user:***@127.0.0.1:9/v1" in (run_dir / "config.yaml").read_text()
    assert "api_key_env: TASKGROVE_TEST_KEY" in (run_dir / "config.yaml").read_text()

    again = taskgrove("run", "--resume", "leaky", cwd=tmp_path)
    assert "pass --base-url again" in one_line_usage_error(again)


def test_redaction_masks_secrets_and_keeps_everything_else():
    assert redact_text("https://tok3n@git.example/x?api_key=abc&n=1") == "https://***@git.example/x?api_key=***&n=1"
    assert redact_text("Authorization: Bearer abc.def.ghi123") == "Authorization: Bearer ***"
    assert redact_text("say 12 to user@example.com") == "say 12 to user@example.com"
    data = {"api_key": "plain", "api_key_env": "MY_KEY", "max_tokens": 5, "headers": {"X-Api-Key": "v"}}
    assert redact(data) == {"api_key": "***", "api_key_env": "MY_KEY", "max_tokens": 5, "headers": {"X-Api-Key": "***"}}


# --- usage errors create nothing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "foo"], "Unknown model spec 'foo'"),
        (["--model", "local:/nonexistent"], "/nonexistent is neither a model folder nor a .gguf file"),
        (["--model", "local:default+/no/adapter"], "/no/adapter is neither"),
        (["--model", f"py:{FIXTURES / 'models.py'}:missing"], "has no attribute 'missing'"),
        ([*MODEL, "--base-url", "ftp://x"], "expected an http:// or https:// URL"),
        ([*MODEL, "--output-dir", "/proc/x/results"], "cannot create the output folder /proc/x/results"),
        ([*MODEL, "--include-path", str(FIXTURES / "raises_on_import.py")], "raises_on_import.py (line 3) failed"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_create_nothing(tmp_path, args, expected):
    result = taskgrove("run", "--tasks", "core/count", *INCLUDE, *args, cwd=tmp_path)
    assert expected in one_line_usage_error(result)
    assert created(tmp_path) == []


# --- inputs that would lose data -------------------------------------------------------------------


def test_duplicate_scenario_ids_are_refused_naming_them(tmp_path):
    include = ["--include-path", str(FIXTURES / "unsafe_tasks.py")]
    result = taskgrove("run", "--tasks", "core/duplicate_ids", *include, *MODEL, "--run-id", "dup", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "DuplicateScenarioIds: 2 scenario(s) repeat an id already used in this dataset: a, c" in result.stderr
    assert not (tmp_path / "results" / "dup" / "core" / "duplicate_ids" / "samples.jsonl").exists()


def test_evaluate_refuses_samples_of_another_task(tmp_path):
    first = taskgrove("run", "--tasks", "core/count", *INCLUDE, *MODEL, "--run-id", "count", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    samples = tmp_path / "results" / "count" / "core" / "count" / "samples.jsonl"
    assert all(json.loads(line)["task"] == "core/count" for line in samples.read_text().splitlines())
    result = taskgrove(
        "evaluate", "--tasks", "core/flaky", *INCLUDE, "--file_name", str(samples), "--run-id", "wrong", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "holds samples of task core/count, not core/flaky" in result.stderr
    assert not (tmp_path / "results" / "wrong" / "core" / "flaky" / "metrics.json").exists()

    (samples.parent / "metrics.json").unlink()  # without the metrics file, each record names its task
    result = taskgrove(
        "evaluate", "--tasks", "core/flaky", *INCLUDE, "--file_name", str(samples), "--run-id", "wrong2", cwd=tmp_path
    )
    assert result.returncode == 1 and "belongs to task core/count, not core/flaky" in result.stderr


def test_repeated_list_flags_add_up(tmp_path):
    result = taskgrove(
        "run",
        "--tasks",
        "core/count",
        "--tasks",
        "core/duplicate_ids",
        "--include-path",
        str(FIXTURES / "tasks.py"),
        "--include-path",
        str(FIXTURES / "unsafe_tasks.py"),
        *MODEL,
        "--run-id",
        "both",
        cwd=tmp_path,
    )
    status = json.loads((tmp_path / "results" / "both" / "run.json").read_text())
    assert set(status["tasks"]) == {"core/count", "core/duplicate_ids"}, result.stderr
    config = (tmp_path / "results" / "both" / "config.yaml").read_text()
    assert "tasks.py" in config and "unsafe_tasks.py" in config


LABELS = """\
name: t/labels
source: file:{data}
id_field: id
system: {system}
input: "{{{{ text }}}}"
reference: label
fewshot: null
labels: [positive, negative]
parser: label
metrics: [accuracy]
reward: accuracy
"""


def test_evaluate_refuses_samples_whose_prompts_this_task_would_not_build(tmp_path):
    from scripted import ScriptedModel
    from taskgrove.config import build_config
    from taskgrove.runner.executor import Executor
    from taskgrove.runner.progress import PlainProgress
    from taskgrove.tasks.builtin import new_registry

    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"id": str(i), "text": f"row {i}", "label": "positive"}) + "\n" for i in range(6))
    )

    def registry(system):
        (tmp_path / "labels.yaml").write_text(LABELS.format(data=data, system=system))
        reg = new_registry()
        reg.add_path(tmp_path / "labels.yaml")
        return reg

    def execute(reg, **values):
        config = build_config({"output_dir": str(tmp_path / "results"), "tasks": ["t/labels"], **values})
        model = ScriptedModel(lambda messages, tools: "positive")
        return Executor(config, reg, model=model, progress=PlainProgress(interval=1e9)).run()

    source = execute(registry("Classify."), mode="inference").run_dir
    assert execute(registry("Classify."), mode="evaluate", file_name=str(source)).scores() == {"t/labels": 1.0}
    with pytest.raises(Exception) as failed:  # the spec hash in the source's task.json refuses first
        execute(registry("Classify the sentiment."), mode="evaluate", file_name=str(source))
    assert "task t/labels changed since its outputs were produced" in str(failed.value)
    (source / "t" / "labels" / "task.json").unlink()  # without it, the prompts themselves are compared
    with pytest.raises(Exception) as failed:
        execute(registry("Classify the sentiment."), mode="evaluate", file_name=str(source))
    assert "the prompt of sample '0' is not the one t/labels builds" in str(failed.value)


def test_resume_refuses_a_changed_task_spec_unless_allowed(tmp_path):
    include = ["--include-path", str(FIXTURES / "unsafe_tasks.py")]
    args = ["run", "--tasks", "core/versioned", *include, *MODEL]
    first = taskgrove(*args, "--run-id", "v", cwd=tmp_path, env={"TASKGROVE_TEST_SPEC_HASH": "aaa"})
    assert first.returncode == 0, first.stderr
    task_dir = tmp_path / "results" / "v" / "core" / "versioned"
    (task_dir / "task.json").write_text(json.dumps({"version": 1, "spec_hash": "aaa"}))  # as the run records it
    same = taskgrove("run", "--resume", "v", *include, cwd=tmp_path, env={"TASKGROVE_TEST_SPEC_HASH": "aaa"})
    assert same.returncode == 0, same.stderr
    changed = taskgrove("run", "--resume", "v", *include, cwd=tmp_path, env={"TASKGROVE_TEST_SPEC_HASH": "bbb"})
    assert "spec changed since its samples were stored (spec hash aaa -> bbb)" in one_line_usage_error(changed)
    allowed = taskgrove(
        "run",
        "--resume",
        "v",
        "--allow-changed-resume",
        *include,
        cwd=tmp_path,
        env={"TASKGROVE_TEST_SPEC_HASH": "bbb"},
    )
    assert allowed.returncode == 0, allowed.stderr
    status = json.loads((tmp_path / "results" / "v" / "run.json").read_text())
    assert status["changed_on_resume"] == ["core/versioned spec_hash: aaa -> bbb"]
    records = [json.loads(line) for line in (task_dir / "samples.jsonl").read_text().splitlines()]
    models = {r["model"] for r in records}  # the stored samples now say which model made them
    assert len(records) == 8 and len(models) == 1 and None not in models
