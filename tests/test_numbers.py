"""Numbers people can publish: one scale, honest denominators and intervals, provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.errors import ConfigError
from taskgrove.metrics import get_metric
from taskgrove.metrics.bootstrap import resample_indices
from taskgrove.report.collect import load_run
from taskgrove.report.groups import run_groups
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

CORE = Path(__file__).parent / "fixtures" / "core" / "tasks.py"


def _tree(root: Path, *, template: str = "Translate: {{ text }}") -> Path:
    """A user tree with a BLEU task and an accuracy task on 6 rows each."""
    rows = [{"id": f"r{i}", "text": f"sentence number {i} is here", "label": ["pos", "neg"][i % 2]} for i in range(6)]
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = root / "tasks" / "demo"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "translate.yaml").write_text(
        f"name: demo/translate\nsource: file:{data}\nid_field: id\ninput: '{template}'\n"
        "reference: text\nfewshot: null\nmetrics: [bleu, chrf]\n"
    )
    (tasks / "classify.yaml").write_text(
        f"name: demo/classify\nsource: file:{data}\nid_field: id\ninput: 'Is it? {{{{ text }}}}'\n"
        "reference: label\nlabels: [pos, neg]\nparser: label\nfewshot: null\nmetrics: [accuracy, mcc]\n"
    )
    return root / "tasks"


def _oracle() -> ScriptedModel:
    def reply(messages: list[dict[str, Any]], tools: Any) -> str:
        text = messages[-1]["content"]
        number = int(text.split("number ")[1].split()[0])
        return ["pos", "neg"][number % 2] if text.startswith("Is it?") else text.split(": ", 1)[1]

    return ScriptedModel(reply)


def _run(tmp_path: Path, model: Any, registry: Any = None, **values: Any) -> Executor:
    values.setdefault("mode", "run")
    values.setdefault("output_dir", str(tmp_path / "results"))
    values.setdefault("progress", False)
    executor = Executor(build_config(values), registry, model=model, progress=PlainProgress(interval=1e9))
    executor.run()
    return executor


# --- 1. one scale ---------------------------------------------------------------------------------


def test_a_bleu_task_and_an_accuracy_task_give_group_scores_inside_0_1(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    executor = _run(tmp_path, _oracle(), tasks=["demo"], include_path=[str(tree)])
    stored = json.loads(executor.store.task("demo/translate").metrics_path.read_text())
    assert stored["metrics"]["bleu"]["value"] == pytest.approx(1.0)  # sacrebleu's 100, stored / 100
    assert stored["ranges"]["bleu"] == [0.0, 1.0] and "sacrebleu's score / 100" in stored["scale"]
    run = load_run(executor.store.root)
    group = run_groups(run, sorted(run.tasks))["demo"]
    assert 0.0 <= group.mean.value <= 1.0 and 0.0 <= group.weighted.value <= 1.0
    assert group.mean.value == pytest.approx(1.0)  # before: (100 + 1) / 2 = 50.5
    assert "classify=accuracy" in group.note and "translate=bleu" in group.note


def test_older_metrics_files_read_bleu_on_the_unit_scale_and_mcc_stays_out(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    executor = _run(tmp_path, _oracle(), tasks=["demo"], include_path=[str(tree)])
    translate = executor.store.task("demo/translate").metrics_path
    old = json.loads(translate.read_text())
    del old["ranges"]  # as written before results moved to one scale: BLEU on 0-100
    old["metrics"]["bleu"] = {"value": 34.0, "ci_low": 30.0, "ci_high": 38.0, "n": 6}
    translate.write_text(json.dumps(old))
    classify = executor.store.task("demo/classify").metrics_path
    mcc_primary = json.loads(classify.read_text())
    mcc_primary["primary_metric"] = "mcc"
    classify.write_text(json.dumps(mcc_primary))
    run = load_run(executor.store.root)
    assert run.tasks["demo/translate"].score.value == pytest.approx(0.34)
    assert run.tasks["demo/translate"].score.ci_high == pytest.approx(0.38)
    group = run_groups(run, sorted(run.tasks))["demo"]
    assert group.mean.value == pytest.approx(0.34)  # MCC (-1..1) is not averaged with [0, 1] scores
    assert "left out (primary metric not on the [0, 1] scale): demo/classify (mcc)" in group.note


# --- 4. denominators ---------------------------------------------------------------------------------


def _two_of_five(tmp_path: Path, **values: Any) -> dict[str, Any]:
    registry = new_registry()
    registry.add_path(CORE)
    replies = {"say 1": "1", "say 2": "2", "say 3": "x", "say 4": "x"}  # s0 raises (flaky)
    model = ScriptedModel(lambda messages, tools: replies[messages[-1]["content"]])
    executor = _run(
        tmp_path,
        model,
        registry,
        tasks=["core/flaky"],
        max_sample_errors=1,
        task_config={"core/flaky": {"options": {"size": 5}}},
        **values,
    )
    return json.loads(executor.store.task("core/flaky").metrics_path.read_text())


def test_a_failed_sample_counts_as_wrong_unless_excluded(tmp_path: Path) -> None:
    wrong = _two_of_five(tmp_path / "a")
    assert wrong["metrics"]["reward"]["value"] == pytest.approx(2 / 5)  # was 2 / 4 = 0.5
    assert wrong["n"] == 5 and wrong["n_failed"] == 1 and wrong["failed_samples"] == "wrong"
    excluded = _two_of_five(tmp_path / "b", failed_samples="exclude")
    assert excluded["metrics"]["reward"]["value"] == pytest.approx(2 / 4)
    assert excluded["n"] == 4 and excluded["n_failed"] == 1 and excluded["failed_samples"] == "exclude"


def test_the_report_counts_failed_samples_as_its_metrics_file_did(tmp_path: Path) -> None:
    from taskgrove.report.scores import read_sample_scores

    _two_of_five(tmp_path)
    run = load_run(next((tmp_path / "results").iterdir()))
    scores = read_sample_scores(run.tasks["core/flaky"])
    assert scores.is_primary_mean and sorted(scores.values.values()) == [0, 0, 0, 1, 1]


# --- 4. intervals -------------------------------------------------------------------------------------


def _rare_class(n: int = 60) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(3)
    gold = ["a"] * (n - 2) + ["rare", "rare"]
    pred = [g if rng.random() < 0.9 else ("b" if g == "a" else "a") for g in gold]
    gold[5], pred[5] = "b", "b"
    pred[-1] = "rare"
    return pred, gold


def test_macro_f1_intervals_equal_scikit_learn_on_the_same_resamples() -> None:
    from sklearn.metrics import f1_score

    pred, gold = _rare_class()
    items = list(zip(pred, gold, strict=True))
    rows = resample_indices(len(items), 300, seed=4)
    reference = [
        f1_score([gold[i] for i in row], [pred[i] for i in row], average="macro", zero_division=0) for row in rows
    ]
    expected = np.quantile(reference, [0.025, 0.975])
    low, high = get_metric("f1_macro").interval(items, n_resamples=300, seed=4)
    assert (low, high) == pytest.approx(tuple(expected), abs=1e-12)
    # the old way (every label in every resample: one without the rare class scores it 0) is lower
    old_low, _ = get_metric("f1_macro", labels=["a", "b", "rare"]).interval(items, n_resamples=300, seed=4)
    assert old_low < low - 0.1


def test_mcc_of_all_correct_predictions_is_not_zero_to_one() -> None:
    gold = ["a"] * 19 + ["b"]
    items = list(zip(gold, gold, strict=True))
    metric = get_metric("mcc")
    assert metric.compute(items) == 1.0
    assert metric.interval(items) == (1.0, 1.0)  # single-class resamples (MCC undefined) are left out


def test_repeated_samples_are_resampled_by_item() -> None:
    pred, gold = _rare_class(40)
    single = list(zip(pred, gold, strict=True))
    repeated = [item for item in single for _ in range(4)]  # num_samples 4: identical outputs
    for name in ("f1_macro", "chrf"):
        metric = get_metric(name)
        one = metric.interval(single, n_resamples=200, seed=1)
        clustered = metric.interval(repeated, n_resamples=200, seed=1, clusters=[4] * len(single))
        naive = metric.interval(repeated, n_resamples=200, seed=1)
        assert clustered == pytest.approx(one)  # four copies of an item carry no more information
        assert naive[1] - naive[0] < 0.75 * (one[1] - one[0])  # the old way: about half as wide


def test_num_samples_4_run_reports_items_and_a_clustered_interval(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    replies = iter(["pos", "neg", "neg", "pos"] * 6 + ["x"] * 100)
    model = ScriptedModel(lambda messages, tools: next(replies))
    executor = _run(
        tmp_path, model, tasks=["demo/classify"], include_path=[str(tree)], num_samples=4, bootstrap_resamples=300
    )
    stored = json.loads(executor.store.task("demo/classify").metrics_path.read_text())
    assert stored["n"] == 6 and stored["num_samples"] == 4 and stored["bootstrap_resamples"] == 300
    assert stored["metrics"]["mcc"]["n"] == 6 and stored["metrics"]["accuracy"]["n"] == 6


# --- 7. provenance ------------------------------------------------------------------------------------


def test_metrics_json_carries_version_spec_hash_and_scoring(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    executor = _run(tmp_path, _oracle(), tasks=["demo/translate"], include_path=[str(tree)], seed=5)
    stored = json.loads(executor.store.task("demo/translate").metrics_path.read_text())
    task = executor.registry.create("demo/translate")
    assert stored["version"] == 1 and stored["spec_hash"] == task.spec_hash() and len(stored["spec_hash"]) == 16
    assert stored["scoring"] == "generation" and stored["bootstrap_resamples"] == 1000
    assert stored["prompt_format"] == "zero_shot" and stored["seed"] == 5 and stored["prompt_style"] == "chat"
    assert executor.registry.create("demo/translate").spec_hash() == task.spec_hash()  # stable


def test_evaluate_inherits_the_source_settings_and_refuses_a_changed_spec(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    source = _run(tmp_path, _oracle(), tasks=["demo/translate"], include_path=[str(tree)], seed=5, mode="inference")
    again = _run(
        tmp_path,
        None,
        tasks=["demo/translate"],
        include_path=[str(tree)],
        mode="evaluate",
        file_name=str(source.store.root),
    )
    stored = json.loads(again.store.task("demo/translate").metrics_path.read_text())
    assert stored["seed"] == 5 and stored["prompt_format"] == "zero_shot"  # the source run's, not evaluate's 0
    assert stored["source"]["spec_hash"] == stored["spec_hash"]

    _tree(tmp_path, template="Please translate: {{ text }}")  # the prompt changed since
    values = {"mode": "evaluate", "tasks": ["demo/translate"], "include_path": [str(tree)]}
    values.update(file_name=str(source.store.root), output_dir=str(tmp_path / "results"), progress=False)
    with pytest.raises(ConfigError, match=r"task demo/translate changed since .* --rescore-changed") as refused:
        Executor(build_config(values))
    assert "\n" not in str(refused.value)
    forced = _run(tmp_path, None, rescore_changed=True, **{k: v for k, v in values.items() if k != "progress"})
    stored = json.loads(forced.store.task("demo/translate").metrics_path.read_text())
    assert stored["rescored_changed_spec"] is True and stored["source"]["spec_hash"] != stored["spec_hash"]


def test_spec_hash_ignores_description_and_source_but_not_the_prompt(tmp_path: Path) -> None:
    from taskgrove.tasks.schema import TaskSpec

    base = {"name": "x/y", "source": "file:a.jsonl", "input": "{{ q }}", "reference": "a", "metrics": ["accuracy"]}
    spec = TaskSpec.model_validate(base)
    assert TaskSpec.model_validate({**base, "description": "new words", "source": "file:b.jsonl"}).spec_hash() == (
        spec.spec_hash()
    )
    assert TaskSpec.model_validate({**base, "input": "Q: {{ q }}"}).spec_hash() != spec.spec_hash()
    assert TaskSpec.model_validate({**base, "version": 2}).spec_hash() != spec.spec_hash()
    assert not math.isnan(float(int(spec.spec_hash(), 16)))
