"""Reading a task's data rows: dotted field paths, gold values as text, and the row error type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskgrove.errors import TaskgroveError


class DataError(TaskgroveError):
    """A data row does not fit the task's spec (a missing field, a label outside the map...)."""


def get_path(row: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``answers.text``, ``choices.0``) of ``row``."""
    value: Any = row
    for key in path.split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and key.lstrip("-").isdigit()
            and -len(value) <= int(key) < len(value)
        ):
            value = value[int(key)]
        else:
            fields = ", ".join(map(str, row)) if isinstance(row, Mapping) else type(row).__name__
            raise DataError(f"the row has no field {path!r} (fields: {fields})")
    return value


def as_text(value: Any) -> str:
    """A gold value as a demonstration answer: strings as they are, ``(text, type)`` pairs as
    ``text - type`` lines, other lists one item per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        lines = [
            f"{item[0]} - {item[1]}"
            if isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2
            else str(item)
            for item in value
        ]
        return "\n".join(lines) if lines else "None"
    return str(value)
