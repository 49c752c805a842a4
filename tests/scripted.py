"""A deterministic scripted model for tests (never shipped as a model)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from taskgrove.core import Choice, Message

Reply = str | Choice | BaseException


class ScriptedModel:
    """Answers with ``script(messages, tools)``: a string, a Choice, or an exception to raise.

    ``delay`` makes each call yield to the event loop for that many seconds, so concurrency shows.
    Every call is recorded in ``calls``.
    """

    def __init__(
        self, script: Callable[[list[Message], Any], Reply], *, name: str = "scripted", delay: float = 0.0
    ) -> None:
        self.name = name
        self.script = script
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0

    async def generate(self, messages: list[Message], *, tools: Any = None, **sampling: Any) -> Choice:
        self.calls.append({"messages": messages, "tools": tools, "sampling": sampling})
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.script(messages, tools)
        finally:
            self.active -= 1
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Choice):
            return reply
        return Choice(reply, usage={"prompt_tokens": 3, "completion_tokens": 2})


def echo_model(**kwargs: Any) -> ScriptedModel:
    """Replies with the last user message, upper-cased."""
    return ScriptedModel(lambda messages, tools: messages[-1]["content"].upper(), **kwargs)
