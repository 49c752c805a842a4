"""The explicit opt-in without confinement: the launcher runs directly, in a fresh temporary
directory, with the resource limits only.

The program sees the host's file system with the caller's rights, the network, and the other
processes of the user; as root, ``RLIMIT_NPROC`` does not apply (the kernel exempts root) and
processes that leave the run's process group outlive it. Used only when a caller passes
``allow_unconfined=True`` and bubblewrap is not usable.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from taskgrove.sandbox import launcher


def prepare(code: str, config: dict[str, Any]) -> tuple[list[str], str]:
    """Write ``main.py`` into a new temporary directory; return (command, that directory), with
    ``config["workdir"]`` set to it. The caller removes the directory."""
    workdir = tempfile.mkdtemp(prefix="taskgrove-sandbox-")
    with open(os.path.join(workdir, launcher.PROGRAM), "w", encoding="utf-8") as f:
        f.write(code)
    config["workdir"] = workdir
    return launcher.argv(config), workdir
