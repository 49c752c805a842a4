"""Declarative task files: YAML loading, validation into a :class:`TaskSpec`, and registry entries.

A spec names its data (``source``), how a row becomes a prompt (``system``, ``input`` or
``messages_field``), the gold answer (``reference``), how an answer is read (``parser``), and
what is scored (``metrics``, ``reward``, ``primary_metric``). :func:`compile_spec` turns it into a
:class:`~taskgrove.tasks.declarative.DeclarativeTask`. A file may instead point at a Python task
class (``class: package.module:TaskClass``, plus ``name`` and ``description``).

Shorthands accepted in files: ``source: "hf:glue:sst2"``, ``reference: label`` (a field),
``parser: label`` and ``metrics: [accuracy, {name: f1_binary, options: {pos_label: yes}}]``.
The model itself lives in :mod:`taskgrove.tasks.schema` (re-exported here); it is imported only
when a spec is validated, so listing the tree stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgrove.errors import ConfigError
from taskgrove.registry import TaskEntry
from taskgrove.registry.files import included_files

if TYPE_CHECKING:
    from taskgrove.tasks.declarative import DeclarativeTask
    from taskgrove.tasks.schema import TaskSpec

SPEC_SUFFIXES = (".yaml", ".yml")
_SCHEMA_NAMES = ("TaskSpec", "SourceSpec", "ReferenceSpec", "FewShotSpec", "NamedSpec")


def __getattr__(name: str) -> Any:
    if name in _SCHEMA_NAMES:
        from taskgrove.tasks import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- files ------------------------------------------------------------------------------------


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with the C loader when available; errors name the file and line."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"Malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read task file {path}: {exc}") from None


def parse_spec(data: Mapping[str, Any], *, origin: str = "<python>") -> TaskSpec:
    """Validate a spec given as plain data; errors are :class:`ConfigError` naming ``origin`` and the keys."""
    from pydantic import ValidationError

    from taskgrove.tasks.schema import TaskSpec

    try:
        return TaskSpec.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(spec)"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {message}" if error["type"] != "extra_forbidden" else f"unknown key '{key}'")
        raise ConfigError(f"Invalid task spec {origin}:\n  " + "\n  ".join(lines)) from None


def load_spec_file(path: str | Path) -> TaskSpec:
    """Read and validate one task file (a spec, not a ``class:`` reference)."""
    file = Path(path)
    data = _mapping_of(read_yaml(file), file)
    if "class" in data:
        raise ConfigError(f"{file} names a Python task class, not a declarative spec")
    return parse_spec(data, origin=str(file))


def compile_spec(spec: TaskSpec, *, base_dir: Path | None = None) -> DeclarativeTask:
    """The :class:`~taskgrove.tasks.declarative.DeclarativeTask` of ``spec`` (relative file sources
    resolve against ``base_dir``)."""
    from taskgrove.tasks.declarative import DeclarativeTask

    return DeclarativeTask(spec, base_dir=base_dir)


def entry_from_data(data: Mapping[str, Any], file: Path, *, origin: str) -> TaskEntry:
    """The registry entry of one parsed task file; the task is built (and fully checked) on create."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{file}: a task file needs a 'name' (its path in the tree, e.g. finance/fomc)")
    description = str(data.get("description") or "").strip().split("\n")[0]
    if "class" in data:
        return TaskEntry(name, _class_factory(data, file), description, origin)
    return TaskEntry(name, _spec_factory(data, file), description, origin)


def _spec_factory(data: Mapping[str, Any], file: Path) -> Any:
    def build() -> Any:
        return compile_spec(parse_spec(data, origin=str(file)), base_dir=file.parent)

    return build


def _class_factory(data: Mapping[str, Any], file: Path) -> Any:
    extra = sorted(set(data) - {"name", "description", "class"})
    if extra:
        raise ConfigError(f"{file}: a 'class:' task file takes only name, description and class, not {extra}")

    def build() -> Any:
        from taskgrove.core import Task
        from taskgrove.registry.user_code import load_object

        target = load_object(str(data["class"]))
        if not (isinstance(target, type) and issubclass(target, Task)):
            raise ConfigError(f"{file}: class {data['class']!r} is not a taskgrove Task subclass")
        task = target()
        task.name = str(data["name"])
        return task

    return build


def _mapping_of(data: Any, file: Path) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: a task file holds one mapping (name, source, ...), got {type(data).__name__}")
    return data


def spec_files(root: Path) -> list[Path]:
    """The task files of a file or folder (recursively, sorted; hidden folders and taskgrove's run
    folders, whose ``config.yaml`` is no task, skipped)."""
    if root.is_file():
        return [root]
    return included_files(root, SPEC_SUFFIXES)


def load_task_files(path: str | Path, *, origin_prefix: str = "file") -> Iterator[TaskEntry]:
    """Registry entries for the task files under ``path`` (a file or a folder).

    Only names and descriptions are read now; each spec is validated and compiled when its task
    is created, so listing a large tree stays cheap.
    """
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"No such task file or folder: {root}")
    for file in spec_files(root):
        data = _mapping_of(read_yaml(file), file)
        yield entry_from_data(data, file, origin=f"{origin_prefix}:{file}")
