"""Pattern 1, single-turn QA: arithmetic word problems, reward 1 when the final number is right.

taskgrove run --include-path examples/single_turn_qa.py --tasks examples/arithmetic
"""

import re
from collections.abc import Iterator
from typing import Any

from taskgrove import Model, Task, Trajectory, TrajectoryGroup, register_task

PROBLEMS = [
    ("Anna has 3 boxes of 12 pencils and gives away 7 pencils. How many are left?", 29),
    ("A fund grows from 200 to 250. By what percent did it grow?", 25),
    ("A bond pays 40 per year for 3 years plus 1000 at the end. What is the total paid?", 1120),
    ("Revenue was 1,200 and costs were 950. What was the profit?", 250),
    ("A share costs 35. How much do 12 shares cost?", 420),
    ("Interest of 5% on 2,000 for one year is how much?", 100),
    ("Split 96 equally among 8 people. How much does each get?", 12),
    ("A loan of 500 is repaid in 4 equal parts. How big is each part?", 125),
]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> float | None:
    """The last number in ``text`` (commas allowed), or None."""
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


@register_task("examples/arithmetic", description="single-turn arithmetic word problems")
class ArithmeticTask(Task[dict[str, Any]]):
    def get_dataset(self, split: str) -> Iterator[dict[str, Any]]:
        for index, (question, answer) in enumerate(PROBLEMS):
            if (split == "train") == (index % 4 == 0):
                yield {"id": f"p{index}", "question": question, "answer": answer}

    async def run(self, model: Model, scenario: dict[str, Any], num_samples: int = 1) -> TrajectoryGroup:
        messages = [
            {"role": "system", "content": "Solve the problem. End with the final number."},
            {"role": "user", "content": scenario["question"]},
        ]
        trajectories = []
        for _ in range(num_samples):
            choice = await model.generate(messages)
            predicted = last_number(choice.content)
            correct = predicted is not None and abs(predicted - scenario["answer"]) < 1e-6
            trajectories.append(
                Trajectory(
                    [*messages, choice],
                    reward=float(correct),
                    metrics={"correct": correct},
                    metadata={"problem_id": scenario["id"], "predicted": predicted},
                )
            )
        return TrajectoryGroup(trajectories)
