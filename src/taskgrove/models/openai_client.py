"""An OpenAI SDK client for any taskgrove model, in process: ``openai_client(model)``.

The client's HTTP transport is a function (the SDK's own httpx ``MockTransport``), not a socket:
``POST /v1/chat/completions`` becomes ``model.generate(...)`` and its :class:`Choice` becomes a
chat completion. No port is opened, and every call still goes through the model taskgrove
handed the task: its sampling defaults, response cache, dynamic batching and usage counts apply.
Agent code written against ``openai.AsyncOpenAI`` runs unchanged inside a Task.

``to_choice(completion)`` turns what the SDK returned back into a :class:`Choice` to store in a
Trajectory (usage, logprobs and tool calls kept).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

from taskgrove.core import Choice, Model
from taskgrove.errors import ConfigError
from taskgrove.models.errors import ModelError
from taskgrove.models.openai_format import parse_completion

BASE_URL = "http://taskgrove.invalid/v1"
"""The base URL the client shows (``.invalid`` never resolves: nothing leaves the process)."""

METADATA_FIELD = "taskgrove_metadata"
"""An extra field of the reply message carrying ``Choice.metadata`` (the SDK keeps unknown fields)."""

USAGE_FIELD = "taskgrove_usage"
"""An extra field of the reply message carrying this choice's own ``Choice.usage``, so a choice kept
without its completion (ART's ``messages_and_choices``) still counts its tokens."""

_SAMPLING = {"temperature", "top_p", "top_k", "stop", "seed", "repetition_penalty", "logprobs"}
_IGNORED = {"model", "stream", "user", "metadata", "store", "parallel_tool_calls", "tool_choice", "n"}
_EXTRA = {"messages", "tools", "max_tokens", "max_completion_tokens", "return_tokens_as_token_ids"}
_MAX_N = 64


def openai_client(model: Model, *, token_ids: bool = False) -> Any:
    """An ``openai.AsyncOpenAI`` whose chat completions are answered by ``model.generate``.

    ``token_ids=True`` makes logprob tokens ``"token_id:<id>"`` unless a request says otherwise
    (as ART's vLLM server is started with ``return_tokens_as_token_ids``), for replies whose
    logprobs carry ids.
    """
    try:
        import openai
    except ImportError as exc:
        raise ConfigError("model.openai_client() needs the openai package: pip install 'taskgrove[api]'") from exc
    http = _http_module(openai)

    async def handle(request: Any) -> Any:
        if request.method != "POST" or not request.url.path.rstrip("/").endswith("/chat/completions"):
            return _error(
                http, 404, f"taskgrove serves only POST /chat/completions, not {request.method} {request.url.path}"
            )
        try:
            body = json.loads(request.content or b"{}")
            return http.Response(200, json=await chat_completion(model, body, token_ids=token_ids))
        except (ConfigError, ValueError, TypeError, KeyError) as exc:
            return _error(http, 400, f"{type(exc).__name__}: {exc}")
        except ModelError as exc:
            return _error(http, 502, str(exc))

    client = http.AsyncClient(transport=http.MockTransport(handle), base_url=BASE_URL)
    return openai.AsyncOpenAI(api_key="taskgrove-in-process", base_url=BASE_URL, http_client=client, max_retries=0)


def _http_module(openai: Any) -> Any:
    """The httpx flavour this openai release is built on (``httpx`` or ``httpx2``)."""
    default = getattr(openai, "DefaultAsyncHttpxClient", None)
    name = default.__mro__[1].__module__.split(".")[0] if default is not None else "httpx"
    return sys.modules.get(name) or __import__(name)


def _error(http: Any, status: int, message: str) -> Any:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return http.Response(status, json={"error": {"message": message, "type": kind, "code": None}})


async def chat_completion(model: Model, body: dict[str, Any], *, token_ids: bool = False) -> dict[str, Any]:
    """Answer one chat-completions request ``body`` with ``model`` (a plain dict in the wire format).

    ``token_ids``: the default of ``return_tokens_as_token_ids`` (applied to replies whose logprobs have ids).
    """
    if body.get("stream"):
        raise ConfigError("streaming is not supported by the in-process client; call without stream=True")
    unknown = sorted(set(body) - _SAMPLING - _IGNORED - _EXTRA)
    if unknown:
        raise ConfigError(f"unsupported chat-completions parameters: {', '.join(unknown)}")
    if body.get("tool_choice") not in (None, "auto", "none"):
        raise ConfigError(f"tool_choice {body['tool_choice']!r} is not supported (only 'auto' and 'none')")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise ConfigError("messages must be a non-empty list")
    tools = body.get("tools") if body.get("tool_choice") != "none" else None
    sampling = {key: body[key] for key in _SAMPLING if body.get(key) is not None}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        sampling["max_tokens"] = max_tokens
    n = int(body.get("n") or 1)
    if not 1 <= n <= _MAX_N:
        raise ConfigError(f"n must be between 1 and {_MAX_N}, got {n}")
    choices = await asyncio.gather(*(model.generate(messages, tools=tools, **sampling) for _ in range(n)))
    usage = {"prompt_tokens": choices[0].usage.get("prompt_tokens", 0), "completion_tokens": 0}
    usage["completion_tokens"] = sum(c.usage.get("completion_tokens", 0) for c in choices)
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model") or model.name),
        "choices": [
            wire_choice(choice, index, ids=_ids(body.get("return_tokens_as_token_ids"), choice, token_ids))
            for index, choice in enumerate(choices)
        ],
        "usage": usage,
    }


def _ids(asked: Any, choice: Choice, default: bool) -> bool:
    if asked is not None:
        return bool(asked)
    return default and choice.logprobs is not None and all("token_id" in entry for entry in choice.logprobs)


def wire_choice(choice: Choice, index: int = 0, *, ids: bool = False) -> dict[str, Any]:
    """``choice`` as one entry of a chat completion's ``choices`` (the wire format, a plain dict).

    With ``ids`` each logprob token is ``"token_id:<id>"`` (vLLM's ``return_tokens_as_token_ids``).
    """
    message: dict[str, Any] = {"role": "assistant", "content": choice.get("content")}
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    if choice.metadata:
        message[METADATA_FIELD] = choice.metadata  # e.g. a tool-call parse note; read back by to_choice
    if choice.usage:
        message[USAGE_FIELD] = choice.usage
    finish = "tool_calls" if choice.tool_calls else choice.finish_reason
    logprobs = None
    if choice.logprobs is not None:
        logprobs = {"content": [_wire_logprob(entry, ids=ids) for entry in choice.logprobs], "refusal": None}
    return {"index": index, "message": message, "finish_reason": finish, "logprobs": logprobs}


def _wire_logprob(entry: dict[str, Any], *, ids: bool) -> dict[str, Any]:
    """One token; with ``ids`` (vLLM's ``return_tokens_as_token_ids``) the token is ``"token_id:<id>"``."""
    text = str(entry["token"])
    if ids:
        if "token_id" not in entry:
            raise ConfigError("return_tokens_as_token_ids: this model's logprobs carry no token ids")
        token = f"token_id:{entry['token_id']}"
    else:
        token = text
    return {"token": token, "logprob": entry["logprob"], "bytes": list(text.encode("utf-8")), "top_logprobs": []}


def to_choice(completion: Any, index: int = 0) -> Choice:
    """The ``index``-th choice of an SDK ``ChatCompletion`` (or its dict) as a taskgrove :class:`Choice`."""
    data = completion.model_dump() if hasattr(completion, "model_dump") else dict(completion)
    data = {**data, "choices": [data["choices"][index]]}
    choice = parse_completion(data, latency_s=0.0)
    message = data["choices"][0].get("message") or {}
    metadata = message.get(METADATA_FIELD)
    if isinstance(metadata, dict):
        choice.metadata.update(metadata)
    usage = message.get(USAGE_FIELD)
    if isinstance(usage, dict):
        choice.usage = {key: int(value) for key, value in usage.items() if isinstance(value, int)}
    return choice


def from_sdk_choice(choice: Any) -> Choice:
    """An SDK reply choice (``completion.choices[0]``, or its dict) as a taskgrove :class:`Choice`.

    Usage is known when this client answered (it rides on the message); logprobs, tool calls and
    parse notes are kept.
    """
    data = choice.model_dump() if hasattr(choice, "model_dump") else dict(choice)
    return to_choice({"choices": [data]})
