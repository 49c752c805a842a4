"""Multiple choice by log-likelihood: taskgrove's per-item choices against lm-evaluation-harness's.

Both score the same 30 questions (``tests/fixtures/lmeval/mc30.jsonl``, 4 options each) with
the same model (the embedded SmolLM2-135M-Instruct, converted to a transformers dir), with the
same prompt, in both styles:

* ``completion``: plain text ``Question: ...\\nAnswer:``, continuations ``" " + choice``
  (lm-eval's default; taskgrove ``prompt_style: completion``);
* ``chat``: the prompt through the chat template (lm-eval ``apply_chat_template=True``, where the
  target delimiter becomes ""; taskgrove ``prompt_style: chat``, the default).

For every item it compares the choice picked by ``acc`` (highest log-likelihood) and by
``acc_norm`` (log-likelihood / characters of the choice), and prints the agreement counts and
the largest log-likelihood difference. lm-eval runs on the copy installed in this environment
(``pip install lm-eval==0.4.13``; a separate venv with ``--system-site-packages`` keeps torch).

    python bench/lmeval_agreement.py [--limit 30] [--json out.json]

``tests/test_lmeval_agreement.py`` runs the same comparison (skipped where lm-eval is absent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lmeval" / "mc30.jsonl"
TEMPLATE = "Question: {{ question }}\nAnswer:"
LM_EVAL_TASK = """task: taskgrove_mc30
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
target_delimiter: " "
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def model_dir() -> Path:
    """The embedded model converted to a transformers directory (converted once, cached)."""
    from taskgrove.models.loading import default_gguf, ensure_converted
    from taskgrove.models.paths import cache_root

    return Path(ensure_converted(default_gguf(), cache_root(None)))


def lmeval_lls(directory: Path, *, chat: bool, limit: int) -> dict[str, list[float]]:
    """lm-eval's logged log-likelihoods per item id (0-shot, batch size 1, float32, CPU)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "taskgrove_mc30.yaml").write_text(LM_EVAL_TASK.format(data=DATA), encoding="utf-8")
        results: Any = simple_evaluate(
            model="hf",
            model_args=f"pretrained={directory},dtype=float32",
            tasks=["taskgrove_mc30"],
            task_manager=TaskManager(include_path=tmp),
            num_fewshot=0,
            batch_size=1,
            device="cpu",
            limit=limit,
            log_samples=True,
            apply_chat_template=chat,
        )
    out = {}
    for sample in results["samples"]["taskgrove_mc30"]:
        out[sample["doc"]["id"]] = [float(resp[0]) for resp in sample["filtered_resps"]]
    return out


def taskgrove_lls(style: str, *, limit: int) -> dict[str, list[float]]:
    """taskgrove's stored log-likelihoods per item id, from its declarative multiple-choice task."""
    from taskgrove.models.local import LocalModel
    from taskgrove.tasks.declarative import DeclarativeTask
    from taskgrove.tasks.schema import TaskSpec

    spec = TaskSpec.model_validate(
        {
            "name": "bench/mc30",
            "source": f"file:{DATA}",
            "id_field": "id",
            "input": TEMPLATE,
            "reference": "answer",
            "output": "multiple_choice",
            "choices_field": "choices",
            "parser": "label",
            "metrics": ["accuracy"],
            "fewshot": None,
            "prompt_style": style,
        }
    )
    task = DeclarativeTask(spec)
    task.configure(prompt_format="zero_shot", seed=0, split="test")
    model = LocalModel.load("default", batch_size=1)

    async def score() -> dict[str, list[float]]:
        out = {}
        try:
            for index, scenario in enumerate(task.get_dataset("test")):
                if index >= limit:
                    break
                group = await task.run(model, scenario)
                out[scenario["id"]] = group[0].metadata["loglikelihoods"]
        finally:
            await model.aclose()
        return out

    return asyncio.run(score())


def compare(ours: dict[str, list[float]], theirs: dict[str, list[float]]) -> dict[str, Any]:
    """Agreement of the ``acc`` and ``acc_norm`` picks item by item, and the largest difference."""
    from taskgrove.metrics.choice import picks

    choices = {json.loads(line)["id"]: json.loads(line)["choices"] for line in DATA.read_text().splitlines()}
    ids = sorted(set(ours) & set(theirs))
    agree = {"acc": 0, "acc_norm": 0}
    worst = 0.0
    for item in ids:
        a, b = picks(ours[item], choices[item]), picks(theirs[item], choices[item])
        for key in agree:
            agree[key] += a[key] == b[key]
        worst = max(worst, *(abs(x - y) for x, y in zip(ours[item], theirs[item], strict=True)))
    return {"items": len(ids), "agree": agree, "max_abs_ll_diff": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as taskgrove's loader: no spinning threads
    import torch

    torch.set_num_threads(int(os.environ.get("TASKGROVE_TORCH_THREADS", "1")))
    directory = model_dir()
    report = {}
    for style in ("completion", "chat"):
        theirs = lmeval_lls(directory, chat=style == "chat", limit=args.limit)
        ours = taskgrove_lls(style, limit=args.limit)
        report[style] = compare(ours, theirs)
        result = report[style]
        print(
            f"{style:10s} items {result['items']}: acc agrees on {result['agree']['acc']}, "
            f"acc_norm on {result['agree']['acc_norm']}; max |ll difference| {result['max_abs_ll_diff']:.2e}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
