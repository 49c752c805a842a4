"""The declarative spec: validation, YAML files, compiling into a Task, few-shot, scoring."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from scripted import ScriptedModel
from taskgrove.core import Choice
from taskgrove.errors import ConfigError
from taskgrove.runs.records import build_record
from taskgrove.tasks.builtin import new_registry
from taskgrove.tasks.declarative import DeclarativeTask
from taskgrove.tasks.rows import DataError, as_text, get_path
from taskgrove.tasks.schema import NamedSpec, ReferenceSpec, SourceSpec, TaskSpec
from taskgrove.tasks.spec import compile_spec, load_spec_file, load_task_files, parse_spec
from taskgrove.tasks.transforms import bio_to_entities, get_transform

ROWS = {
    "train": [{"text": f"train sentence {i}", "label": i % 2} for i in range(6)],
    "test": [{"text": f"test sentence {i}", "label": (i + 1) % 2} for i in range(4)],
}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    for split, rows in ROWS.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def spec_data(data: Path, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "demo/sentiment",
        "description": "A demo task.\nMore words.",
        "source": f"file:{data}/{{split}}.jsonl",
        "system": "You label sentences.",
        "input": "Sentence: {{ text }}",
        "reference": {"field": "label", "map": {0: "neg", 1: "pos"}},
        "labels": ["neg", "pos"],
        "aliases": {"negative": "neg", "positive": "pos"},
        "parser": "label",
        "metrics": ["accuracy", "f1_macro"],
        "reward": "accuracy",
        "primary_metric": "f1_macro",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def configured(spec: dict[str, Any], **settings: Any) -> DeclarativeTask:
    task = compile_spec(parse_spec(spec))
    task.configure(**{"prompt_format": "zero_shot", "num_fewshot": 0, "seed": 0, "split": "test", **settings})
    return task


# --- validation -----------------------------------------------------------------------------


def test_shorthands_expand(data: Path) -> None:
    metrics = ["accuracy", {"name": "f1_binary", "pos_label": "pos"}]
    spec = parse_spec(
        spec_data(
            data,
            reference="label",
            metrics=metrics,
            primary_metric="f1_binary",
            parser={"name": "label", "mode": "exact"},
        )
    )
    assert spec.source == SourceSpec(uri=f"file:{data}/{{split}}.jsonl")
    assert spec.reference == ReferenceSpec(field="label")
    assert spec.metrics[1] == NamedSpec(name="f1_binary", options={"pos_label": "pos"})
    assert spec.parser == NamedSpec(name="label", options={"mode": "exact"})


def test_spec_is_constructible_from_python(data: Path) -> None:
    spec = TaskSpec(
        name="demo/python",
        source=SourceSpec(uri=f"file:{data}/{{split}}.jsonl"),
        input="{{ text }}",
        reference=ReferenceSpec(field="label", map={"0": "neg", "1": "pos"}),
        labels=["neg", "pos"],
        parser=NamedSpec(name="label"),
        metrics=[NamedSpec(name="accuracy")],
    )
    task = compile_spec(spec)
    task.configure(prompt_format="zero_shot", num_fewshot=0, seed=0, split="test")
    assert [s["reference"] for s in task.get_dataset("test")] == ["pos", "neg", "pos", "neg"]
    assert task.primary_metric == "accuracy"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"messages_field": "input"}, "exactly one of 'input'"),
        ({"input": ...}, "exactly one of 'input'"),
        ({"reward": "bleu"}, "reward 'bleu' is not one of the task's metrics"),
        ({"primary_metric": "f1_weighted"}, "primary_metric 'f1_weighted'"),
        ({"metrics": []}, "at least one metric"),
        ({"metrics": ["accuracy", "accuracy"]}, "names a metric twice"),
        ({"output": "multiple_choice", "labels": ...}, "needs 'labels'"),
        ({"choices": ["a"]}, "one continuation per label"),
        ({"labels": ["neg", "neg"]}, "repeats a label"),
        ({"expand": {"id": ["a"]}}, "expand variable may not be called"),
        ({"reference": {"field": "label", "template": "{{ label }}"}}, "exactly one of 'field' or 'template'"),
        ({"promt": "typo"}, "unknown key 'promt'"),
    ],
)
def test_invalid_specs_explain_themselves(data: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="Invalid task spec") as caught:
        parse_spec(spec_data(data, **change), origin="demo.yaml")
    assert message in str(caught.value) and "demo.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": ["accuracy", "f1_everything"], "primary_metric": ...}, "metric 'f1_everything'"),
        ({"metrics": [{"name": "accuracy", "average": "macro"}], "primary_metric": ...}, "metric 'accuracy'"),
        ({"parser": "telepathy"}, "parser 'telepathy'"),
        ({"parser": "label", "labels": ..., "aliases": {}}, "needs the task's 'labels'"),
        ({"prediction_transform": {"name": "bio_entities"}}, "reads row fields"),
        ({"input": "{{ text "}, "template 'demo/sentiment: input'"),
    ],
)
def test_bad_names_fail_when_the_task_is_built(data: Path, change: dict[str, Any], message: str) -> None:
    spec = parse_spec(spec_data(data, **change))
    with pytest.raises(ConfigError, match=message):
        compile_spec(spec)


# --- files ----------------------------------------------------------------------------------


def test_task_files_register_lazily_and_build_on_create(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    (folder / "demo").mkdir(parents=True)
    import yaml

    (folder / "demo" / "a.yaml").write_text(yaml.safe_dump(spec_data(data, name="demo/a")))
    (folder / "demo" / "broken.yml").write_text(yaml.safe_dump(spec_data(data, name="demo/broken", reward="bleu")))
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x.yaml").write_text("not: a task")
    registry = new_registry()
    assert registry.add_path(folder) == ["demo/a", "demo/broken"]
    assert registry.entry("demo/a").description == "A demo task."
    assert isinstance(registry.create("demo/a"), DeclarativeTask)
    with pytest.raises(ConfigError, match="reward 'bleu'"):
        registry.create("demo/broken")
    assert load_spec_file(folder / "demo" / "a.yaml").name == "demo/a"


def test_task_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: [unclosed\n")
    with pytest.raises(ConfigError, match=r"Malformed YAML in .*bad.yaml at line"):
        list(load_task_files(bad))
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text("source: hf:x\n")
    with pytest.raises(ConfigError, match="needs a 'name'"):
        list(load_task_files(nameless))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="holds one mapping"):
        list(load_task_files(listing))
    with pytest.raises(ConfigError, match="No such task file"):
        list(load_task_files(tmp_path / "missing"))


def test_a_task_file_may_name_a_python_task_class(tmp_path: Path) -> None:
    module = tmp_path / "mytasks.py"
    module.write_text(
        "from taskgrove.core import Task\n"
        "class Echo(Task):\n"
        "    def get_dataset(self, split):\n"
        "        yield {'id': '1'}\n"
        "class NotATask:\n"
        "    pass\n"
    )
    (tmp_path / "echo.yaml").write_text(f"name: py/echo\ndescription: Echo task.\nclass: {module}:Echo\n")
    (tmp_path / "nope.yaml").write_text(f"name: py/nope\nclass: {module}:NotATask\n")
    entries = {e.name: e for e in load_task_files(tmp_path)}
    task = entries["py/echo"].factory()
    assert task.name == "py/echo" and list(task.get_dataset("test")) == [{"id": "1"}]
    with pytest.raises(ConfigError, match="not a taskgrove Task subclass"):
        entries["py/nope"].factory()
    (tmp_path / "extra.yaml").write_text(f"name: py/extra\nclass: {module}:Echo\nlabels: [a]\n")
    with pytest.raises(ConfigError, match="takes only name, description and class"):
        list(load_task_files(tmp_path / "extra.yaml"))


# --- data -----------------------------------------------------------------------------------


def test_scenarios_are_json_and_rebuild_the_same_messages(data: Path) -> None:
    task = configured(spec_data(data), prompt_format="few_shot", num_fewshot=2, seed=3)
    scenarios = list(task.get_dataset("test"))
    assert [s["id"] for s in scenarios] == ["0", "1", "2", "3"]
    again = [json.loads(json.dumps(s)) for s in scenarios]
    assert [task.messages(s) for s in again] == [task.messages(s) for s in scenarios]
    messages = task.messages(scenarios[0])
    assert messages[0] == {"role": "system", "content": "You label sentences."}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"] == "Sentence: test sentence 0"
    assert {m["content"] for m in messages[2:5:2]} <= {"neg", "pos"}


def test_fewshot_is_seeded_distinct_and_from_the_train_split(data: Path) -> None:
    def shots(seed: int) -> list[list[list[str]]]:
        task = configured(spec_data(data), prompt_format="few_shot", num_fewshot=3, seed=seed)
        return [s["fewshot"] for s in task.get_dataset("test")]

    assert shots(1) == shots(1)
    assert shots(1) != shots(2)
    for examples in shots(5):
        users = [u for u, _ in examples]
        assert len(set(users)) == 3 and all(u.startswith("Sentence: train sentence") for u in users)


def test_fewshot_from_the_same_split_never_shows_the_item(data: Path) -> None:
    task = configured(spec_data(data, fewshot={"split": "test"}), prompt_format="few_shot", num_fewshot=3, seed=0)
    for scenario in task.get_dataset("test"):
        assert scenario["input"] not in [u for u, _ in scenario["fewshot"]]
    task = configured(spec_data(data, fewshot={"split": "test"}), prompt_format="few_shot", num_fewshot=4, seed=0)
    with pytest.raises(ConfigError, match="4 few-shot examples requested but .* offers 3"):
        list(task.get_dataset("test"))


def test_zero_shot_scenarios_carry_no_examples(data: Path) -> None:
    task = configured(spec_data(data), num_fewshot=5)
    assert all("fewshot" not in s for s in task.get_dataset("test"))


def test_split_mapping_ids_and_expand(data: Path) -> None:
    task = configured(
        spec_data(
            data,
            splits={"test": "train"},
            id_field="text",
            expand={"aspect": ["tone", "topic"]},
            input="{{ aspect }}: {{ text }}",
        )
    )
    scenarios = list(task.get_dataset("test"))
    assert len(scenarios) == 12
    assert scenarios[1] == {
        "id": "train sentence 0/topic",
        "aspect": "topic",
        "input": "topic: train sentence 0",
        "reference": "neg",
    }


def test_source_override_option_and_unknown_options(data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "rows.jsonl").write_text(json.dumps({"text": "x", "label": 1}) + "\n")
    task = configured(spec_data(data), source=f"file:{other}/rows.jsonl")
    assert [s["input"] for s in task.get_dataset("test")] == ["Sentence: x"]
    with pytest.raises(ConfigError, match="give both"):
        configured(spec_data(data), source_options={"split_field": "part"})
    with pytest.raises(ConfigError, match="unknown option\\(s\\) sauce"):
        configured(spec_data(data), sauce="file:x.jsonl")
    with pytest.raises(ConfigError, match="no few-shot examples"):
        configured(spec_data(data, fewshot=None), prompt_format="few_shot", num_fewshot=1)


def test_reference_outside_the_map_names_the_row(data: Path) -> None:
    task = configured(spec_data(data, reference={"field": "label", "map": {0: "neg"}}))
    with pytest.raises(DataError, match=r"row 0: reference: value 1 is not in the reference map"):
        list(task.get_dataset("test"))
    task = configured(spec_data(data, reference="missing_field"))
    with pytest.raises(DataError, match="no field 'missing_field'"):
        list(task.get_dataset("test"))


def test_get_path_and_as_text() -> None:
    row = {"answers": {"text": ["a", "b"]}, "n": 3}
    assert get_path(row, "answers.text.1") == "b"
    assert get_path(row, "answers.text.-1") == "b"
    with pytest.raises(DataError, match="answers.text.5"):
        get_path(row, "answers.text.5")
    assert as_text([("Bank", "ORG"), ("Ohio", "LOC")]) == "Bank - ORG\nOhio - LOC"
    assert as_text([]) == "None" and as_text(["x", "y"]) == "x\ny" and as_text(3) == "3"


# --- running and scoring --------------------------------------------------------------------


def test_run_parses_scores_and_rewards(data: Path) -> None:
    task = configured(spec_data(data))
    scenario = next(iter(task.get_dataset("test")))
    group = asyncio.run(task.run(ScriptedModel(lambda m, t: "I think positive."), scenario))
    (trajectory,) = group
    assert trajectory.metadata == {"prediction": "pos"}
    assert trajectory.metrics == {"accuracy": 1.0, "unparsable": 0.0}
    assert trajectory.reward == 1.0
    assert trajectory.messages_and_choices[-1]["content"] == "I think positive."
    group = asyncio.run(task.run(ScriptedModel(lambda m, t: "no idea"), scenario, num_samples=3))
    assert len(group) == 3 and group.rewards() == [0.0, 0.0, 0.0]
    assert all(t.metrics["unparsable"] == 1.0 and t.metadata["prediction"] is None for t in group)


def test_failed_samples_stay_in_the_group_as_exceptions(data: Path) -> None:
    task = configured(spec_data(data))
    scenario = next(iter(task.get_dataset("test")))
    replies = iter(["pos", RuntimeError("boom")])
    group = asyncio.run(task.run(ScriptedModel(lambda m, t: next(replies)), scenario, num_samples=2))
    assert len(group) == 1 and [type(e) for e in group.exceptions] == [RuntimeError]


def test_reward_from_a_corpus_metric_is_its_value_on_the_sample(data: Path) -> None:
    task = configured(spec_data(data, metrics=["f1_macro", "accuracy"], reward="f1_macro", primary_metric=...))
    scenario = next(iter(task.get_dataset("test")))
    (trajectory,) = asyncio.run(task.run(ScriptedModel(lambda m, t: "pos"), scenario))
    assert trajectory.reward == 1.0 and "f1_macro" not in trajectory.metrics
    assert task.primary_metric == "f1_macro"


def test_training_messages_end_with_the_gold_answer(data: Path) -> None:
    task = configured(
        spec_data(data, fewshot={"target": "Label: {{ reference }}"}), prompt_format="few_shot", num_fewshot=1
    )
    scenario = next(iter(task.get_dataset("test")))
    messages = task.training_messages(scenario)
    assert messages[:-1] == task.messages(scenario)
    assert messages[-1] == {"role": "assistant", "content": "Label: pos"}
    assert messages[2]["content"].startswith("Label: ")


def _records(task: DeclarativeTask, replies: list[str]) -> list[dict[str, Any]]:
    records = []
    for index, (scenario, reply) in enumerate(zip(task.get_dataset("test"), replies, strict=False)):
        group = asyncio.run(task.run(ScriptedModel(lambda m, t, r=reply: r), scenario))
        records.append(
            json.loads(json.dumps(build_record(task, scenario, scenario["id"], index, group, started=0.0, seconds=0.0)))
        )
    return records


def test_aggregate_computes_corpus_metrics_with_intervals(data: Path) -> None:
    task = configured(spec_data(data))
    # gold: pos neg pos neg ; predictions: pos pos pos (unparsed)
    metrics = task.aggregate(_records(task, ["pos", "pos", "positive!", "hmm"]))
    assert metrics["accuracy"]["value"] == pytest.approx(0.5)
    assert metrics["reward"]["value"] == pytest.approx(0.5)
    assert metrics["unparsable"]["value"] == pytest.approx(0.25)
    from sklearn.metrics import f1_score

    expected = f1_score(
        ["pos", "neg", "pos", "neg"],
        ["pos", "pos", "pos", "X"],
        labels=["neg", "pos"],
        average="macro",
        zero_division=0,
    )
    assert metrics["f1_macro"]["value"] == pytest.approx(expected)
    assert metrics["f1_macro"]["n"] == 4
    low, high = metrics["f1_macro"]["ci_low"], metrics["f1_macro"]["ci_high"]
    assert low <= metrics["f1_macro"]["value"] <= high and low < high
    assert task.aggregate([]) == {}


class Scorer:
    """Scores continuations; remembers what it was asked."""

    name = "scorer"

    def __init__(self, best: str) -> None:
        self.best = best
        self.calls: list[tuple[list[dict[str, Any]], list[str]]] = []

    async def loglikelihood(self, context: list[dict[str, Any]], continuations: list[str]) -> list[float]:
        self.calls.append((context, continuations))
        return [-1.0 if c == self.best else -3.0 for c in continuations]

    async def generate(self, messages: list[dict[str, Any]], **kw: Any) -> Choice:
        raise AssertionError("multiple choice by log-likelihood never generates")


def test_multiple_choice_scores_the_choices_and_maps_them_to_labels(data: Path) -> None:
    task = configured(spec_data(data, output="multiple_choice", choices=["No", "Yes"]))
    scenario = next(iter(task.get_dataset("test")))
    model = Scorer("Yes")
    (trajectory,) = asyncio.run(task.run(model, scenario))
    assert model.calls == [(task.messages(scenario), ["No", "Yes"])]
    assert trajectory.metadata == {"prediction": "pos", "loglikelihoods": [-3.0, -1.0]}
    assert trajectory.messages_and_choices[-1]["content"] == "Yes"
    assert trajectory.reward == 1.0
    # a model that cannot score generates, and the reply's exact choice text maps to its label
    (generated,) = asyncio.run(task.run(ScriptedModel(lambda m, t: "Yes"), scenario))
    assert generated.metadata == {"prediction": "pos"}
    # mc_scoring: generate makes even a scoring model generate
    task.configure(mc_scoring="generate")

    class ScorerThatGenerates(Scorer):
        async def generate(self, messages: list[dict[str, Any]], **kw: Any) -> Choice:
            return Choice("No")

    (forced,) = asyncio.run(task.run(ScorerThatGenerates("Yes"), scenario))
    assert forced.metadata == {"prediction": "neg"}
    with pytest.raises(ConfigError, match="mc_scoring must be one of"):
        task.configure(mc_scoring="sometimes")


# --- transforms -----------------------------------------------------------------------------


def test_bio_to_entities_handles_both_tag_styles() -> None:
    tokens = ["Silicon", "Valley", "Bank", "hired", "Ann", "Lee", "in", "Ohio"]
    assert bio_to_entities(tokens, ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER", "I-PER", "O", "B-LOC"]) == [
        ("Silicon Valley Bank", "ORG"),
        ("Ann Lee", "PER"),
        ("Ohio", "LOC"),
    ]
    assert bio_to_entities(tokens[:3], ["ORG_B", "ORG_I", "PER_I"]) == [("Silicon Valley", "ORG"), ("Bank", "PER")]
    assert bio_to_entities(["a", "b"], ["B-X", "B-X"]) == [("a", "X"), ("b", "X")]
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        bio_to_entities(["a", "b"], ["O"])
    with pytest.raises(ValueError, match="not a BIO tag"):
        bio_to_entities(["a"], ["ORGANIZATION"])


def test_pair_transforms() -> None:
    assert get_transform("grouped_pairs")("{'us-gaap:Revenue': ['12.5', '3'], 'other': '7'}", {}) == [
        ("12.5", "us-gaap:Revenue"),
        ("3", "us-gaap:Revenue"),
        ("7", "other"),
    ]
    assert get_transform("mapping_pairs")({"12.5": "us-gaap:Revenue"}, {}) == [("12.5", "us-gaap:Revenue")]
    assert get_transform("pairs", text="value", type="label")([{"value": "FAA", "label": "Neutral"}], {}) == [
        ("FAA", "Neutral")
    ]
    delimited = get_transform("delimited_pairs")
    assert delimited("[Bank - ORGANIZATION, Santa Clara - LOCATION]", {}) == [
        ("Bank", "ORGANIZATION"),
        ("Santa Clara", "LOCATION"),
    ]
    assert delimited("No entities found.", {}) == []
    with pytest.raises(ValueError, match="is not 'text - type'"):
        delimited("[Bank]", {})
    assert get_transform("number")("14.1%", {}) == pytest.approx(14.1)
    assert get_transform("number")(40, {}) == 40.0
    with pytest.raises(ValueError, match="no number"):
        get_transform("number")("n/a", {})
    with pytest.raises(ValueError, match="unknown transform"):
        get_transform("nope")
    assert not math.isnan(get_transform("number")("1,234.5", {}))
