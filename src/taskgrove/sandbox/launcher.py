"""The child side: the first process of the run and the parent of the model-written program.

Its source is run as ``python -I -S -c <this file> <config json>`` inside the confinement (as the
pid namespace's pid 1: bubblewrap runs it with ``--as-pid-1``) or directly, for an explicitly
unconfined run. Being a fresh single-threaded process, it sets the resource limits on itself,
closes every other inherited descriptor, reports that it is ready, then starts
``python -I main.py`` in the work directory as its child, reaps every process that ends (as pid 1
it inherits the orphans) and, when the program ends, reports its wait status and exits, which
ends the pid namespace and every process left in it. Standard library only.

Because the limits are set here, before the program exists, *every* process of the run carries
them: even a program that takes control of its parent (same uid: it may ``ptrace`` it) finds the
same limits. Setting ``RLIMIT_NPROC`` inside the user namespace bubblewrap created makes it count
the processes of this run only (the kernel counts per user namespace), so concurrent runs of the
same user cannot starve each other; it is ``max_processes`` plus this launcher.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import sys
from typing import Any

PROGRAM = "main.py"


@functools.lru_cache(maxsize=1)
def _source() -> str:
    with open(__file__, encoding="utf-8") as f:
        return f.read()


def argv(config: dict[str, Any]) -> list[str]:
    """The command that runs this file's source with ``config``, in the current interpreter."""
    return [sys.executable, "-I", "-S", "-c", _source(), json.dumps(config)]


def apply_limits(cfg: dict[str, Any]) -> None:
    """CPU seconds, address space, processes (``max_processes`` + this launcher), file size, no
    core files; never raising a hard limit this process was given."""
    processes = cfg["max_processes"] + 1
    limits = {
        resource.RLIMIT_CPU: (cfg["cpu_s"], cfg["cpu_s"] + 1),
        resource.RLIMIT_AS: (cfg["memory_bytes"], cfg["memory_bytes"]),
        resource.RLIMIT_NPROC: (processes, processes),
        resource.RLIMIT_FSIZE: (cfg["disk_bytes"], cfg["disk_bytes"]),
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        given = resource.getrlimit(which)[1]
        if given == resource.RLIM_INFINITY:
            resource.setrlimit(which, (soft, hard))
        else:
            resource.setrlimit(which, (min(soft, given), min(hard, given)))


def close_inherited_fds(keep: int) -> None:
    """Close every descriptor but stdin, stdout, stderr and ``keep``."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible descriptor
        fds = list(range(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
                os.close(fd)


def report(fd: int, **fields: Any) -> None:
    """One JSON line to the parent."""
    os.write(fd, (json.dumps(fields) + "\n").encode())


def main(config_json: str) -> None:
    """Limit this process, start the program as its child, reap, report the program's end."""
    cfg = json.loads(config_json)
    os.umask(0o022)
    os.chdir(cfg["workdir"])
    apply_limits(cfg)
    report_fd = cfg["report_fd"]
    close_inherited_fds(keep=report_fd)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cfg["workdir"], "TMPDIR": cfg["workdir"]}
    env.update(LANG="C.UTF-8", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    report(report_fd, ready=True)
    program = os.fork()
    if program == 0:
        try:
            os.close(report_fd)
            os.execve(sys.executable, [sys.executable, "-I", PROGRAM], env)
        finally:
            os._exit(127)
    while True:
        pid, status = os.wait()  # as pid 1, orphans end up here too
        if pid == program:
            break
    report(report_fd, status=status)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main(sys.argv[1])
