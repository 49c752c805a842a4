"""The Python API: taskgrove.run / evaluate / supported with names, task files and Task objects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.scripted import ScriptedModel, echo_model

import taskgrove
from taskgrove import MultiTaskError, Task, Trajectory, TrajectoryGroup

FIXTURES = Path(__file__).parent / "fixtures"


class Echo(Task):
    """A Task object defined in a notebook: reward 1 when the reply repeats the word."""

    def get_dataset(self, split: str):
        for word in ("alpha", "beta", "gamma", "delta"):
            yield {"id": word, "word": word}

    async def run(self, model, scenario, num_samples=1):
        messages = [{"role": "user", "content": scenario["word"]}]
        choice = await model.generate(messages)
        return TrajectoryGroup([Trajectory([*messages, choice], reward=float(choice.content == scenario["word"]))])


def test_run_a_task_object_with_a_model_object(tmp_path: Path) -> None:
    model = ScriptedModel(lambda messages, tools: "alpha", name="always-alpha")
    result = taskgrove.run([Echo("nb/echo")], model=model, output_dir=str(tmp_path), run_id="api")
    assert result.scores() == {"nb/echo": 0.25}
    assert result.metrics["nb/echo"]["reward"]["n"] == 4
    assert result.run_dir == tmp_path / "api"
    stored = json.loads((tmp_path / "api" / "run.json").read_text())
    assert stored["status"] == "completed" and stored["model"] == "always-alpha"


def test_run_by_name_with_include_path_then_evaluate_again(tmp_path: Path) -> None:
    first = taskgrove.run(
        ["core/count"],
        model=ScriptedModel(lambda m, t: m[-1]["content"].split()[-1]),
        include_path=[str(FIXTURES / "core" / "tasks.py")],
        output_dir=str(tmp_path),
        run_id="first",
        limit=5,
    )
    assert first.scores() == {"core/count": 1.0}
    again = taskgrove.evaluate(
        ["core/count"],
        tmp_path / "first",
        include_path=[str(FIXTURES / "core" / "tasks.py")],
        output_dir=str(tmp_path),
        run_id="again",
    )
    assert again.scores() == {"core/count": 1.0}


def test_failures_raise_one_multitask_error_after_all_tasks_ran(tmp_path: Path) -> None:
    with pytest.raises(MultiTaskError) as caught:
        taskgrove.run(
            ["core/count", "core/always_fails"],
            model=echo_model(),
            include_path=[str(FIXTURES / "core" / "tasks.py")],
            output_dir=str(tmp_path),
            run_id="x",
            limit=3,
        )
    assert list(caught.value.errors) == ["core/always_fails"]
    assert (tmp_path / "x" / "core" / "count" / "metrics.json").is_file()


def test_supported_lists_the_tree_and_a_group() -> None:
    everything = taskgrove.supported()
    assert "finance/fomc" in everything and everything == sorted(everything)
    assert taskgrove.supported("treemark/similar") == [
        "treemark/similar/mnli",
        "treemark/similar/qqp",
        "treemark/similar/sst2",
    ]


def test_bad_parameters_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(taskgrove.ConfigError, match="max_tokens"):
        taskgrove.run([Echo("nb/echo")], model=echo_model(), output_dir=str(tmp_path), max_tokens=0)
    with pytest.raises(taskgrove.ConfigError, match="no task is defined"):
        empty = tmp_path / "empty.py"
        empty.write_text("x = 1\n")
        taskgrove.run(empty, model=echo_model(), output_dir=str(tmp_path))


def test_import_taskgrove_stays_light() -> None:
    probe = "import sys, taskgrove; print(sorted(m for m in ('pydantic', 'torch', 'transformers', 'taskgrove.runner.executor') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_a_yaml_task_file(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"id": str(i), "text": w, "label": w}) + "\n" for i, w in enumerate(["yes", "no", "yes"]))
    )
    spec = tmp_path / "yesno.yaml"
    spec.write_text(
        "name: demo/yesno\n"
        f"source: file:{data}\n"
        "input: 'Answer yes or no: {{ text }}'\n"
        "reference: label\n"
        "fewshot: null\n"
        "labels: ['yes', 'no']\n"
        "parser: label\n"
        "metrics: [accuracy]\n"
        "reward: accuracy\n"
    )
    result = taskgrove.run(spec, model=ScriptedModel(lambda m, t: "yes"), output_dir=str(tmp_path), run_id="y")
    assert result.scores()["demo/yesno"] == pytest.approx(2 / 3)
