"""Supervised fine-tuning (full or LoRA) on tokenised task examples, through TRL's ``SFTTrainer``.

One optimizer step consumes ``gradient_accumulation_steps`` batches of ``batch_size`` examples
per process; each batch runs in micro-batches of ``micro_batch_size`` (memory only: the
gradient is the same). The loss is the mean cross-entropy over every answer token of the step
(TRL's completion-only loss). Batches are seeded and grouped by length
(:class:`~taskgrove.train.batches.EpochOrder`). Under ``torchrun``/``accelerate launch`` each
process takes its share of every step's batches and gradients are averaged across processes.
train/sft_engine.py adapts TRL's trainer; ``bench/bench_train.py`` measures it against TRL
alone and a plain loop.

Ctrl-C (SIGINT) finishes the current optimizer step, saves a checkpoint and raises
:class:`TrainingInterrupted`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.errors import TaskgroveError
from taskgrove.models.loading import quiet_peft_deprecation
from taskgrove.train import checkpoint as ckpt
from taskgrove.train.batches import StopFlag
from taskgrove.train.examples import TrainExample
from taskgrove.train.presets import TrainConfig

LogFn = Callable[[dict[str, Any]], None]


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
    eval_seconds: float = 0.0  # evaluations in the loop, not counted in ``seconds``

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
            "eval_seconds": round(self.eval_seconds, 3),
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
        with quiet_peft_deprecation():
            model = get_peft_model(model, lora)
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    model.train()
    return model


class SFTTrainer:
    """Trains one run directory (TRL's ``SFTTrainer`` underneath); see the module docstring.

    ``on_step(step)`` runs after every optimizer step (evaluation in the loop hooks in there);
    ``log(record)`` gets each logged step's record, which also goes to ``log.jsonl``.
    """

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
        from taskgrove.train import sft_engine

        self.config = config
        self.tokenizer = tokenizer
        self.examples = examples
        self.run_dir = run_dir
        self.log = log or (lambda record: None)
        self.on_step = on_step
        self.save = save
        self.hooks = sft_engine.StepHooks(self._after_step, self._stop_requested, self._record, save_last=save)
        self._stop: StopFlag | None = None
        with _quiet_datasets(), quiet_peft_deprecation():
            self.engine = sft_engine.OrderedSFTTrainer(
                model=model,
                args=sft_engine.trl_config(config, run_dir, save=save, use_cpu=_no_gpu()),
                train_dataset=sft_engine.to_dataset(examples),
                processing_class=tokenizer,
                callbacks=[self.hooks],
                run_config=config,
            )
        from transformers import PrinterCallback

        self.engine.remove_callback(PrinterCallback)  # our log line (``log``) replaces its dicts
        self.accelerator = self.engine.accelerator
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.total = 0  # the trainer's step count, known once it starts (each step hook sets it)

    @property
    def model(self) -> Any:
        """The model being trained (unwrapped)."""
        return self.engine.model

    def train(self, *, resume_from: Path | None = None) -> TrainResult:
        """Train to the last step (from a checkpoint when given); save checkpoints as configured."""
        from taskgrove.train.sft_engine import record_of

        start, tokens_before = ckpt.trainer_progress(resume_from) if resume_from is not None else (0, 0)
        if resume_from is not None and self.save:
            ckpt.truncate_log(self.run_dir, start)  # records past the checkpoint are logged again
        began = time.perf_counter()
        with StopFlag() as stop, quiet_peft_deprecation():
            self._stop = stop
            try:
                self.engine.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
            finally:
                self._stop = None
        state = self.engine.state
        result = TrainResult(
            self.run_dir,
            state.global_step,
            state.max_steps,
            len(self.examples),
            int(state.num_input_tokens_seen) - tokens_before,
            time.perf_counter() - began - self.hooks.hook_seconds,
            losses=[record_of(e) for e in state.log_history if "loss" in e and "step" in e],
            resumed_from=start,
            main_process=self.accelerator.is_main_process,
            processes=self.world,
            eval_seconds=self.hooks.hook_seconds,
        )
        if self.hooks.stopped_at is not None:
            raise TrainingInterrupted(self.run_dir, self.hooks.stopped_at)
        return result

    def _after_step(self, step: int, total: int) -> None:
        self.total = total
        if self.on_step is not None:
            self.on_step(step)

    def _stop_requested(self) -> bool:
        return self._stop is not None and self._stop.requested

    def _record(self, record: dict[str, Any]) -> None:
        if self.save:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / ckpt.LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        self.log(record)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No ``datasets`` progress bars while TRL prepares the (already tokenised) examples."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


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
    if resume_from is not None and not (resume_from / ckpt.TRAINER_STATE_FILE).is_file():
        from taskgrove.errors import ConfigError

        raise ConfigError(
            f"{resume_from} was written by taskgrove's earlier SFT loop; SFT now runs on TRL's trainer, "
            "which cannot continue it: start a new run (another --name or --output-dir)"
        )
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
