"""What a sandboxed run gives back, how its end is classified, and the error raised when no
confinement is available."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from taskgrove.errors import TaskgroveError

Status = Literal["ok", "error", "timeout", "memory", "killed"]
Isolation = Literal["bwrap", "unconfined"]


class SandboxUnavailable(TaskgroveError):
    """Model-written code cannot run confined here (bubblewrap missing or unable to create its
    namespaces), and running it unconfined was not allowed. The message says what is missing,
    how to fix it, and how to opt in to unconfined runs."""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run.

    ``status``: ``ok`` (exit code 0), ``error`` (non-zero exit), ``timeout`` (wall clock or CPU
    limit), ``memory`` (the program died of ``MemoryError``), ``killed`` (ended by a signal).
    ``returncode`` is negative for a death by signal (``-9`` for SIGKILL).
    ``isolation`` is what the program ran under: ``"bwrap"`` (full confinement) or
    ``"unconfined"`` (only resource limits and a temporary directory; explicit opt-in).
    """

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    stdout_truncated: bool
    stderr_truncated: bool
    isolation: Isolation

    @property
    def passed(self) -> bool:
        """True when the program exited with code 0."""
        return self.status == "ok"


def classify(returncode: int | None, timed_out: bool, stderr_tail: bytes) -> Status:
    """The status of a run from its return code (negative: signal), whether the wall clock
    ran out, and the last bytes of its stderr."""
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode is None:
        return "killed"
    if returncode < 0:
        return "timeout" if -returncode == signal.SIGXCPU else "killed"
    last = stderr_tail.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return "memory" if last[0].startswith("MemoryError") else "error"


def signal_returncode(returncode: int | None) -> int | None:
    """bubblewrap reports a command killed by signal ``n`` as exit code ``128 + n`` (the shell
    convention); turn that back into ``-n``. (A program that exits with such a code on purpose
    is read as killed too: either way it did not pass.)"""
    if returncode is not None and 128 < returncode < 128 + signal.NSIG:
        return 128 - returncode
    return returncode
