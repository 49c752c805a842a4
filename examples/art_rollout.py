"""An ART rollout, written with openpipe-art's own types, run by taskgrove as a Task.

The rollout is ART code as its documents write it: ``model.openai_client()``,
``model.get_inference_name()``, ``art.Trajectory`` with the SDK's ``completion.choices[0]`` (asked
with ``logprobs=True`` so ART can train on it). ``rollout_task`` makes it a Task: the executor,
the results store, resume, metrics and reports apply, and every model call is counted and cached.

Run it (needs the ``art`` extra: ``pip install 'taskgrove[art]'``):

    taskgrove run --include-path examples/art_rollout.py --tasks examples/art_capitals --max-tokens 16

The stored groups convert back to ``art.TrajectoryGroup`` for ART's trainer with
``taskgrove.compat.art_convert.to_art_groups`` (docs/agents.md).
"""

from __future__ import annotations

from taskgrove import register_task
from taskgrove.compat.art import rollout_task
from taskgrove.compat.art_convert import import_art

art = import_art()  # openpipe-art's `import art`, with a clear error when it is missing and litellm kept offline

CAPITALS = [
    ("France", "paris"),
    ("Italy", "rome"),
    ("Japan", "tokyo"),
    ("Spain", "madrid"),
    ("Germany", "berlin"),
    ("Egypt", "cairo"),
]
SCENARIOS = [{"id": country.lower(), "country": country, "capital": capital} for country, capital in CAPITALS]


async def rollout(model: art.TrainableModel, scenario: dict) -> art.Trajectory:
    """Name a country's capital; reward 1 when the reply names it, metric ``words``."""
    trajectory = art.Trajectory(
        messages_and_choices=[
            {"role": "system", "content": "Answer with the name of the city only."},
            {"role": "user", "content": f"What is the capital of {scenario['country']}?"},
        ],
        reward=0.0,
        metadata={"country": scenario["country"]},
    )
    client = model.openai_client()
    completion = await client.chat.completions.create(
        model=model.get_inference_name(), messages=trajectory.messages(), logprobs=True
    )
    choice = completion.choices[0]
    trajectory.messages_and_choices.append(choice)
    answer = (choice.message.content or "").strip().lower()
    trajectory.reward = 1.0 if scenario["capital"] in answer else 0.0
    trajectory.metrics["words"] = len(answer.split())
    return trajectory


register_task("examples/art_capitals", description="an ART rollout: name the capital (openpipe-art types)")(
    lambda: rollout_task(rollout, {"train": SCENARIOS[:4], "test": SCENARIOS[4:] + SCENARIOS[:2]}, reward_range=(0, 1))
)
