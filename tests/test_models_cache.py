"""The SQLite response cache and the CachedModel wrapper."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from taskgrove.core import Choice, ScoringModel
from taskgrove.models.cache import CachedModel, ResponseCache

WRITER = Path(__file__).parent / "fixtures" / "models" / "cache_writer.py"
SRC = Path(__file__).resolve().parents[1] / "src"


class Counting:
    """Answers ``n:<content>`` and counts calls."""

    def __init__(self, name: str = "counting", identity: str | None = None) -> None:
        self.name = name
        if identity is not None:
            self.cache_identity = identity
        self.calls = 0
        self.closed = False

    async def generate(self, messages: list[dict[str, Any]], *, tools: Any = None, **sampling: Any) -> Choice:
        self.calls += 1
        return Choice(
            f"{self.calls}:{messages[-1]['content']}", usage={"prompt_tokens": 3, "completion_tokens": 1}, latency_s=0.5
        )

    async def aclose(self) -> None:
        self.closed = True


class Scoring(Counting):
    async def loglikelihood(self, context: list[dict[str, Any]], continuations: list[str]) -> list[float]:
        self.calls += 1
        return [-float(len(c)) for c in continuations]


def ask(model: Any, content: str, **sampling: Any) -> Choice:
    return asyncio.run(model.generate([{"role": "user", "content": content}], **sampling))


def test_greedy_hit_is_marked_cached_and_keeps_bookkeeping(tmp_path: Path) -> None:
    inner = Counting()
    model = CachedModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    first = ask(model, "a", temperature=0, max_tokens=5)
    second = ask(model, "a", temperature=0, max_tokens=5)
    assert first.content == second.content == "1:a" and inner.calls == 1
    assert not first.cached and second.cached
    assert second.usage == {"prompt_tokens": 3, "completion_tokens": 1} and second.latency_s == 0.5
    assert ask(model, "a", max_tokens=5).cached  # temperature defaults to 0: the same request


def test_key_covers_messages_tools_sampling_and_model(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    inner = Counting()
    model = CachedModel(inner, cache)
    ask(model, "a")
    ask(model, "b")
    ask(model, "a", max_tokens=3)
    ask(model, "a", stop=["x"])
    asyncio.run(
        model.generate([{"role": "user", "content": "a"}], tools=[{"type": "function", "function": {"name": "f"}}])
    )
    assert inner.calls == 5
    ask(model, "a", unknown_option=1)  # unknown keys do not change the request
    assert inner.calls == 5
    other = CachedModel(Counting(identity="counting@elsewhere"), cache)
    assert not ask(other, "a").cached


def test_sampled_requests_are_not_cached(tmp_path: Path) -> None:
    inner = Counting()
    model = CachedModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    ask(model, "a", temperature=0.7)
    reply = ask(model, "a", temperature=0.7)
    assert inner.calls == 2 and not reply.cached and len(model.cache) == 0


def test_persists_across_reopen_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    model = CachedModel(Counting(), ResponseCache(path))
    ask(model, "a")
    asyncio.run(model.aclose())
    reopened = CachedModel(Counting(), ResponseCache(path))
    assert ask(reopened, "a").cached
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_loglikelihood_cached_only_when_model_scores(tmp_path: Path) -> None:
    plain = CachedModel(Counting(), ResponseCache(tmp_path / "a.sqlite"))
    assert not isinstance(plain, ScoringModel) and not hasattr(plain, "loglikelihood")
    inner = Scoring()
    scoring = CachedModel(inner, ResponseCache(tmp_path / "b.sqlite"))
    assert isinstance(scoring, ScoringModel)
    context = [{"role": "user", "content": "q"}]
    assert asyncio.run(scoring.loglikelihood(context, ["ab", "c"])) == [-2.0, -1.0]
    assert asyncio.run(scoring.loglikelihood(context, ["ab", "c"])) == [-2.0, -1.0]
    assert inner.calls == 1


def test_aclose_closes_inner(tmp_path: Path) -> None:
    inner = Counting()
    asyncio.run(CachedModel(inner, ResponseCache(tmp_path / "r.sqlite")).aclose())
    assert inner.closed


def test_concurrent_tasks_and_threads(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    model = CachedModel(Counting(), cache)

    async def many(prefix: str) -> list[Choice]:
        return await asyncio.gather(*(model.generate([{"role": "user", "content": f"{prefix}{i}"}]) for i in range(50)))

    threads = [threading.Thread(target=lambda p=p: asyncio.run(many(p))) for p in "xyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 150


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_loses_no_reported_response(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(WRITER), str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    reported = []
    try:
        for line in child.stdout:
            reported.append(int(line.split()[1]))
            if len(reported) >= 200:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL and len(reported) == 200

    class Never:
        name = "echo"

        async def generate(self, messages: Any, **kwargs: Any) -> Choice:
            raise AssertionError(f"{messages[-1]['content']} was reported written but is not in the cache")

    model = CachedModel(Never(), ResponseCache(path))
    for i in reported:
        reply = ask(model, f"q{i}", temperature=0)
        assert reply.cached and reply.content == f"answer to q{i}"
