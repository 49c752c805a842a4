"""The task tree: registration (decorator, task files, entry points) and name resolution.

This layer knows nothing of task files' format: a registry is handed its spec loader
(:func:`taskgrove.tasks.builtin.build_registry` wires the YAML one and the builtin catalog).
"""

from taskgrove.registry.tree import (
    ENTRY_POINT_GROUP,
    SpecLoader,
    TaskEntry,
    TaskFactory,
    TaskRegistry,
    decorated_entries,
    register_task,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "SpecLoader",
    "TaskEntry",
    "TaskFactory",
    "TaskRegistry",
    "decorated_entries",
    "register_task",
]
