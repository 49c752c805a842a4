"""Pattern 4, immediate reward from code execution: the model writes a program, the sandbox runs it
on each test case, and the reward is the share of tests passed.

    taskgrove run --include-path examples/code_execution.py --tasks examples/stdin_programs
"""

import asyncio
import re
from collections.abc import Iterator
from typing import Any

from taskgrove import Model, Task, Trajectory, TrajectoryGroup, register_task
from taskgrove.sandbox import arun_code

PROBLEMS = [
    {
        "id": "sum",
        "problem": "Read integers separated by spaces from stdin and print their sum.",
        "tests": [{"input": "1 2 3", "output": "6"}, {"input": "10 -4", "output": "6"}, {"input": "7", "output": "7"}],
    },
    {
        "id": "reverse",
        "problem": "Read one line from stdin and print it reversed.",
        "tests": [{"input": "abc", "output": "cba"}, {"input": "level", "output": "level"}],
    },
    {
        "id": "max",
        "problem": "Read integers separated by spaces from stdin and print the largest.",
        "tests": [{"input": "3 9 2", "output": "9"}, {"input": "-5 -2", "output": "-2"}],
    },
]
FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> str:
    """The first fenced code block, or the whole reply when there is none."""
    match = FENCE.search(text)
    return match.group(1) if match else text


@register_task("examples/stdin_programs", description="write a program; reward = share of tests passed in the sandbox")
class StdinProgramTask(Task[dict[str, Any]]):
    """Options: ``timeout_s`` per test run (default 5); ``allow_unconfined`` (default false) runs
    the programs without confinement when bubblewrap is not usable (see docs/sandbox.md)."""

    def get_dataset(self, split: str) -> Iterator[dict[str, Any]]:
        yield from PROBLEMS

    async def run(self, model: Model, scenario: dict[str, Any], num_samples: int = 1) -> TrajectoryGroup:
        messages = [
            {
                "role": "system",
                "content": "Write a Python program in one ```python block. Read from stdin, print to stdout.",
            },
            {"role": "user", "content": scenario["problem"]},
        ]
        trajectories = []
        for _ in range(num_samples):
            choice = await model.generate(messages)
            code = extract_code(choice.content)
            timeout_s = float(self.settings.get("timeout_s", 5.0))
            allow_unconfined = bool(self.settings.get("allow_unconfined", False))
            results = await asyncio.gather(
                *(
                    arun_code(code, stdin=test["input"], timeout_s=timeout_s, allow_unconfined=allow_unconfined)
                    for test in scenario["tests"]
                )
            )
            passed = sum(
                r.status == "ok" and r.stdout.strip() == t["output"]
                for r, t in zip(results, scenario["tests"], strict=False)
            )
            trajectory = Trajectory(
                [*messages, choice],
                reward=passed / len(scenario["tests"]),
                metrics={"passed_tests": passed, "total_tests": len(scenario["tests"])},
                metadata={"statuses": [r.status for r in results], "isolation": results[0].isolation},
            )
            trajectories.append(trajectory)
        return TrajectoryGroup(trajectories)
