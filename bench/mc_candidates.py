"""Is the embedded model above chance on an offline multiple-choice file? (docs/quickstart.md)

Scores rows of OpenAI `evals` data files with the local backend's ``loglikelihood`` (the call
``mc_scoring: auto`` makes) and prints accuracy with a Wilson 95% interval beside the chance and
majority-class rates. Each argument is ``<file under evals/registry/data>|<labels>|<shots>|<n>``;
labels ``@list`` means the row's comma-separated options in its last message (cloze scoring).

    python bench/mc_candidates.py "which_is_heavier/which_is_heavier.jsonl|Yes,No|3|100"
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials."""
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return centre - half, centre + half


def _data_root() -> Path:
    spec = importlib.util.find_spec("evals")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the `evals` package is not installed (bash scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations))) / "registry" / "data"


def _messages(rows: list[dict[str, Any]], i: int, shots: int) -> list[dict[str, Any]]:
    """Row ``i``'s chat prompt with ``shots`` other rows (seeded by ``i``) as user/assistant turns."""
    prompt = list(rows[i]["input"])
    if not shots:
        return prompt
    others = [j for j in range(len(rows)) if j != i]
    demos: list[dict[str, Any]] = []
    for j in random.Random(i).sample(others, shots):
        demos += [m for m in rows[j]["input"] if m["role"] != "system"]
        demos.append({"role": "assistant", "content": rows[j]["ideal"]})
    system = [m for m in prompt if m["role"] == "system"]
    return system + demos + [m for m in prompt if m["role"] != "system"]


async def _measure(model: Any, root: Path, arg: str) -> None:
    path, label_text, shot_text, n_text = arg.split("|")
    labels, shots = label_text.split(","), int(shot_text)
    rows = [json.loads(line) for line in (root / path).read_text(encoding="utf-8").splitlines() if line.strip()]
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    picked = order[: int(n_text)]

    def options(i: int) -> list[str]:
        if labels == ["@list"]:
            return [o.strip() for o in rows[i]["input"][-1]["content"].split(",")]
        return labels

    start = time.perf_counter()
    scores = await asyncio.gather(*(model.loglikelihood(_messages(rows, i, shots), options(i)) for i in picked))
    preds = [options(i)[max(range(len(s)), key=s.__getitem__)] for i, s in zip(picked, scores, strict=True)]
    gold = [rows[i]["ideal"] for i in picked]
    right = sum(p == g for p, g in zip(preds, gold, strict=True))
    lo, hi = wilson(right, len(picked))
    majority = collections.Counter(gold).most_common(1)[0][1] / len(picked)
    print(
        f"{path} shots={shots} n={len(picked)} accuracy={right / len(picked):.3f} [{lo:.3f}, {hi:.3f}] "
        f"chance={1 / len(options(picked[0])):.2f} majority={majority:.2f} "
        f"picks={collections.Counter(preds).most_common(4)} {time.perf_counter() - start:.0f} s",
        flush=True,
    )


async def main(args: list[str]) -> None:
    """Measure each ``file|labels|shots|n`` argument with the embedded model."""
    from taskgrove.models.local import LocalModel

    model = LocalModel.load("default", batch_size=16)
    try:
        for arg in args:
            await _measure(model, _data_root(), arg)
    finally:
        await model.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
