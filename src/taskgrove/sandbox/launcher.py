"""The child side: the last step before the model-written program starts.

Its source is run as ``python -I -S -c <this file> <config json>`` inside the confinement (or
directly, for an explicitly unconfined run). Being a fresh single-threaded process, it sets the
resource limits, reports to the parent that it did, closes every other inherited descriptor and
``exec``\\ s ``python -I main.py`` in the work directory. Standard library only.

Setting ``RLIMIT_NPROC`` here, *inside* the user namespace bubblewrap created, makes it count the
processes of this sandbox only (the kernel counts per user namespace), so concurrent runs of the
same user cannot starve each other.
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
    """CPU seconds, address space, processes, file size, no core files; never raising a hard
    limit this process was given."""
    limits = {
        resource.RLIMIT_CPU: (cfg["cpu_s"], cfg["cpu_s"] + 1),
        resource.RLIMIT_AS: (cfg["memory_bytes"], cfg["memory_bytes"]),
        resource.RLIMIT_NPROC: (cfg["max_processes"], cfg["max_processes"]),
        resource.RLIMIT_FSIZE: (cfg["disk_bytes"], cfg["disk_bytes"]),
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        given = resource.getrlimit(which)[1]
        if given == resource.RLIM_INFINITY:
            resource.setrlimit(which, (soft, hard))
        else:
            resource.setrlimit(which, (min(soft, given), min(hard, given)))


def close_inherited_fds() -> None:
    """Close every descriptor but stdin, stdout and stderr."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible descriptor
        fds = list(range(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
                os.close(fd)


def main(config_json: str) -> None:
    """Limit this process, report, then become the program."""
    cfg = json.loads(config_json)
    os.umask(0o022)
    os.chdir(cfg["workdir"])
    apply_limits(cfg)
    report_fd = cfg["report_fd"]
    os.write(report_fd, json.dumps({"ready": True, "uid": os.getuid()}).encode())
    close_inherited_fds()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cfg["workdir"], "TMPDIR": cfg["workdir"]}
    env.update(LANG="C.UTF-8", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    os.execve(sys.executable, [sys.executable, "-I", PROGRAM], env)


if __name__ == "__main__":
    main(sys.argv[1])
