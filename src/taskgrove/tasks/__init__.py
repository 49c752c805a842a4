"""Tasks: the declarative spec, its compiled Task, prompts, parsers, data sources and the catalog.

The names here are imported lazily, so ``import taskgrove.tasks`` costs nothing until one is used.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TaskSpec": "taskgrove.tasks.schema",
    "DeclarativeTask": "taskgrove.tasks.declarative",
    "compile_spec": "taskgrove.tasks.spec",
    "parse_spec": "taskgrove.tasks.spec",
    "load_spec_file": "taskgrove.tasks.spec",
    "load_task_files": "taskgrove.tasks.spec",
    "register_builtin": "taskgrove.tasks.catalog",
}

__all__ = [
    "DeclarativeTask",
    "TaskSpec",
    "compile_spec",
    "load_spec_file",
    "load_task_files",
    "parse_spec",
    "register_builtin",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
