"""The registry a run uses: the builtin catalog, decorated tasks, plugins, then include paths.

This is where the task layer is wired into the tree (:mod:`taskgrove.registry` itself imports no
task format): YAML specs are read by :func:`taskgrove.tasks.spec.load_task_files`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from taskgrove.registry import TaskRegistry, decorated_entries
from taskgrove.tasks import bigbench, humaneval
from taskgrove.tasks.catalog import register_builtin
from taskgrove.tasks.spec import load_task_files

BUILTIN_PROVIDERS = (register_builtin, humaneval.register, bigbench.register)
"""Functions ``register(registry)`` that add the builtin subtrees, in order."""


def new_registry() -> TaskRegistry:
    """An empty registry that reads YAML task files (for ``add_path``)."""
    return TaskRegistry(spec_loader=load_task_files)


def build_registry(
    include_paths: Iterable[str | Path] = (), *, builtin: bool = True, plugins: bool = True
) -> TaskRegistry:
    """The registry a run uses: the builtin catalog, decorated tasks, plugins, then include paths."""
    registry = new_registry()
    if builtin:
        for provider in BUILTIN_PROVIDERS:
            provider(registry)
    for entry in decorated_entries():
        registry.add(entry)
    if plugins:
        registry.add_entry_points()
    for path in include_paths:
        registry.add_path(path)
    return registry
