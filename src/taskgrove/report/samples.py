"""Compact sample rows for the HTML sample browser.

Each stored record becomes a short list ``[id, input, outputs, reference, reward, error, metrics]``
with messages flattened to text (a failed sample without messages shows its scenario as input) and every text clipped to ``max_chars`` (keeping its start and,
mostly, its end, where the question of a long few-shot prompt is), so 20,000 samples stay a few
megabytes of JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from taskgrove.report.collect import TaskResult
from taskgrove.report.stats import finite
from taskgrove.runs.store import read_records

DEFAULT_MAX_CHARS = 2000


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: a quarter from its start, the rest from its end."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… [{len(text) - limit} characters omitted] …\n{text[-tail:]}"


def content_text(content: Any) -> str:
    """Message content as text: strings as they are, text parts joined, anything else as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = [p.get("text", "") if isinstance(p, dict) and p.get("type") == "text" else _json(p) for p in content]
        return "\n".join(pieces)
    return _json(content)


def messages_text(messages: list[Any], *, roles: bool = True) -> str:
    """Messages as ``[role]`` blocks (or bare contents when ``roles`` is False), tool calls as JSON."""
    blocks = []
    for message in messages or []:
        if not isinstance(message, dict):
            blocks.append(_json(message))
            continue
        text = content_text(message.get("content"))
        if message.get("tool_calls"):
            text = (text + "\n" if text else "") + "tool calls: " + _json(message["tool_calls"])
        blocks.append(f"[{message.get('role', '?')}]\n{text}" if roles else text)
    return "\n\n".join(blocks)


def record_row(record: dict[str, Any], max_chars: int = DEFAULT_MAX_CHARS) -> list[Any]:
    """One record as ``[id, input, outputs, reference, reward, error, metrics]`` (see module doc)."""
    outputs = []
    for output in record.get("outputs") or []:
        messages = output.get("messages") or []
        only_reply = (
            len(messages) == 1
            and isinstance(messages[0], dict)
            and messages[0].get("role") == "assistant"
            and not messages[0].get("tool_calls")
        )
        reward = output.get("reward")
        outputs.append(
            [clip(messages_text(messages, roles=not only_reply), max_chars), float(reward) if finite(reward) else None]
        )
    reference = record.get("reference")
    reward = record.get("reward")
    error = record.get("error")
    metrics = record.get("metrics") or {}
    shown_input = messages_text(record.get("input") or [])
    if not shown_input and record.get("scenario") is not None:  # a failed sample has no messages: show its scenario
        shown_input = "[scenario]\n" + _json(record["scenario"])
    return [
        str(record.get("id")),
        clip(shown_input, max_chars),
        outputs,
        None if reference is None else clip(reference if isinstance(reference, str) else _json(reference), max_chars),
        float(reward) if reward is not None and finite(reward) else None,
        None
        if not error
        else clip(
            f"{error.get('type', 'Error')}: {error.get('message', '')}" if isinstance(error, dict) else str(error),
            max_chars,
        ),
        clip(_json(metrics), 300) if metrics else None,
    ]


def task_rows(task: TaskResult, max_chars: int = DEFAULT_MAX_CHARS) -> list[list[Any]]:
    """The rows of a task's samples in index order (the last line of an id wins)."""
    if not task.samples_path.exists():
        return []
    by_id: dict[str, tuple[int, list[Any]]] = {}
    for record in read_records(task.samples_path):
        index = record.get("index")
        by_id[str(record.get("id"))] = (index if isinstance(index, int) else len(by_id), record_row(record, max_chars))
    return [row for _, row in sorted(by_id.values(), key=lambda item: item[0])]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
