"""One process owns a run folder: an advisory ``flock`` on ``<run>/.lock``, held while it works.

The lock is released by the kernel when the process exits, however it exits (kill -9 included),
so a stale lock file never blocks a later resume. The file records who holds it (pid, host,
start time) so the process that is refused can name the holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

import orjson

from taskgrove.errors import ConfigError

LOCK_FILE = ".lock"


class RunBusyError(ConfigError):
    """Another process holds the run folder (exit code 2)."""


class RunLock:
    """An exclusive (run, resume, evaluate-into) or shared (read as an evaluate source) lock on a run folder."""

    def __init__(self, root: Path, *, shared: bool = False) -> None:
        self.root = root
        self.path = root / LOCK_FILE
        self.shared = shared
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self) -> RunLock:
        """Take the lock now or raise :class:`RunBusyError` naming the holder; never waits."""
        if self.held:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusyError(
                f"run {self.root} is in use by {describe_holder(self.path)}; wait for it to finish"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if not self.shared:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, orjson.dumps(holder), 0)
        return self

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # an executor dropped without running lets go of its folder
        self.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_owned(root: Path) -> bool:
    """Whether some process holds the run folder ``root`` right now (no lock file: no)."""
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def describe_holder(path: Path) -> str:
    """``pid 123 on host h since 2026-12-02 07:45:01 UTC`` from a lock file, or why it is unknown."""
    try:
        holder = orjson.loads(path.read_bytes())
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder["started"])))
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it is still starting)"
    if host == socket.gethostname() and not _alive(pid):
        return "another process reading it (an evaluate of this run)"
    return f"pid {pid} on host {host} since {since}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
