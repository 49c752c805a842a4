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
    assert choice.content == "4" and choice.logprobs == [{"token": "token_id:19", "logprob": -0.1, "token_id": 19}]
    with pytest.raises(TypeError, match="messages_and_choices holds a int"):
        art.Trajectory(messages_and_choices=[3])  # type: ignore[list-item]
