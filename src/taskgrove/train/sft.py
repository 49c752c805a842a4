"""Supervised fine-tuning (full or LoRA) on tokenised task examples: a plain, resumable loop.

One optimizer step consumes ``gradient_accumulation_steps`` batches of ``batch_size`` examples
per process; each batch runs in micro-batches of ``micro_batch_size`` (memory only: the
gradient is the same). The loss is the mean cross-entropy over every answer token of the step.
Batches are grouped by length (less padding) and left-padded, so logits are computed only for
the answer positions. Under ``accelerate launch`` each process takes its share of every step's
batches and gradients are averaged across processes.

Ctrl-C (SIGINT) finishes the current optimizer step, saves a checkpoint and raises
:class:`TrainingInterrupted`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.errors import TaskgroveError
from taskgrove.train import checkpoint as ckpt
from taskgrove.train.batches import StopFlag, step_batches, total_steps
from taskgrove.train.examples import TrainExample, answer_loss, collate
from taskgrove.train.presets import TrainConfig

LogFn = Callable[[dict[str, Any]], None]
DEFAULT_MICRO_BATCH = 8


class TrainingInterrupted(TaskgroveError):
    """Training stopped on Ctrl-C after saving a checkpoint; continue with ``--resume``."""

    def __init__(self, run_dir: Path, step: int) -> None:
        self.run_dir = run_dir
        self.step = step
        super().__init__(f"interrupted at step {step}; checkpoint saved in {run_dir}; continue with --resume {run_dir}")


@dataclass
class TrainResult:
    """What a training run did."""

    run_dir: Path
    steps: int
    total_steps: int
    examples: int
    tokens: int
    seconds: float
    losses: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    main_process: bool = True
    processes: int = 1

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "examples": self.examples,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "resumed_from": self.resumed_from,
            "processes": self.processes,
            "final_loss": self.losses[-1]["loss"] if self.losses else None,
            "losses": self.losses,
        }


# --- model --------------------------------------------------------------------------------------


def load_base(base_model: str = "default") -> tuple[Any, Any]:
    """(model, tokenizer) of the base model, loaded by the local backend's loader (the embedded
    SmolLM2 is converted to safetensors once and cached)."""
    from taskgrove.models.loading import load_local
    from taskgrove.models.paths import cache_root

    loaded = load_local(base_model, None, cache_root())
    return loaded.model, loaded.tokenizer


def prepare_model(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` in a LoRA adapter (``method: lora``) or unfreeze it all (``full``), in train mode."""
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    model.train()
    return model


def make_optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no weight decay on biases and norms, as the HF Trainer does) and the LR schedule."""
    import torch
    from transformers import get_scheduler

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(
                parameter
            )
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.learning_rate)
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    return optimizer, scheduler


# --- the loop -----------------------------------------------------------------------------------


class SFTTrainer:
    """Runs the optimisation of one run directory; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        model: Any,
        tokenizer: Any,
        examples: list[TrainExample],
        run_dir: Path,
        *,
        log: LogFn | None = None,
        on_step: Callable[[int], None] | None = None,
        save: bool = True,
    ) -> None:
        from accelerate import Accelerator

        self.config = config
        self.tokenizer = tokenizer
        self.examples = examples
        self.lengths = [len(e) for e in examples]
        self.run_dir = run_dir
        self.log = log or (lambda record: None)
        self.on_step = on_step
        self.save = save
        self.accelerator = Accelerator(cpu=_no_gpu())
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.total = total_steps(len(examples), config, self.world)
        optimizer, scheduler = make_optimizer(model, config, self.total)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = scheduler
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        self.micro = config.micro_batch_size or min(config.batch_size, DEFAULT_MICRO_BATCH)

    def train(self, *, resume_from: Path | None = None) -> TrainResult:
        """Train to ``total`` steps (from a checkpoint when given); save checkpoints as configured."""
        start = 0
        if resume_from is not None:
            start = self._restore(resume_from)
        result = TrainResult(self.run_dir, start, self.total, len(self.examples), 0, 0.0, resumed_from=start)
        if resume_from is not None:
            state_log = ckpt.load_state(resume_from).get("losses") or []
            result.losses = list(state_log)
        window_loss, window_tokens, window_count, window_began = 0.0, 0, 0, time.perf_counter()
        began = time.perf_counter()
        with StopFlag() as stop:
            for step in range(start, self.total):
                loss_sum, answer_tokens, tokens = self._step(step)
                result.steps = step + 1
                result.tokens += tokens
                window_loss += loss_sum
                window_tokens += answer_tokens
                window_count += tokens
                done = step + 1
                if done % self.config.logging_steps == 0 or done == self.total:
                    now = time.perf_counter()
                    record = {
                        "step": done,
                        "loss": round(window_loss / max(window_tokens, 1), 5),
                        "lr": self.scheduler.get_last_lr()[0],
                        "tokens_per_s": round(window_count / max(now - window_began, 1e-9), 1),
                    }
                    result.losses.append(record)
                    self._log(record)
                    window_loss, window_tokens, window_count, window_began = 0.0, 0, 0, now
                if self.on_step is not None:
                    self.on_step(done)
                if stop.requested:
                    result.seconds = time.perf_counter() - began
                    self._checkpoint(done, result)
                    raise TrainingInterrupted(self.run_dir, done)
                if self.save and self.config.save_steps and done % self.config.save_steps == 0 and done < self.total:
                    self._checkpoint(done, result)
        result.seconds = time.perf_counter() - began
        if self.world > 1:  # tokens of every process
            import torch

            result.tokens = int(
                self.accelerator.reduce(torch.tensor(result.tokens, device=self.accelerator.device), "sum")
            )
        result.main_process = self.accelerator.is_main_process
        result.processes = self.world
        if self.save:
            self._checkpoint(result.steps, result)
        return result

    def _step(self, step: int) -> tuple[float, int, int]:
        """One optimizer step; returns (summed answer loss, answer tokens, tokens processed)."""
        import torch

        batches = step_batches(step, self.lengths, self.config, rank=self.rank, world=self.world)
        chunks = [
            [self.examples[i] for i in batch[j : j + self.micro]]
            for batch in batches
            for j in range(0, len(batch), self.micro)
        ]
        denominator = sum(e.answer_len for chunk in chunks for e in chunk)
        loss_total, tokens = 0.0, 0
        device = self.accelerator.device
        for index, chunk in enumerate(chunks):
            batch = collate(chunk, self.pad_id)
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            last = index == len(chunks) - 1
            context = self.accelerator.no_sync(self.model) if not last and self.world > 1 else _nullcontext()
            with context:
                loss, _ = answer_loss(self.model, batch)
                self.accelerator.backward(loss / max(denominator, 1))
            loss_total += float(loss.detach())
            tokens += sum(len(e) for e in chunk)
        if self.config.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_total, denominator, tokens

    def _log(self, record: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            if self.save:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                with open(self.run_dir / ckpt.LOG_FILE, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
            self.log(record)

    def _checkpoint(self, step: int, result: TrainResult) -> None:
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "losses": result.losses,
        }
        model = self.accelerator.unwrap_model(self.model)
        ckpt.save_checkpoint(
            self.run_dir,
            step,
            model,
            self.tokenizer,
            state,
            base_model=self.config.base_model,
            keep=self.config.save_total_limit,
        )

    def _restore(self, checkpoint: Path) -> int:
        state = ckpt.load_state(checkpoint)
        ckpt.load_weights(self.accelerator.unwrap_model(self.model), checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.restore_rng(state)
        return int(state["step"])


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


# --- one whole run --------------------------------------------------------------------------------


def train_sft(
    config: TrainConfig,
    registry: Any,
    *,
    resume: bool = False,
    log: LogFn | None = None,
    on_step: Callable[[int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> TrainResult:
    """Load the base model, build the mixture, train, and save the final model in
    ``<output_dir>/<name>/`` with ``train_config.json`` and ``train_result.json``; with
    ``eval_every``, evaluate checkpoints on the way (``say`` reports it)."""
    from taskgrove.train.data import build_tasks, build_training_data
    from taskgrove.train.trackers import open_trackers, require

    require(config.report_to)  # before anything is created
    run_dir = Path(config.output_dir) / config.run_name
    resume_from = ckpt.latest_checkpoint(run_dir) if resume else None
    if not resume and ckpt.checkpoints(run_dir):
        from taskgrove.errors import ConfigError

        raise ConfigError(
            f"{run_dir} already holds checkpoints; pass --resume to continue it or choose another --output-dir/--name"
        )
    tasks = build_tasks(registry, config.tasks, config)
    model, tokenizer = load_base(config.base_model)
    data = build_training_data(tasks, tokenizer, config)
    import torch

    torch.manual_seed(config.seed)  # the LoRA initialisation
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = config.model_dump(mode="json")
    saved["data"] = {
        "available": data.available,
        "mixture": data.counts,
        "dropped_too_long": data.dropped,
        "tokens": data.tokens,
    }
    ckpt.write_json(run_dir / ckpt.CONFIG_FILE, saved)
    ckpt.write_json(Path(config.output_dir) / ckpt.CONFIGS_DIR / f"{config.run_name}.json", saved)  # as TreeMark
    model = prepare_model(model, config)
    trainer = SFTTrainer(config, model, tokenizer, data.examples, run_dir, log=log, on_step=on_step)
    main = trainer.accelerator.is_main_process
    trackers = open_trackers(config.report_to, run_dir, config.run_name, saved) if main else None
    try:
        if trackers is not None:
            trainer.log = _tracked(log, trackers)
        evaluator = None
        if config.eval_every and main:
            from taskgrove.train.curve import LoopEvaluator, attach

            evaluator = LoopEvaluator(config, registry, run_dir, say=say, trackers=trackers)
            attach(trainer, evaluator)
        result = trainer.train(resume_from=resume_from)
        if main:
            final = trainer.accelerator.unwrap_model(trainer.model)
            ckpt.save_weights(final, tokenizer, run_dir, base_model=config.base_model)
            ckpt.write_json(run_dir / ckpt.RESULT_FILE, result.to_json())
            if evaluator is not None:
                evaluator.final(result.steps)
    finally:
        if trackers is not None:
            trackers.close()
    return result


def _tracked(log: LogFn | None, trackers: Any) -> LogFn:
    """``log`` that also sends the record's loss, learning rate and tokens/s to the trackers."""

    def both(record: dict[str, Any]) -> None:
        if log is not None:
            log(record)
        values = {"train/loss": record["loss"], "train/learning_rate": record["lr"]}
        trackers.log({**values, "train/tokens_per_s": record["tokens_per_s"]}, record["step"])

    return both
