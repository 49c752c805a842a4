"""Completion-style prompts (lm-eval's plain text) and length-normalised multiple choice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from taskgrove.errors import ConfigError
from taskgrove.metrics.choice import picks
from taskgrove.tasks.declarative import DeclarativeTask
from taskgrove.tasks.prompts import completion_prompt
from taskgrove.tasks.schema import TaskSpec

MC30 = Path(__file__).parent / "fixtures" / "lmeval" / "mc30.jsonl"


class TextScorer:
    """Scores plain text: each continuation's log-likelihood is minus its length (recorded)."""

    name = "text-scorer"

    def __init__(self, scores: dict[str, float] | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.scores = scores or {}

    async def generate(self, messages: Any, **kwargs: Any) -> Any:
        raise AssertionError("completion-style multiple choice never generates")

    async def loglikelihood_text(self, context: str, continuations: list[str]) -> list[float]:
        self.calls.append((context, continuations))
        return [self.scores.get(c.strip(), -float(len(c))) for c in continuations]


def _task(**extra: Any) -> DeclarativeTask:
    spec = {
        "name": "t/mc",
        "source": f"file:{MC30}",
        "id_field": "id",
        "system": "Answer the questions.\n\n",
        "input": "Question: {{ question }}\nAnswer:",
        "reference": "answer",
        "output": "multiple_choice",
        "choices_field": "choices",
        "parser": "label",
        "metrics": ["accuracy"],
        "fewshot": {"split": "test", "target": "{{ reference }}", "pool_size": 5},
        "prompt_style": "completion",
        **extra,
    }
    return DeclarativeTask(TaskSpec.model_validate(spec))


def test_completion_prompt_is_lm_eval_plain_text() -> None:
    text = completion_prompt("Intro.\n\n", [["Q: 1+1?", "2"], ["Q: 2+2?", "4"]], "Q: 3+3?")
    assert text == "Intro.\n\nQ: 1+1? 2\n\nQ: 2+2? 4\n\nQ: 3+3?"
    assert completion_prompt("Intro.", [], "Q: 3+3?") == "Intro.\n\nQ: 3+3?"
    assert completion_prompt(None, [], "Q: x", target_delimiter="") == "Q: x"


def test_completion_mode_scores_delimited_choices_after_plain_text() -> None:
    task = _task()
    task.configure(prompt_format="few_shot", num_fewshot=2, seed=0, split="test")
    scenario = next(iter(task.get_dataset("test")))
    model = TextScorer({"Paris": -1.0})
    group = asyncio.run(task.run(model, scenario))
    context, continuations = model.calls[0]
    demos = "".join(f"{user} {answer}\n\n" for user, answer in scenario["fewshot"])
    assert context == "Answer the questions.\n\n" + demos + "Question: What is the capital of France?\nAnswer:"
    assert continuations == [" Paris", " Lyon", " Marseille", " Nice"]
    trajectory = group[0]
    assert trajectory.metadata["prediction"] == "Paris" and trajectory.reward == 1.0
    assert trajectory.messages_and_choices[0] == {"role": "user", "content": context}  # stored verbatim


def test_acc_norm_divides_by_characters_as_lm_eval() -> None:
    # "a" at -2.0 is the most likely; per character "abcdef" at -6.0 (-1.0/char) beats it (-2.0/char)
    assert picks([-2.0, -6.0], ["a", "abcdef"]) == {"acc": 0, "acc_norm": 1, "acc_bytes": 1}
    # characters and bytes differ for non-ASCII text: "é" is 1 character, 2 bytes
    assert picks([-1.5, -2.5], ["é", "ab"]) == {"acc": 0, "acc_norm": 1, "acc_bytes": 0}
    with pytest.raises(ValueError):
        picks([-1.0], ["a", "b"])


def test_acc_norm_is_reported_per_sample_and_rescored() -> None:
    task = _task(prompt_style="chat", fewshot=None)
    task.configure(prompt_format="zero_shot", seed=0, split="test")
    scenario = next(iter(task.get_dataset("test")))  # options Paris, Lyon, Marseille, Nice; gold Paris
    row = scenario["choices"]
    # the sum picks Lyon (-1.0); per character Paris (-1.2 / 5 = -0.24) beats Lyon (-1.0 / 4 = -0.25)
    scored = task._judge([], "Lyon", scenario["reference"], {"loglikelihoods": [-1.2, -1.0, -30.0, -30.0]}, row)
    assert scored.metrics["accuracy"] == 0.0 and scored.metrics["acc_norm"] == 1.0
    record = {"scenario": scenario, "outputs": [{"messages": [{"choice": True, "content": "Lyon"}]}]}
    record["outputs"][0]["metadata"] = {"loglikelihoods": [-1.2, -1.0, -30.0, -30.0]}
    (rescored,) = task.rescore(record)
    assert rescored.metrics == scored.metrics  # evaluate recomputes it from the stored log-likelihoods


def test_completion_style_needs_multiple_choice_by_loglikelihood() -> None:
    with pytest.raises(ConfigError, match="prompt_style completion is for multiple-choice"):
        _task(output="generate", choices_field=None, metrics=["exact_match"], parser="text").configure(
            prompt_format="zero_shot"
        )
    with pytest.raises(ConfigError, match="mc_scoring auto"):
        _task().configure(prompt_format="zero_shot", mc_scoring="generate")
    chat = _task(prompt_style="chat")
    chat.configure(prompt_format="zero_shot", prompt_style="completion")  # the run may switch a task's style
    assert chat.prompt_style == "completion"


def test_a_model_without_text_scoring_fails_the_sample_clearly() -> None:
    from scripted import ScriptedModel
    from taskgrove.errors import TaskgroveError

    task = _task(fewshot=None)
    task.configure(prompt_format="zero_shot")
    scenario = next(iter(task.get_dataset("test")))
    with pytest.raises(TaskgroveError, match="cannot score plain text"):
        asyncio.run(task.run(ScriptedModel(lambda m, t: "Paris"), scenario))


def test_metrics_json_names_the_scoring_method(tmp_path: Path) -> None:
    from taskgrove.config import build_config
    from taskgrove.registry import TaskRegistry
    from taskgrove.runner.executor import Executor

    spec_dir = tmp_path / "tree" / "t"
    spec_dir.mkdir(parents=True)
    (spec_dir / "mc.yaml").write_text(
        f"name: t/mc\nsource: file:{MC30}\nid_field: id\ninput: 'Question: {{{{ question }}}}'\n"
        "reference: answer\noutput: multiple_choice\nchoices_field: choices\nparser: label\n"
        "metrics: [accuracy]\nfewshot: null\nprompt_style: completion\n"
    )
    config = build_config(
        {"mode": "run", "tasks": ["t/mc"], "include_path": [str(tmp_path / "tree")], "output_dir": str(tmp_path)}
    )
    executor = Executor(config, None, model=TextScorer())
    executor.run()
    stored = json.loads(executor.store.task("t/mc").metrics_path.read_text())
    assert stored["scoring"] == "loglikelihood" and stored["prompt_style"] == "completion"
    assert {"accuracy", "acc_norm", "acc_bytes"} <= set(stored["metrics"])
    assert isinstance(executor.registry, TaskRegistry)
