"""Run model-written Python code confined, with limits; refuse when confinement is missing.

* :mod:`.api` — the calls (:func:`run_code`, :func:`arun_code`, :func:`check_program`,
  :func:`acheck_program`, :func:`require_confinement`).
* :mod:`.bwrap` — the confinement: bubblewrap namespaces and a file system view holding only the
  libraries and the Python interpreter (read-only) and a small tmpfs work directory.
* :mod:`.unconfined` — the explicit ``allow_unconfined=True`` opt-in: resource limits only.
* :mod:`.launcher` — the child side: sets the resource limits, then becomes the program.
* :mod:`.process` and :mod:`.result` — output capture, killing, the result and its status.

Guarantees, the isolation level each result records, and the attacks tested: ``docs/sandbox.md``.
"""

from taskgrove.sandbox.api import (
    acheck_program,
    arun_code,
    check_program,
    humaneval_program,
    require_confinement,
    run_code,
)
from taskgrove.sandbox.result import Isolation, SandboxResult, SandboxUnavailable, Status

__all__ = [
    "Isolation",
    "SandboxResult",
    "SandboxUnavailable",
    "Status",
    "acheck_program",
    "arun_code",
    "check_program",
    "humaneval_program",
    "require_confinement",
    "run_code",
]
