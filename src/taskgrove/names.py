"""Names are data, not paths: run ids and task names checked before they become folders."""

from __future__ import annotations

import re

from taskgrove.errors import ConfigError

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is one folder name (letters, digits, ``. _ + -``, not starting with a dot
    or a dash, at most 128 characters); else :class:`ConfigError`."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(
            f"run id {run_id!r} is not a plain name: use letters, digits, '.', '_', '+', '-' "
            "(no '/', no '..', not starting with '.' or '-', at most 128 characters)"
        )
    return run_id


def task_path_parts(name: str) -> list[str]:
    """The folder names a task name maps to (``group/leaf`` -> ``[group, leaf]``); a name with an
    empty part (a leading ``/``), a ``.`` or ``..`` part, a hidden part, a backslash or a control
    character raises :class:`ConfigError`."""
    parts = name.split("/")
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or any(ord(c) < 32 for c in part):
            raise ConfigError(
                f"task name {name!r} cannot be a folder name: each '/'-separated part must be non-empty, "
                "not start with '.', and hold no backslash or control character"
            )
    return parts
