"""The errors taskgrove raises on purpose, each with a message a user can act on."""

from __future__ import annotations

from collections.abc import Mapping


class TaskgroveError(Exception):
    """Base class of taskgrove's own errors."""


class ConfigError(TaskgroveError):
    """A configuration value, file or combination is invalid (exit code 2)."""


class UnknownTaskError(ConfigError):
    """A requested task name matches nothing in the tree."""

    def __init__(self, name: str, suggestions: list[str], why: str | None = None) -> None:
        self.name = name
        self.suggestions = suggestions
        if why:  # the family the name belongs to is known but absent here (data not fetched)
            super().__init__(f"Task '{name}' not available: {why}")
            return
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"Task '{name}' not supported.{hint} Run `taskgrove tasks` to list the tree.")


class TaskFailed(TaskgroveError):
    """A task stopped because too many of its samples failed."""


class TaskDataError(TaskgroveError):
    """A task's data could not be read for training (e.g. a hub dataset while offline); exit code 1."""


class MultiTaskError(TaskgroveError):
    """Raised once at the end of a multi-task run; ``errors`` maps task name -> exception."""

    def __init__(self, errors: Mapping[str, BaseException]) -> None:
        self.errors: dict[str, BaseException] = dict(errors)
        blocks = [f"Task: {name}\nError: {type(exc).__name__}: {exc}" for name, exc in self.errors.items()]
        header = f"Errors in tasks: {', '.join(self.errors)}"
        super().__init__("\n\n".join([header, *blocks]))
