"""Evaluate's direct re-scoring of declarative tasks gives exactly what replaying `run` gives."""

import json

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.core import Choice
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

LABELS_TASK = """\
name: t/labels
source: file:{data}
id_field: id
system: Classify as positive, negative or neutral.
input: "[{{{{ id }}}}] {{{{ text }}}}"
reference: label
fewshot: null
labels: [positive, negative, neutral]
parser: label
metrics: [accuracy, f1_macro]
reward: accuracy
"""
MC_TASK = LABELS_TASK.replace("t/labels", "t/choice").replace("fewshot: null", "fewshot: null\noutput: multiple_choice")
ANSWERS_TASK = """\
name: t/answers
source: file:{data}
id_field: id
input: "[{{{{ id }}}}] {{{{ text }}}}"
reference: label
fewshot: null
metrics: [squad_em, squad_f1]
reward: squad_f1
"""


class ScoringScripted(ScriptedModel):
    async def loglikelihood(self, context, continuations):
        return [-float(len(c)) for c in continuations]  # prefers the shortest label


def replies(messages, tools):
    number = int(messages[-1]["content"][1:].split("]")[0])
    return [
        "positive",
        "It is negative.",
        "neutral?",
        "",
        "no idea",
        Choice("Neutral", usage={"completion_tokens": 1}),
    ][number % 6]


@pytest.fixture
def registry(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": str(i), "text": f"row {i}", "label": ["positive", "negative", "neutral"][i % 3]}) + "\n"
            for i in range(30)
        )
    )
    reg = new_registry()
    for name, text in (("labels", LABELS_TASK), ("choice", MC_TASK), ("answers", ANSWERS_TASK)):
        (tmp_path / f"{name}.yaml").write_text(text.format(data=data))
        reg.add_path(tmp_path / f"{name}.yaml")
    return reg


def execute(registry, tmp_path, fast=True, **values):
    config = build_config({"output_dir": str(tmp_path / "results"), "tasks": ["t"], **values})
    executor = Executor(
        config,
        registry,
        model=ScoringScripted(
            replies,
        ),
        progress=PlainProgress(interval=1e9),
    )
    executor.fast_rescoring = fast
    executor.run()
    return executor.store.root


def samples(root, task):
    return [json.loads(line) for line in (root / "t" / task / "samples.jsonl").read_text().splitlines()]


NORMALIZED = ("acc_norm", "acc_bytes")


def test_direct_rescoring_equals_replay(registry, tmp_path):
    source = execute(registry, tmp_path, mode="inference", num_samples=2, temperature=0.5)
    fast = execute(registry, tmp_path, mode="evaluate", file_name=str(source))
    slow = execute(registry, tmp_path, fast=False, mode="evaluate", file_name=str(source))
    for task in ("labels", "choice", "answers"):
        fast_records, slow_records = samples(fast, task), samples(slow, task)
        assert len(fast_records) == 30
        if task == "choice":  # the replay model cannot score, so replaying drops the stored log-likelihoods
            for record in fast_records:
                for output in record["outputs"]:
                    assert len(output["metadata"].pop("loglikelihoods")) == 3
                    for key in NORMALIZED:  # computed from the log-likelihoods
                        output["metrics"].pop(key)
                for key in NORMALIZED:
                    record["metrics"].pop(key)
        assert fast_records == slow_records
        fast_metrics = json.loads((fast / "t" / task / "metrics.json").read_text())["metrics"]
        for key in NORMALIZED:
            fast_metrics.pop(key, None)
        assert fast_metrics == json.loads((slow / "t" / task / "metrics.json").read_text())["metrics"]
    choice = samples(fast, "choice")[0]
    assert choice["outputs"][0]["metadata"]["loglikelihoods"] == [-8.0, -8.0, -7.0]
    assert choice["outputs"][0]["messages"][0]["content"] == "neutral"  # the shortest label scored best
    labels = {r["id"]: r for r in samples(fast, "labels")}
    assert labels["0"]["reward"] == 1.0 and labels["1"]["reward"] == 1.0 and labels["3"]["reward"] == 0.0


def test_evaluate_of_edited_outputs_uses_the_new_text(registry, tmp_path):
    source = execute(registry, tmp_path, mode="inference")
    path = source / "t" / "labels" / "samples.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record["outputs"][0]["messages"][0]["content"] = record["reference"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    scored = execute(registry, tmp_path, mode="evaluate", file_name=str(source), tasks=["t/labels"])
    metrics = json.loads((scored / "t" / "labels" / "metrics.json").read_text())["metrics"]
    assert metrics["accuracy"]["value"] == 1.0 and metrics["f1_macro"]["value"] == 1.0
