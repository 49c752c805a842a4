"""Benchmark: ``taskgrove run --model vllm:default`` vs raw vLLM on the same prompts.

The first N BIG-bench snarks inputs as single user messages (vLLM applies the model's chat
template), greedy, at most 16 new tokens, the embedded SmolLM2-135M's converted weights. Each
variant is one whole process, timed from outside (imports, engine start-up, generation, shutdown):

  run      ``taskgrove run --model vllm:default`` on a task made of the same prompts, 100 requests
           in flight: starts the managed vLLM server, waits for health, sends chat completions,
           scores, writes the run folder, stops the server
  server   raw vLLM, the way we use it: the vLLM venv's python starts the same OpenAI server
           (same arguments, same ``VLLM_CPU_KVCACHE_SPACE``), polls ``/health`` like taskgrove,
           sends the same 100 chat-completion requests concurrently (stdlib HTTP in threads),
           SIGTERMs the server — the same engine work, so the fair baseline
  offline  raw vLLM without HTTP: ``vllm.LLM(dir).chat(prompts, SamplingParams(temperature=0,
           max_tokens=16))`` in one process — the upper bound (no server, no HTTP, one batch)

    python bench/bench_vllm.py [--repeat 3] [--prompts 100]      # all three, interleaved
    python bench/bench_vllm.py --print-commands --work DIR       # one command per variant, to time
                                                                 # with an outside tool
    python bench/bench_vllm.py --compare --work DIR              # answers identical? (after those)

Every variant leaves ``{"outputs": [...], "<phase>_s": seconds}`` in ``<work>/<variant>.json``; the
answers are compared text for text (greedy decoding should make them identical; batches that differ
in composition may change a near-tie). The vLLM environment comes from ``scripts/setup_vllm.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MAX_NEW_TOKENS = 16
VARIANTS = ("run", "server", "offline")

RUN_TASK = """\
name: bench/vllm_prompts
source: file:{data}
id_field: id
input: "{{{{ prompt }}}}"
reference: reference
fewshot: null
metrics: [exact_match]
"""


# --- preparation (taskgrove's environment) ------------------------------------------------------
def prepare(work: Path, count: int) -> dict[str, list[str]]:
    """Write the prompts, the model dir's path and the run task into ``work``; return the command
    of each variant."""
    sys.path.insert(0, str(ROOT / "src"))
    from taskgrove.models.loading import default_gguf, ensure_converted
    from taskgrove.models.paths import cache_root
    from taskgrove.models.vllm_server import vllm_python
    from taskgrove.tasks.sources.bigbench_rows import default_bigbench_root

    snarks = default_bigbench_root() / "snarks" / "task.json"
    if not snarks.is_file():
        raise SystemExit(f"{snarks} missing: python scripts/fetch_bigbench.py --tasks snarks --if-missing")
    examples = json.loads(snarks.read_text())["examples"]
    if len(examples) < count:
        raise SystemExit(f"snarks has {len(examples)} examples, fewer than --prompts {count}")
    prompts = [str(example["input"]) for example in examples[:count]]
    work.mkdir(parents=True, exist_ok=True)
    (work / "prompts.json").write_text(json.dumps(prompts))
    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": p, "reference": ""}) + "\n" for i, p in enumerate(prompts)))
    (work / "prompts.yaml").write_text(RUN_TASK.format(data=data))
    model = str(ensure_converted(default_gguf(), cache_root()))
    (work / "model.txt").write_text(model)
    me, vllm = str(Path(__file__).resolve()), str(vllm_python())
    return {
        "run": [sys.executable, me, "--child", "run", "--work", str(work)],
        "server": [vllm, me, "--child", "server", "--work", str(work)],
        "offline": [vllm, me, "--child", "offline", "--work", str(work)],
    }


def child_run(work: Path) -> None:
    """``run``: the whole ``taskgrove run`` command, in a fresh output folder."""
    count = len(json.loads((work / "prompts.json").read_text()))
    with tempfile.TemporaryDirectory(dir=work) as results:
        command = [
            sys.executable, "-m", "taskgrove", "run", "--model", "vllm:default",
            "--include-path", str(work / "prompts.yaml"), "--tasks", "bench/vllm_prompts",
            "--max-tokens", str(MAX_NEW_TOKENS), "--temperature", "0", "--concurrency", str(count),
            "--no-cache", "--no-progress", "--output-dir", results, "--run-id", "bench",
        ]  # fmt: skip
        subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        run_dir = Path(results) / "bench"
        lines = (run_dir / "bench" / "vllm_prompts" / "samples.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        texts = {int(r["id"]): r["outputs"][0]["messages"][-1]["content"] for r in records}
        seconds = json.loads((run_dir / "run.json").read_text())["seconds"]
    write(work / "run.json", [texts[i] for i in range(count)], {"tasks_s": seconds})


# --- raw vLLM (the vLLM venv's python; no taskgrove import) -------------------------------------
def child_server(work: Path) -> None:
    """``server``: start vLLM's OpenAI server as taskgrove does, send the chat requests, stop it."""
    started = time.perf_counter()
    model, prompts = (work / "model.txt").read_text(), json.loads((work / "prompts.json").read_text())
    served = Path(model).name
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
        "--served-model-name", served, "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    with open(work / "server.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        while not healthy(port):
            if server.poll() is not None:
                raise SystemExit(f"the vLLM server exited ({server.returncode}); see {work / 'server.log'}")
            time.sleep(0.5)
        loaded = time.perf_counter()

        def ask(prompt: str) -> str:
            body = {
                "model": served,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": MAX_NEW_TOKENS,
                "temperature": 0,
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=600) as response:
                return str(json.load(response)["choices"][0]["message"]["content"])

        with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
            outputs = list(pool.map(ask, prompts))
        generated = time.perf_counter()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    write(work / "server.json", outputs, {"load_s": loaded - started, "generate_s": generated - loaded})


def healthy(port: int) -> bool:
    """Whether the server's ``GET /health`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def child_offline(work: Path) -> None:
    """``offline``: ``vllm.LLM(...).chat(...)``, every prompt in one call."""
    started = time.perf_counter()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from vllm import LLM, SamplingParams

    model, prompts = (work / "model.txt").read_text(), json.loads((work / "prompts.json").read_text())
    llm = LLM(model=model)
    loaded = time.perf_counter()
    conversations: list[Any] = [[{"role": "user", "content": p}] for p in prompts]
    results = llm.chat(conversations, SamplingParams(temperature=0, max_tokens=MAX_NEW_TOKENS), use_tqdm=False)
    outputs = [r.outputs[0].text for r in results]
    write(work / "offline.json", outputs, {"load_s": loaded - started, "generate_s": time.perf_counter() - loaded})


def write(path: Path, outputs: list[str], timing: dict[str, float]) -> None:
    """One variant's answers and inner timings."""
    path.write_text(json.dumps({"outputs": outputs, **timing}))


# --- driver -------------------------------------------------------------------------------------
def compare(work: Path) -> None:
    """Print how many answers of each variant equal the raw server's, and the first differences."""
    outputs = {
        n: json.loads((work / f"{n}.json").read_text())["outputs"] for n in VARIANTS if (work / f"{n}.json").is_file()
    }
    if "server" not in outputs:
        raise SystemExit(f"no {work / 'server.json'}: run the server variant first")
    base = outputs["server"]
    for name, texts in outputs.items():
        if name == "server":
            continue
        differ = [i for i, (x, y) in enumerate(zip(base, texts, strict=True)) if x != y]
        print(f"identical answers server vs {name}: {len(base) - len(differ)}/{len(base)}")
        for i in differ[:5]:
            print(f"  prompt {i}: server {base[i]!r} | {name} {texts[i]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, interleaved (median counts)")
    parser.add_argument("--prompts", type=int, default=100, help="snarks prompts")
    parser.add_argument("--work", type=Path, help="folder for prompts and answers (default: a temporary one)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of run,server,offline")
    parser.add_argument("--print-commands", action="store_true", help="prepare --work, print the commands, stop")
    parser.add_argument("--compare", action="store_true", help="compare the answers left in --work, stop")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {"run": child_run, "server": child_server, "offline": child_offline}[args.child](args.work)
        return
    if args.compare:
        compare(args.work)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        commands = prepare(work, args.prompts)
        chosen = [name.strip() for name in args.variants.split(",")]
        if args.print_commands:
            for name in chosen:
                print(f"{name}: {' '.join(commands[name])}")
            return
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for round_ in range(args.repeat):
            for name in chosen:
                started = time.perf_counter()
                subprocess.run(commands[name], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - started)
                inner = json.loads((work / f"{name}.json").read_text())
                phases = ", ".join(f"{k} {v:.1f}s" for k, v in inner.items() if k.endswith("_s"))
                load = os.getloadavg()[0]
                print(
                    f"round {round_ + 1}: {name:<8} {times[name][-1]:7.1f}s  [{phases}]  (load avg {load:.1f})",
                    flush=True,
                )
        print()
        for name, values in times.items():
            runs = ", ".join(f"{v:.1f}" for v in values)
            print(f"{name:<8} median {statistics.median(values):7.1f}s  runs {runs}")
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name in chosen:
            if name != "server" and "server" in medians:
                print(f"ratio {name}/server (medians): {medians[name] / medians['server']:.3f}")
        compare(work)


if __name__ == "__main__":
    main()
