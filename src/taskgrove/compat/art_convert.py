"""taskgrove's TrajectoryGroups to openpipe-art's and back (the optional ``art`` extra).

``to_art_groups(groups)`` gives ``art.TrajectoryGroup`` objects that ART's trainer tokenises: each
taskgrove :class:`~taskgrove.core.Choice` becomes the OpenAI SDK ``Choice`` ART expects, its token
logprobs as vLLM sends them (``"token_id:<id>"`` tokens, the text in ``bytes``), so ART trains on
exactly the tokens the model generated. ``from_art_groups`` is the way back (usage, tool calls,
logprobs and parse notes kept). Only this module imports openpipe-art, when one of its functions runs.

Mapped fields: messages and choices, reward, metrics (numbers and booleans, as ART requires),
metadata (scalars; ART's ``tools`` ride in ``metadata["tools"]``), logs; a group's exceptions,
metadata, and its ART-only metrics and logs (in ``metadata["art_group_metrics"|"art_group_logs"]``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from taskgrove.core import Choice, Message, Trajectory, TrajectoryGroup
from taskgrove.errors import ConfigError

__all__ = ["ArtRolloutError", "from_art_group", "from_art_groups", "from_art_trajectory", "import_art"]
__all__ += ["is_art_object", "stored_art_groups", "to_art_group", "to_art_groups", "to_art_trajectory"]

TOOLS_KEY = "tools"
GROUP_METRICS_KEY = "art_group_metrics"
GROUP_LOGS_KEY = "art_group_logs"
_SCALARS = (str, int, float, bool, type(None))


class ArtRolloutError(RuntimeError):
    """A rollout exception ART recorded on a group (ART keeps its type, message and traceback as text)."""

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.traceback = traceback


@functools.cache
def import_art() -> ModuleType:
    """Import openpipe-art (``art``), or fail with how to install it. Use it instead of ``import art``.

    litellm, which ART imports, is told to use its bundled price map instead of fetching one; and
    ART's patch of transformers' attention-mask helper is undone when it does not fit the installed
    transformers (see :func:`_undo_mismatched_mask_patch`).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import art
    except ImportError as exc:
        raise ConfigError(
            f"converting to or from ART needs openpipe-art (pip install 'taskgrove[art]'); import failed: {exc}"
        ) from exc
    _undo_mismatched_mask_patch()
    return art


def _undo_mismatched_mask_patch() -> bool:
    """Put back transformers' ``masking_utils._preprocess_mask_arguments`` if ART replaced it with a
    wrapper written for another transformers signature; return whether it did.

    ``import art`` (0.5.18) wraps that function with the arguments of transformers 5.2 (to flatten
    3-D position ids in its GPU trainer); on a transformers whose function takes other arguments
    every ``generate`` in the process then fails with ``missing 1 required positional argument``.
    ART's tokenisation does not use it.
    """
    import inspect

    try:
        from art.transformers import patches
        from transformers import masking_utils
    except ImportError:
        return False
    original: Any = getattr(patches, "_preprocess_mask_arguments", None)
    patched: Any = getattr(patches, "_patched_preprocess_mask_arguments", None)
    if not callable(original) or not callable(patched) or masking_utils._preprocess_mask_arguments is not patched:
        return False
    if list(inspect.signature(original).parameters)[:7] == list(inspect.signature(patched).parameters):
        return False
    masking_utils._preprocess_mask_arguments = original
    return True


def is_art_object(value: object) -> bool:
    """Whether ``value`` is one of openpipe-art's objects (checked without importing ART)."""
    return type(value).__module__.split(".")[0] == "art"


# --- taskgrove -> ART ---------------------------------------------------------------------------
def to_art_groups(groups: Iterable[TrajectoryGroup], *, tools: list[dict[str, Any]] | None = None) -> list[Any]:
    """``art.TrajectoryGroup`` objects for ``groups`` (see :func:`to_art_group`)."""
    return [to_art_group(group, tools=tools) for group in groups]


def stored_art_groups(task_dir: str | Path, *, tools: list[dict[str, Any]] | None = None) -> list[Any]:
    """ART groups for the samples a run stored in ``task_dir`` (``results/<run>/<task>``), one per
    scenario; failed samples are left out."""
    from taskgrove.runs.records import group_from_record
    from taskgrove.runs.store import TaskStore

    records = TaskStore(Path(task_dir)).records()
    return [to_art_group(group_from_record(r), tools=tools) for r in records if not r.get("error")]


def to_art_group(group: TrajectoryGroup, *, tools: list[dict[str, Any]] | None = None) -> Any:
    """One ``art.TrajectoryGroup``: its trajectories, exceptions and scalar metadata.

    ``tools`` (the schemas the rollouts offered) go on every trajectory for ART's chat template;
    without it a trajectory's ``metadata["tools"]`` is used, if any.
    """
    art = import_art()
    metadata = dict(group.metadata)
    metrics = metadata.pop(GROUP_METRICS_KEY, None) or {}
    logs = metadata.pop(GROUP_LOGS_KEY, None) or []
    return art.TrajectoryGroup(
        [to_art_trajectory(t, tools=tools) for t in group.trajectories],
        exceptions=list(group.exceptions),
        metadata=_scalars(metadata, "group metadata"),
        metrics=_numbers(metrics, "group metric"),
        logs=list(logs),
    )


def to_art_trajectory(trajectory: Trajectory, *, tools: list[dict[str, Any]] | None = None) -> Any:
    """One ``art.Trajectory``; each :class:`Choice` becomes an SDK choice ART can train on.

    A choice's logprobs must carry token ids (local and vLLM models give them): ART rebuilds the
    generated tokens from them. A choice without logprobs stays a choice ART trains on only with
    ``allow_training_without_logprobs``.
    """
    art = import_art()
    metadata = dict(trajectory.metadata)
    stored_tools = metadata.pop(TOOLS_KEY, None)
    return art.Trajectory(
        messages_and_choices=[_to_art_message(m) for m in trajectory.messages_and_choices],
        tools=tools if tools is not None else stored_tools,
        reward=trajectory.reward,
        metrics=_numbers(trajectory.metrics, "metric"),
        metadata=_scalars(metadata, "metadata"),
        logs=list(trajectory.logs),
    )


def _to_art_message(message: Message) -> Any:
    if not isinstance(message, Choice):
        return message
    from openai.types.chat.chat_completion import Choice as SDKChoice

    from taskgrove.models.openai_client import wire_choice

    if message.logprobs is not None:
        missing = [i for i, entry in enumerate(message.logprobs) if "token_id" not in entry]
        if missing:
            raise ValueError(
                f"a reply's logprobs carry no token id (token {missing[0]}): ART rebuilds the generated tokens "
                "from ids, so convert replies of a local or vLLM model asked with logprobs=True"
            )
    return SDKChoice.model_validate(wire_choice(message, ids=True))


def _numbers(values: dict[str, Any], what: str) -> dict[str, float | int | bool]:
    for key, value in values.items():
        if not isinstance(value, int | float):  # bool is an int
            raise ValueError(f"{what} {key!r} is a {type(value).__name__}: ART keeps only numbers and booleans")
    return dict(values)


def _scalars(values: dict[str, Any], what: str) -> dict[str, Any]:
    for key, value in values.items():
        if not isinstance(value, _SCALARS):
            raise ValueError(f"{what} {key!r} is a {type(value).__name__}: ART keeps only str/int/float/bool/None")
    return dict(values)


# --- ART -> taskgrove ---------------------------------------------------------------------------
def from_art_groups(groups: Iterable[Any]) -> list[TrajectoryGroup]:
    """taskgrove groups for ART ``groups`` (see :func:`from_art_group`)."""
    return [from_art_group(group) for group in groups]


def from_art_group(group: Any) -> TrajectoryGroup:
    """A taskgrove :class:`TrajectoryGroup` from an ``art.TrajectoryGroup``.

    ART's recorded exceptions come back as :class:`ArtRolloutError`; its group metrics and logs
    go in ``metadata["art_group_metrics"]`` / ``["art_group_logs"]``.
    """
    metadata: dict[str, Any] = dict(group.metadata)
    if group.metrics:
        metadata[GROUP_METRICS_KEY] = dict(group.metrics)
    if group.logs:
        metadata[GROUP_LOGS_KEY] = list(group.logs)
    return TrajectoryGroup(
        [from_art_trajectory(t) for t in group.trajectories],
        exceptions=[ArtRolloutError(e.type, e.message, e.traceback) for e in group.exceptions],
        metadata=metadata,
    )


def from_art_trajectory(trajectory: Any) -> Trajectory:
    """A taskgrove :class:`Trajectory` from an ``art.Trajectory`` (SDK choices become :class:`Choice`).

    ART's ``additional_histories`` have no taskgrove counterpart: a trajectory with any is refused.
    """
    if trajectory.additional_histories:
        raise ValueError("an ART trajectory with additional_histories cannot be converted: taskgrove keeps one history")
    metadata: dict[str, Any] = dict(trajectory.metadata)
    if trajectory.tools is not None:
        metadata[TOOLS_KEY] = list(trajectory.tools)
    return Trajectory(
        messages_and_choices=[_from_art_message(m) for m in trajectory.messages_and_choices],
        reward=float(trajectory.reward),
        metrics=dict(trajectory.metrics),
        metadata=metadata,
        logs=list(trajectory.logs),
    )


def _from_art_message(message: Any) -> Message:
    if isinstance(message, dict):
        return dict(message)
    if hasattr(message, "model_dump") and hasattr(message, "message"):
        from taskgrove.models.openai_client import from_sdk_choice

        return from_sdk_choice(message)
    raise TypeError(f"an ART trajectory holds a {type(message).__name__}: expected chat message dicts or SDK choices")
