"""RL: the GRPO objective (clipped ratio, KL to the base with adapters disabled) and resuming after
Ctrl-C to the weights of an uninterrupted run (tiny model steps on the embedded SmolLM2)."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest

from taskgrove.errors import ConfigError
from taskgrove.tasks.builtin import new_registry

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


def test_clipping_bounds_the_ratio_and_kl_is_the_k3_estimator() -> None:
    from taskgrove.train.grpo import grpo_terms

    old = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.5, 0.9, 0.2]]))  # ratios 1, 1.8, 0.4
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.5]]))
    mask = torch.tensor([[1.0, 1.0, 1.0]])
    loss, kl, clipped = grpo_terms(new, old, None, mask, torch.tensor([1.0]), clip=0.2, kl_coef=0.0)
    assert float(loss) == pytest.approx(-(1.0 + 1.2 + 0.4))  # min(r A, clip(r) A) with A > 0
    assert float(clipped) == 1  # only the ratio 1.8 is cut to 1.2
    loss, _, clipped = grpo_terms(new, old, None, mask, torch.tensor([-1.0]), clip=0.2, kl_coef=0.0)
    assert float(loss) == pytest.approx(1.0 + 1.8 + 0.8) and float(clipped) == 1  # A < 0: 0.4 is cut to 0.8
    loss_kl, kl, _ = grpo_terms(new, old, ref, mask, torch.tensor([0.0]), clip=0.2, kl_coef=0.5)
    expected = [math.exp(math.log(r / n)) - math.log(r / n) - 1 for r, n in ((0.25, 0.5), (0.5, 0.9), (0.5, 0.2))]
    assert float(kl) == pytest.approx(sum(expected), rel=1e-5) and float(loss_kl) == pytest.approx(0.5 * sum(expected))
    assert all(v >= 0 for v in expected)


GRADED = """
import asyncio

from taskgrove import Task, Trajectory, TrajectoryGroup, register_task


@register_task("rltest/letters", description="reward: the share of the letter e in the reply (always graded)")
class Letters(Task):
    def get_dataset(self, split):
        for i, word in enumerate(["cats", "rain", "salt", "maps"]):
            yield {"id": str(i), "question": f"Say something about {word}."}

    async def run(self, model, scenario, num_samples=1):
        messages = [{"role": "user", "content": scenario["question"]}]
        replies = await asyncio.gather(*(model.generate(messages) for _ in range(num_samples)))
        rewards = [r.content.count("e") / max(len(r.content), 1) for r in replies]
        return TrajectoryGroup([Trajectory([*messages, r], reward=w) for r, w in zip(replies, rewards)])
"""


def _registry(tmp_path: Path):
    """A task whose reward varies between samples, so every step has a policy gradient."""
    (tmp_path / "graded_task.py").write_text(GRADED, encoding="utf-8")
    registry = new_registry()
    registry.add_path(tmp_path / "graded_task.py")
    return registry


def _config(output: Path, **values):
    from taskgrove.train.rl import RLConfig

    small = {
        "tasks": ["rltest/letters"],
        "name": "rl",
        "steps": 3,
        "scenarios_per_step": 2,
        "samples_per_scenario": 2,
        "max_tokens": 4,
        "output_dir": str(output),
        "limit": 4,
        "learning_rate": 5e-3,
        "temperature": 1.5,
        "kl_coef": 0.1,
        "updates_per_step": 2,
        "seed": 1,
    }
    small.update(values)
    return RLConfig(**small)


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter_model.safetensors"))


@pytest.mark.slow
def test_rl_with_kl_resumes_after_ctrl_c_to_the_same_weights(tmp_path: Path) -> None:
    from taskgrove.train.rl import RLInterrupted, train_rl

    registry = _registry(tmp_path)
    straight = train_rl(_config(tmp_path / "a"), registry)
    assert straight.steps == 3
    curve = straight.curve
    assert all(r["kl"] >= 0 for r in curve) and any(r["kl"] > 0 for r in curve[1:])  # the policy left the base
    assert all(0 <= r["clipped"] <= 1 for r in curve)

    def interrupt(record: dict) -> None:  # Ctrl-C during step 2: the step finishes, a checkpoint is written
        if record["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    config_b = _config(tmp_path / "b")
    with pytest.raises(RLInterrupted, match="--resume"):
        train_rl(config_b, registry, log=interrupt)
    assert (tmp_path / "b" / "rl" / "checkpoint-2").is_dir()
    with pytest.raises(ConfigError, match="--resume"):
        train_rl(config_b, registry)  # would start over on top of the checkpoints
    with pytest.raises(ConfigError, match="learning_rate"):
        train_rl(_config(tmp_path / "b", learning_rate=1e-3), registry, resume=True)
    resumed = train_rl(config_b, registry, resume=True)
    assert resumed.steps == 3 and [r["step"] for r in resumed.curve] == [1, 2, 3]
    assert [r["mean_reward"] for r in resumed.curve] == [r["mean_reward"] for r in curve]
    a, b = _adapter(tmp_path / "a" / "rl"), _adapter(tmp_path / "b" / "rl")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    log = [json.loads(line) for line in (tmp_path / "b" / "rl" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
