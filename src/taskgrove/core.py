"""The Task interface and its result types: Task, Trajectory, TrajectoryGroup, Choice, Model.

This module has no heavy imports: everything that starts up fast depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

Message = dict[str, Any]
"""A chat message in the OpenAI form: {"role": ..., "content": ..., ["tool_calls"|"tool_call_id"]}."""

TScenario = TypeVar("TScenario")

TokenLogprob = dict[str, Any]
"""One generated token's log-probability: ``{"token": str, "logprob": float, ["token_id": int]}``."""


class Choice(dict):
    """An assistant reply: a chat message dict that also carries usage, latency and finish reason.

    It is a real ``dict`` (``{"role": "assistant", "content": ..., "tool_calls": [...]}``) so tasks
    can append it to a conversation as it is; the extra fields live in attributes.
    """

    __slots__ = ("cached", "finish_reason", "latency_s", "logprobs", "metadata", "usage")

    def __init__(
        self,
        content: str | None = "",
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, int] | None = None,
        latency_s: float = 0.0,
        finish_reason: str = "stop",
        cached: bool = False,
        logprobs: list[TokenLogprob] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(role="assistant", content=content)
        if tool_calls:
            self["tool_calls"] = tool_calls
        self.usage = usage or {}
        self.latency_s = latency_s
        self.finish_reason = finish_reason
        self.cached = cached
        # per generated token {"token", "logprob", ["token_id"]}, when asked: generate(..., logprobs=True)
        self.logprobs = logprobs
        # backend notes, e.g. "tool_call_parse_note" when tool-call text could not be parsed
        self.metadata = metadata or {}

    @property
    def content(self) -> str:
        return self.get("content") or ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return self.get("tool_calls") or []

    def to_record(self) -> dict[str, Any]:
        """The message plus its bookkeeping, for the results store."""
        record = dict(self)
        record["choice"] = {
            "usage": self.usage,
            "latency_s": self.latency_s,
            "finish_reason": self.finish_reason,
            "cached": self.cached,
        }
        if self.logprobs is not None:
            record["choice"]["logprobs"] = self.logprobs
        if self.metadata:
            record["choice"]["metadata"] = self.metadata
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Choice:
        """Rebuild a Choice stored by :meth:`to_record`."""
        extra = record.get("choice") or {}
        return cls(
            record.get("content"),
            tool_calls=record.get("tool_calls"),
            usage=extra.get("usage"),
            latency_s=extra.get("latency_s", 0.0),
            finish_reason=extra.get("finish_reason", "stop"),
            cached=extra.get("cached", False),
            logprobs=extra.get("logprobs"),
            metadata=extra.get("metadata"),
        )


@runtime_checkable
class Model(Protocol):
    """What a task talks to. Backends live in ``taskgrove.models``.

    ``generate(messages, tools=[...])`` returns a :class:`Choice`; with tools, its ``tool_calls``
    are filled on every backend (local models' tool-call text is parsed). ``logprobs=True``
    asks for each generated token's log-probability (``Choice.logprobs``; local and
    OpenAI-compatible backends). The model a task receives from the executor also has
    ``openai_client()``: an ``openai.AsyncOpenAI`` answered by this model in process, so agent
    code written against the OpenAI SDK runs unchanged (still cached, batched and counted).
    """

    name: str

    async def generate(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        **sampling: Any,
    ) -> Choice:
        """Return the assistant's reply to ``messages``."""
        ...


def supports_loglikelihood(model: object) -> bool:
    """Whether ``model`` can score continuations (multiple choice by log-likelihood).

    A model says so with a ``supports_loglikelihood`` attribute (wrappers forward their inner
    model's answer); otherwise having a callable ``loglikelihood`` is the answer.
    """
    flag = getattr(model, "supports_loglikelihood", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(model, "loglikelihood", None))


class _ScoringModelMeta(type(Protocol)):  # type: ignore[misc]
    def __instancecheck__(cls, instance: object) -> bool:
        return supports_loglikelihood(instance)


@runtime_checkable
class ScoringModel(Protocol, metaclass=_ScoringModelMeta):
    """A model that can score continuations (multiple-choice by log-likelihood).

    ``isinstance(model, ScoringModel)`` is :func:`supports_loglikelihood` (a wrapper that has the
    method but whose inner API model cannot score is not a ScoringModel).
    """

    async def loglikelihood(self, context: list[Message], continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation after the chat ``context``."""
        ...


@dataclass
class TaskTrainConfig:
    """Task-specific training defaults (``None`` means: use the preset of the task's group)."""

    learning_rate: float | None = None
    batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    weight_decay: float | None = None
    num_epochs: float | None = None
    max_seq_length: int | None = None
    samples_per_scenario: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Trajectory:
    """One rollout: the conversation (messages and the model's choices), its reward and metrics."""

    messages_and_choices: list[Message] = field(default_factory=list)
    reward: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    def messages(self) -> list[Message]:
        """The conversation as plain chat messages (choices included, bookkeeping dropped)."""
        return [dict(m) if isinstance(m, Choice) else m for m in self.messages_and_choices]

    def choices(self) -> list[Choice]:
        """The model's replies, in order."""
        return [m for m in self.messages_and_choices if isinstance(m, Choice)]

    def log(self, line: str) -> None:
        """Append a free-form log line."""
        self.logs.append(line)


class TrajectoryGroup:
    """The trajectories of one scenario, plus the exceptions of rollouts that failed."""

    __slots__ = ("exceptions", "metadata", "trajectories")

    def __init__(
        self,
        trajectories: Iterable[Trajectory | BaseException] = (),
        *,
        exceptions: Iterable[BaseException] = (),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.trajectories: list[Trajectory] = []
        self.exceptions: list[BaseException] = list(exceptions)
        for item in trajectories:
            if isinstance(item, BaseException):
                self.exceptions.append(item)
            else:
                self.trajectories.append(item)
        self.metadata: dict[str, Any] = metadata or {}

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self.trajectories)

    def __len__(self) -> int:
        return len(self.trajectories)

    def __getitem__(self, index: int) -> Trajectory:
        return self.trajectories[index]

    def rewards(self) -> list[float]:
        return [t.reward for t in self.trajectories]

    def mean_reward(self) -> float:
        rewards = self.rewards()
        return sum(rewards) / len(rewards) if rewards else math.nan

    def advantages(self, eps: float = 1e-6) -> list[float]:
        """Group-normalised advantages ``(r - mean) / (std + eps)`` (population std)."""
        rewards = self.rewards()
        if not rewards:
            return []
        mean = sum(rewards) / len(rewards)
        std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
        return [(r - mean) / (std + eps) for r in rewards]


class Task(Generic[TScenario]):
    """A task: a dataset of scenarios and an async ``run`` that turns one into scored trajectories.

    Subclasses implement :meth:`get_dataset` and :meth:`run`; the other hooks have defaults.
    """

    description: str = ""
    """One line shown in ``taskgrove tasks``."""
    primary_metric: str = "reward"
    """The metric the task is known by: shown first, used for group scores and comparisons."""
    train_family: str | None = None
    """TreeMark family (``similar`` / ``dissimilar``) whose training preset applies; ``None``: inferred."""
    version: int = 1
    """The task's version, recorded in metrics.json; raise it when a change alters its scores."""
    reward_range: tuple[float, float] | None = None
    """The interval rewards lie in, when the task declares one (group scores use only tasks whose
    primary metric is known to lie in [0, 1])."""

    def __init__(self, name: str = "") -> None:
        self.name = name or type(self).__name__
        self.settings: dict[str, Any] = {}

    # --- the interface users know -------------------------------------------------------------
    def get_train_config(self) -> TaskTrainConfig:
        """Task-specific training defaults."""
        return TaskTrainConfig()

    def get_dataset(self, split: str) -> Iterator[TScenario]:
        """Yield the scenarios of ``split`` ("train", "val" or "test")."""
        raise NotImplementedError(f"task {self.name!r} does not implement get_dataset")

    def pre_train(self) -> None:
        """Hook called once before training."""

    def training_messages(self, scenario: TScenario) -> list[Message] | None:
        """The conversation to imitate in supervised fine-tuning: the prompt messages exactly as
        :meth:`run` sends them, then the gold assistant reply as the last message.

        ``None`` (the default) means the task cannot be used for SFT; it can still be trained on
        with RL, which needs only :meth:`run`.
        """
        return None

    async def run(self, model: Model, scenario: TScenario, num_samples: int = 1) -> TrajectoryGroup:
        """Run ``model`` on ``scenario`` and return ``num_samples`` scored trajectories."""
        raise NotImplementedError(f"task {self.name!r} does not implement run")

    # --- hooks the executor and the store use (all optional) ----------------------------------
    def spec_hash(self) -> str | None:
        """A stable hash of what decides this task's scores, recorded in metrics.json and checked
        by ``evaluate``. The default hashes the source code of the task's class (``None`` when
        Python cannot read it); declarative tasks hash their resolved spec."""
        import hashlib
        import inspect

        try:
            source = inspect.getsource(type(self))
        except (OSError, TypeError):
            return None
        return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]

    def configure(self, **settings: Any) -> None:
        """Receive run settings (prompt_format, seed, task-specific options) before any dataset call."""
        self.settings.update(settings)

    def scenario_id(self, scenario: TScenario, index: int) -> str:
        """A stable id for resume and for matching stored outputs; defaults to ``id`` or the index."""
        if isinstance(scenario, dict):
            for key in ("id", "task_id", "idx"):
                value = scenario.get(key)
                if value is not None:
                    return str(value)
        return str(index)

    def reference(self, scenario: TScenario) -> Any:
        """The gold answer shown beside outputs in results (``None`` when there is none)."""
        data: Any = scenario
        if isinstance(data, Mapping):
            for key in ("reference", "answer", "label", "target", "ideal"):
                if key in data:
                    return data[key]
        return None

    def rescore(self, record: Mapping[str, Any]) -> list[Trajectory] | None:
        """Score a stored sample record again without a model (``evaluate`` mode).

        Return the record's trajectories scored afresh, or ``None`` (the default) to have the
        executor re-run :meth:`run` against a replay of the stored replies instead.
        """
        return None

    def aggregate(self, records: list[dict[str, Any]], *, n_resamples: int = 1000) -> dict[str, dict[str, float]]:
        """Task-level metrics from stored sample records, each ``{"value", "ci_low", "ci_high", "n"}``.

        The default is the mean reward and the mean of every numeric per-sample metric, with
        bootstrap 95% intervals over ``n_resamples`` resamples. Tasks with corpus-level metrics
        (F1, BLEU) override this (an override without ``n_resamples`` keeps its own count).
        """
        from taskgrove.metrics.aggregate import mean_metrics

        return mean_metrics(records, n_resamples=n_resamples)
