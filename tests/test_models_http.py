"""The OpenAI-compatible HTTP backend against a scripted server on 127.0.0.1.

The server picks its behaviour from the requested model name; fault counters are kept per
(model, prompt), so concurrent requests each see their own sequence of faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from taskgrove.models import ModelError, create_model
from taskgrove.models.openai_http import OpenAICompatibleModel
from taskgrove.models.retry import RetryPolicy, parse_retry_after

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, jitter=0.5)
SECRET = "sk-test-SECRET-0123456789abcdef"


class ScriptedServer:
    """Answers chat completions; faults depend on the model name (see ``_behave``)."""

    def __init__(self) -> None:
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.auth: list[str | None] = []
        self.bodies: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    key = (body["model"], body["messages"][-1]["content"])
                    server.attempts[key] += 1
                    attempt = server.attempts[key]
                    server.auth.append(self.headers.get("Authorization"))
                    server.bodies.append(body)
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    server._behave(self, body, attempt)
                finally:
                    with server.lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(body)

    def _ok(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        text = "echo: " + body["messages"][-1]["content"]
        reply = {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
        self._send(handler, 200, json.dumps(reply).encode())

    def _behave(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], attempt: int) -> None:
        model = body["model"]
        if model == "ok":
            self._ok(handler, body)
        elif model == "slow":
            time.sleep(0.3)
            self._ok(handler, body)
        elif model == "rate-limited":  # 429 once, with Retry-After
            if attempt == 1:
                self._send(handler, 429, b'{"error": "slow down"}', {"Retry-After": "0.6"})
            else:
                self._ok(handler, body)
        elif model == "flaky":  # two 500s, then fine
            if attempt <= 2:
                self._send(handler, 500 + attempt, b'{"error": "oops"}')
            else:
                self._ok(handler, body)
        elif model == "hang-once":  # first attempt outlives the client's timeout
            if attempt == 1:
                time.sleep(1.5)
            self._ok(handler, body)
        elif model == "malformed-once":
            if attempt == 1:
                self._send(handler, 200, b'{"choices": [{"message": ')
            else:
                self._ok(handler, body)
        elif model == "no-choices-once":  # valid JSON, not a completion
            if attempt == 1:
                self._send(handler, 200, b'{"choices": []}')
            else:
                self._ok(handler, body)
        elif model == "always-503":
            self._send(handler, 503, b'{"error": "down"}')
        elif model == "always-hang":
            time.sleep(1.0)
            self._ok(handler, body)
        elif model == "auth-401":
            self._send(handler, 401, b'{"error": {"message": "Incorrect API key provided: sk-...", "type": "auth"}}')
        elif model == "forbidden-403":
            self._send(handler, 403, b'{"error": "this key may not use forbidden-403"}')
        elif model == "echo-auth-400":  # a hostile server that echoes the credentials back
            echoed = json.dumps({"error": f"bad request, you sent {handler.headers.get('Authorization')}"})
            self._send(handler, 400, echoed.encode())
        else:
            self._send(handler, 404, b'{"error": "no such model"}')


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def make(server: ScriptedServer, model: str, **kwargs: Any) -> OpenAICompatibleModel:
    options: dict[str, Any] = {"base_url": server.url, "request_timeout": 5.0, "max_retries": 4, "retry_policy": FAST}
    options.update(kwargs)
    return OpenAICompatibleModel(model, **options)


def ask(model: Any, prompts: list[str], **sampling: Any) -> list[Any]:
    async def main() -> list[Any]:
        try:
            return await asyncio.gather(
                *(model.generate([{"role": "user", "content": p}], **sampling) for p in prompts), return_exceptions=True
            )
        finally:
            await model.aclose()

    return asyncio.run(main())


def test_normal_completion_and_request_shape(server: ScriptedServer) -> None:
    model = make(server, "ok")
    [choice] = ask(model, ["hello"], max_tokens=7, temperature=0, stop="###", top_k=5, unknown_key=1)
    assert choice.content == "echo: hello"
    assert choice.usage == {"prompt_tokens": 5, "completion_tokens": 3}
    assert choice.finish_reason == "stop" and choice.latency_s > 0
    body = server.bodies[0]
    assert body["max_tokens"] == 7 and body["temperature"] == 0 and body["stop"] == ["###"] and body["top_k"] == 5
    assert "unknown_key" not in body and "repetition_penalty" not in body
    assert model.name == "openai/ok"


def test_recoverable_faults_complete_with_correct_results(server: ScriptedServer) -> None:
    for name in ("flaky", "malformed-once", "no-choices-once"):
        model = make(server, name)
        prompts = [f"{name}-{i}" for i in range(6)]
        results = ask(model, prompts)
        assert [r.content for r in results] == [f"echo: {p}" for p in prompts], name
    assert all(server.attempts[("flaky", f"flaky-{i}")] == 3 for i in range(6))
    assert all(server.attempts[("malformed-once", f"malformed-once-{i}")] == 2 for i in range(6))


def test_timeout_is_retried(server: ScriptedServer) -> None:
    model = make(server, "hang-once", request_timeout=0.3)
    results = ask(model, ["a", "b", "c"])
    assert [r.content for r in results] == ["echo: a", "echo: b", "echo: c"]
    assert server.attempts[("hang-once", "a")] == 2


def test_retry_after_is_honoured(server: ScriptedServer, requested_sleeps: list[float]) -> None:
    model = make(server, "rate-limited")
    results = ask(model, ["x", "y"])
    assert [r.content for r in results] == ["echo: x", "echo: y"]
    assert requested_sleeps == [0.6, 0.6], "each request waits the server's Retry-After: 0.6 once"
    assert server.attempts[("rate-limited", "x")] == 2


def test_exhausted_retries_raise_model_error_per_request(server: ScriptedServer) -> None:
    model = make(server, "always-503", max_retries=2)
    results = ask(model, ["p1", "p2", "p3"])
    assert all(isinstance(r, ModelError) for r in results)
    for error in results:
        assert "HTTP 503" in str(error) and "openai/always-503" in str(error)
        assert error.status == 503 and error.attempts == 3 and error.model == "openai/always-503"
    assert all(server.attempts[("always-503", p)] == 3 for p in ("p1", "p2", "p3"))


def test_exhausted_timeouts_raise_model_error(server: ScriptedServer) -> None:
    model = make(server, "always-hang", request_timeout=0.2, max_retries=1)
    [error] = ask(model, ["z"])
    assert isinstance(error, ModelError)
    assert "timed out" in str(error) and error.status is None and error.attempts == 2


def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    model = make(server, "missing-model")
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and error.status == 404
    assert server.attempts[("missing-model", "q")] == 1


def test_connection_refused_is_retried_then_fails() -> None:
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAICompatibleModel("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, retry_policy=FAST)
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and "connection refused" in str(error) and error.attempts == 3
    assert error.fatal  # refused through every retry by an endpoint that never answered


def test_concurrency_is_bounded(server: ScriptedServer) -> None:
    model = make(server, "slow", concurrency=3)
    results = ask(model, [f"c{i}" for i in range(12)])
    assert len({r.content for r in results}) == 12
    assert server.max_active == 3


def test_api_key_never_leaks(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TG_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    leaky = make(server, "echo-auth-400", api_key_env="TG_TEST_KEY")
    [error] = ask(leaky, ["k"])
    assert server.auth[-1] == f"Bearer {SECRET}"  # the key is sent ...
    failing = make(server, "always-503", api_key_env="TG_TEST_KEY", max_retries=1)
    [exhausted] = ask(failing, ["k"])
    texts = [
        str(error),
        repr(error),
        str(exhausted),
        repr(exhausted),
        repr(leaky),
        str(leaky),
        leaky.name,
        repr(vars(leaky)),
    ]
    texts += [str(error.args), caplog.text]
    assert isinstance(error, ModelError) and error.status == 400 and "***" in str(error)
    for text in texts:  # ... and shown nowhere
        assert SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(leaky)


def test_missing_named_key_env_is_a_clear_error(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_NO_SUCH_KEY", raising=False)
    with pytest.raises(ModelError, match="TG_NO_SUCH_KEY"):
        make(server, "ok", api_key_env="TG_NO_SUCH_KEY")


def test_create_model_openai_spec_with_cache(server: ScriptedServer, tmp_path: Any) -> None:
    model = create_model("openai/ok", base_url=server.url, cache_dir=tmp_path)
    assert model.name == "openai/ok"

    async def main() -> tuple[Any, Any, Any]:
        messages = [{"role": "user", "content": "cache me"}]
        first = await model.generate(messages, temperature=0, max_tokens=4)
        second = await model.generate(messages, temperature=0, max_tokens=4)
        sampled = await model.generate(messages, temperature=0.7, max_tokens=4)
        await model.aclose()
        return first, second, sampled

    first, second, sampled = asyncio.run(main())
    assert first.content == second.content == sampled.content == "echo: cache me"
    assert not first.cached and second.cached and not sampled.cached
    assert server.attempts[("ok", "cache me")] == 2  # the greedy repeat never reached the server
    assert (tmp_path / "responses.sqlite").is_file()


def test_model_survives_several_event_loops(server: ScriptedServer) -> None:
    model = make(server, "ok")
    for i in range(3):
        choice = asyncio.run(model.generate([{"role": "user", "content": f"loop {i}"}]))
        assert choice.content == f"echo: loop {i}"


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, jitter=0.5)
    for retry, full in ((0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)):
        delays = [policy.delay(retry, None) for _ in range(50)]
        assert all(full * 0.5 <= d <= full for d in delays)
        assert len(set(delays)) > 1
    assert policy.delay(0, 7.0) == 7.0
    assert RetryPolicy(max_retry_after=2.0).delay(0, 100.0) == 2.0
