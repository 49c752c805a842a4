"""Data-parallel replicas against fake OpenAI-compatible servers on 127.0.0.1: load balancing,
sticky prefixes, and a replica killed mid-run whose in-flight requests finish elsewhere, once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from taskgrove.models import create_model
from taskgrove.models.replicas import ReplicaModel


class Server:
    """Answers 'say N' with 'N' after ``delay`` seconds; ``kill()`` drops in-flight requests
    without an answer and refuses new connections, like a crashed process."""

    def __init__(self, delay: float = 0.05, die_after: int | None = None) -> None:
        self.delay = delay
        self.die_after = die_after
        self.dead = threading.Event()
        self.served: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(server.delay)
                if server.dead.is_set():
                    self.close_connection = True
                    self.connection.close()  # no answer: the client sees the connection drop
                    return
                text = body["messages"][-1]["content"]
                with server.lock:
                    if server.die_after is not None and len(server.served) >= server.die_after:
                        threading.Thread(target=server.kill).start()  # crashes with requests in flight
                        self.close_connection = True
                        self.connection.close()
                        return
                    server.served.append(text)
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": text.split()[-1]}}], "usage": {}}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def kill(self) -> None:
        if self.dead.is_set():
            return
        self.dead.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def servers() -> Iterator[list[Server]]:
    started = [Server(), Server(), Server()]
    yield started
    for server in started:
        if not server.dead.is_set():
            server.kill()


def replicas(servers: list[Server], **kwargs: Any) -> ReplicaModel:
    model = create_model("openai/m", base_url=",".join(s.url for s in servers), cache=False, request_timeout=5)
    assert isinstance(model, ReplicaModel)
    for key, value in kwargs.items():
        setattr(model, key, value)
    return model


def run(model: ReplicaModel, prompts: list[list[dict[str, str]]]) -> list[Any]:
    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(model.generate(p) for p in prompts))
        finally:
            await model.aclose()

    return asyncio.run(main())


def say(n: int, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": f"say {n}"}]


def test_load_is_balanced_across_replicas(servers: list[Server]) -> None:
    replies = run(replicas(servers), [say(n) for n in range(60)])
    assert [r["content"] for r in replies] == [str(n) for n in range(60)]
    counts = [len(s.served) for s in servers]
    assert sum(counts) == 60 and min(counts) >= 10, counts


def test_a_shared_long_prefix_sticks_to_one_replica_until_it_is_overloaded(servers: list[Server]) -> None:
    context = "Examples:\n" + "\n".join(f"Q: say {i}\nA: {i}" for i in range(200))  # a long few-shot context
    model = replicas(servers)
    sequential = [run_one(model, say(n, context)) for n in range(6)]
    assert [r["content"] for r in sequential] == [str(n) for n in range(6)]
    assert sorted(len(s.served) for s in servers) == [0, 0, 6]  # one replica: its prefix cache is warm
    for s in servers:
        s.served.clear()
    replies = run(replicas(servers, slack=4), [say(n, context) for n in range(30)])  # 30 at once: it spills over
    assert [r["content"] for r in replies] == [str(n) for n in range(30)]
    assert sum(len(s.served) for s in servers) == 30 and sorted(len(s.served) for s in servers)[0] > 0


def run_one(model: ReplicaModel, prompt: list[dict[str, str]]) -> Any:
    return asyncio.run(model.generate(prompt))


def test_a_replica_killed_mid_run_loses_and_duplicates_nothing(servers: list[Server]) -> None:
    victim = servers[1]
    victim.die_after = 5  # then it drops every request it holds and refuses new connections
    model = replicas(servers, cooldown_s=0.5)
    replies = run(model, [say(n) for n in range(90)])
    assert [r["content"] for r in replies] == [str(n) for n in range(90)]  # every request answered, in order
    served = Counter(text for s in servers for text in s.served)
    assert set(served) == {f"say {n}" for n in range(90)} and set(served.values()) == {1}  # each answered once
    assert len(victim.served) == 5  # it served some before it died; the rest went elsewhere
    assert model.replicas[1].failures >= 1


def test_a_dead_replica_gets_requests_again_after_its_cooldown(servers: list[Server]) -> None:
    model = replicas(servers[:2], cooldown_s=0.3)
    servers[1].kill()
    replacement = Server()
    first = run(model, [say(n) for n in range(10)])
    assert [r["content"] for r in first] == [str(n) for n in range(10)]
    assert model.replicas[1].failures == 1
    model.replicas[1].model = create_model("openai/m", base_url=replacement.url, cache=False)  # type: ignore[assignment]
    time.sleep(0.35)
    again = run(model, [say(n) for n in range(20)])
    assert [r["content"] for r in again] == [str(n) for n in range(20)]
    assert replacement.served  # back in rotation
    replacement.kill()


def test_base_url_list_is_validated() -> None:
    from taskgrove.config import build_config
    from taskgrove.errors import ConfigError

    config = build_config({"mode": "run", "tasks": ["x"], "base_url": "http://a:1/v1,http://b:2/v1"})
    assert config.base_url == "http://a:1/v1,http://b:2/v1"
    with pytest.raises(ConfigError, match="comma-separated"):
        build_config({"mode": "run", "tasks": ["x"], "base_url": "http://a:1/v1,b:2"})


def test_replicas_need_a_vllm_model() -> None:
    from taskgrove.config import build_config
    from taskgrove.errors import ConfigError

    with pytest.raises(ConfigError, match="--replicas starts vLLM servers"):
        build_config({"mode": "run", "tasks": ["x"], "model": "openai/m", "replicas": 2})
    with pytest.raises(ConfigError, match="--batch takes one --base-url"):
        build_config(
            {"mode": "run", "tasks": ["x"], "model": "openai/m", "batch": True, "base_url": "http://a/v1,http://b/v1"}
        )
    assert build_config({"mode": "run", "tasks": ["x"], "model": "vllm:x", "replicas": 2}).replicas == 2
