"""Full confinement with bubblewrap (``bwrap``, Debian package ``bubblewrap``).

The program's view of the file system is built from nothing: read-only binds of the shared
libraries (``/usr/lib/<multiarch>``, ``/usr/lib64``, and the ``/lib*`` links) and of the Python
interpreter (its prefix when it lives outside ``/usr``, such as a pyenv or a virtualenv; else its
standard library, site-packages and executable only), a new ``/proc`` and a minimal ``/dev``, a
size-limited tmpfs ``/dev/shm`` and a size-limited tmpfs work directory :data:`WORKDIR` holding
``main.py``. The root and ``/dev`` are read-only. There is no ``/etc``, no home, no ``/tmp``, no
repository, no results folder and no shell (``/bin`` holds at most the Python executable).
New user, pid, network (an unconnected loopback only), ipc, uts and cgroup namespaces; no
capabilities; no further user namespaces inside; a new session (no terminal injection); the
sandbox dies with its parent; the environment is cleared. The launcher is the namespace's pid 1
(``--as-pid-1``), so there is no process in the sandbox without the run's limits.

As root, the sandbox must not run as uid 0 (the kernel does not apply ``RLIMIT_NPROC`` to root,
so a fork bomb could exhaust the host's pids, and read-only binds owned by root are one remount
away from writable). An *outer* bwrap (``--dev-bind / /``, capabilities dropped but the two it
needs to switch users) covers the directories a throwaway uid could not traverse on the way to
the interpreter (``/root`` for a pyenv Python) with a tmpfs holding only the interpreter, switches
to a throwaway uid (:data:`UID_BASE` + a random number) and starts the unprivileged inner bwrap.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterable
from typing import Any

from taskgrove.sandbox import launcher
from taskgrove.sandbox.process import close_quietly, program_fd, read_report

BWRAP = "bwrap"  # the name or path looked up; tests point it at a missing file
WORKDIR = "/sandbox"
UID_BASE = 1_500_000_000
_SYSTEM_PREFIXES = frozenset({"/", "/usr", "/usr/local"})
_SWITCH_USER = (  # argv: uid, process limit, the inner command (JSON)
    "import json, os, resource, sys\n"
    "uid, processes = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.setgroups([])\n"
    "os.setresgid(uid, uid, uid)\n"
    "os.setresuid(uid, uid, uid)\n"
    "resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))\n"
    "argv = json.loads(sys.argv[3])\n"
    "os.execv(argv[0], argv)\n"
)
_PROBE_TIMEOUT_S = 30.0
_probe_lock = threading.Lock()
_probed: dict[tuple[str, int, str], str | None] = {}


def find_bwrap() -> str | None:
    """The bubblewrap executable (:data:`BWRAP` looked up on ``PATH``), or ``None``."""
    return shutil.which(BWRAP)


def unavailable_message(problem: str) -> str:
    """The one-line refusal: what is missing, how to fix it, how to opt in to unconfined runs."""
    return (
        f"taskgrove.sandbox refuses to run model-written code without confinement: {problem}. "
        "Fix: install bubblewrap (Debian/Ubuntu: `apt-get install -y bubblewrap`; scripts/setup.sh "
        "does it when run as root) and allow user namespaces (sysctl user.max_user_namespaces > 0, "
        "and kernel.unprivileged_userns_clone=1 where that setting exists). To run the code "
        "unconfined anyway (resource limits only: it can read and write whatever your user can and "
        "reach the network), pass allow_unconfined=True (task option `allow_unconfined: true`, e.g. "
        "--task-config 'code/humaneval.options={allow_unconfined: true}')."
    )


def problem() -> str | None:
    """``None`` when bwrap confinement works here, else what is wrong. Found by starting one
    confined no-op program; cached per bwrap path, effective uid and interpreter."""
    path = find_bwrap()
    if path is None:
        return f"bubblewrap (`{BWRAP}`) was not found on PATH"
    key = (path, os.geteuid(), sys.executable)
    with _probe_lock:
        if key not in _probed:
            _probed[key] = _try_confined_run(path)
        return _probed[key]


def _try_confined_run(path: str) -> str | None:
    code_fd = program_fd("pass\n")
    report_r, report_w = os.pipe()
    config = {
        "workdir": WORKDIR,
        "report_fd": report_w,
        "cpu_s": 10,
        "memory_bytes": 512 << 20,
        "max_processes": 8,
        "disk_bytes": 1 << 20,
    }
    try:
        argv = command(path, code_fd, config)
        try:
            done = subprocess.run(
                argv,
                check=False,
                pass_fds=(code_fd, report_w),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT_S,
                env=spawn_env(),
                cwd="/",
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            return f"bwrap ({path}) did not start a confined no-op program within {_PROBE_TIMEOUT_S:.0f} s"
        except OSError as exc:
            return f"bwrap ({path}) could not be started: {exc}"
        os.close(report_w)
        report_w = -1
        report = read_report(report_r)
        if done.returncode == 0 and report.get("ready"):
            return None
        said = " ".join(done.stderr.decode("utf-8", "replace").split())[:300] or "no message"
        return f"bwrap ({path}) could not start a confined program (exit code {done.returncode}: {said})"
    finally:
        close_quietly(code_fd, report_r, report_w)


def forget_probes() -> None:
    """Drop the cached probe results (after installing bwrap, or in tests)."""
    with _probe_lock:
        _probed.clear()


def spawn_env() -> dict[str, str]:
    """The environment bwrap itself starts with (the sandbox's own is cleared)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def command(path: str, code_fd: int, config: dict[str, Any]) -> list[str]:
    """The command that runs the launcher with ``config`` inside the sandbox, ``main.py`` read
    from ``code_fd``; as root, wrapped to run as a throwaway uid."""
    inner = inner_argv(path, code_fd, config)
    if os.geteuid() != 0:
        return inner
    # the uid is this run's alone, so a process limit on it counts this run only: the program,
    # the launcher and the inner bwrap
    processes = int(config["max_processes"]) + 2
    return root_argv(path, inner, UID_BASE + secrets.randbelow(1 << 24), processes)


def inner_argv(path: str, code_fd: int, config: dict[str, Any]) -> list[str]:
    """The unprivileged bwrap command line (see the module docstring)."""
    size = str(int(config["disk_bytes"]))
    args = [path, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session", "--as-pid-1"]
    args += ["--hostname", "sandbox", "--clearenv"]
    links, dirs = system_layout()
    for target, link in links:
        args += ["--symlink", target, link]
    for bound in outermost([*dirs, *interpreter_paths()]):
        args += ["--ro-bind", bound, bound]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    args += ["--size", size, "--tmpfs", WORKDIR, "--file", str(code_fd), f"{WORKDIR}/{launcher.PROGRAM}"]
    args += ["--remount-ro", "/", "--chdir", WORKDIR, "--", *launcher.argv(config)]
    return args


def root_argv(path: str, inner: list[str], uid: int, processes: int) -> list[str]:
    """The outer bwrap a root caller runs: make the interpreter reachable for ``uid``, switch to
    it with at most ``processes`` processes, then run ``inner``."""
    _, dirs = system_layout()
    covers: dict[str, list[str]] = {}
    for needed in outermost([path, *dirs, *interpreter_paths()]):
        blocked = first_untraversable(needed)
        if blocked is not None:
            covers.setdefault(blocked, []).append(needed)
    args = [path, "--dev-bind", "/", "/"]
    for blocked, paths in sorted(covers.items()):
        args += ["--perms", "0755", "--tmpfs", blocked]
        made: set[str] = set()
        for needed in paths:
            for parent in _between(blocked, needed):
                if parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", parent]
            args += ["--ro-bind", needed, needed]
    args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--die-with-parent"]
    args += ["--", sys.executable, "-I", "-S", "-c", _SWITCH_USER, str(uid), str(processes), json.dumps(inner)]
    return args


def _between(top: str, path: str) -> list[str]:
    """The directories strictly between ``top`` and ``path``, outermost first."""
    parts = os.path.relpath(path, top).split(os.sep)[:-1]
    return [os.path.join(top, *parts[: i + 1]) for i in range(len(parts))]


def first_untraversable(path: str) -> str | None:
    """The directory nearest ``/`` on the way to ``path`` that other users cannot enter."""
    current = "/"
    for part in [p for p in path.split("/") if p][:-1]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def outermost(paths: Iterable[str]) -> list[str]:
    """``paths`` without duplicates and without those inside another one, sorted."""
    unique = sorted(set(paths))
    return [p for p in unique if not any(q != p and p.startswith(q.rstrip("/") + "/") for q in unique)]


@functools.lru_cache(maxsize=1)
def system_layout() -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(symlinks to recreate as (target, link), library directories to bind): the ``/bin``,
    ``/sbin`` and ``/lib*`` links of a merged-/usr system, and where the shared libraries live."""
    links: list[tuple[str, str]] = []
    dirs: list[str] = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr/lib32", "/usr/lib64", "/usr/libx32"):
        if os.path.islink(top):
            links.append((os.readlink(top), top))
        elif os.path.isdir(top) and "/lib" in top:  # never a real /bin: it holds the shells
            dirs.append(top)
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    arch_dir = f"/usr/lib/{multiarch}"
    dirs.append(arch_dir if multiarch and os.path.isdir(arch_dir) else "/usr/lib")
    return tuple(links), tuple(dirs)


@functools.lru_cache(maxsize=1)
def interpreter_paths() -> tuple[str, ...]:
    """What the interpreter needs to run ``main.py``: its prefix when outside the system
    directories (pyenv, virtualenv), else its executable, standard library and site-packages."""
    import site

    found = {sys.executable, os.path.realpath(sys.executable)}
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        if os.path.realpath(prefix) not in _SYSTEM_PREFIXES:
            found.add(prefix)
    found.update(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    found.update(site.getsitepackages())
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
        if libdir and library:
            found.add(os.path.join(libdir, library))
    return tuple(outermost(p for p in found if p and os.path.exists(p)))
