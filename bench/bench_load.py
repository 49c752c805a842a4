"""Load: 100,000 samples through the OpenAI-compatible backend and the real executor
(``taskgrove.run``) at concurrency 256, against a local fault-injecting server.

The server (a raw asyncio HTTP/1.1 server on 127.0.0.1, in its own process) answers each chat
completion with the prompt itself, except, decided by a hash of (seed, prompt, attempt), so the same
seed gives the same faults:

    429 with Retry-After: 0.1   2 %      500 Internal Server Error   2 %
    malformed JSON body (200)   1 %      connection closed, no reply 0.5 %
    slow answer (+0.25 s)       1 %

Checked, each run: every sample id of the data is in ``samples.jsonl`` exactly once, with no error,
and its output is its own prompt (a reply never lands on another sample; exact_match = 1.0 on the
1 scale). Reported: samples/s and the client's peak RSS (``resource.getrusage``, MiB). Each size runs
in a fresh process, and the small size (10,000) is the baseline for memory: RSS growth per extra
sample is compared with the size of one stored record, so anything that grows with the number of
samples beyond the records themselves shows up as a ratio well above 1.

    python bench/bench_load.py                       # 10,000 (baseline) and 100,000 samples
    python bench/bench_load.py --sizes 1000          # a quick one
    python bench/bench_load.py --baseline-pool 5000  # the former single shared httpx client vs now
    python bench/bench_load.py --serve --seed 1      # only the server (prints its port)

Bounded: each size stops by itself (a run that has not finished in --timeout seconds is killed and
reported as a failure); the server process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

FAULTS = (("429", 0.02), ("500", 0.02), ("malformed", 0.01), ("drop", 0.005), ("slow", 0.01))
TASK = "bench/load"


# --- the fault-injecting server ---------------------------------------------------------------


def fault_for(seed: int, prompt: str, attempt: int) -> str | None:
    """The fault of this attempt at this prompt (``None``: answer), the same for the same seed."""
    digest = hashlib.blake2b(f"{seed}\0{prompt}\0{attempt}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    for name, rate in FAULTS:
        if u < rate:
            return name
        u -= rate
    return None


def _response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def _completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "bench",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
        }
    ).encode()


class FaultServer:
    """Answers ``POST .../chat/completions``; counts attempts per prompt and faults by kind."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.attempts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length))
                prompt = body["messages"][-1]["content"]
                self.attempts[prompt] += 1
                fault = fault_for(self.seed, prompt, self.attempts[prompt])
                self.faults[fault or "ok"] += 1
                if fault == "drop":
                    return
                if fault == "429":
                    reply = _response(429, "Too Many Requests", b'{"error": "slow down"}', "Retry-After: 0.1\r\n")
                elif fault == "500":
                    reply = _response(500, "Internal Server Error", b'{"error": "boom"}')
                elif fault == "malformed":
                    reply = _response(200, "OK", _completion(prompt)[:40])
                else:
                    if fault == "slow":
                        await asyncio.sleep(0.25)
                    reply = _response(200, "OK", _completion(prompt))
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def serve(seed: int, port: int) -> None:
    """Serve until stdin closes (the parent went away) or SIGTERM; print the port first, the counts last."""
    server = FaultServer(seed)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024)
    print(listener.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    listener.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts = {"attempts": sum(server.attempts.values()), "faults": dict(server.faults)}
    counts["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    print(json.dumps(counts), flush=True)


class ServerProcess:
    """The fault server in its own process (so it does not share the client's CPU time slice)."""

    def __init__(self, seed: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError(f"the fault server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line)}/v1"

    def stop(self) -> dict[str, Any]:
        """Stop the server and return its counts."""
        try:
            out, _ = self.process.communicate(input="", timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return {}
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else {}


# --- the client: a real run -------------------------------------------------------------------


def write_task(folder: Path, samples: int) -> Path:
    """A generated task of ``samples`` rows whose right answer is the prompt itself."""
    with (folder / "data.jsonl").open("w") as out:
        for i in range(samples):
            out.write(json.dumps({"id": f"s{i:06d}", "text": f"item {i} of the load benchmark"}) + "\n")
    spec = {
        "name": TASK,
        "description": "generated: the reply must be the prompt (load benchmark)",
        "source": f"file:{folder / 'data.jsonl'}",
        "id_field": "id",
        "input": "{{ text }}",
        "reference": "text",
        "metrics": ["exact_match"],
    }
    path = folder / "load.yaml"
    path.write_text(json.dumps(spec))
    return path


def deep_size(value: Any) -> int:
    """Bytes a parsed JSON value takes in memory (containers and their contents)."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in value.items())
    elif isinstance(value, list):
        size += sum(deep_size(v) for v in value)
    return size


def run_load(base_url: str, samples: int, concurrency: int, folder: Path) -> dict[str, Any]:
    """Run ``samples`` samples through ``taskgrove.run``; check nothing lost or duplicated; figures."""
    import taskgrove

    task = write_task(folder, samples)
    started = time.perf_counter()
    result = taskgrove.run(
        task,
        model="openai/bench",
        base_url=base_url,
        concurrency=concurrency,
        max_retries=8,
        request_timeout=30.0,
        output_dir=str(folder / "results"),
        cache=False,
        progress=False,
        max_sample_errors=0,
    )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_rss_mib = usage.ru_maxrss / 1024
    [samples_file] = list((folder / "results").glob("*/bench/load/samples.jsonl"))
    ids: Counter[str] = Counter()
    errors = wrong = 0
    record_memory = 0
    with samples_file.open() as lines:
        for number, line in enumerate(lines):
            record = json.loads(line)
            if number < 1000:
                record_memory += deep_size(record)
            ids[record["id"]] += 1
            errors += record["error"] is not None
            reply = record["outputs"][0]["messages"][-1]["content"] if record["outputs"] else None
            wrong += reply != record["reference"]
    expected = {f"s{i:06d}" for i in range(samples)}
    report = {
        "samples": samples,
        "concurrency": concurrency,
        "stored_lines": sum(ids.values()),
        "missing": len(expected - set(ids)),
        "duplicated": sum(1 for n in ids.values() if n > 1),
        "unexpected": len(set(ids) - expected),
        "errors": errors,
        "wrong_replies": wrong,
        "exact_match": result.scores().get(TASK) if hasattr(result, "scores") else None,
        "seconds": round(seconds, 2),
        "samples_per_s": round(samples / seconds, 1),
        "peak_rss_mib": round(peak_rss_mib, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "record_bytes": round(samples_file.stat().st_size / max(samples, 1), 1),
        "record_memory_bytes": round(record_memory / min(samples, 1000), 1),
    }
    report["ok"] = (
        report["stored_lines"] == samples
        and report["missing"] == report["duplicated"] == report["unexpected"] == 0
        and errors == 0
        and wrong == 0
    )
    return report


class SharedPool:
    """The baseline for ``--baseline-pool``: what the backend did before, one httpx client whose
    pool holds all ``concurrency`` connections (same interface as ``openai_http._ClientPool``)."""

    def __init__(self, concurrency: int, timeout: float) -> None:
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.shared = httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, trust_env=False)
        self.semaphore = asyncio.Semaphore(concurrency)

    @contextlib.contextmanager
    def client(self) -> Any:
        yield self.shared

    async def aclose(self) -> None:
        await self.shared.aclose()


def _client(args: argparse.Namespace) -> int:
    if args.pool == "shared":
        from taskgrove.models import openai_http

        openai_http._ClientPool = SharedPool  # type: ignore[misc,assignment]
    with tempfile.TemporaryDirectory(prefix="taskgrove-load-") as tmp:
        report = run_load(args.url, args.samples, args.concurrency, Path(tmp))
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


def _measure(url: str, samples: int, concurrency: int, timeout: float, pool: str = "split") -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", "--url", url, "--samples", str(samples)]
    command += ["--concurrency", str(concurrency), "--pool", pool]
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
        )
    except subprocess.TimeoutExpired:
        return {"samples": samples, "ok": False, "failure": f"did not finish in {timeout:g}s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode not in (0, 1) or not lines:
        return {"samples": samples, "ok": False, "failure": done.stderr.strip()[-2000:]}
    return dict(json.loads(lines[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per size")
    parser.add_argument(
        "--baseline-pool",
        type=int,
        metavar="N",
        help="instead: N samples with one shared httpx client (the former backend) vs the current one, side by side",
    )
    parser.add_argument("--pool", default="split", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.seed, 0))
        return 0
    if args.client:
        return _client(args)

    server = ServerProcess(args.seed)
    reports = []
    runs = [(size, "split") for size in args.sizes]
    if args.baseline_pool:
        runs = [(args.baseline_pool, pool) for pool in ("shared", "split", "shared", "split")]
    try:
        for size, pool in runs:
            report = {"pool": pool, **_measure(server.url, size, args.concurrency, args.timeout, pool)}
            reports.append(report)
            print(json.dumps(report), flush=True)
    finally:
        counts = server.stop()
    print(
        f"server: {counts.get('attempts', '?')} requests, faults {counts.get('faults', {})}, "
        f"{counts.get('cpu_s', '?')} CPU s"
    )
    print(
        f"{'samples':>8} {'ok':>3} {'lost':>5} {'dup':>4} {'err':>4} {'seconds':>8} {'samples/s':>10} "
        f"{'client CPU s':>12} {'peak RSS MiB':>13}"
    )
    for r in reports:
        if "failure" in r:
            print(f"{r['samples']:>8} FAILED: {r['failure']}")
            continue
        print(
            f"{r['samples']:>8} {'yes' if r['ok'] else 'NO':>3} {r['missing']:>5} {r['duplicated']:>4} "
            f"{r['errors']:>4} {r['seconds']:>8} {r['samples_per_s']:>10} {r['cpu_s']:>12} {r['peak_rss_mib']:>13}"
            + (
                f"  {'one shared httpx client' if r['pool'] == 'shared' else 'one client per slot'}"
                if args.baseline_pool
                else ""
            )
        )
    good = [r for r in reports if "failure" not in r]
    if args.baseline_pool and len(good) == len(reports):
        shared = [r for r in good if r["pool"] == "shared"]
        mine = [r for r in good if r["pool"] == "split"]
        cpu = sum(r["cpu_s"] for r in shared) / sum(r["cpu_s"] for r in mine)
        wall = sum(r["seconds"] for r in shared) / sum(r["seconds"] for r in mine)
        print(
            f"one shared httpx client / one client per concurrency slot: client CPU {cpu:.2f}x, wall time {wall:.2f}x"
        )
    elif len(good) >= 2:
        small, large = good[0], good[-1]
        growth = (large["peak_rss_mib"] - small["peak_rss_mib"]) * 2**20 / (large["samples"] - small["samples"])
        print(
            f"memory: {growth:.0f} bytes of peak RSS per extra sample; one record is {large['record_bytes']:.0f} bytes "
            f"on disk and {large['record_memory_bytes']:.0f} bytes parsed in memory (ratio to the latter "
            f"{growth / large['record_memory_bytes']:.2f}); throughput {large['samples_per_s'] / small['samples_per_s']:.2f}x "
            f"the {small['samples']:,}-sample run's"
        )
    return 0 if all(r.get("ok") for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
