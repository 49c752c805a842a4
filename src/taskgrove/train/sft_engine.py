"""SFT through TRL's ``SFTTrainer``: our examples, data order and hooks on TRL's engine.

TRL does the optimisation (AdamW, schedule, gradient accumulation, clipping, completion-only
loss, optional packing, checkpoints with optimizer/scheduler/RNG state, resume, and
``torchrun``/``accelerate launch``). This module only adapts it to a training run:

- the examples arrive tokenised (the task's own prompt and answer, ``completion_mask`` on the
  answer), so TRL's loss is on exactly the tokens evaluation scores;
- the order is :class:`~taskgrove.train.batches.EpochOrder` (seeded, length-grouped batches), the
  same on resume; with packing TRL's packed rows are shuffled by the trainer's own sampler;
- every optimizer step calls the run's hooks (evaluation in the loop, the tests' probes), and
  Ctrl-C saves a checkpoint at the end of the step and stops;
- each logged step becomes a ``log.jsonl`` record with tokens/s.

Imports TRL at module level: import this module only when training starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from trl import SFTConfig
from trl import SFTTrainer as TRLSFTTrainer

from taskgrove.train.batches import EpochOrder, micro_batch_size
from taskgrove.train.examples import IGNORE, TrainExample
from taskgrove.train.presets import TrainConfig

RecordFn = Callable[[dict[str, Any]], None]


def trl_config(config: TrainConfig, run_dir: Path, *, save: bool, use_cpu: bool) -> SFTConfig:
    """The ``SFTConfig`` of a run: our batch (``batch_size`` examples per process, run as
    micro-batches), accumulation, optimizer and schedule settings, checkpoints and logging."""
    micro = micro_batch_size(config)
    return SFTConfig(
        output_dir=str(run_dir),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=config.batch_size // micro * config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # below 1: a share of the steps
        max_grad_norm=config.max_grad_norm or 0.0,  # 0: no clipping
        seed=config.seed,
        max_length=config.max_seq_length,
        completion_only_loss=True,
        packing=config.packing,
        activation_checkpointing=config.gradient_checkpointing,
        logging_steps=config.logging_steps,
        logging_first_step=False,
        save_strategy="steps" if save and config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        include_num_input_tokens_seen="non_padding",
        report_to=[],  # train/trackers.py logs the loss and the in-loop evaluations to one run
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=use_cpu,
    )


def to_dataset(examples: list[TrainExample]) -> Any:
    """A pre-tokenised ``datasets.Dataset``: ``input_ids`` and the answer's ``completion_mask``."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [list(e.input_ids) for e in examples],
            "completion_mask": [[int(label != IGNORE) for label in e.labels] for e in examples],
        }
    )


class OrderedSFTTrainer(TRLSFTTrainer):
    """TRL's trainer with our data order (:class:`EpochOrder`; TRL's own sampler when packing)."""

    def __init__(self, *args: Any, run_config: TrainConfig, **kwargs: Any) -> None:
        self.run_config = run_config
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = self.train_dataset if train_dataset is None else train_dataset
        if self.run_config.packing:
            return super()._get_train_sampler(dataset)
        return EpochOrder([len(ids) for ids in dataset["input_ids"]], self.run_config)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """No hub model card in the run dir: ``train_config.json`` documents the run."""


def record_of(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``log.jsonl`` record from a trainer log entry."""
    record = {
        "step": entry["step"],
        "loss": round(float(entry["loss"]), 5),
        "lr": entry.get("learning_rate", 0.0),
        "tokens_per_s": entry.get("tokens_per_s", 0.0),
    }
    for key in ("grad_norm", "mean_token_accuracy", "entropy"):
        if key in entry:
            record[key] = round(float(entry[key]), 5)
    return record


class StepHooks(TrainerCallback):
    """The run's side of the trainer's loop.

    After each optimizer step: ``on_step(step, total)``; when ``stop()`` is true, save a
    checkpoint and end training (``stopped_at``); with ``save_last``, save one after the last
    step too. Each logged training step: its tokens/s (kept in the trainer state too) and, on the
    main process, ``record(log.jsonl record)``.
    """

    def __init__(
        self,
        on_step: Callable[[int, int], None],
        stop: Callable[[], bool],
        record: RecordFn,
        *,
        save_last: bool,
    ) -> None:
        self.on_step = on_step
        self.stop = stop
        self.record = record
        self.save_last = save_last
        self.stopped_at: int | None = None
        self.hook_seconds = 0.0  # time spent in on_step (evaluations), not training
        self._window = (0, time.perf_counter())  # (tokens seen, time) at the last log

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._window = (state.num_input_tokens_seen, time.perf_counter())
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        self.on_step(state.global_step, state.max_steps)
        spent = time.perf_counter() - began
        self.hook_seconds += spent
        tokens, window_began = self._window  # time in the hooks (an evaluation) is not training time
        self._window = (tokens, window_began + spent)
        if self.stop():
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        elif self.save_last and state.global_step >= state.max_steps:
            control.should_save = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        entry = state.log_history[-1] if state.log_history else {}
        if "loss" in entry and entry.get("step") == state.global_step:
            seen, now = state.num_input_tokens_seen, time.perf_counter()
            tokens, began = self._window
            self._window = (seen, now)
            entry["tokens_per_s"] = round((seen - tokens) / max(now - began, 1e-9), 1)
            if state.is_world_process_zero:
                self.record(record_of(entry))
        return control
