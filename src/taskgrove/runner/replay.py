"""Re-scoring stored outputs without a model: a model that answers with what was stored."""

from __future__ import annotations

from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.errors import TaskgroveError
from taskgrove.runs.records import stored_conversation


class ReplayMismatch(TaskgroveError):
    """The task asked for a reply to a conversation that the stored outputs do not contain."""


class ReplayModel:
    """Answers each ``generate`` call with the stored choice that followed the same conversation.

    Each stored choice answers once, so ``num_samples`` identical prompts get their own replies.
    Conversations are compared message by message (a Choice equals the plain message it stands for).
    """

    def __init__(self, replies: list[tuple[list[Message], int, Choice]], name: str = "replay") -> None:
        """``replies``: (conversation, position of the reply in it, the reply); see :meth:`from_record`."""
        self.name = name
        self._replies = replies

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ReplayModel:
        """The replay of a stored sample record (see :mod:`taskgrove.runs.records`)."""
        replies: list[tuple[list[Message], int, Choice]] = []
        for output in record.get("outputs") or ():
            conversation = stored_conversation(record, output)
            replies.extend(
                (conversation, position, m) for position, m in enumerate(conversation) if isinstance(m, Choice)
            )
        return cls(replies)

    def __len__(self) -> int:
        """Stored replies not used yet."""
        return len(self._replies)

    async def generate(self, messages: list[Message], *, tools: Any = None, **sampling: Any) -> Choice:
        count = len(messages)
        for slot, (conversation, position, choice) in enumerate(self._replies):
            if position == count and conversation[:count] == messages:
                del self._replies[slot]
                return choice
        raise ReplayMismatch(
            "no stored output for this conversation: the task's prompts differ from the run "
            "that produced the outputs (was the task or its prompt changed?)"
        )

    def openai_client(self) -> Any:
        """The OpenAI SDK client of :mod:`taskgrove.models.openai_client`, answered by the replay."""
        from taskgrove.models.openai_client import openai_client

        return openai_client(self)

    async def aclose(self) -> None:
        return None
