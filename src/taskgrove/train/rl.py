"""RL from task rewards: sample with ``task.run``, weight by group advantages, update a LoRA policy.

Each step takes ``scenarios_per_step`` training scenarios (a seeded round-robin over the tasks),
runs ``task.run(policy, scenario, num_samples=k)`` for all of them concurrently (any Task:
multi-turn and tool tasks too, every sampled assistant turn is trained), and computes
``TrajectoryGroup.advantages()`` per scenario (reward minus the group mean, over the group's
std: GRPO's group baseline). The update is GRPO's (:mod:`taskgrove.train.grpo`): clipped
importance ratio to the sampling weights, KL penalty ``kl_coef`` to the frozen base (the adapters
disabled), ``updates_per_step`` optimizer steps per batch of samples.

Resumable: Ctrl-C finishes the step and writes ``checkpoint-<step>`` (adapter, optimizer, RNG
states, the reward curve), as does every ``save_steps``-th step; ``resume=True`` continues from
the newest one (the scenario order is a pure function of seed and step), so an interrupted run
ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from taskgrove.core import TrajectoryGroup
from taskgrove.errors import ConfigError, TaskDataError, TaskgroveError
from taskgrove.train import checkpoint as ckpt
from taskgrove.train.grpo import Row, update
from taskgrove.train.policy import PolicyModel, SampledChoice
from taskgrove.train.trackers import ReportTo

RL_CONFIG_FILE = "rl_config.json"
RL_RESULT_FILE = "rl_result.json"


class RLConfig(BaseModel):
    """Parameters of an RL run (saved as ``rl_config.json`` beside the adapter)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tasks: list[str] = Field(default_factory=list)
    requests: list[str] = Field(default_factory=list)
    name: str | None = None
    base_model: str = "default"
    output_dir: str = "checkpoints"
    method: Literal["lora"] = "lora"
    lora_rank: int = Field(16, gt=0)
    lora_alpha: int | None = Field(None, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    steps: int = Field(30, gt=0)
    scenarios_per_step: int = Field(4, gt=0)
    samples_per_scenario: int | None = Field(None, gt=1, description="default: the task's train config, else 8")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(32, gt=0)
    micro_batch_size: int = Field(16, gt=0)
    limit: int | None = Field(None, gt=0)
    split: str = "train"
    prompt_format: Literal["zero_shot", "few_shot"] = "zero_shot"
    num_fewshot: int = Field(3, ge=0)
    seed: int = 0
    logging_steps: int = Field(1, gt=0)
    kl_coef: float = Field(0.04, ge=0, description="beta: weight of the KL penalty to the base model (0: none)")
    clip_epsilon: float = Field(0.2, gt=0, lt=1, description="PPO clipping of the importance ratio")
    updates_per_step: int = Field(1, gt=0, description="optimizer steps per batch of samples (GRPO's mu)")
    save_steps: int = Field(10, gt=0, description="checkpoint every N steps (and on Ctrl-C and at the end)")
    save_total_limit: int = Field(2, gt=0)
    include_path: list[str] = Field(default_factory=list, description="task files or folders added to the tree")
    task_config: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-task settings by full task name (train/taskconfig.py)"
    )
    report_to: ReportTo = Field(default_factory=list, description="tensorboard, wandb, mlflow (train/trackers.py)")

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        from taskgrove.train.presets import leaf, multi_type

        target = leaf(self.tasks[0]) if len(self.tasks) == 1 else multi_type(self.tasks, self.requests)
        return f"rl_{target}_LoRA_{self.lora_rank}"


class RLInterrupted(TaskgroveError):
    """RL stopped on Ctrl-C after saving the adapter."""


@dataclass
class RLResult:
    run_dir: Path
    steps: int
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "seconds": round(self.seconds, 2), "curve": self.curve}


def scenario_pools(tasks: dict[str, Any], config: RLConfig) -> dict[str, list[Any]]:
    """Each task's training scenarios (its ``task_config`` split and limit over the run's)."""
    from taskgrove.train.taskconfig import task_settings

    pools: dict[str, list[Any]] = {}
    for name, task in tasks.items():
        own = task_settings(config, name)
        try:
            items = list(islice(task.get_dataset(own["split"]), own["limit"]))
        except ConfigError:
            raise
        except TaskgroveError as exc:  # e.g. a hub dataset offline: SourceError's hint, one line
            raise TaskDataError(f"task {name}: {type(exc).__name__}: {exc}") from exc
        if not items:
            raise ConfigError(f"task {name} has no scenarios in split {own['split']!r}")
        pools[name] = items
    return pools


def scenario_stream(pools: dict[str, list[Any]], config: RLConfig) -> Any:
    """Endless seeded round-robin of (task name, scenario) over each task's shuffled scenarios."""
    rng = random.Random(config.seed)
    orders: dict[str, list[Any]] = {name: [] for name in pools}
    while True:
        for name, items in pools.items():
            if not orders[name]:
                orders[name] = rng.sample(items, len(items))
            yield name, orders[name].pop()


def policy_rows(groups: list[TrajectoryGroup], *, keep_zero: bool = False) -> list[Row]:
    """(prompt ids, completion ids, advantage) of every sampled reply (zero-advantage ones only
    with ``keep_zero``: they still carry the KL penalty)."""
    rows = []
    for group in groups:
        for trajectory, advantage in zip(group.trajectories, group.advantages(), strict=False):
            if not math.isfinite(advantage) or (advantage == 0 and not keep_zero):
                continue
            for choice in trajectory.messages_and_choices:
                if isinstance(choice, SampledChoice) and choice.completion_ids:
                    rows.append((choice.prompt_ids, choice.completion_ids, advantage))
    return rows


def train_rl(
    config: RLConfig, registry: Any, *, log: Callable[[dict[str, Any]], None] | None = None, resume: bool = False
) -> RLResult:
    """Run RL on ``config.tasks`` (from the newest checkpoint with ``resume``); save the adapter,
    ``rl_config.json`` and the reward curve."""
    import torch
    from peft import LoraConfig, get_peft_model

    from taskgrove.runner.model import ConfiguredModel
    from taskgrove.train.batches import StopFlag
    from taskgrove.train.data import build_tasks
    from taskgrove.train.sft import load_base
    from taskgrove.train.trackers import open_trackers, require

    require(config.report_to)  # before anything is created
    torch.manual_seed(config.seed)
    tasks = build_tasks(registry, config.tasks, config, split=config.split)
    for task in tasks.values():
        task.pre_train()
    pools = scenario_pools(tasks, config)
    k = {
        name: config.samples_per_scenario or max(task.get_train_config().samples_per_scenario, 1)
        for name, task in tasks.items()
    }
    k = {name: value if value > 1 else 8 for name, value in k.items()}
    base, tokenizer = load_base(config.base_model)
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha or 2 * config.lora_rank,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    policy = PolicyModel(model, tokenizer, name=f"policy:{config.run_name}")
    sampler = ConfiguredModel(
        policy, {"temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens}
    )
    stream = scenario_stream(pools, config)
    run_dir = Path(config.output_dir) / config.run_name
    result = RLResult(run_dir, 0)
    start = _start(run_dir, config, resume, model, optimizer, result)
    for _ in range(start * config.scenarios_per_step):  # the scenario order is a function of seed and step
        next(stream)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write_json(run_dir / RL_CONFIG_FILE, config.model_dump(mode="json"))
    trackers = open_trackers(config.report_to, run_dir, config.run_name, config.model_dump(mode="json"))
    began = time.perf_counter()
    with StopFlag() as stop, _closing(trackers):
        for step in range(start + 1, config.steps + 1):
            picked = [next(stream) for _ in range(config.scenarios_per_step)]
            t0 = time.perf_counter()
            groups = asyncio.run(_rollouts(tasks, sampler, picked, k))
            t1 = time.perf_counter()
            rows = policy_rows(groups, keep_zero=config.kl_coef > 0)
            stats = update(model, optimizer, rows, policy.pad_id, config)
            rewards = [r for g in groups for r in g.rewards()]
            record = {
                "step": step,
                "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else math.nan,
                "loss": round(stats.loss, 5),
                "kl": round(stats.kl, 6),
                "clipped": round(stats.clipped, 4),
                "trained_replies": len(rows),
                "advantaged_replies": sum(1 for _, _, a in rows if a != 0),
                "failed_rollouts": sum(len(g.exceptions) for g in groups),
                "sample_s": round(t1 - t0, 2),
                "update_s": round(time.perf_counter() - t1, 2),
            }
            result.curve.append(record)
            result.steps = step
            with open(run_dir / ckpt.LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            if log is not None and step % config.logging_steps == 0:
                log(record)
            if trackers is not None:
                trackers.log({f"rl/{k}": record[k] for k in ("mean_reward", "kl", "loss", "clipped")}, step)
            if stop.requested or step % config.save_steps == 0 or step == config.steps:
                state = {"optimizer": optimizer.state_dict(), "curve": result.curve}
                ckpt.save_checkpoint(
                    run_dir, step, model, tokenizer, state, base_model=config.base_model, keep=config.save_total_limit
                )
            if stop.requested:
                result.seconds = time.perf_counter() - began
                raise RLInterrupted(
                    f"interrupted at step {step}; checkpoint saved in {run_dir}; continue with the same command and --resume"
                )
    result.seconds = time.perf_counter() - began
    ckpt.save_weights(model, tokenizer, run_dir, base_model=config.base_model)
    ckpt.write_json(run_dir / RL_RESULT_FILE, result.to_json())
    return result


def _start(run_dir: Path, config: RLConfig, resume: bool, model: Any, optimizer: Any, result: RLResult) -> int:
    """The step to continue after: 0 for a new run, the newest checkpoint's when resuming."""
    latest = ckpt.latest_checkpoint(run_dir)
    if not resume:
        if latest is not None:
            raise ConfigError(
                f"{run_dir} already holds RL checkpoints; pass --resume to continue it or choose another --output-dir/--name"
            )
        return 0
    if latest is None:
        raise ConfigError(f"--resume: {run_dir} holds no RL checkpoint to continue")
    saved = ckpt.read_json(run_dir / RL_CONFIG_FILE)
    changed = sorted(
        k for k, v in config.model_dump(mode="json").items() if k not in ("steps", "report_to") and saved.get(k) != v
    )
    if changed:
        raise ConfigError(f"--resume: {run_dir} was trained with other values of {', '.join(changed)}")
    state = ckpt.load_state(latest)
    ckpt.load_weights(model, latest)
    optimizer.load_state_dict(state["optimizer"])
    ckpt.restore_rng(state)
    result.curve = list(state.get("curve") or [])
    result.steps = int(state["step"])
    return result.steps


@contextmanager
def _closing(trackers: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if trackers is not None:
            trackers.close()


async def _rollouts(
    tasks: dict[str, Any], model: Any, picked: list[tuple[str, Any]], k: dict[str, int]
) -> list[TrajectoryGroup]:
    results = await asyncio.gather(
        *(tasks[name].run(model, scenario, k[name]) for name, scenario in picked), return_exceptions=True
    )
    groups = []
    for (name, _), result in zip(picked, results, strict=False):
        if isinstance(result, BaseException):
            groups.append(TrajectoryGroup(exceptions=[result], metadata={"task": name}))
        else:
            groups.append(result)
    return groups
