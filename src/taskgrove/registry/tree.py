"""The task tree: registration (decorator, YAML files, entry points) and name resolution.

Names are paths (``finance/fomc``). A request may name a leaf, a leaf's unique last segment
(``fomc``), a group (``finance``, ``treemark/similar``) or a glob (``finance/*``).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgrove.core import Task
from taskgrove.errors import ConfigError, UnknownTaskError
from taskgrove.names import task_path_parts
from taskgrove.registry.files import included_files
from taskgrove.registry.user_code import import_file

TaskFactory = Callable[[], Task]
ENTRY_POINT_GROUP = "taskgrove.tasks"


@dataclass(frozen=True)
class TaskEntry:
    """One leaf of the tree: how to build the task and where it came from."""

    name: str
    factory: TaskFactory
    description: str = ""
    origin: str = "python"


SpecLoader = Callable[[Path], Iterable[TaskEntry]]
"""Reads the task files (YAML specs) of a file or folder into entries; handed to the registry so the
registry never imports the layer that defines task files (:func:`taskgrove.tasks.spec.load_task_files`)."""

# Tasks registered with the @register_task decorator at import time of the defining module.
_DECORATED: dict[str, TaskEntry] = {}


def register_task(name: str, *, description: str = "") -> Callable[[Any], Any]:
    """Class or factory decorator: ``@register_task("finance/my_task")`` adds it to every new registry.

    A decorated ``Task`` subclass is built with no arguments when it is run; its ``name``
    is set to the registered name.
    """

    def decorate(target: Any) -> Any:
        summary = description or (target.__doc__ or "").strip().split("\n")[0]
        _DECORATED[_check_name(name)] = TaskEntry(
            name, _named_factory(name, target), summary, f"decorator:{target.__module__}"
        )
        return target

    return decorate


def decorated_entries() -> list[TaskEntry]:
    """The tasks registered so far with :func:`register_task` (in registration order)."""
    return list(_DECORATED.values())


def _named_factory(name: str, target: Callable[[], Task]) -> TaskFactory:
    def build() -> Task:
        task = target()
        task.name = name
        return task

    return build


def _check_name(name: str) -> str:
    parts = name.split("/")
    if not name or any(not part or part != part.strip() or any(c in part for c in "*?[]") for part in parts):
        raise ConfigError(f"Invalid task name {name!r}: use non-empty path segments like 'group/task'")
    task_path_parts(name)  # names become folders of a run: nothing that could leave it
    return name


class TaskRegistry:
    """A tree of task names mapped to factories."""

    def __init__(self, entries: Iterable[TaskEntry] = (), *, spec_loader: SpecLoader | None = None) -> None:
        self._entries: dict[str, TaskEntry] = {}
        self._spec_loader = spec_loader
        self._groups: set[str] = set()  # every inner node, so adding a leaf costs O(depth), not O(size)
        self._absent: dict[str, str] = {}  # group prefix -> why its tasks are missing here
        for entry in entries:
            self.add(entry)

    # --- registration ---------------------------------------------------------------------------
    def mark_absent(self, group: str, why: str) -> None:
        """Say why the tasks under ``group`` are missing (an unknown name there gets ``why``)."""
        self._absent[group] = why

    def _unknown(self, request: str) -> UnknownTaskError:
        group = request.split("/", 1)[0]
        return UnknownTaskError(request, self.suggest(request), self._absent.get(group))

    def add(self, entry: TaskEntry, *, replace: bool = True) -> None:
        """Add one leaf. A later registration of the same name replaces the earlier one."""
        _check_name(entry.name)
        if not replace and entry.name in self._entries:
            raise ConfigError(
                f"Task {entry.name!r} is registered twice ({self._entries[entry.name].origin}, {entry.origin})"
            )
        if entry.name in self._groups:
            raise ConfigError(f"Task name {entry.name!r} is already a group of the tree")
        self._entries[entry.name] = entry
        self._groups.update(_groups_of(entry.name))

    def register(self, name: str, factory: TaskFactory, *, description: str = "", origin: str = "python") -> None:
        """Add a task factory under ``name``."""
        self.add(TaskEntry(name, _named_factory(name, factory), description, origin))

    def add_path(self, path: str | Path) -> list[str]:
        """Register the tasks of a file or folder: YAML task specs, and Python files whose
        ``@register_task`` decorators run on import.

        Hidden folders and taskgrove's run folders are skipped (:mod:`taskgrove.registry.files`);
        a Python file that fails to import is a one-line :class:`ConfigError` naming the file."""
        root = Path(path)
        if not root.exists():
            raise ConfigError(f"--include-path {root}: no such file or folder")
        python_files = included_files(root, (".py",))
        added = [self._add_python_file(file) for file in python_files]
        names = [name for group in added for name in group]
        if root.suffix != ".py":
            for entry in self._spec_entries(root):
                self.add(entry)
                names.append(entry.name)
        return names

    def _spec_entries(self, root: Path) -> Iterable[TaskEntry]:
        if self._spec_loader is not None:
            return self._spec_loader(root)
        if root.is_dir() and not included_files(root, (".yaml", ".yml")):
            return ()
        raise ConfigError(
            f"--include-path {root}: this registry reads no task files; build it with taskgrove.build_registry() "
            "or pass spec_loader=taskgrove.tasks.spec.load_task_files"
        )

    def _add_python_file(self, file: Path) -> list[str]:
        origin = f"decorator:{import_file(file).__name__}"
        found = [entry for entry in _DECORATED.values() if entry.origin == origin]
        for entry in found:
            self.add(entry)
        return [entry.name for entry in found]

    def add_entry_points(self) -> list[str]:
        """Register tasks of installed packages that declare the ``taskgrove.tasks`` entry-point group.

        An entry point loads to a function ``register(registry)`` or to a Task subclass.
        """
        from importlib.metadata import entry_points

        added: list[str] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            before = set(self._entries)
            target = ep.load()
            if isinstance(target, type) and issubclass(target, Task):
                self.register(
                    ep.name,
                    target,
                    description=(target.__doc__ or "").strip().split("\n")[0],
                    origin=f"plugin:{ep.value}",
                )
            elif callable(target):
                target(self)
            else:
                raise ConfigError(
                    f"Entry point {ep.name} = {ep.value} is neither a Task class nor a register(registry) function"
                )
            added.extend(sorted(set(self._entries) - before))
        return added

    # --- queries --------------------------------------------------------------------------------
    def supported(self) -> list[str]:
        """Every leaf name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> TaskEntry:
        return self._entries[self.resolve_one_leaf(name)]

    def create(self, name: str) -> Task:
        """Build the task registered under ``name`` (a full name or a unique alias)."""
        return self._entries[self.resolve_one_leaf(name)].factory()

    def resolve_one_leaf(self, name: str) -> str:
        names = self.resolve([name])
        if len(names) != 1 or names[0] not in self._entries:
            raise ConfigError(f"{name!r} names a group of {len(names)} tasks, not one task")
        return names[0]

    def resolve(self, requests: Iterable[str]) -> list[str]:
        """Expand leaves, aliases, groups and globs into full leaf names (first-seen order, no repeats).

        Every request is checked; the first unknown one raises :class:`UnknownTaskError`.
        """
        resolved: dict[str, None] = {}
        for request in requests:
            for name in self._resolve_request(request.strip().strip("/")):
                resolved.setdefault(name, None)
        return list(resolved)

    def _resolve_request(self, request: str) -> list[str]:
        if not request:
            raise ConfigError("Empty task name")
        names = self.supported()
        if any(c in request for c in "*?["):
            matches = [n for n in names if fnmatch.fnmatchcase(n, request)]
            if not matches:
                raise self._unknown(request)
            return matches
        if request in self._entries:
            return [request]
        under = [n for n in names if n.startswith(request + "/")]
        if under:
            return under
        # an alias: the unique leaf or group whose path ends with the request
        suffix = "/" + request
        leaves = [n for n in names if n.endswith(suffix)]
        groups = sorted({g for n in names for g in _groups_of(n) if g.endswith(suffix)})
        candidates = leaves + groups
        if len(candidates) > 1:
            raise ConfigError(
                f"Task name '{request}' is ambiguous: it matches {', '.join(candidates)}; use the full name"
            )
        if candidates:
            target = candidates[0]
            return [target] if target in self._entries else [n for n in names if n.startswith(target + "/")]
        raise self._unknown(request)

    def suggest(self, request: str, n: int = 3) -> list[str]:
        """The closest known names (full names, aliases and groups)."""
        pool: dict[str, str] = {}
        for name in self._entries:
            pool[name] = name
            pool.setdefault(name.rsplit("/", 1)[-1], name)
            for group in _groups_of(name):
                pool[group] = group
        close = difflib.get_close_matches(request, list(pool), n=n, cutoff=0.6)
        return list(dict.fromkeys(pool[c] for c in close))

    def groups(self) -> list[str]:
        """Every group (inner node) of the tree."""
        return sorted({g for n in self._entries for g in _groups_of(n)})

    def tree_lines(self, group: str | None = None) -> list[str]:
        """The tree (or one group of it) as indented lines with leaf counts per group."""
        leaves = self.resolve([group]) if group else self.supported()
        counts: dict[str, int] = {}
        for leaf in leaves:
            for g in _groups_of(leaf):
                counts[g] = counts.get(g, 0) + 1
        lines: list[str] = []
        printed: set[str] = set()
        for leaf in leaves:
            parts = leaf.split("/")
            for depth in range(1, len(parts)):
                g = "/".join(parts[:depth])
                if g not in printed:
                    printed.add(g)
                    lines.append(f"{'  ' * (depth - 1)}{parts[depth - 1]}/ ({counts[g]})")
            label = f"{'  ' * (len(parts) - 1)}{parts[-1]}"
            lines.append(f"{label:<32} {_headline(self._entries[leaf].description)}".rstrip())
        return lines


def _headline(description: str, width: int = 90) -> str:
    """The first sentence of a description, cut to ``width`` characters."""
    first = re.split(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])", description, maxsplit=1)[0].strip().rstrip(".")
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def _groups_of(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
