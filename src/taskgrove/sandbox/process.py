"""Parent-side plumbing of a sandboxed run: capped output capture, the asyncio protocol that
feeds it, killing the run's process group, the launcher's report pipe, and the in-memory file
that carries the program."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from typing import Any

TAIL_BYTES = 4096  # bytes of stderr kept past the cap, to recognise a final MemoryError


class Capture:
    """Keeps the first ``cap`` bytes of a stream and a short tail; drops the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = bytearray()
        self.tail = b""
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        """Take one chunk read from the stream."""
        room = self.cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        if len(chunk) > max(room, 0):
            self.truncated = True
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def text(self) -> str:
        """The kept bytes, decoded (undecodable bytes replaced)."""
        return self.head.decode("utf-8", "replace")


def make_protocol(out: Capture, err: Capture) -> Any:
    """An asyncio subprocess protocol feeding the captures; ``exited`` resolves on process exit
    (even while leftover processes still hold the pipes), ``pipes_closed`` once both pipes close."""
    import asyncio

    class Protocol(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            loop = asyncio.get_running_loop()
            self.exited: asyncio.Future[None] = loop.create_future()
            self.pipes_closed: asyncio.Future[None] = loop.create_future()
            self.open_pipes = {1, 2}

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            (out if fd == 1 else err).feed(data)

        def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
            self.open_pipes.discard(fd)
            if not self.open_pipes and not self.pipes_closed.done():
                self.pipes_closed.set_result(None)

        def process_exited(self) -> None:
            if not self.exited.done():
                self.exited.set_result(None)

    return Protocol()


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` (the run was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def program_fd(code: str) -> int:
    """An anonymous in-memory file holding ``code``, positioned at its start."""
    fd = os.memfd_create("taskgrove-program")
    view = memoryview(code.encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_report(fd: int) -> dict[str, Any]:
    """The launcher's report (JSON lines, merged) from the read end of its pipe; empty when it
    never wrote, and without the lines that do not parse."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 4096):
            data += chunk
    merged: dict[str, Any] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            fields = json.loads(line)
            if isinstance(fields, dict):
                merged.update(fields)
    return merged


def close_quietly(*fds: int) -> None:
    """Close each descriptor that is not ``-1``, ignoring ones already closed."""
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
