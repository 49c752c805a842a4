"""Pattern 3, comparative scoring: several samples per scenario, ranked against each other.

One sample gets an absolute rubric score; several samples are ranked by that score and
rewarded ``1 - (rank - 1) / n`` (ties share the better rank), which suits group-relative RL.

    taskgrove run --include-path examples/comparative.py --tasks examples/headlines --num-samples 4 --temperature 0.8
"""

from collections.abc import Iterator
from typing import Any

from taskgrove import Model, Task, Trajectory, TrajectoryGroup, register_task

BRIEFS = [
    {
        "id": "h1",
        "facts": "Acme Corp quarterly profit rose 12% on strong cloud sales",
        "keywords": ["acme", "profit", "12%", "cloud"],
    },
    {
        "id": "h2",
        "facts": "Central bank holds interest rates at 4.5% citing sticky inflation",
        "keywords": ["rates", "4.5%", "inflation"],
    },
    {"id": "h3", "facts": "Oil prices fall 3% after OPEC raises output targets", "keywords": ["oil", "3%", "opec"]},
]


def rubric(headline: str, keywords: list[str], max_words: int = 12) -> float:
    """Share of key facts covered, minus a penalty for going over ``max_words`` words."""
    text = headline.lower()
    coverage = sum(k in text for k in keywords) / len(keywords)
    overflow = max(0, len(headline.split()) - max_words) / max_words
    return max(0.0, coverage - overflow)


def rank_rewards(scores: list[float]) -> list[float]:
    """Reward by rank among the group: best gets 1, worst gets 1/n; equal scores share a rank."""
    ordered = sorted(scores, reverse=True)
    n = len(scores)
    return [1.0 - ordered.index(score) / n for score in scores]


@register_task("examples/headlines", description="comparative scoring of several headline samples")
class HeadlineTask(Task[dict[str, Any]]):
    def get_dataset(self, split: str) -> Iterator[dict[str, Any]]:
        yield from BRIEFS

    async def run(self, model: Model, scenario: dict[str, Any], num_samples: int = 1) -> TrajectoryGroup:
        messages = [
            {"role": "system", "content": "Write one short news headline (at most 12 words)."},
            {"role": "user", "content": f"Facts: {scenario['facts']}"},
        ]
        trajectories = []
        for index in range(num_samples):
            choice = await model.generate(messages)
            score = rubric(choice.content, scenario["keywords"])
            trajectories.append(
                Trajectory([*messages, choice], metrics={"rubric": score}, metadata={"sample_id": index})
            )
        if num_samples == 1:
            trajectories[0].reward = trajectories[0].metrics["rubric"]
        else:
            for trajectory, reward in zip(
                trajectories, rank_rewards([t.metrics["rubric"] for t in trajectories]), strict=False
            ):
                trajectory.reward = reward
        return TrajectoryGroup(trajectories, metadata={"scoring": "absolute" if num_samples == 1 else "rank"})
