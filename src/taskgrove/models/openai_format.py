"""The OpenAI chat-completions wire format: request parameters and response parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.models.sampling import Sampling


class MalformedResponse(ValueError):
    """The body is not a chat completion."""


def request_params(sampling: Sampling) -> dict[str, Any]:
    """Sampling keys for a chat-completions request; non-standard ones only when set."""
    params: dict[str, Any] = {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature}
    if sampling.top_p != 1.0:
        params["top_p"] = sampling.top_p
    if sampling.stop:
        params["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        params["seed"] = sampling.seed
    if sampling.top_k is not None:
        params["top_k"] = sampling.top_k
    if sampling.repetition_penalty != 1.0:
        params["repetition_penalty"] = sampling.repetition_penalty
    if sampling.logprobs:
        params["logprobs"] = True
    return params


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Plain dicts (a :class:`Choice` is a dict already; its bookkeeping is dropped)."""
    return [dict(message) for message in messages]


def parse_completion(data: Any, *, latency_s: float) -> Choice:
    """A :class:`Choice` from a chat-completion body (a dict, or an object with ``model_dump``)."""
    if not isinstance(data, Mapping) and hasattr(data, "model_dump"):
        data = data.model_dump()
    try:
        first = data["choices"][0]
        message = first["message"]
        if not isinstance(message, Mapping):
            raise TypeError("message is not an object")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("content is not a string")
        tool_calls = [_tool_call(call) for call in message.get("tool_calls") or []]
        usage = data.get("usage") or {}
        counts = {
            key: int(usage[key])
            for key in ("prompt_tokens", "completion_tokens")
            if isinstance(usage, Mapping) and usage.get(key) is not None
        }
        finish = first.get("finish_reason") or "stop"
        logprobs = _logprobs(first.get("logprobs"))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"not a chat completion ({type(exc).__name__}: {exc})") from None
    return Choice(
        content,
        tool_calls=tool_calls or None,
        usage=counts,
        latency_s=latency_s,
        finish_reason=str(finish),
        logprobs=logprobs,
    )


def _logprobs(data: Any) -> list[dict[str, Any]] | None:
    """``choices[0].logprobs.content`` as ``[{"token", "logprob"[, "token_id"]}]`` (``None`` when absent).

    vLLM's ``return_tokens_as_token_ids`` tokens (``"token_id:123"``) give the id; the token's text
    is then read from its ``bytes`` when the server sent them (else the token stays ``"token_id:123"``).
    """
    if not isinstance(data, Mapping) or data.get("content") is None:
        return None
    entries = []
    for item in data["content"]:
        token = str(item["token"])
        entry: dict[str, Any] = {"token": token, "logprob": float(item["logprob"])}
        if token.startswith("token_id:") and token[9:].isdigit():
            entry["token_id"] = int(token[9:])
            if item.get("bytes") is not None:
                entry["token"] = bytes(item["bytes"]).decode("utf-8", errors="replace")
        entries.append(entry)
    return entries


def _tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, Mapping) and hasattr(call, "model_dump"):
        call = call.model_dump()
    function = call["function"]
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id"),
        "type": call.get("type") or "function",
        "function": {"name": function["name"], "arguments": arguments},
    }
