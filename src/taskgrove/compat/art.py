"""ART (openpipe-art) names for task files written against ART, mapped onto taskgrove's types.

A task file keeps its annotations and constructors by importing this module as ``art``::

    from taskgrove.compat import art

    async def run(self, model: art.TrainableModel, scenario, num_samples=1) -> art.TrajectoryGroup:
        response = await model.generate(messages)                     # or model.openai_client()
        trajectory = art.Trajectory(messages_and_choices=messages + [response], reward=0.0)
        return art.TrajectoryGroup([trajectory])

``Trajectory`` also accepts the OpenAI SDK's reply choices (``completion.choices[0]``) in
``messages_and_choices``, turned into taskgrove :class:`~taskgrove.core.Choice` objects when the
trajectory is built. An ART rollout function (``async def rollout(model, scenario) -> Trajectory``)
becomes a Task with :func:`rollout_task`. This module never imports openpipe-art itself; converting
openpipe-art's own objects is :mod:`taskgrove.compat.art_convert` (the ``art`` extra).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskgrove.core import Choice, Message, Model, Task
from taskgrove.core import Trajectory as _Trajectory
from taskgrove.core import TrajectoryGroup as _TrajectoryGroup

__all__ = ["Model", "RolloutModel", "TrainableModel", "Trajectory", "TrajectoryGroup", "rollout_task"]

TrainableModel = Model
"""What ART calls the model a rollout receives: here, any taskgrove :class:`Model`."""

Rollout = Callable[[Any, Any], Awaitable[Any]]
"""``async def rollout(model, scenario) -> Trajectory`` (taskgrove's, this module's or openpipe-art's)."""


@dataclass(slots=True)
class Trajectory(_Trajectory):
    """:class:`taskgrove.core.Trajectory` that also takes OpenAI SDK choices (converted on creation)."""

    def __post_init__(self) -> None:
        self.messages_and_choices = [_message(item) for item in self.messages_and_choices]


class TrajectoryGroup(_TrajectoryGroup):
    """:class:`taskgrove.core.TrajectoryGroup`; given awaitables, as in ART, it is awaited instead:
    ``await TrajectoryGroup(rollout(model, scenario) for _ in range(n))`` runs them concurrently and
    keeps a failed one in ``exceptions``."""

    def __new__(
        cls, trajectories: Iterable[Any] = (), *, exceptions: Iterable[BaseException] = (), metadata: Any = None
    ) -> Any:
        items = list(trajectories)
        if any(inspect.isawaitable(item) for item in items):
            return _gather(cls, items, list(exceptions), metadata)
        group = super().__new__(cls)
        _TrajectoryGroup.__init__(group, items, exceptions=exceptions, metadata=metadata)
        return group

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Built by ``__new__`` (which had to read the trajectories, maybe a one-pass generator)."""


async def _gather(
    cls: type[TrajectoryGroup], items: list[Any], exceptions: list[BaseException], metadata: Any
) -> TrajectoryGroup:
    results = await asyncio.gather(*(_awaited(item) for item in items), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancellation and interrupts are not rollout failures
    group: TrajectoryGroup = cls(
        [r if isinstance(r, BaseException) else _trajectory(r) for r in results],
        exceptions=exceptions,
        metadata=metadata,
    )
    return group


async def _awaited(item: Any) -> Any:
    return await item if inspect.isawaitable(item) else item


def _message(item: Any) -> Message:
    """A chat message or Choice as it is; an SDK ``Choice`` (with ``.message``) as a taskgrove Choice."""
    if isinstance(item, dict):
        return item
    if hasattr(item, "model_dump") and hasattr(item, "message"):
        from taskgrove.models.openai_client import from_sdk_choice

        return from_sdk_choice(item)
    if isinstance(item, Choice):
        return item
    raise TypeError(f"messages_and_choices holds a {type(item).__name__}: use chat message dicts or model replies")


class RolloutModel:
    """The model a rollout receives: the run's model plus the bits of ART's ``Model`` rollouts use.

    ``openai_client()`` answers in process (calls counted, cached, batched); ``get_inference_name()``
    is the model's name. Everything else is the run's model's own.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = model.name
        self.trainable = False

    async def generate(self, messages: list[Message], *, tools: Any = None, **sampling: Any) -> Choice:
        """The run's model's reply."""
        return await self.model.generate(messages, tools=tools, **sampling)

    def openai_client(self) -> Any:
        """An ``openai.AsyncOpenAI`` answered by the run's model, in process; logprob tokens are
        ``"token_id:<id>"`` when the model gives ids, as from ART's own vLLM server."""
        from taskgrove.models.openai_client import openai_client

        return openai_client(self.model, token_ids=True)

    def get_inference_name(self, step: int | None = None) -> str:
        """The ``model=`` to send through :meth:`openai_client` (ART's checkpoint ``step`` does not apply)."""
        if step is not None:
            raise ValueError("get_inference_name(step=...): taskgrove runs one model, it has no ART checkpoint steps")
        return self.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.model, attribute)


class RolloutTask(Task[Any]):
    """A Task whose ``run`` awaits an ART-style ``rollout(model, scenario)`` once per sample."""

    def __init__(
        self,
        rollout: Rollout,
        scenarios: Sequence[Any] | Mapping[str, Sequence[Any]] | Callable[[str], Iterable[Any]],
        *,
        name: str = "",
        description: str = "",
        scenario_id: Callable[[Any], str] | None = None,
        reward_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(name or getattr(rollout, "__name__", "rollout"))
        self.rollout = rollout
        self.scenarios = scenarios
        self.description = description or (inspect.getdoc(rollout) or "").split("\n")[0]
        self._scenario_id = scenario_id
        self.reward_range = reward_range

    def get_dataset(self, split: str) -> Iterator[Any]:
        if callable(self.scenarios):
            return iter(self.scenarios(split))
        if isinstance(self.scenarios, Mapping):
            if split not in self.scenarios:
                raise KeyError(f"task {self.name!r} has no {split!r} scenarios (it has: {', '.join(self.scenarios)})")
            return iter(self.scenarios[split])
        return iter(self.scenarios)

    def scenario_id(self, scenario: Any, index: int) -> str:
        if self._scenario_id is not None:
            return str(self._scenario_id(scenario))
        value = None if isinstance(scenario, Mapping) else getattr(scenario, "id", None)
        return str(value) if value is not None else super().scenario_id(scenario, index)

    def spec_hash(self) -> str | None:
        """The rollout function's source (the class's alone would be the same for every rollout)."""
        try:
            source = inspect.getsource(self.rollout)
        except (OSError, TypeError):
            return None
        return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]

    async def run(self, model: Model, scenario: Any, num_samples: int = 1) -> TrajectoryGroup:
        """``num_samples`` concurrent rollouts; a failed one is kept in the group's exceptions (as ART does)."""
        view = RolloutModel(model)
        return await _gather(TrajectoryGroup, [self.rollout(view, scenario) for _ in range(num_samples)], [], None)


def _trajectory(result: Any) -> _Trajectory:
    if isinstance(result, _Trajectory):
        return result
    from taskgrove.compat.art_convert import from_art_trajectory, is_art_object

    if is_art_object(result) and hasattr(result, "messages_and_choices"):
        return from_art_trajectory(result)
    raise TypeError(
        f"the rollout returned a {type(result).__name__}: it must return a Trajectory (taskgrove's or ART's)"
    )


def rollout_task(
    rollout: Rollout,
    scenarios: Sequence[Any] | Mapping[str, Sequence[Any]] | Callable[[str], Iterable[Any]],
    *,
    name: str = "",
    description: str = "",
    scenario_id: Callable[[Any], str] | None = None,
    reward_range: tuple[float, float] | None = None,
) -> RolloutTask:
    """A Task running the ART rollout ``async def rollout(model, scenario) -> Trajectory``.

    ``scenarios``: one list for every split, a ``{split: list}`` mapping, or ``split -> iterable``.
    The rollout may return a taskgrove Trajectory, this module's, or openpipe-art's (converted).
    Register it from a task file: ``register_task("my/rollout")(lambda: rollout_task(rollout, SCENARIOS))``.
    """
    return RolloutTask(
        rollout, scenarios, name=name, description=description, scenario_id=scenario_id, reward_range=reward_range
    )
