"""An RL example task: answer trivia questions correctly in as few words as possible.

The system prompt asks for a single word; a reply that contains the answer earns
min(1, 3 / number of words), any other reply 0. SmolLM2-135M-Instruct, sampled at temperature 1,
answers in sentences anyway ("The capital of France is Paris.", reward 0.5) or wanders off;
RL from this reward teaches it to answer with the bare word within a few dozen CPU steps.
(Rewarding brevity alone is hacked within ten steps: the policy learns to say one wrong word.)

Run it:

    taskgrove rl --include-path examples/rl_short_answer.py --tasks rl/short_answer \
        --steps 30 --scenarios-per-step 4 --samples 6 --learning-rate 5e-4 --max-tokens 24

The measured reward curve is in docs/training.md.
"""

from __future__ import annotations

import asyncio

from taskgrove import Task, Trajectory, TrajectoryGroup, register_task

QUESTIONS = [
    ("What is the capital of France?", "paris"),
    ("What color is the sky on a clear day?", "blue"),
    ("How many legs does a spider have?", "eight"),
    ("What is the largest planet in the solar system?", "jupiter"),
    ("What do bees make?", "honey"),
    ("What is frozen water called?", "ice"),
    ("Which animal is known as the king of the jungle?", "lion"),
    ("What is the opposite of hot?", "cold"),
    ("What is the capital of Italy?", "rome"),
    ("What gas do plants take in from the air?", "carbon dioxide"),
    ("What is the color of grass?", "green"),
    ("How many days are in a week?", "seven"),
    ("What is the capital of Japan?", "tokyo"),
    ("Which fruit is yellow and curved?", "banana"),
    ("What is the closest star to Earth?", "sun"),
    ("What do cows drink?", "water"),
    ("What is the capital of Spain?", "madrid"),
    ("Which season comes after winter?", "spring"),
    ("What is the main language spoken in Brazil?", "portuguese"),
    ("What is the boiling point of water in Celsius?", "100"),
]


def short_answer_reward(text: str, answer: str) -> float:
    """min(1, 3 / number of words) when ``text`` contains ``answer`` (case-insensitive), else 0."""
    words = text.split()
    return min(1.0, 3.0 / len(words)) if words and answer in text.lower() else 0.0


@register_task("rl/short_answer", description="answer trivia correctly in as few words as possible")
class ShortAnswer(Task):
    """Trivia; reward min(1, 3/words) for a reply containing the answer; metrics ``words`` and ``mentions_answer``."""

    def get_dataset(self, split):
        items = QUESTIONS[:15] if split == "train" else QUESTIONS[15:]
        for i, (question, answer) in enumerate(items):
            yield {"id": f"{split}{i}", "question": question, "answer": answer}

    async def run(self, model, scenario, num_samples=1):
        messages = [
            {"role": "system", "content": "Answer with a single word."},
            {"role": "user", "content": scenario["question"]},
        ]
        replies = await asyncio.gather(*(model.generate(messages) for _ in range(num_samples)))
        group = []
        for reply in replies:
            text = reply.content
            group.append(
                Trajectory(
                    [*messages, reply],
                    reward=short_answer_reward(text, scenario["answer"]),
                    metrics={"words": len(text.split()), "mentions_answer": float(scenario["answer"] in text.lower())},
                )
            )
        return TrajectoryGroup(group)
