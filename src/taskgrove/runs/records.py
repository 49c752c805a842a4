"""Turning a scenario's TrajectoryGroup into the stored sample record (read back by :mod:`taskgrove.runner.replay`)."""

from __future__ import annotations

import math
from typing import Any

from taskgrove.core import Choice, Message, Task, Trajectory, TrajectoryGroup


def build_record(
    task: Task,
    scenario: Any,
    sample_id: str,
    index: int,
    group: TrajectoryGroup | None,
    *,
    error: BaseException | None = None,
    started: float,
    seconds: float,
) -> dict[str, Any]:
    """The JSON-ready record of one scenario: input, outputs, reference, reward, metrics, error, timing."""
    trajectories = group.trajectories if group is not None else []
    conversation_input: list[Message] = _input_of(trajectories[0]) if trajectories else []
    cut = len(conversation_input)
    outputs = []
    usage: dict[str, int] = {}
    for trajectory in trajectories:
        conversation = trajectory.messages_and_choices
        output: dict[str, Any]
        if conversation[:cut] == conversation_input:
            output = {"messages": [_stored(m, usage) for m in conversation[cut:]]}
        else:
            output = {"messages": [_stored(m, usage) for m in conversation], "full": True}
        output["reward"] = trajectory.reward
        output["metrics"] = trajectory.metrics
        if trajectory.metadata:
            output["metadata"] = trajectory.metadata
        if trajectory.logs:
            output["logs"] = trajectory.logs
        outputs.append(output)
    if error is None and not trajectories:
        error = _all_rollouts_failed(group.exceptions) if group is not None and group.exceptions else None
        error = error or RuntimeError("task.run returned no trajectories")
    record: dict[str, Any] = {
        "id": sample_id,
        "index": index,
        "input": conversation_input,
        "outputs": outputs,
        "reference": task.reference(scenario),
        "reward": trajectories[0].reward if len(trajectories) == 1 else _mean([t.reward for t in trajectories]),
        "metrics": _mean_metrics(trajectories),
        "error": _describe(error) if error is not None else None,
        "usage": usage,
        "timing": {"started": started, "seconds": seconds},
        "scenario": scenario,
    }
    if group is not None:
        if group.exceptions:
            record["rollout_errors"] = [_describe(e) for e in group.exceptions]
        if group.metadata:
            record["group_metadata"] = group.metadata
    return record


def rescored_record(stored: dict[str, Any], trajectories: list[Trajectory]) -> dict[str, Any]:
    """``stored`` with the rewards, metrics and metadata of its outputs replaced by those of
    ``trajectories`` (one per stored output, scored again), and its summary recomputed."""
    outputs = []
    for output, trajectory in zip(stored["outputs"], trajectories, strict=True):
        updated = {**output, "reward": trajectory.reward, "metrics": trajectory.metrics}
        if trajectory.metadata:
            updated["metadata"] = trajectory.metadata
        else:
            updated.pop("metadata", None)
        outputs.append(updated)
    record = {**stored, "outputs": outputs}
    record["reward"] = trajectories[0].reward if len(trajectories) == 1 else _mean([t.reward for t in trajectories])
    record["metrics"] = _mean_metrics(trajectories)
    return record


def _stored(message: Message, usage: dict[str, int]) -> Message:
    """A message as stored; a Choice adds its bookkeeping and its token usage to ``usage``."""
    if not isinstance(message, Choice):
        return message
    for key, value in message.usage.items():
        if isinstance(value, int):
            usage[key] = usage.get(key, 0) + value
    return message.to_record()


def _input_of(trajectory: Trajectory) -> list[Message]:
    for position, message in enumerate(trajectory.messages_and_choices):
        if isinstance(message, Choice):
            return trajectory.messages_and_choices[:position]
    return list(trajectory.messages_and_choices)


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else None


def _mean_metrics(trajectories: list[Trajectory]) -> dict[str, Any]:
    if not trajectories:
        return {}
    if len(trajectories) == 1:
        return trajectories[0].metrics
    merged: dict[str, Any] = {}
    keys = dict.fromkeys(k for t in trajectories for k in t.metrics)  # first-seen order
    for key in keys:
        values = [t.metrics.get(key) for t in trajectories]
        numbers = [float(v) for v in values if isinstance(v, (int, float))]  # bools count as 0/1
        if len(numbers) == len(values):
            merged[key] = _mean(numbers)
        else:
            merged[key] = values
    return merged


def _all_rollouts_failed(exceptions: list[BaseException]) -> BaseException:
    """The sample's error when every rollout failed: the rollouts' error itself when they all failed
    the same way (so the root cause, e.g. a host that does not resolve, is the sample's error),
    else a summary naming the first."""
    first = exceptions[0]
    if all(type(e) is type(first) and str(e) == str(first) for e in exceptions):
        return first
    return RuntimeError(
        f"every rollout of this scenario failed ({len(exceptions)}); first: {type(first).__name__}: {first}"
    )


def _describe(error: BaseException) -> dict[str, Any]:
    """``{"type", "message"}``, plus ``"fatal": true`` for an error every further request would repeat
    (:class:`taskgrove.models.ModelError` with ``fatal``)."""
    described: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if getattr(error, "fatal", False) is True:
        described["fatal"] = True
    return described


def stored_conversation(record: dict[str, Any], output: dict[str, Any]) -> list[Any]:
    """One stored output's whole conversation: the record's input first (unless the output holds
    it in full), the model's replies rebuilt as :class:`Choice` (logprobs kept)."""
    messages = output["messages"] if output.get("full") else [*(record.get("input") or []), *output["messages"]]
    return [Choice.from_record(m) if "choice" in m else dict(m) for m in messages]


def group_from_record(record: dict[str, Any]) -> TrajectoryGroup:
    """The trajectories stored in a sample record, rebuilt (replies as :class:`Choice`, logprobs kept).

    Rollout errors are not rebuilt; a failed sample gives an empty group.
    """
    trajectories = [
        Trajectory(
            stored_conversation(record, output),
            reward=output.get("reward", 0.0),
            metrics=dict(output.get("metrics") or {}),
            metadata=dict(output.get("metadata") or {}),
            logs=list(output.get("logs") or []),
        )
        for output in record.get("outputs") or []
    ]
    return TrajectoryGroup(trajectories, metadata=dict(record.get("group_metadata") or {}))
