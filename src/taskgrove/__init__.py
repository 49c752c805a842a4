"""taskgrove: define LLM tasks, run many at once, score, train on them and compare the results.

The public surface is this module; everything else lives in modules that may change. The Python
API (:func:`run`, :func:`evaluate`, :func:`supported`) is imported on first use, so
``import taskgrove`` and the CLI start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskgrove._version import __version__
from taskgrove.core import (
    Choice,
    Message,
    Model,
    ScoringModel,
    Task,
    TaskTrainConfig,
    Trajectory,
    TrajectoryGroup,
    supports_loglikelihood,
)
from taskgrove.errors import ConfigError, MultiTaskError, TaskgroveError, UnknownTaskError
from taskgrove.registry import TaskRegistry, register_task

if TYPE_CHECKING:
    from taskgrove.api import evaluate, run, supported
    from taskgrove.runner.outcome import RunResult
    from taskgrove.tasks.builtin import build_registry

_LAZY = {
    "run": "taskgrove.api",
    "evaluate": "taskgrove.api",
    "supported": "taskgrove.api",
    "RunResult": "taskgrove.runner.outcome",
    "build_registry": "taskgrove.tasks.builtin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskgrove' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Choice",
    "ConfigError",
    "Message",
    "Model",
    "MultiTaskError",
    "RunResult",
    "ScoringModel",
    "Task",
    "TaskRegistry",
    "TaskTrainConfig",
    "TaskgroveError",
    "Trajectory",
    "TrajectoryGroup",
    "UnknownTaskError",
    "__version__",
    "build_registry",
    "evaluate",
    "register_task",
    "run",
    "supported",
    "supports_loglikelihood",
]
