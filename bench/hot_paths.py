"""Hot paths whose speed used to be asserted in tests, each timed side by side with a baseline.

Tests check what these paths compute; how fast they are depends on the machine and its load, so
the timings live here and are reported as ratios to a baseline measured in the same process:

* ``task.run``: a declarative label task's per-sample cost (prompt, parse, metrics) with a model
  that answers at once, against the bare ``await model.generate(...)`` it wraps.
* ``mean_interval``: the bootstrap interval of 20,000 values (1,000 resamples), against plain
  numpy resampling of the same size.
* ``report --html``: the HTML report of 20,000 samples, against the same report of 2,000.
* BIG-bench registration (only when indexed BIG-bench data is present), against registering the
  builtin catalog.

    python bench/hot_paths.py            # best of 3 for each; prints seconds and ratios
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from taskgrove.core import Choice

REPEATS = 3
SAMPLES = 5000

TASK = {
    "name": "bench/labels",
    "description": "generated labels",
    "system": "You label sentences.",
    "input": "Sentence: {{ text }}",
    "reference": {"field": "label", "map": {0: "neg", 1: "pos"}},
    "labels": ["neg", "pos"],
    "parser": "label",
    "metrics": ["accuracy", "f1_macro"],
    "reward": "accuracy",
    "fewshot": None,
}


def best(fn: Callable[[], Any]) -> float:
    """The best wall time of ``REPEATS`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class Instant:
    """A model that answers at once (a benchmark fixture, not a product model)."""

    name = "instant"

    async def generate(self, messages: Any, **kw: Any) -> Choice:
        return Choice("pos")


def task_run(work: Path) -> tuple[float, float]:
    from taskgrove.tasks.spec import compile_spec, parse_spec

    rows = work / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": f"s{i}", "label": i % 2}) + "\n" for i in range(SAMPLES)))
    task = compile_spec(parse_spec({**TASK, "source": f"file:{rows}"}))
    task.configure(prompt_format="zero_shot", num_fewshot=0, seed=0, split="test")
    scenarios = list(task.get_dataset("test"))
    model = Instant()

    async def through_task() -> None:
        for scenario in scenarios:
            await task.run(model, scenario)

    async def bare() -> None:
        for scenario in scenarios:
            await model.generate([{"role": "user", "content": scenario["id"]}])

    return best(lambda: asyncio.run(through_task())), best(lambda: asyncio.run(bare()))


def bootstrap() -> tuple[float, float]:
    from taskgrove.metrics.bootstrap import mean_interval

    values = np.random.default_rng(0).random(20_000)
    mean_interval(values[:100])
    rng = np.random.default_rng(1)

    def plain() -> None:
        for _ in range(1000):
            values[rng.integers(0, values.size, values.size)].mean()

    return best(lambda: mean_interval(values, n_resamples=1000)), best(plain)


def html_report(work: Path) -> tuple[float, float]:
    from fixtures.report.make_runs import FakeTask, bernoulli, write_run
    from taskgrove.cli import main

    def run_of(samples: int, name: str) -> Path:
        per_task = samples // 5
        tasks = {
            f"big/g{i % 2}/t{i}": FakeTask(bernoulli(per_task, 0.6, i), long_text="Some context. " * 30)
            for i in range(5)
        }
        return write_run(work, name, "m", tasks)

    big, small = run_of(20_000, "r20k"), run_of(2_000, "r2k")
    return (
        best(lambda: main(["report", str(big), "--html", str(work / "big")])),
        best(lambda: main(["report", str(small), "--html", str(work / "small")])),
    )


def bigbench_registration() -> tuple[float, float] | None:
    from taskgrove.tasks.bigbench import register
    from taskgrove.tasks.builtin import build_registry, new_registry
    from taskgrove.tasks.sources.bigbench_index import read_bigbench_index
    from taskgrove.tasks.sources.bigbench_rows import default_bigbench_root

    root = default_bigbench_root()
    if read_bigbench_index(root) is None:
        return None
    return best(lambda: register(new_registry(), root)), best(build_registry)


def show(label: str, pair: tuple[float, float] | None, baseline: str, per: int | None = None) -> None:
    if pair is None:
        print(f"{label:<34} skipped (no indexed BIG-bench data)")
        return
    value, base = pair
    extra = f"  ({value / per * 1e6:.1f} us per sample)" if per else ""
    print(f"{label:<34} {value:8.3f} s   {baseline:<32} {base:8.3f} s   ratio {value / base:7.1f}x{extra}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        show(f"task.run x {SAMPLES}", task_run(work), "bare model.generate", per=SAMPLES)
        show("mean_interval 20k x 1000", bootstrap(), "plain numpy resampling")
        show("report --html, 20,000 samples", html_report(work), "same report, 2,000 samples")
        show("register BIG-bench subtree", bigbench_registration(), "build the builtin registry")


if __name__ == "__main__":
    main()
