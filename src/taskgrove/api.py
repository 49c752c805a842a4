"""The Python API: run, evaluate and list tasks from a script or a notebook.

>>> import taskgrove
>>> result = taskgrove.run(["bigbench/arithmetic/*"], model="local:HuggingFaceTB/SmolLM2-135M-Instruct", limit=20)
>>> result.scores()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from taskgrove.config import RunConfig, build_config
from taskgrove.core import Model, Task
from taskgrove.errors import ConfigError
from taskgrove.registry import TaskEntry, TaskRegistry
from taskgrove.runner.executor import Executor
from taskgrove.runner.outcome import RunResult
from taskgrove.runner.progress import make_progress
from taskgrove.tasks.builtin import build_registry

TaskRef = str | Path | Task[Any]
"""A registered name, group or glob; a YAML task file; or a Task object."""

_TASK_FILES = {".yaml", ".yml", ".py"}


def supported(group: str | None = None, *, include_path: Iterable[str | Path] = ()) -> list[str]:
    """Every task of the tree (or of ``group``: a group, leaf or glob), as full names, sorted."""
    registry = build_registry(include_path)
    return sorted(registry.resolve([group])) if group else registry.supported()


def run(
    tasks: TaskRef | Sequence[TaskRef],
    *,
    model: str | Model | None = None,
    mode: str = "run",
    progress: bool = False,
    config_file: str | Path | None = None,
    **config: Any,
) -> RunResult:
    """Run ``tasks`` on ``model`` and return the :class:`RunResult` (scores, run folder).

    ``tasks`` mixes registered names (``"finance/fomc"``, a group, a glob), YAML or Python task
    files, and Task objects. ``model`` is a model spec (as ``--model`` takes; ``None`` is the
    embedded default) or a Model object. Every other keyword is a run parameter
    (``limit=20, max_tokens=64, output_dir="results"``, ...), over those of ``config_file``
    (a YAML config, as ``--config`` takes). Raises :class:`MultiTaskError`
    after all tasks ran when some failed, :class:`ConfigError` for bad parameters.
    """
    include_path = [str(p) for p in config.pop("include_path", ())]
    registry, names = _registry_for(tasks, include_path)
    model_object = model if model is not None and not isinstance(model, str) else None
    given: dict[str, Any] = {**config, "mode": mode, "tasks": names, "progress": progress, "include_path": include_path}
    if isinstance(model, str):
        given["model"] = model
    settings = build_config(given, yaml_file=config_file)
    executor = Executor(settings, registry, model=model_object, progress=make_progress(settings.progress))
    return executor.run()


def evaluate(tasks: TaskRef | Sequence[TaskRef], file_name: str | Path, **config: Any) -> RunResult:
    """Score the stored outputs of a run folder (or one task's ``samples.jsonl``) again, calling no model."""
    return run(tasks, mode="evaluate", file_name=str(file_name), **config)


def _registry_for(tasks: TaskRef | Sequence[TaskRef], include_path: list[str]) -> tuple[TaskRegistry, list[str]]:
    """The run's registry (builtin tree + the given files and Task objects) and the names to run."""
    refs: list[TaskRef] = [tasks] if isinstance(tasks, (str, Path, Task)) else list(tasks)
    if not refs:
        raise ConfigError("tasks is required: name at least one task, group, glob, task file or Task object")
    registry = build_registry(include_path)
    names: list[str] = []
    for ref in refs:
        if isinstance(ref, Task):
            registry.add(TaskEntry(ref.name, _returns(ref), ref.description, "python-object"))
            names.append(ref.name)
        elif isinstance(ref, Path) or Path(ref).suffix in _TASK_FILES:
            added = registry.add_path(ref)
            if not added:
                raise ConfigError(f"{ref}: no task is defined in this file")
            names.extend(added)
        else:
            names.append(ref)
    return registry, names


def _returns(task: Task[Any]) -> Callable[[], Task[Any]]:
    """A factory that hands out the user's own Task object (its state is the user's)."""
    return lambda: task


__all__ = ["RunConfig", "RunResult", "TaskRef", "evaluate", "run", "supported"]
