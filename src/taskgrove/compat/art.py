"""ART (openpipe-art) names for task files written against ART, mapped onto taskgrove's types.

A task file keeps its annotations and constructors by importing this module as ``art``::

    from taskgrove.compat import art

    async def run(self, model: art.TrainableModel, scenario, num_samples=1) -> art.TrajectoryGroup:
        response = await model.generate(messages)                     # or model.openai_client()
        trajectory = art.Trajectory(messages_and_choices=messages + [response], reward=0.0)
        return art.TrajectoryGroup([trajectory])

``Trajectory`` also accepts the OpenAI SDK's reply choices (``completion.choices[0]``) in
``messages_and_choices``, turned into taskgrove :class:`~taskgrove.core.Choice` objects when the
trajectory is built. This module never imports openpipe-art itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskgrove.core import Choice, Message, Model, TrajectoryGroup
from taskgrove.core import Trajectory as _Trajectory

__all__ = ["Model", "TrainableModel", "Trajectory", "TrajectoryGroup"]

TrainableModel = Model
"""What ART calls the model a rollout receives: here, any taskgrove :class:`Model`."""


@dataclass(slots=True)
class Trajectory(_Trajectory):
    """:class:`taskgrove.core.Trajectory` that also takes OpenAI SDK choices (converted on creation)."""

    def __post_init__(self) -> None:
        self.messages_and_choices = [_message(item) for item in self.messages_and_choices]


def _message(item: Any) -> Message:
    """A chat message or Choice as it is; an SDK ``Choice`` (with ``.message``) as a taskgrove Choice."""
    if isinstance(item, dict):
        return item
    if hasattr(item, "model_dump") and hasattr(item, "message"):
        from taskgrove.models.openai_format import parse_completion

        return parse_completion({"choices": [item.model_dump()]}, latency_s=0.0)
    if isinstance(item, Choice):
        return item
    raise TypeError(f"messages_and_choices holds a {type(item).__name__}: use chat message dicts or model replies")
