"""Tool-call text from local models: schemas checked up front, formats parsed, malformed calls kept as text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskgrove.errors import ConfigError
from taskgrove.models.tool_calls import TOOL_PROMPT, parse_reply, prompt_messages, render_calls, validate_tools


def tool(name: str, **properties: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties or {"q": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "description": f"the {name} tool", "parameters": schema}}


TOOLS = [tool("search", keywords={"type": "string"}), tool("add", a={"type": "integer"}, b={"type": "integer"})]


def calls(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in reply.tool_calls]


def test_smollm2_list_in_one_block() -> None:
    text = '<tool_call>[{"name": "search", "arguments": {"keywords": "budget"}}, {"name": "add", "arguments": {"a": 1, "b": 2}}]</tool_call>'
    reply = parse_reply(text, TOOLS)
    assert calls(reply) == [("search", {"keywords": "budget"}), ("add", {"a": 1, "b": 2})]
    assert reply.content is None and reply.note is None
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in reply.tool_calls)
    assert len({c["id"] for c in reply.tool_calls}) == 2


def test_hermes_qwen_blocks_keep_surrounding_text() -> None:
    text = (
        'Let me look.\n<tool_call>\n{"name": "search", "arguments": {"keywords": "x"}}\n</tool_call>\n'
        '<tool_call>{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}</tool_call>'
    )
    reply = parse_reply(text, TOOLS)
    assert calls(reply) == [("search", {"keywords": "x"}), ("add", {"a": 1, "b": 2})]
    assert reply.content == "Let me look."


def test_llama3_bare_json_only_for_known_tools() -> None:
    reply = parse_reply('<|python_tag|>{"name": "add", "parameters": {"a": 3, "b": 4}}', TOOLS)
    assert calls(reply) == [("add", {"a": 3, "b": 4})]
    two = parse_reply('{"name": "add", "parameters": {"a": 1, "b": 1}}; {"name": "search", "parameters": {}}', TOOLS)
    assert [name for name, _ in calls(two)] == ["add", "search"]
    answer = '{"name": "Ada Lovelace", "born": 1815}'  # JSON that is an answer, not a call
    assert parse_reply(answer, TOOLS).content == answer and not parse_reply(answer, TOOLS).tool_calls


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            '<tool_call>{"name": "search", "arguments": {"keywords": }</tool_call>',
            "malformed tool call: JSONDecodeError",
        ),
        ('<tool_call>[{"name": "search", "arguments": {"keywords": "x"', "unclosed <tool_call>"),
        ('<tool_call>{"arguments": {}}</tool_call>', "no name"),
        ('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>', "not an object"),
        ("<tool_call>[]</tool_call>", "empty tool call"),
    ],
)
def test_malformed_calls_stay_text_with_a_note(text: str, why: str) -> None:
    reply = parse_reply(text, TOOLS)
    assert reply.content == text and reply.tool_calls == []
    assert reply.note is not None and why in reply.note


def test_without_tools_nothing_is_parsed() -> None:
    text = '<tool_call>[{"name": "search", "arguments": {}}]</tool_call>'
    assert parse_reply(text, None).content == text


class ResponseTemplateTokenizer:
    """A tokenizer whose ``response_template`` parsing is transformers' (the real implementation)."""

    response_template = {  # noqa: RUF012
        "start_anchor": "<|assistant|>",
        "fields": {
            "content": {},
            "tool_calls": {
                "open": "<fn>",
                "close": "</fn>",
                "repeats": True,
                "content": "json",
                "transform": {"type": "function", "function": "{content}"},
            },
        },
    }

    def parse_response(self, text: str, **kwargs: Any) -> dict[str, Any]:
        from transformers import PreTrainedTokenizerBase

        return PreTrainedTokenizerBase.parse_response(self, text, **kwargs)  # type: ignore[arg-type]


def test_a_tokenizer_response_template_is_used_when_present() -> None:
    pytest.importorskip("transformers")
    text = 'ok<fn>{"name": "add", "arguments": {"a": "1", "b": 2}}</fn>'
    reply = parse_reply(text, TOOLS, tokenizer=ResponseTemplateTokenizer(), prefix="")
    assert reply.note is None and reply.content == "ok"
    assert calls(reply) == [("add", {"a": 1, "b": 2})]  # cast to the schema's integer by transformers


def test_set_placeholder_in_a_schema_is_a_clear_config_error() -> None:
    bad = tool("search")
    bad["function"]["parameters"]["properties"]["q"] = {...}
    with pytest.raises(
        ConfigError,
        match=r"tool 'search': function\.parameters\.properties\.q is a Python set \(a \{\.\.\.\} placeholder",
    ):
        validate_tools([bad])
    with pytest.raises(ConfigError, match="duplicate tool names search"):
        validate_tools([tool("search"), tool("search")])
    with pytest.raises(ConfigError, match="has no name"):
        validate_tools([{"type": "function", "function": {"parameters": {}}}])
    assert validate_tools(None) is None and validate_tools(TOOLS) == TOOLS


def test_prompt_shows_tools_and_past_calls_to_a_template_that_cannot() -> None:
    past = [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": None, "tool_calls": past},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]
    plain = prompt_messages(messages, TOOLS, template="{{ message['content'] }}")
    assert plain[0]["content"].startswith("Be brief.\n\nYou have access to the following tools:")
    assert json.dumps([t["function"] for t in TOOLS]) in plain[0]["content"]
    assert plain[2] == {"role": "assistant", "content": render_calls(past)}
    assert parse_reply(plain[2]["content"], TOOLS).tool_calls[0]["function"] == past[0]["function"]
    rich = prompt_messages(messages, TOOLS, template="{% if tools %}{{ tools }}{% endif %}{{ m.tool_calls }}")
    assert rich[0]["content"] == "Be brief."
    assert rich[2]["tool_calls"][0]["function"]["arguments"] == {"a": 1, "b": 2}
    assert "{tools}" in TOOL_PROMPT
