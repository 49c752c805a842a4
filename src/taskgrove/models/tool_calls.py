"""Tool calls as text: checking tool schemas, showing tools to models whose chat template cannot,
and turning a local model's tool-call text into OpenAI ``tool_calls``.

Formats read (whichever the model's chat template asks for):

- Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (one block per call);
- SmolLM2: ``<tool_call>[{"name": ..., "arguments": {...}}, ...]</tool_call>`` (a list in one block);
- Llama 3 JSON: the whole reply is ``{"name": ..., "parameters": {...}}`` (optionally after
  ``<|python_tag|>``, several separated by ``;``), counted only when the name is one of the tools.

A tokenizer with a ``response_template`` (transformers 5) is parsed by transformers' own
``tokenizer.parse_response`` instead. Text that opens a tool call but does not hold a valid one
stays content, with a note saying why (never an exception: the sample goes on).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskgrove.core import Message
from taskgrove.errors import ConfigError

Tool = dict[str, Any]

TOOL_PROMPT = """You have access to the following tools:
<tools>{tools}</tools>

To call tools, reply with only a tool call in this format, and no other text:
<tool_call>[{{"name": "func_name1", "arguments": {{"argument1": "value1"}}}}]</tool_call>
Each tool's result comes back in a message from the role "tool". If no tool is needed, reply normally."""
"""How tools are shown to a model whose chat template ignores ``tools`` (SmolLM2's function-calling prompt)."""

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_PYTHON_TAG = "<|python_tag|>"


# --- schemas ---------------------------------------------------------------------------------
def validate_tools(tools: Any) -> list[Tool] | None:
    """``tools`` checked as OpenAI function tools with JSON-only schemas (``None``/empty: no tools).

    Raises :class:`ConfigError` naming the tool and the offending place, e.g. a Python ``set``
    left by a ``{...}`` placeholder.
    """
    if not tools:
        return None
    if not isinstance(tools, list | tuple):
        raise ConfigError(f"tools must be a list of tool definitions, got {type(tools).__name__}")
    names = []
    for index, tool in enumerate(tools):
        label = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise ConfigError(f"{label} must be a dict like {{'type': 'function', 'function': {{...}}}}")
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, Mapping):
            raise ConfigError(f"{label} must be {{'type': 'function', 'function': {{'name': ..., 'parameters': ...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}: the function has no name")
        label = f"tool {name!r}"
        parameters = function.get("parameters", {})
        if not isinstance(parameters, Mapping):
            raise ConfigError(f"{label}: parameters must be a JSON schema object, got {type(parameters).__name__}")
        _check_json(function, f"{label}: function", label)
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"tools: duplicate tool names {', '.join(duplicates)}")
    return [dict(tool) for tool in tools]


def _check_json(value: Any, where: str, label: str) -> None:
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: key {key!r} is not a string; tool schemas must be JSON")
            _check_json(item, f"{where}.{key}", label)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", label)
        return
    hint = " (a {...} placeholder left in the schema?)" if isinstance(value, set | frozenset) else ""
    raise ConfigError(f"{where} is a Python {type(value).__name__}{hint}; tool schemas must be JSON")


# --- showing tools and past calls to a chat template ----------------------------------------
def template_renders(template: str | None, word: str) -> bool:
    """Whether a chat template's source mentions ``word`` (``tools``, ``tool_calls``)."""
    return bool(template) and word in str(template)


def prompt_messages(messages: list[Message], tools: list[Tool] | None, template: str | None) -> list[Message]:
    """The messages as the chat template should see them.

    Assistant tool calls get dict arguments (what templates expect); a template that cannot
    render ``tool_calls`` sees them as ``<tool_call>[...]</tool_call>`` text, and one that
    ignores ``tools`` gets them described in the system message (:data:`TOOL_PROMPT`).
    """
    renders_calls = template_renders(template, "tool_calls")
    out: list[Message] = []
    for message in messages:
        plain = {**message, "content": message.get("content") or ""}
        calls = message.get("tool_calls")
        if calls:
            if renders_calls:
                plain["tool_calls"] = [_call_for_template(call) for call in calls]
            else:
                plain.pop("tool_calls", None)
                plain["content"] = (plain["content"] + "\n" if plain["content"] else "") + render_calls(calls)
        out.append(plain)
    if tools and not template_renders(template, "tools"):
        block = TOOL_PROMPT.format(tools=json.dumps([t["function"] for t in tools], ensure_ascii=False))
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{block}"}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def render_calls(calls: list[dict[str, Any]]) -> str:
    """OpenAI tool calls as the ``<tool_call>[...]</tool_call>`` text of :data:`TOOL_PROMPT`."""
    items = [{"name": c["function"]["name"], "arguments": _arguments(c["function"].get("arguments"))} for c in calls]
    return f"<tool_call>{json.dumps(items, ensure_ascii=False)}</tool_call>"


def _call_for_template(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {**call, "function": {**function, "arguments": _arguments(function.get("arguments"))}}


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return arguments
    return arguments if arguments is not None else {}


# --- parsing replies -------------------------------------------------------------------------
@dataclass
class ParsedReply:
    """A reply split into text and OpenAI tool calls; ``note`` says why tool-call text was not used."""

    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None


def parse_reply(
    text: str, tools: list[Tool] | None, *, tokenizer: Any = None, prefix: str | None = None
) -> ParsedReply:
    """Split a generated ``text`` into content and tool calls (only when ``tools`` were offered)."""
    if not tools:
        return ParsedReply(text)
    if tokenizer is not None and getattr(tokenizer, "response_template", None) is not None:
        return _parse_with_transformers(text, tools, tokenizer, prefix or "")
    if "<tool_call>" in text:
        return _parse_blocks(text)
    return _parse_bare_json(text, {t["function"]["name"] for t in tools})


def _parse_with_transformers(text: str, tools: list[Tool], tokenizer: Any, prefix: str) -> ParsedReply:
    try:
        message = tokenizer.parse_response(text, prefix=prefix, tools=tools)
        raw_calls = message.get("tool_calls") or []
        calls = [_openai_call(_unwrap(c)) for c in raw_calls]
    except Exception as exc:  # the template's parser rejected the text: keep it as content
        return ParsedReply(text, note=f"tool call not parsed by the tokenizer's response template: {exc}")
    content = message.get("content")
    return ParsedReply(content if content or not calls else None, calls)


def _unwrap(call: Any) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise ValueError(f"a tool call is a {type(call).__name__}, not an object")
    return dict(call["function"]) if isinstance(call.get("function"), Mapping) else dict(call)


def _parse_blocks(text: str) -> ParsedReply:
    calls: list[dict[str, Any]] = []
    for match in _BLOCK.finditer(text):
        body = match.group(1).strip()
        try:
            decoded = json.loads(body)
            items = decoded if isinstance(decoded, list) else [decoded]
            calls.extend(_openai_call(item) for item in items)
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            unclosed = "" if match.group(0).endswith("</tool_call>") else " (unclosed <tool_call>)"
            return ParsedReply(text, note=f"malformed tool call{unclosed}: {type(exc).__name__}: {exc}")
    rest = _BLOCK.sub("", text).strip()
    if not calls:
        return ParsedReply(text, note="empty tool call: <tool_call> held no calls")
    return ParsedReply(rest or None, calls)


def _parse_bare_json(text: str, names: set[str]) -> ParsedReply:
    body = text.strip()
    if body.startswith(_PYTHON_TAG):
        body = body[len(_PYTHON_TAG) :].strip()
    if not body.startswith(("{", "[")):
        return ParsedReply(text)
    try:
        items = _json_items(body)
    except (json.JSONDecodeError, ValueError):
        return ParsedReply(text)  # JSON-looking prose is an answer, not a call
    if not items or not all(isinstance(i, Mapping) and i.get("name") in names for i in items):
        return ParsedReply(text)
    try:
        return ParsedReply(None, [_openai_call(item) for item in items])
    except (ValueError, TypeError, KeyError) as exc:
        return ParsedReply(text, note=f"malformed tool call: {type(exc).__name__}: {exc}")


def _json_items(body: str) -> list[Any]:
    try:
        decoded = json.loads(body)
        return decoded if isinstance(decoded, list) else [decoded]
    except json.JSONDecodeError:
        return [json.loads(part) for part in body.split(";") if part.strip()]


def _openai_call(item: Any) -> dict[str, Any]:
    """``{"name", "arguments"|"parameters"}`` as an OpenAI tool call with JSON-string arguments."""
    if not isinstance(item, Mapping):
        raise ValueError(f"a tool call must be an object, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a tool call has no name")
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = json.loads(arguments or "{}")
    if not isinstance(arguments, Mapping):
        raise ValueError(f"the arguments of {name!r} are not an object")
    return {
        "id": f"call_{uuid.uuid4().hex[:12]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }
