"""Remote errors say what happened: the root cause (DNS, refused, TLS, 401/403/404 with the server's
message) reaches the sample error and the MultiTaskError; what no retry can fix is tried once; a task
whose every sample would fail that way stops at once; litellm prints no banners.

Servers are on 127.0.0.1; the unresolvable host is under the reserved ``.invalid`` TLD and each test
using it first checks that the local resolver refuses it (else it skips).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskgrove.errors import MultiTaskError
from taskgrove.models import ModelError
from taskgrove.models.causes import network_cause
from taskgrove.models.openai_http import OpenAICompatibleModel
from taskgrove.models.retry import RetryPolicy
from test_models_http import FAST, ScriptedServer, ask, make

INVALID_HOST = "taskgrove-no-such-host.invalid"
SLOW = RetryPolicy(base_delay=30.0, max_delay=30.0)  # a retry would make the test hang: none may happen


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture()
def invalid_host() -> str:
    try:
        socket.getaddrinfo(INVALID_HOST, 80)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return INVALID_HOST
        pytest.skip(f"the local resolver fails {INVALID_HOST} with {exc}, not 'does not exist'")
    pytest.skip(f"the local resolver resolves {INVALID_HOST}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the OpenAI-compatible backend ------------------------------------------------------------


def test_unresolvable_host_is_tried_once_and_says_so(invalid_host: str) -> None:
    model = OpenAICompatibleModel("m", base_url=f"http://{invalid_host}:8000/v1", max_retries=5, retry_policy=SLOW)
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and error.fatal and error.attempts == 1 and error.status is None
    assert str(error).startswith(f"openai/m: cannot resolve host '{invalid_host}:8000': name does not resolve (")
    assert "500" not in str(error)


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("auth-401", 401, ["API key is missing or wrong", "Incorrect API key provided"]),
        ("forbidden-403", 403, ["may not use", "this key may not use forbidden-403"]),
        ("missing-model", 404, ["no such endpoint or model", "no such model"]),
    ],
)
def test_client_errors_keep_the_server_message_and_are_not_retried(
    server: ScriptedServer, name: str, status: int, words: list[str]
) -> None:
    model = make(server, name, max_retries=5, retry_policy=SLOW)
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and error.status == status and error.fatal and error.attempts == 1
    assert f"HTTP {status}" in str(error) and all(word in str(error) for word in words), str(error)
    assert server.attempts[(name, "q")] == 1


def test_bad_request_is_not_fatal(server: ScriptedServer) -> None:
    [error] = ask(make(server, "echo-auth-400"), ["q"])
    assert isinstance(error, ModelError) and error.status == 400 and not error.fatal


def test_server_errors_name_status_and_body_after_retries(server: ScriptedServer) -> None:
    [error] = ask(make(server, "always-503", max_retries=1), ["q"])
    assert isinstance(error, ModelError) and not error.fatal and error.attempts == 2
    assert "HTTP 503 Service Unavailable" in str(error) and "down" in str(error)


def test_tls_to_a_plain_http_server_is_a_tls_error_tried_once(server: ScriptedServer) -> None:
    model = OpenAICompatibleModel("m", base_url=server.url.replace("http://", "https://"), retry_policy=SLOW)
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and error.fatal and error.attempts == 1
    assert "TLS error" in str(error) and "WRONG_VERSION_NUMBER" in str(error)


def test_refused_after_the_endpoint_answered_is_retried_and_not_fatal(server: ScriptedServer) -> None:
    model = make(server, "ok", max_retries=2)
    [first] = ask(model, ["before"])
    assert first.content == "echo: before"
    server.close()  # the server goes away mid-run: may come back, so retried, and not fatal
    [error] = ask(model, ["after"])
    assert isinstance(error, ModelError) and error.attempts == 3 and not error.fatal
    assert "connection refused by '127.0.0.1:" in str(error)


def test_network_cause_digs_through_wrappers() -> None:
    def wrapped(inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise OSError("All connection attempts failed") from exc
        except OSError as outer:
            try:
                raise RuntimeError("Connection error.") from outer
            except RuntimeError as top:
                return top

    dns = network_cause(wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known")), host="h:1")
    assert dns is not None and not dns.retryable and "name does not resolve" in dns.text
    again = network_cause(wrapped(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")))
    assert again is not None and again.retryable and "temporary DNS failure" in again.text
    refused = network_cause(wrapped(ConnectionRefusedError(111, "Connect call failed")))
    assert refused is not None and refused.retryable and refused.kind == "refused"
    assert network_cause(RuntimeError("unrelated")) is None


# --- the litellm backend, really calling out to 127.0.0.1 and the .invalid host ------------------


@pytest.fixture()
def litellm_model() -> Any:
    pytest.importorskip("litellm")
    from taskgrove.models.litellm_backend import LiteLLMModel

    def build(base_url: str, name: str = "openai/m", **kwargs: Any) -> Any:
        return LiteLLMModel(name, base_url=base_url, **{"max_retries": 5, "retry_policy": SLOW, **kwargs})

    return build


def test_litellm_unresolvable_host_is_not_a_500(
    litellm_model: Any, invalid_host: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = litellm_model(f"http://{invalid_host}:8000/v1")
    [error] = ask(model, ["q"])
    assert isinstance(error, ModelError) and error.fatal and error.attempts == 1
    assert "name does not resolve" in str(error) and "InternalServerError" not in str(error)
    out, err = capfd.readouterr()
    assert "Give Feedback" not in out + err and "LiteLLM.Info" not in out + err


def test_litellm_refused_and_404_keep_their_cause_quietly(
    litellm_model: Any, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    [refused] = ask(litellm_model(f"http://127.0.0.1:{free_port()}/v1", max_retries=1, retry_policy=FAST), ["q"])
    assert isinstance(refused, ModelError) and refused.attempts == 2 and refused.fatal
    assert "connection refused by '127.0.0.1:" in str(refused)
    [missing] = ask(litellm_model(server.url, name="openai/missing-model"), ["q"])
    assert isinstance(missing, ModelError) and missing.status == 404 and missing.fatal and missing.attempts == 1
    assert "no such model" in str(missing) and server.attempts[("missing-model", "q")] == 1
    [ok] = ask(litellm_model(server.url, name="openai/ok"), ["hello"])
    assert ok.content == "echo: hello"
    out, err = capfd.readouterr()
    assert "Give Feedback" not in out + err and "LiteLLM.Info" not in out + err


# --- the executor: the cause reaches the sample and the MultiTaskError, and the task stops ------


def write_task(folder: Path, rows: int) -> Path:
    (folder / "data.jsonl").write_text("".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(rows)))
    spec = {
        "name": "remote/probe",
        "source": f"file:{folder / 'data.jsonl'}",
        "input": "{{ text }}",
        "reference": "label",
        "metrics": ["accuracy"],
    }
    path = folder / "probe.yaml"
    path.write_text(json.dumps(spec))
    return path


def run_failing(tmp_path: Path, base_url: str, **config: Any) -> tuple[MultiTaskError, list[dict[str, Any]]]:
    import taskgrove

    task = write_task(tmp_path, 500)
    with pytest.raises(MultiTaskError) as caught:
        taskgrove.run(
            task,
            model="openai/m",
            base_url=base_url,
            output_dir=str(tmp_path / "results"),
            concurrency=8,
            max_sample_errors=1000,
            **config,
        )
    [samples] = list((tmp_path / "results").glob("*/remote/probe/samples.jsonl"))
    return caught.value, [json.loads(line) for line in samples.read_text().splitlines()]


def test_a_task_against_an_unresolvable_host_stops_with_the_cause(tmp_path: Path, invalid_host: str) -> None:
    error, records = run_failing(tmp_path, f"http://{invalid_host}/v1", max_retries=5)
    assert "name does not resolve" in str(error) and "every request to this model would fail" in str(error)
    assert "HTTP 500" not in str(error) and "InternalServerError" not in str(error)
    assert 1 <= len(records) <= 16  # stopped at once, not after 500 samples
    assert all(r["error"]["type"] == "ModelError" and r["error"]["fatal"] for r in records)
    assert all("name does not resolve" in r["error"]["message"] for r in records)


def test_a_task_against_a_missing_model_stops_with_the_server_message(tmp_path: Path, server: ScriptedServer) -> None:
    error, records = run_failing(tmp_path, server.url, max_retries=5)
    assert "HTTP 404" in str(error) and "no such model" in str(error)
    assert 1 <= len(records) <= 16 and sum(server.attempts.values()) == len(records)
