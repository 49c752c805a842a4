"""``vllm:<id-or-dir>``: start a vLLM OpenAI-compatible server in its own Python environment,
wait until it is healthy, send generation to it, and stop it with the run.

vLLM's pins clash with taskgrove's, so it runs from a separate venv (``scripts/setup_vllm.sh``);
the interpreter is ``$TASKGROVE_VLLM_PYTHON``, else ``/opt/taskgrove-vllm/bin/python``, else
``~/.cache/taskgrove/vllm-venv/bin/python``. The server runs in its own process group, gets
SIGTERM when taskgrove closes the model, exits on Ctrl-C/SIGTERM (the run closes its model), at
interpreter exit (``atexit``) and, on Linux, when taskgrove dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.models.errors import ModelError
from taskgrove.models.openai_http import OpenAICompatibleModel
from taskgrove.models.replicas import ReplicaModel

DEFAULT_VENVS = (Path("/opt/taskgrove-vllm"), Path("~/.cache/taskgrove/vllm-venv").expanduser())
SETUP_HINT = "run `bash scripts/setup_vllm.sh` or set TASKGROVE_VLLM_PYTHON to a Python with vllm installed"


def vllm_python() -> Path:
    """The interpreter of the vLLM environment; :class:`ModelError` with the setup command if none."""
    given = os.environ.get("TASKGROVE_VLLM_PYTHON")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ModelError(f"TASKGROVE_VLLM_PYTHON={given} is not a file; {SETUP_HINT}")
        return path
    for venv in DEFAULT_VENVS:
        if (venv / "bin" / "python").is_file():
            return venv / "bin" / "python"
    raise ModelError(f"no vLLM environment found (looked in {', '.join(map(str, DEFAULT_VENVS))}); {SETUP_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _death_signal() -> Any:
    """A pre-exec hook making the child get SIGTERM when taskgrove dies (Linux), or ``None``.
    libc is loaded here, in the parent: the hook itself only makes one system call."""
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VLLMServer:
    """One managed ``vllm.entrypoints.openai.api_server`` process on 127.0.0.1."""

    def __init__(
        self,
        model: str,
        *,
        served_name: str,
        python: Path | None = None,
        port: int | None = None,
        extra_args: list[str] | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 900.0,
    ) -> None:
        self.model = model
        self.served_name = served_name
        self.python = python or vllm_python()
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.extra_args = list(extra_args or [])
        self.log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"taskgrove-vllm-{self.port}.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and block until ``/health`` answers; fail with the log's tail if it dies."""
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the server process (returns at once)."""
        command = [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
            "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
        env.pop("PYTHONPATH", None)  # the vLLM venv must not see taskgrove's packages
        log = open(self.log_path, "wb")  # noqa: SIM115 (the child writes to it for its whole life)
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_death_signal(),  # noqa: PLW1509 (one prctl call, no Python locks taken)
        )
        log.close()
        atexit.register(self.stop)

    def wait_healthy(self) -> None:
        """Block until ``/health`` answers; stop the server and fail with its log's tail if it dies
        or stays unhealthy past ``startup_timeout``."""
        process = self.process
        assert process is not None, "launch() first"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.process = None
                raise ModelError(f"vllm:{self.model}: the server exited ({process.returncode}): {self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise ModelError(f"vllm:{self.model}: not healthy after {self.startup_timeout:g}s: {self.log_tail()}")

    def healthy(self) -> bool:
        """Whether ``GET /health`` answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log (where its errors are)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip() or "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class VLLMModel:
    """A :class:`~taskgrove.core.Model` backed by the :class:`VLLMServer` processes it started
    (several are balanced as replicas)."""

    def __init__(self, name: str, servers: list[VLLMServer], inner: OpenAICompatibleModel | ReplicaModel) -> None:
        self.servers = servers
        self.inner = inner
        self.name = f"vllm:{name}"
        self.cache_identity = self.name
        self._tokenizer: Any = None
        self._timeout = 600.0

    def __repr__(self) -> str:
        return f"VLLMModel({self.name!r}, {[server.base_url for server in self.servers]!r})"

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """A chat completion from a managed server."""
        return await self.inner.generate(messages, tools=tools, **sampling)

    async def loglikelihood(self, context: list[Message], continuations: list[str]) -> list[float]:
        """Each continuation's summed token log-probs after the chat-templated ``context``, from
        the completions endpoint's prompt logprobs (``echo``)."""
        import httpx

        from taskgrove.models.vllm_scoring import chat_prefix, score

        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.servers[0].model)
        prefix = chat_prefix(self._tokenizer, context)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), trust_env=False) as client:
            return await score(client, self.servers[0].base_url, self.servers[0].served_name, prefix, continuations)

    async def aclose(self) -> None:
        """Close the HTTP clients and stop the servers."""
        try:
            await self.inner.aclose()
        finally:
            for server in self.servers:
                server.stop()


def create_vllm(
    target: str,
    *,
    replicas: int = 1,
    concurrency: int,
    request_timeout: float,
    max_retries: int,
    extra_args: list[str] | None = None,
) -> VLLMModel:
    """Start ``replicas`` servers for ``target`` (a hub id, a model dir, or ``default``: the embedded
    model's converted weights), wait until all are healthy, and return the model over them."""
    if replicas < 1:
        raise ModelError(f"replicas must be >= 1, got {replicas}")
    path = target
    if target == "default":
        from taskgrove.models.loading import default_gguf, ensure_converted
        from taskgrove.models.paths import cache_root

        path = str(ensure_converted(default_gguf(), cache_root(None)))
    served = Path(path).name or path
    python = vllm_python()
    servers = [VLLMServer(path, served_name=served, python=python, extra_args=extra_args) for _ in range(replicas)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_healthy()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    clients = [
        OpenAICompatibleModel(
            served,
            base_url=server.base_url,
            concurrency=concurrency,
            request_timeout=request_timeout,
            max_retries=max_retries if replicas == 1 else 1,
        )
        for server in servers
    ]
    inner = clients[0] if replicas == 1 else ReplicaModel(clients)
    return VLLMModel(target, servers, inner)
