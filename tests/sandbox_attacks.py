"""Hostile programs for the sandbox, each judged by what it observed and what the host saw.

tests/test_sandbox.py runs this file as a script, as root and as an unprivileged user, with a
secret in its environment (``OPENAI_API_KEY``, the caller's own, initial environment):

    OPENAI_API_KEY=sk-... python tests/sandbox_attacks.py --scratch DIR   # one JSON list of verdicts

Standard library and ``taskgrove.sandbox`` only, so the system Python of another user can run it.
Every program first prints its pid namespace; after all runs no host process may remain in one
of those namespaces (nothing a program started outlives its run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.sandbox import SandboxResult, arun_code

REPO = Path(__file__).resolve().parents[1]
SECRET_ENV = "OPENAI_API_KEY"
PRELUDE = "import os\nprint('NS', os.readlink('/proc/self/ns/pid'), os.getuid(), flush=True)\n"


class Listener:
    """A TCP server on 127.0.0.1 that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@dataclass
class Scene:
    """What the attacks aim at: a listener, a results folder with a secret, a home, the repo."""

    scratch: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    signals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = self.scratch / "results"
        self.home = self.scratch / "home"
        self.results.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.secret = os.environ.get(SECRET_ENV) or f"sk-taskgrove-secret-{self.token}"
        os.environ[SECRET_ENV] = self.secret
        (self.results / "samples.jsonl").write_text(self.secret + "\n")
        self.targets = [
            f"/tmp/sandbox-escape-{self.token}",
            str(REPO / f"sandbox-escape-{self.token}"),
            str(self.home / f"escape-{self.token}"),
        ]

    def fill(self, template: str, port: int) -> str:
        values = {
            "port": port,
            "token": self.token,
            "pid": os.getpid(),
            "results": str(self.results),
            "targets": self.targets,
        }
        return PRELUDE + template.format(**{k: repr(v) for k, v in values.items()})


Judge = Callable[[SandboxResult, Scene, Listener], tuple[bool, str]]


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    judge: Judge
    limits: dict[str, Any] = field(default_factory=dict)


def _lines(result: SandboxResult) -> str:
    text = "; ".join(line for line in result.stdout.splitlines() if not line.startswith("NS "))
    return text[:400]


def _loop(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    return (
        r.status == "timeout",  # an unbounded loop ends only by the limit
        f"status {r.status} after {r.duration_s:.2f} s (limit 3 s)",
    )


def _bomb(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    counts = [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("processes ")]
    ok = r.status == "timeout" and bool(counts) and max(counts) <= 16 + 1
    return (
        ok,
        f"{max(counts) if counts else '?'} processes in the sandbox at the peak of {len(counts)} counts "
        f"(limit 16 + the launcher); status {r.status}",
    )


def _memory(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    ok = r.status == "memory" and "allocated" not in r.stdout
    return ok, f"status {r.status}: {(r.stderr.strip().splitlines() or [''])[-1][:120]}"


def _writes(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    leaked = [t for t in s.targets if os.path.exists(t)]
    for t in leaked:
        os.remove(t)
    ok = not leaked and "wrote /" not in r.stdout and "inside ok" in r.stdout
    return ok, _lines(r) + (f"; FOUND ON HOST: {leaked}" if leaked else "; nothing created on the host")


def _env(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    return s.secret not in r.stdout and "OPENAI" not in r.stdout, _lines(r)


def _tcp(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    time.sleep(0.2)
    ok = listener.connections == 0 and "connected" not in r.stdout
    return ok, f"{_lines(r)}; listener saw {listener.connections} connection(s)"


def _shell(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    return "shell-ran" not in r.stdout and "shell-ran" not in r.stderr, _lines(r)


def _ctypes(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    made = os.path.exists(f"/tmp/ctypes-{s.token}")
    return not made and "ctypes-ran" not in r.stdout, f"{_lines(r)}; /tmp/ctypes-{s.token} on host: {made}"


def _output(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    ok = r.stdout_truncated and len(r.stdout.encode()) <= 65536 and r.status == "ok"
    return (
        ok,
        f"kept {len(r.stdout.encode())} of 104857600 bytes (cap 65536), truncated={r.stdout_truncated}, {r.duration_s:.2f} s",
    )


def _host_root(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    seen = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    listing = json.loads(seen.get("LIST", "[]"))
    allowed = {"sandbox", "dev", "proc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
    allowed |= {p.split("/")[1] for p in [sys.prefix, sys.base_prefix, sys.executable] if p.count("/") > 1}
    ok = set(listing) <= allowed and s.secret not in r.stdout and "READ" not in seen.get("PROBE", "READ")
    return ok, f"/ = {listing}; {seen.get('ROOTDIR', '')}; {seen.get('PROBE', '')}"


def _kill(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    return not s.signals and "survived" in r.stdout, f"{_lines(r)}; signals received by the caller: {s.signals}"


def _daemon(r: SandboxResult, s: Scene, listener: Listener) -> tuple[bool, str]:
    return r.status == "ok", _lines(r)


ATTACKS = [
    Attack("infinite loop", "while True:\n    pass\n", _loop, {"timeout_s": 3}),
    Attack(
        "fork bomb",
        "import time\nif os.fork() == 0:\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
        "            time.sleep(0.01)\nwhile True:\n    time.sleep(0.25)\n"
        "    print('processes', sum(p.isdigit() for p in os.listdir('/proc')), flush=True)\n",
        _bomb,
        {"timeout_s": 4, "max_processes": 16},
    ),
    Attack("8 GiB allocation", "x = bytearray(8 * 1024**3)\nprint('allocated')\n", _memory, {"memory_mb": 256}),
    Attack(
        "write outside its folder",
        "for path in {targets}:\n    try:\n        open(path, 'w').write('x')\n        print('wrote', path)\n"
        "    except OSError as exc:\n        print(path, type(exc).__name__, exc.strerror)\n"
        "open('inside.txt', 'w').write('x')\nprint('inside ok')\n",
        _writes,
    ),
    Attack(
        "secrets in the environment",
        "print('ENV', sorted(os.environ))\nprint('VALUES', ' '.join(os.environ.values()))\n"
        "for pid in ('1', str(os.getppid()), str({pid})):\n    try:\n"
        "        print(pid, open(f'/proc/{{pid}}/environ').read().replace(chr(0), ' '))\n"
        "    except OSError as exc:\n        print('/proc/' + pid + '/environ', type(exc).__name__)\n",
        _env,
    ),
    Attack(
        "TCP to 127.0.0.1",
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\n"
        "except OSError as exc:\n    print(type(exc).__name__, exc)\n",
        _tcp,
    ),
    Attack(
        "spawn a shell",
        "import subprocess\nprint('/bin/sh exists:', os.path.exists('/bin/sh'))\n"
        "try:\n    print(subprocess.run(['/bin/sh', '-c', 'echo shell-ran'], capture_output=True, text=True).stdout)\n"
        "except OSError as exc:\n    print('subprocess:', type(exc).__name__)\n"
        "print('os.system ->', os.system('echo shell-ran'))\n",
        _shell,
    ),
    Attack(
        "ctypes system()",
        "import ctypes\nrc = ctypes.CDLL(None).system(b'echo ctypes-ran; touch /tmp/ctypes-' + {token}.encode())\n"
        "print('system() ->', rc)\n",
        _ctypes,
    ),
    Attack(
        "100 MiB of output",
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n",
        _output,
        {"timeout_s": 30},
    ),
    Attack(
        "read the host /",
        "import json\nprint('LIST', json.dumps(sorted(os.listdir('/'))))\n"
        "try:\n    print('ROOTDIR /root holds', sorted(os.listdir('/root')))\nexcept OSError as exc:\n"
        "    print('ROOTDIR /root', type(exc).__name__)\nout = []\n"
        "for path in ['/etc/shadow', '/etc/passwd', '/root/.bashrc', '/work', '/home', {results}, {results} + '/samples.jsonl']:\n"
        "    try:\n        out.append(path + ' READ ' + (open(path).read(80) if os.path.isfile(path) else str(os.listdir(path))))\n"
        "    except OSError as exc:\n        out.append(path + ' ' + type(exc).__name__)\nprint('PROBE', '; '.join(out))\n",
        _host_root,
    ),
    Attack(
        "kill its parent",
        "import signal\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)\nprint('ppid', os.getppid())\n"
        "for pid, sig in ((os.getppid(), signal.SIGKILL), ({pid}, signal.SIGUSR1), (-1, signal.SIGUSR1)):\n"
        "    try:\n        os.kill(pid, sig)\n        print('kill', pid, sig.name, 'sent')\n"
        "    except OSError as exc:\n        print('kill', pid, sig.name, type(exc).__name__)\nprint('survived')\n",
        _kill,
    ),
    Attack(
        "escaped daemon",
        "import time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
        "print('daemon started')\n",
        _daemon,
    ),
]


def _program_uid(result: SandboxResult) -> int | None:
    """The uid the program ran as (its first line), when it got that far."""
    first = result.stdout.split("\n", 1)[0].split()
    return int(first[2]) if len(first) == 3 and first[0] == "NS" else None


def _left_behind(runs: set[tuple[str, int]]) -> list[str]:
    """Host processes (not zombies) still in one of the runs' (pid namespace, uid). The uid
    matters: the kernel reuses a freed namespace's number for the next namespace anyone makes."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            namespace = os.readlink(f"/proc/{entry}/ns/pid")
            uid = os.stat(f"/proc/{entry}").st_uid
            if (namespace, uid) not in runs:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode(errors="replace")
        except OSError:
            continue
        if state not in ("Z", "X"):
            alive.append(f"pid {entry} uid {uid} {namespace} {state} {command!r}")
    return alive


async def _run_all(scene: Scene, listener: Listener) -> list[tuple[Attack, SandboxResult]]:
    runs = [arun_code(scene.fill(a.code, listener.port), **{"timeout_s": 5.0, **a.limits}) for a in ATTACKS]
    return list(zip(ATTACKS, await asyncio.gather(*runs), strict=True))


def run_attacks(scratch: Path) -> list[dict[str, Any]]:
    """Run every attack (concurrently) and judge it: ``{"attack", "contained", "evidence", ...}``."""
    scene, listener = Scene(scratch), Listener()
    previous_handler = signal.signal(signal.SIGUSR1, lambda signum, frame: scene.signals.append(signum))
    try:
        results = asyncio.run(_run_all(scene, listener))
    finally:
        signal.signal(signal.SIGUSR1, previous_handler)
    runs = {
        (line.split()[1], int(line.split()[2]))
        for _, r in results
        for line in r.stdout.splitlines()[:1]
        if line.startswith("NS ")
    }
    # a run timed out before Python printed its namespace (a loaded machine) started nothing
    silent = sum(1 for _, r in results if not r.stdout.startswith("NS ") and r.status == "timeout")
    time.sleep(0.2)
    leftovers = _left_behind(runs)
    verdicts = []
    try:
        for attack, result in results:
            contained, evidence = attack.judge(result, scene, listener)
            verdicts.append(
                {
                    "attack": attack.name,
                    "contained": contained and result.isolation == "bwrap" and not leftovers,
                    "evidence": evidence,
                    "isolation": result.isolation,
                    "status": result.status,
                    "uid": os.getuid(),
                    "program_uid": _program_uid(result),
                }
            )
    finally:
        listener.close()
    verdicts.append(
        {
            "attack": "(after all runs) processes left",
            "contained": not leftovers and len(runs) >= len(ATTACKS) - silent,
            "evidence": f"{len(runs)} runs (pid namespace, uid) to check, {silent} killed before they started; "
            f"host processes still in them: {leftovers}",
            "isolation": "bwrap",
            "status": "-",
            "uid": os.getuid(),
            "program_uid": None,
        }
    )
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", required=True, help="a writable directory for the results folder and home")
    args = parser.parse_args()
    print(json.dumps(run_attacks(Path(args.scratch))))


if __name__ == "__main__":
    main()
