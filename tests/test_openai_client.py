"""``model.openai_client()``: agent code written against the OpenAI SDK runs inside a Task on any
backend (a scripted model here; the embedded model in test_agents_local.py), still cached and
counted; and the same SQL agent runs through the OpenAI-compatible backend against a scripted
server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("openai", reason="model.openai_client() needs the openai package (taskgrove[api])")

from scripted import ScriptedModel
from taskgrove.core import Choice
from taskgrove.models.cache import CachedModel, ResponseCache
from taskgrove.models.openai_client import chat_completion, openai_client, to_choice
from taskgrove.runner.model import ConfiguredModel
from test_examples import run_example

QUERIES = {
    "How many employees work in Sales?": "SELECT COUNT(*) FROM employees WHERE department = 'Sales'",
    "What is the highest salary in Engineering?": "SELECT MAX(salary) FROM employees WHERE department = 'Engineering'",
}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def sql_agent(messages: list[dict[str, Any]], tools: Any) -> Choice:
    """Queries the database for two questions and submits what it read; guesses on one; never submits on one."""
    assert {t["function"]["name"] for t in tools} == {"sql_query", "submit_answer"}
    asked = max(i for i, m in enumerate(messages) if m["role"] == "user")
    question, after = messages[asked]["content"], messages[asked + 1 :]
    usage = {"prompt_tokens": 10, "completion_tokens": 4}
    if question in QUERIES:
        if not after:
            return Choice("", tool_calls=[call("sql_query", query=QUERIES[question])], usage=usage)
        rows = json.loads(after[-1]["content"])
        return Choice("", tool_calls=[call("submit_answer", answer=str(rows[0][0]))], usage=usage)
    if "Dana" in question:
        return Choice("", tool_calls=[call("submit_answer", answer="Lisbon")], usage=usage)
    return Choice("I cannot tell.", usage=usage)


def check_sql_records(records: dict[str, Any]) -> None:
    assert {k: r["reward"] for k, r in records.items()} == {"s1": 1.0, "s2": 1.0, "s3": 0.0, "s4": -0.5}
    assert records["s1"]["metrics"] == {
        "submitted": True,
        "correct": True,
        "queries": 1,
        "sql_errors": 0,
        "turns_used": 2,
    }
    messages = records["s2"]["outputs"][0]["messages"]
    assert [m["role"] for m in messages] == ["assistant", "tool", "assistant", "tool"]
    assert json.loads(messages[1]["content"]) == [[91000]]  # the real SQLite answer
    assert messages[0]["tool_calls"][0]["function"]["name"] == "sql_query"


def test_sdk_agent_runs_inside_a_task_and_its_calls_are_counted(tmp_path: Any) -> None:
    model = ScriptedModel(sql_agent)
    records, metrics = run_example(tmp_path, "sql_agent.py", "examples/sql_agent", model, max_tokens=77)
    check_sql_records(records)
    assert records["s1"]["usage"] == {"prompt_tokens": 20, "completion_tokens": 8}
    assert len(model.calls) == 2 + 2 + 1 + 1
    assert all(c["sampling"]["max_tokens"] == 77 for c in model.calls)  # the run's settings reached the model
    assert metrics["metrics"]["reward"]["value"] == pytest.approx(1.5 / 4)
    # evaluate re-runs the SDK agent against the stored replies, without the model
    source = next(tmp_path.iterdir())
    forbidden = ScriptedModel(lambda messages, tools: AssertionError("no model calls in evaluate"))
    again, _ = run_example(
        tmp_path / "again", "sql_agent.py", "examples/sql_agent", forbidden, mode="evaluate", file_name=str(source)
    )
    assert forbidden.calls == [] and {k: r["reward"] for k, r in again.items()} == {
        k: r["reward"] for k, r in records.items()
    }


def test_the_client_is_cached_and_carries_logprobs_and_tool_calls(tmp_path: Any) -> None:
    def reply(messages: Any, tools: Any) -> Choice:
        return Choice(
            None,
            tool_calls=[call("sql_query", query="SELECT 1")],
            usage={"prompt_tokens": 5, "completion_tokens": 2},
            logprobs=[{"token": "<", "logprob": -0.25, "token_id": 7}, {"token": "x", "logprob": -1.5, "token_id": 9}],
        )

    scripted = ScriptedModel(reply)
    cached = CachedModel(scripted, ResponseCache(tmp_path / "responses.sqlite"))
    client = ConfiguredModel(cached, {"temperature": 0.0}).openai_client()

    async def main() -> list[Any]:
        ask = [{"role": "user", "content": "one?"}]
        first = await client.chat.completions.create(model="m", messages=ask, tools=[], logprobs=True)
        again = await client.chat.completions.create(model="m", messages=ask, tools=[], logprobs=True)
        ids = await client.chat.completions.create(
            model="m", messages=ask, logprobs=True, extra_body={"return_tokens_as_token_ids": True}
        )
        return [first, again, ids]

    first, again, ids = asyncio.run(main())
    assert len(scripted.calls) == 1  # the second identical greedy call came from the cache
    assert scripted.calls[0]["sampling"]["logprobs"] is True
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.tool_calls[0].function.name == "sql_query"
    assert first.usage.prompt_tokens == 5 and first.usage.total_tokens == 7
    assert [t.logprob for t in again.choices[0].logprobs.content] == [-0.25, -1.5]
    assert [t.token for t in ids.choices[0].logprobs.content] == ["token_id:7", "token_id:9"]
    choice = to_choice(ids)
    assert choice.logprobs == [  # the token text comes back from the bytes sent beside the id
        {"token": "<", "logprob": -0.25, "token_id": 7},
        {"token": "x", "logprob": -1.5, "token_id": 9},
    ]
    assert choice.usage == {"prompt_tokens": 5, "completion_tokens": 2}


def test_bad_requests_are_clear_errors() -> None:
    import openai

    scripted = ScriptedModel(lambda messages, tools: "hi")
    client = openai_client(scripted)
    noted = ScriptedModel(lambda messages, tools: Choice("<tool_call>[{", metadata={"tool_call_parse_note": "bad"}))

    async def note() -> Any:
        ask = [{"role": "user", "content": "x"}]
        return await openai_client(noted).chat.completions.create(model="m", messages=ask)

    choice = to_choice(asyncio.run(note()))
    assert choice.content == "<tool_call>[{" and choice.metadata == {"tool_call_parse_note": "bad"}
    bad_tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}, "strict": "x"}}

    async def main() -> None:
        with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
        with pytest.raises(openai.BadRequestError, match="unsupported chat-completions parameters: response_format"):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
            )
        with pytest.raises(openai.BadRequestError, match="tool_choice 'required' is not supported"):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], tools=[bad_tool], tool_choice="required"
            )

    asyncio.run(main())
    assert scripted.calls == []


def test_a_set_in_a_tool_schema_is_a_config_error_naming_the_tool() -> None:
    from taskgrove.errors import ConfigError

    scripted = ScriptedModel(lambda messages, tools: "hi")
    tools = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {...}}}}
    ]
    with pytest.raises(ConfigError, match=r"tool 'lookup': function\.parameters\.properties is a Python set"):
        asyncio.run(ConfiguredModel(scripted, {}).generate([{"role": "user", "content": "x"}], tools=tools))
    assert scripted.calls == []


class ScriptedOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 answering with a scripted model."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(asyncio.run(chat_completion(server.model, body))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api_server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(ScriptedModel(sql_agent))
    yield server
    server.close()


def test_the_sql_agent_through_an_api_model(tmp_path: Any, api_server: ScriptedOpenAIServer) -> None:
    from taskgrove.models.openai_http import OpenAICompatibleModel

    model = OpenAICompatibleModel("scripted-sql", base_url=api_server.url, max_retries=0)
    records, _ = run_example(tmp_path, "sql_agent.py", "examples/sql_agent", model)
    check_sql_records(records)
    assert records["s2"]["usage"] == {"prompt_tokens": 20, "completion_tokens": 8}
    assert len(api_server.model.calls) == 6
