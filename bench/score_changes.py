"""Scores of the offline catalog under scripted models, to compare two versions of taskgrove.

Every catalog task that runs offline (its fixture rows in tests/fixtures/catalog, or the
packaged data of the offline tasks) is run with three scripted models:

* ``x``: answers "x" to everything (unparsable everywhere);
* ``oracle``: answers the gold as the task's few-shot target renders it;
* ``chatty``: a line of reasoning that mentions a year, then the oracle's answer on the last line;
* ``negated``: label tasks "It is not OTHER, it is GOLD."; number tasks "Revenue grew GOLD% in 2019.";
* ``hedge``: label tasks "GOLD or OTHER"; number tasks "The increase was $GOLD million."
  (other tasks answer as the oracle does under both).

Run it once per version (PYTHONPATH pointing at that version's src) and compare the JSON::

    PYTHONPATH=/path/to/old/src python bench/score_changes.py --out before.json
    PYTHONPATH=src python bench/score_changes.py --out after.json
    python bench/score_changes.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "catalog"
OFFLINE = {"banking77", "finer_ner"}
MODELS = ("x", "oracle", "chatty", "negated", "hedge")


class Scripted:
    """A model answering by ``style`` from the gold of the item (looked up by its last user message)."""

    def __init__(self, name: str, replies: dict[str, str], style: str, labels: list[str], numeric: bool) -> None:
        self.name = name
        self.replies = replies
        self.style = style
        self.labels = labels
        self.numeric = numeric

    def _reply(self, gold: str) -> str:
        other = next((label for label in self.labels if label != gold), "")
        if self.style == "x":
            return "x"
        if self.style == "chatty":
            return f"Looking at the 2019 figures step by step.\n{gold}"
        if self.style == "negated" and other:
            return f"It is not {other}, it is {gold}."
        if self.style == "hedge" and other:
            return f"{gold} or {other}"
        if self.style == "negated" and self.numeric:
            return f"Revenue grew {gold}% in 2019."
        if self.style == "hedge" and self.numeric:
            return f"The increase was ${gold} million."
        return gold

    async def generate(self, messages: list[dict[str, Any]], **_: Any) -> Any:
        from taskgrove.core import Choice

        await asyncio.sleep(0)
        return Choice(self._reply(self.replies.get(str(messages[-1]["content"]), "")))


def _imports() -> tuple[Any, Any, Any]:
    from taskgrove.config import build_config

    try:
        from taskgrove.runner.executor import Executor
        from taskgrove.tasks.builtin import build_registry
    except ImportError:  # the layout before the cli/runner split
        from taskgrove.executor import Executor  # type: ignore[no-redef]

        from taskgrove.registry import build_registry  # type: ignore[no-redef]
    return build_config, Executor, build_registry


def measure() -> dict[str, dict[str, dict[str, float]]]:
    build_config, Executor, build_registry = _imports()
    registry = build_registry(plugins=False)
    names: list[str] = []
    for group in ("finance", "finance_offline", "treemark"):
        try:
            names += registry.resolve([group])
        except Exception:  # a group this version does not have
            continue
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name in sorted(set(names)):
        short = name.rsplit("/", 1)[-1]
        source = None if ("offline" in name and short in OFFLINE) else f"file:{FIXTURES / name}/{{split}}.jsonl"
        if source is not None and not (FIXTURES / name).is_dir():
            continue
        options = {"source": source} if source else {}
        task = registry.create(name)
        task.configure(prompt_format="zero_shot", num_fewshot=0, seed=0, split="test", **options)
        replies = {}
        for scenario in task.get_dataset("test"):
            messages = task.training_messages(scenario)
            replies[str(messages[-2]["content"])] = str(messages[-1]["content"])
        key = "finance_offline/" + short if "offline" in name else name
        result[key] = {}
        for style in MODELS:
            with tempfile.TemporaryDirectory() as tmp:
                config = build_config(
                    {
                        "mode": "run",
                        "tasks": [name],
                        "output_dir": tmp,
                        "progress": False,
                        "limit": 200,
                        "task_config": {name: {"options": options, "max_sample_errors": 1000}} if options else {},
                    }
                )
                spec = getattr(task, "spec", None)
                labels = list(spec.labels or []) if spec is not None else []
                numeric = spec is not None and spec.parser.name == "number"
                model = Scripted(style, replies, style, labels, numeric)
                run = Executor(config, registry, model=model).run()
                metrics = run.outcomes[name].metrics
            result[key][style] = {m: round(float(v["value"]), 4) for m, v in sorted(metrics.items())}
        print(name, file=sys.stderr)
    return result


def compare(before: dict[str, Any], after: dict[str, Any]) -> None:
    print("| task | model | metric | before | after |")
    print("|---|---|---|---|---|")
    for task in sorted(set(before) | set(after)):
        for model in MODELS:
            old = before.get(task, {}).get(model, {})
            new = after.get(task, {}).get(model, {})
            if "parsed" in old:  # renamed: unparsable = 1 - parsed
                old = {k: v for k, v in old.items() if k != "parsed"} | {"unparsable": round(1 - old["parsed"], 4)}
            for metric in sorted(set(old) | set(new)):
                a, b = old.get(metric), new.get(metric)
                if a != b:
                    fa = "-" if a is None else f"{a:.4f}"
                    fb = "-" if b is None else f"{b:.4f}"
                    print(f"| {task} | {model} | {metric} | {fa} | {fb} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        compare(before, after)
        return
    result = measure()
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
