"""Provider batch APIs (--batch) against a local server: OpenAI files+batches, Anthropic message
batches, a batch that partly fails, and a run killed (kill -9) while its batch is pending."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_server import BatchServer
from taskgrove.models import ModelError, create_model
from taskgrove.models.batch_api import BatchModel
from taskgrove.models.batch_wire import AnthropicBatch, OpenAIBatch

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tests" / "fixtures" / "core" / "tasks.py"


@pytest.fixture()
def server() -> Iterator[BatchServer]:
    srv = BatchServer(fail=frozenset({3, 7}))
    yield srv
    srv.close()


def ask(model: BatchModel, numbers: list[int]) -> list[object]:
    async def main() -> list[object]:
        try:
            calls = [model.generate([{"role": "user", "content": f"say {n}"}], max_tokens=4) for n in numbers]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await model.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("provider", [OpenAIBatch, AnthropicBatch])
def test_one_batch_answers_each_request_and_failed_items_carry_their_cause(
    server: BatchServer, provider: type, tmp_path: Path
) -> None:
    model = BatchModel(provider("m", server.url, {}), idle_s=0.05, poll_s=0.02)
    model.bind_run_folder(tmp_path)
    numbers = list(range(10))
    replies = ask(model, numbers)
    assert server.submissions == 1
    for number, reply in zip(numbers, replies, strict=True):
        if number in (3, 7):
            assert isinstance(reply, ModelError)
            assert f"refused item {number}" in str(reply)
        else:
            assert not isinstance(reply, BaseException)
            assert reply["content"] == str(number)  # type: ignore[index]
            assert reply.usage == {"prompt_tokens": 3, "completion_tokens": 1}  # type: ignore[attr-defined]
    state = json.loads((tmp_path / "batches.json").read_text())
    assert [b["id"] for b in state["batches"]] == server.submitted_ids
    assert len(state["batches"][0]["items"]) == 10
    assert state["batches"][0]["state"] in ("completed", "ended")


def test_full_queue_is_submitted_at_once_and_the_rest_after_the_idle_window(server: BatchServer) -> None:
    model = BatchModel(OpenAIBatch("m", server.url, {}), max_requests=4, idle_s=0.05, poll_s=0.02)
    replies = ask(model, [0, 1, 2, 4, 5, 6, 8, 9, 10, 11])
    assert server.submissions == 3  # 4 + 4 + 2
    assert [r["content"] for r in replies] == ["0", "1", "2", "4", "5", "6", "8", "9", "10", "11"]  # type: ignore[index]


def test_a_recorded_batch_is_awaited_not_resubmitted(server: BatchServer, tmp_path: Path) -> None:
    server.release.clear()  # the batch stays pending
    first = BatchModel(OpenAIBatch("m", server.url, {}), idle_s=0.05, poll_s=0.02)
    first.bind_run_folder(tmp_path)

    async def abandon() -> None:
        calls = [
            asyncio.ensure_future(first.generate([{"role": "user", "content": f"say {n}"}], max_tokens=4))
            for n in range(5)
        ]
        while not (tmp_path / "batches.json").exists():
            await asyncio.sleep(0.01)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await first.aclose()

    asyncio.run(abandon())
    assert server.submissions == 1
    server.release.set()
    second = BatchModel(OpenAIBatch("m", server.url, {}), idle_s=0.05, poll_s=0.02)
    second.bind_run_folder(tmp_path)
    replies = ask(second, [4, 0, 2, 1, 5])  # 5 is new: it goes in a new batch
    assert [r["content"] for r in replies] == ["4", "0", "2", "1", "5"]  # type: ignore[index]
    assert server.submissions == 2
    assert len(server.batches[server.submitted_ids[1]]["requests"]) == 1


def test_batch_needs_a_remote_spec() -> None:
    from taskgrove.config import build_config
    from taskgrove.errors import ConfigError

    with pytest.raises(ConfigError, match="--batch works with"):
        build_config({"mode": "run", "tasks": ["x"], "batch": True, "model": "local"})
    config = build_config({"mode": "run", "tasks": ["x"], "batch": True, "model": "openai/m"})
    assert config.concurrency == 1000
    with pytest.raises(ModelError, match="no API key"):
        create_model("openai/m", batch=True, cache=False, base_url="https://api.openai.com/v1")


def cli(tmp_path: Path, server: BatchServer, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "taskgrove", "run", "--output-dir", str(tmp_path / "results"),
        "--include-path", str(TASKS), "--model", "openai/m", "--base-url", server.url, "--batch",
        "--batch-poll-interval", "0.05", "--no-cache", "--no-progress", *extra,
    ]  # fmt: skip


def samples(tmp_path: Path, run_id: str) -> list[dict]:
    path = tmp_path / "results" / run_id / "core" / "count" / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_cli_batch_run_records_answers_and_item_failures(server: BatchServer, tmp_path: Path) -> None:
    args = ["--tasks", "core/count", "--task-config", "count.options={size: 12}", "--run-id", "b"]
    done = subprocess.run(cli(tmp_path, server, *args, "--max-sample-errors", "0.5"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert server.submissions == 1
    records = {r["id"]: r for r in samples(tmp_path, "b")}
    assert len(records) == 12
    for i in range(12):
        record = records[f"s{i}"]
        if i in (3, 7):
            assert f"refused item {i}" in record["error"]["message"]
        else:
            assert record["error"] is None and record["reward"] == 1.0


def test_kill_9_while_a_batch_is_pending_then_resume_submits_nothing_again(server: BatchServer, tmp_path: Path) -> None:
    server.release.clear()
    args = ["--tasks", "core/count", "--task-config", "count.options={size: 12}", "--run-id", "k"]
    run = subprocess.Popen(cli(tmp_path, server, *args, "--max-sample-errors", "0.5"), stderr=subprocess.PIPE)
    state = tmp_path / "results" / "k" / "batches.json"
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.02)
    assert state.exists(), run.stderr.read() if run.stderr else ""
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert server.submissions == 1
    server.release.set()
    resumed = subprocess.run(
        [sys.executable, "-m", "taskgrove", "run", "--output-dir", str(tmp_path / "results"), "--resume", "k",
         "--include-path", str(TASKS), "--base-url", server.url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert server.submissions == 1  # the pending batch was picked up, not sent again
    records = samples(tmp_path, "k")
    assert sorted(r["id"] for r in records) == sorted(f"s{i}" for i in range(12))  # each once
    for record in records:
        i = int(record["id"][1:])
        assert (record["error"] is not None) == (i in (3, 7))


def test_task_config_stored_with_nulls_inherits_the_run_values() -> None:
    """config.yaml stores every task_config key, unset ones as null: a resume reads them back and
    must run with the same settings as the first run (found by the kill -9 test above)."""
    from taskgrove.config import build_config

    stored = {"count": {"concurrency": None, "top_p": None, "seed": None, "options": {"size": 12}}}
    config = build_config({"mode": "run", "tasks": ["x"], "concurrency": 64, "top_p": 0.9, "task_config": stored})
    settings = config.for_task("count")
    assert (settings.concurrency, settings.top_p, settings.seed) == (64, 0.9, 0)
    assert settings.options == {"size": 12}


def test_resume_asks_again_for_items_that_failed(server: BatchServer, tmp_path: Path) -> None:
    args = ["--tasks", "core/count", "--task-config", "count.options={size: 8}", "--run-id", "r"]
    first = subprocess.run(cli(tmp_path, server, *args, "--max-sample-errors", "0.5"), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    server.fail = frozenset()  # the provider's refusal was transient
    resumed = subprocess.run(
        [sys.executable, "-m", "taskgrove", "run", "--output-dir", str(tmp_path / "results"), "--resume", "r",
         "--include-path", str(TASKS), "--base-url", server.url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert server.submissions == 2
    assert sorted(
        body["messages"][-1]["content"] for _, body in server.batches[server.submitted_ids[1]]["requests"]
    ) == [
        "say 3",
        "say 7",
    ]
    records = {r["id"]: r for r in samples(tmp_path, "r")}  # the rerun replaces the failed records
    assert all(records[f"s{i}"]["error"] is None for i in range(8))
