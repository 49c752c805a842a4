"""Task files written against ART's names run on taskgrove through ``taskgrove.compat.art``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scripted import ScriptedModel
from taskgrove.compat import art
from taskgrove.core import Choice, Model, Task
from taskgrove.core import Trajectory as CoreTrajectory


class MathTask(Task[dict[str, Any]]):  # pattern 1 of the Task interface, as an ART user writes it
    async def run(
        self, model: art.TrainableModel, scenario: dict[str, Any], num_samples: int = 1
    ) -> art.TrajectoryGroup:
        trajectories = []
        for _ in range(num_samples):
            messages = [{"role": "user", "content": scenario["question"]}]
            response = await model.generate(messages)
            traj = art.Trajectory(messages_and_choices=[*messages, response], reward=0, metadata={"id": scenario["id"]})
            traj.reward = 1.0 if response["content"].strip() == scenario["answer"] else 0.0
            trajectories.append(traj)
        return art.TrajectoryGroup(trajectories)


def test_art_names_work_in_a_task() -> None:
    model = ScriptedModel(lambda messages, tools: "4")
    group = asyncio.run(MathTask().run(model, {"id": "a", "question": "2+2?", "answer": "4"}, num_samples=2))
    assert isinstance(group, art.TrajectoryGroup) and group.rewards() == [1.0, 1.0]
    assert isinstance(group[0], CoreTrajectory) and isinstance(group[0].choices()[0], Choice)
    assert art.TrainableModel is Model and isinstance(model, art.TrainableModel)


def test_sdk_choices_become_taskgrove_choices() -> None:
    pytest.importorskip("openai")
    from openai.types.chat.chat_completion import ChatCompletion

    completion = ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "4"},
                    "logprobs": {
                        "content": [{"token": "token_id:19", "logprob": -0.1, "bytes": [52], "top_logprobs": []}]
                    },
                }
            ],
        }
    )
    traj = art.Trajectory(messages_and_choices=[{"role": "user", "content": "2+2?"}, completion.choices[0]], reward=1.0)
    choice = traj.choices()[0]
    assert choice.content == "4" and choice.logprobs == [{"token": "4", "logprob": -0.1, "token_id": 19}]
    with pytest.raises(TypeError, match="messages_and_choices holds a int"):
        art.Trajectory(messages_and_choices=[3])  # type: ignore[list-item]


async def capital_rollout(model: Any, scenario: dict[str, Any]) -> art.Trajectory:
    """An ART-style rollout on taskgrove's names: the SDK client, the SDK's choice in the trajectory."""
    if scenario["country"] == "Atlantis":
        raise LookupError("no such country")
    messages = [{"role": "user", "content": f"Capital of {scenario['country']}?"}]
    client = model.openai_client()
    completion = await client.chat.completions.create(
        model=model.get_inference_name(), messages=messages, logprobs=True
    )
    reply = completion.choices[0].message.content
    return art.Trajectory(
        messages_and_choices=[*messages, completion.choices[0]], reward=float(reply == scenario["city"])
    )


def test_an_art_rollout_runs_as_a_task_through_the_executor(tmp_path: Any) -> None:
    pytest.importorskip("openai")
    import json

    from taskgrove.config import build_config
    from taskgrove.registry import TaskRegistry
    from taskgrove.runner.executor import Executor
    from taskgrove.runner.progress import PlainProgress
    from taskgrove.runs.records import group_from_record

    def reply(messages: Any, tools: Any) -> Choice:
        city = {"France": "Paris", "Peru": "Cusco"}[messages[-1]["content"].split()[-1].rstrip("?")]
        logprobs = [{"token": city, "logprob": -0.5, "token_id": 42}]
        return Choice(city, usage={"prompt_tokens": 6, "completion_tokens": 1}, logprobs=logprobs)

    scenarios = [
        {"id": "fr", "country": "France", "city": "Paris"},
        {"id": "pe", "country": "Peru", "city": "Lima"},
        {"id": "at", "country": "Atlantis", "city": "-"},
    ]
    task = art.rollout_task(capital_rollout, {"test": scenarios}, name="art/capitals")
    assert task.description.startswith("An ART-style rollout") and task.spec_hash() != art.RolloutTask.spec_hash(
        art.rollout_task(test_art_names_work_in_a_task, [])  # type: ignore[arg-type]
    )
    with pytest.raises(KeyError, match="has no 'train' scenarios"):
        task.get_dataset("train")
    registry = TaskRegistry()
    registry.register("art/capitals", lambda: task)
    config = build_config(
        {
            "mode": "run",
            "tasks": ["art/capitals"],
            "output_dir": str(tmp_path),
            "num_samples": 2,
            "max_sample_errors": 0.5,
        }
    )
    executor = Executor(config, registry, model=ScriptedModel(reply), progress=PlainProgress(interval=1e9))
    executor.run()
    task_dir = executor.store.root / "art" / "capitals"
    records = {r["id"]: r for r in map(json.loads, (task_dir / "samples.jsonl").read_text().splitlines())}
    assert {k: r["reward"] for k, r in records.items()} == {"fr": 1.0, "pe": 0.0, "at": None}
    assert records["fr"]["usage"] == {"prompt_tokens": 12, "completion_tokens": 2}  # SDK choices keep their usage
    assert records["at"]["error"] == {"type": "LookupError", "message": "no such country"}
    group = group_from_record(records["fr"])
    assert len(group) == 2 and group.rewards() == [1.0, 1.0]
    assert group[0].choices()[0].logprobs == [{"token": "Paris", "logprob": -0.5, "token_id": 42}]


def test_a_rollout_must_return_a_trajectory() -> None:
    async def wrong(model: Any, scenario: Any) -> str:
        return "hello"

    async def half(model: Any, scenario: Any) -> art.Trajectory:
        if scenario["fail"]:
            raise RuntimeError("boom")
        return art.Trajectory(messages_and_choices=[{"role": "user", "content": "x"}], reward=1.0)

    model = ScriptedModel(lambda messages, tools: "x")
    with pytest.raises(TypeError, match="the rollout returned a str: it must return a Trajectory"):
        asyncio.run(art.rollout_task(wrong, []).run(model, {}, num_samples=1))
    assert art.RolloutModel(model).get_inference_name() == "scripted" and art.RolloutModel(model).calls == []
    with pytest.raises(ValueError, match="no ART checkpoint steps"):
        art.RolloutModel(model).get_inference_name(step=3)
    assert len(asyncio.run(art.rollout_task(half, []).run(model, {"fail": False}, num_samples=3))) == 3


def test_art_style_task_awaits_a_group_of_rollouts() -> None:
    async def rollout(model: Any, scenario: dict[str, Any]) -> art.Trajectory:
        if scenario.get("fail"):
            raise RuntimeError("rollout broke")
        reply = await model.generate([{"role": "user", "content": scenario["q"]}])
        return art.Trajectory(messages_and_choices=[{"role": "user", "content": scenario["q"]}, reply], reward=1.0)

    class ArtStyle(Task[dict[str, Any]]):  # ART's pattern: await TrajectoryGroup(<awaitables>)
        async def run(self, model: Any, scenario: dict[str, Any], num_samples: int = 1) -> art.TrajectoryGroup:
            return await art.TrajectoryGroup(rollout(model, scenario) for _ in range(num_samples))

    model = ScriptedModel(lambda messages, tools: "ok", delay=0.01)
    group = asyncio.run(ArtStyle().run(model, {"q": "hi"}, num_samples=3))
    assert isinstance(group, art.TrajectoryGroup) and group.rewards() == [1.0, 1.0, 1.0] and model.max_active == 3
    failed = asyncio.run(ArtStyle().run(model, {"q": "hi", "fail": True}, num_samples=2))
    assert len(failed) == 0 and [str(e) for e in failed.exceptions] == ["rollout broke", "rollout broke"]
    plain = art.TrajectoryGroup(t for t in [art.Trajectory(reward=0.5)])  # a one-pass generator is read once
    assert plain.rewards() == [0.5] and plain.metadata == {}
