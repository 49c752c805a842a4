"""What a resume may not change: the settings that decide what the stored samples mean.

A resume continues a run with the model, sampling, prompt and data settings stored in its
``config.yaml``; changing any of them would mix two experiments under one name. The check is
refused unless the user passes ``--allow-changed-resume``; each sample then records its model.
"""

from __future__ import annotations

from typing import Any

from taskgrove.errors import ConfigError
from taskgrove.redact import redact

RUN_KEYS = (
    "model",
    "base_url",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "stop",
    "seed",
    "num_samples",
    "prompt_format",
    "num_fewshot",
    "split",
)
TASK_KEYS = (*RUN_KEYS[2:], "options")


def _norm(value: Any) -> Any:
    return None if value in ({}, [], "") else value


def resume_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: stored -> current`` for every setting a resume would change (both are config dicts as
    stored in ``config.yaml``; secrets are compared in their redacted form, as that is what is stored)."""
    current = redact(current)
    changes = []
    for key in RUN_KEYS:
        if key in stored and _norm(stored[key]) != _norm(current.get(key)):
            changes.append(f"{key}: {stored[key]!r} -> {current.get(key)!r}")
    stored_tasks = stored.get("task_config") or {}
    current_tasks = current.get("task_config") or {}
    for name in sorted(set(stored_tasks) | set(current_tasks)):
        before, after = stored_tasks.get(name) or {}, current_tasks.get(name) or {}
        for key in TASK_KEYS:
            if _norm(before.get(key)) != _norm(after.get(key)):
                changes.append(f"task_config.{name}.{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return changes


def check_resume(stored: dict[str, Any], current: dict[str, Any], *, allow_changed: bool, where: str) -> list[str]:
    """The changes a resume of the run at ``where`` makes; :class:`ConfigError` if there are any
    and ``allow_changed`` is false."""
    changes = resume_changes(stored, current)
    if changes and not allow_changed:
        raise ConfigError(
            f"--resume would change what the samples of {where} mean ({'; '.join(changes)}); "
            "resume with the stored settings, start a new run, or pass --allow-changed-resume "
            "(each sample then records its model)"
        )
    return changes


def check_spec_hash(task_name: str, stored: str | None, current: str | None, *, allow_changed: bool) -> bool:
    """Whether a task's spec changed since its samples were stored (both hashes known and different);
    :class:`ConfigError` when it did and ``allow_changed`` is false."""
    changed = bool(stored and current and stored != current)
    if changed and not allow_changed:
        raise ConfigError(
            f"task {task_name}'s spec changed since its samples were stored (spec hash {stored} -> {current}); "
            "start a new run or pass --allow-changed-resume"
        )
    return changed
