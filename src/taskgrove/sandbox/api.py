"""The public calls: run a program (or a HumanEval-style check) in the sandbox and get a
:class:`SandboxResult`.

Every run starts in a session of its own and ends with its whole process group killed; output
is captured up to ``max_output_bytes`` per stream (the rest is read and dropped); a wall-clock
``timeout_s`` bounds it. By default the program runs only under bubblewrap (:mod:`.bwrap`); when
that is not usable the call raises :class:`SandboxUnavailable`, unless ``allow_unconfined=True``,
which runs it with resource limits only (:mod:`.unconfined`) and records ``"unconfined"``.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from taskgrove.sandbox import bwrap, unconfined
from taskgrove.sandbox.process import Capture, close_quietly, kill_group, make_protocol, program_fd, read_report
from taskgrove.sandbox.result import Isolation, SandboxResult, SandboxUnavailable, classify, signal_returncode


async def arun_code(
    code: str,
    *,
    stdin: str | None = None,
    timeout_s: float = 10.0,
    cpu_s: float | None = None,
    memory_mb: int = 512,
    max_output_bytes: int = 65536,
    max_processes: int = 32,
    disk_mb: int = 64,
    allow_unconfined: bool = False,
) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox.

    Limits: ``timeout_s`` wall clock; ``cpu_s`` CPU seconds (default ``timeout_s`` rounded up);
    ``memory_mb`` address space per process; ``max_processes`` processes of the program (its
    parent, the launcher, comes on top); ``disk_mb`` size of any file and of each writable tmpfs
    (work directory, ``/dev/shm``). Raises :class:`SandboxUnavailable` when bubblewrap is not
    usable and ``allow_unconfined`` is false.
    """
    import asyncio
    import shutil
    import subprocess

    if timeout_s <= 0 or memory_mb <= 0 or max_output_bytes < 0 or max_processes < 1 or disk_mb <= 0:
        raise ValueError("timeout_s, memory_mb, disk_mb and max_processes must be positive")
    problem = await asyncio.to_thread(bwrap.problem)
    if problem is not None and not allow_unconfined:
        raise SandboxUnavailable(bwrap.unavailable_message(problem))
    isolation: Isolation = "bwrap" if problem is None else "unconfined"
    config: dict[str, Any] = {
        "cpu_s": max(1, int(-(-(cpu_s if cpu_s is not None else timeout_s) // 1))),
        "memory_bytes": int(memory_mb) << 20,
        "max_processes": int(max_processes),
        "disk_bytes": int(disk_mb) << 20,
    }
    report_r, report_w = os.pipe()
    code_fd = -1
    workdir = None
    transport = None
    pid = None
    out, err = Capture(max_output_bytes), Capture(max_output_bytes)
    timed_out = False
    start = time.monotonic()
    try:
        config["report_fd"] = report_w
        if isolation == "bwrap":
            path = bwrap.find_bwrap()
            if path is None:
                raise SandboxUnavailable(
                    bwrap.unavailable_message(f"bubblewrap (`{bwrap.BWRAP}`) disappeared from PATH")
                )
            code_fd = program_fd(code)
            config["workdir"] = bwrap.WORKDIR
            argv, cwd = bwrap.command(path, code_fd, config), "/"
            pass_fds: tuple[int, ...] = (code_fd, report_w)
        else:
            argv, workdir = unconfined.prepare(code, config)
            pass_fds, cwd = (report_w,), workdir
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: make_protocol(out, err),
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            start_new_session=True,
            cwd=cwd,
            env=bwrap.spawn_env(),
        )
        pid = transport.get_pid()
        close_quietly(report_w, code_fd)
        report_w = code_fd = -1
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            assert isinstance(pipe, asyncio.WriteTransport)
            pipe.write(stdin.encode("utf-8"))
            pipe.close()  # after the buffered data is written
        try:
            await asyncio.wait_for(asyncio.shield(protocol.exited), timeout_s)
        except TimeoutError:
            timed_out = True  # killed below
        duration = time.monotonic() - start
        kill_group(pid)  # also ends leftover background processes of a finished program
        await protocol.exited
        # the last output; after a kill, the pipes close once the pid namespace is torn down
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(protocol.pipes_closed), 5.0)
        report = read_report(report_r)
        if isinstance(report.get("status"), int):  # the program's own end, from its parent
            returncode: int | None = os.waitstatus_to_exitcode(report["status"])
        else:  # the launcher itself was killed (timeout, or from inside)
            returncode = transport.get_returncode()
            if isolation == "bwrap":
                returncode = signal_returncode(returncode)
        if not report.get("ready") and not timed_out:
            said = " ".join(err.text().split())[:500] or "no message"
            raise SandboxUnavailable(
                f"the sandbox ({isolation}) did not start the program (exit code {returncode}): {said}"
            )
        return SandboxResult(
            status=classify(returncode, timed_out, err.tail),
            returncode=returncode,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=duration,
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
            isolation=isolation,
        )
    finally:
        if pid is not None:  # on cancellation too: leave nothing running
            kill_group(pid)
        if transport is not None:
            transport.close()
        close_quietly(report_r, report_w, code_fd)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def run_code(
    code: str,
    *,
    stdin: str | None = None,
    timeout_s: float = 10.0,
    cpu_s: float | None = None,
    memory_mb: int = 512,
    max_output_bytes: int = 65536,
    max_processes: int = 32,
    disk_mb: int = 64,
    allow_unconfined: bool = False,
) -> SandboxResult:
    """Blocking form of :func:`arun_code` (usable from inside a running event loop too)."""
    import asyncio

    options: dict[str, Any] = {
        "stdin": stdin,
        "timeout_s": timeout_s,
        "cpu_s": cpu_s,
        "memory_mb": memory_mb,
        "max_output_bytes": max_output_bytes,
        "max_processes": max_processes,
        "disk_mb": disk_mb,
        "allow_unconfined": allow_unconfined,
    }
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_code(code, **options))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, arun_code(code, **options)).result()


def humaneval_program(program: str, test: str, entry_point: str) -> str:
    """The HumanEval check script: the program, its tests, then ``check(entry_point)``."""
    return f"{program}\n{test}\ncheck({entry_point})\n"


def check_program(program: str, test: str, entry_point: str, timeout_s: float = 10.0, **options: Any) -> SandboxResult:
    """Run a HumanEval-style check; ``result.passed`` iff the script exits with code 0."""
    return run_code(humaneval_program(program, test, entry_point), timeout_s=timeout_s, **options)


async def acheck_program(
    program: str, test: str, entry_point: str, timeout_s: float = 10.0, **options: Any
) -> SandboxResult:
    """Async form of :func:`check_program`."""
    return await arun_code(humaneval_program(program, test, entry_point), timeout_s=timeout_s, **options)


def require_confinement(allow_unconfined: bool = False) -> Isolation:
    """The isolation runs will get here: ``"bwrap"``, or ``"unconfined"`` when bubblewrap is not
    usable and ``allow_unconfined`` is true; else raises :class:`SandboxUnavailable`. (Tasks call
    it before generating, to fail before any model time is spent.)"""
    problem = bwrap.problem()
    if problem is None:
        return "bwrap"
    if allow_unconfined:
        return "unconfined"
    raise SandboxUnavailable(bwrap.unavailable_message(problem))
