"""Evaluation in the loop: every ``eval_every`` optimizer steps the model is evaluated on the
held-out split of ``eval_tasks`` (default: the trained tasks) through the executor.

The base model is step 0 (its run is shared with the comparison after training); each checkpoint
is saved under ``<run dir>/steps/step-<N>/`` (the adapter, or the full weights, which are
removed once evaluated) and evaluated into ``steps/step-<N>/eval-<key>/``, a normal run folder
that ``taskgrove report``/``compare`` read. The final model is evaluated in ``<run dir>/eval-<key>``
after it is saved, which the comparison after training reuses when it evaluates the same tasks.

``eval_curve.json`` in the run dir lists the points::

    {"run": "similar_LoRA_16", "tasks": [...], "eval_every": 10, "settings": {...},
     "points": [{"step": 0, "label": "base", "run_dir": "<path>", "scores": {task: {value, ci_low, ci_high, metric, n} | null}},
                {"step": 10, "label": "similar_LoRA_16@10", "run_dir": "steps/step-10/eval-<key>", "scores": {...}}, ...]}

``run_dir`` is relative to the training run dir when inside it, else absolute.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskgrove.train import checkpoint as ckpt
from taskgrove.train.evaluate import EvalSettings, ModelEntry, eval_dir, evaluate_model
from taskgrove.train.presets import TrainConfig

CURVE_FILE = "eval_curve.json"
STEPS_DIR = "steps"


def curve_tasks(config: TrainConfig) -> list[str]:
    """The tasks evaluated in the loop: ``eval_tasks`` or the trained tasks."""
    return list(config.eval_tasks or config.tasks)


def eval_settings(config: TrainConfig) -> EvalSettings:
    """How every model of a training run is evaluated (in the loop and after training)."""
    return EvalSettings(
        split=config.eval_split,
        limit=config.eval_limit,
        max_tokens=config.eval_max_tokens,
        batch_size=config.eval_batch_size,
        prompt_format=config.prompt_format,
        num_fewshot=config.num_fewshot,
        seed=config.seed,
        task_config=dict(config.task_config),
    )


class LoopEvaluator:
    """Evaluates a training run's checkpoints every ``config.eval_every`` steps (main process only)."""

    def __init__(
        self,
        config: TrainConfig,
        registry: Any,
        run_dir: Path,
        *,
        say: Callable[[str], None] | None = None,
        trackers: Any = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.run_dir = run_dir
        self.tasks = curve_tasks(config)
        self.settings = eval_settings(config)
        self.say = say or (lambda message: None)
        self.trackers = trackers  # train/trackers.py: each point's scores go there too
        self.path = run_dir / CURVE_FILE
        self.data = ckpt.read_json(self.path) if self.path.is_file() else self._fresh()

    def _fresh(self) -> dict[str, Any]:
        return {
            "run": self.config.run_name,
            "tasks": self.tasks,
            "eval_every": self.config.eval_every,
            "settings": {k: v for k, v in self.settings.__dict__.items() if k != "task_config"},
            "points": [],
        }

    def done(self, step: int) -> bool:
        return any(point["step"] == step for point in self.data["points"])

    def due(self, step: int) -> bool:
        """Whether ``step`` is an evaluation step not evaluated yet."""
        every = self.config.eval_every
        return every is not None and step % every == 0 and not self.done(step)

    def base(self) -> None:
        """Step 0: the base model (its run is shared with the comparison after training)."""
        if not self.done(0):
            self._record(0, ModelEntry("base", "base", None, self.config.base_model))

    def checkpoint(self, step: int, model: Any, tokenizer: Any) -> None:
        """Save the weights of ``step`` and evaluate them (training RNG state untouched)."""
        import torch

        directory = self.run_dir / STEPS_DIR / f"step-{step}"
        state = torch.random.get_rng_state()
        ckpt.save_weights(model, tokenizer, directory, base_model=self.config.base_model)
        entry = ModelEntry(
            f"{self.config.run_name}@{step}",
            "checkpoint",
            directory,
            self.config.base_model,
            self.config.label,
            list(self.config.tasks),
        )
        try:
            self._record(step, entry)
        finally:
            torch.random.set_rng_state(state)
            if self.config.method == "full":  # full weights are large: keep only the evaluation
                for item in directory.iterdir():
                    if item.is_file():
                        item.unlink()

    def final(self, step: int) -> None:
        """The saved final model (the run dir itself) at ``step``."""
        if not self.done(step):
            self._record(step, ModelEntry.from_run(self.run_dir))

    def _record(self, step: int, entry: ModelEntry) -> None:
        self.say(f"step {step}: evaluating {entry.label} on {len(self.tasks)} task(s)")
        output_dir = Path(self.config.output_dir)
        scores = evaluate_model(entry, self.tasks, self.registry, self.settings, output_dir)
        where = eval_dir(entry, self.tasks, self.settings, output_dir)
        try:
            shown = str(where.relative_to(self.run_dir))
        except ValueError:
            shown = str(where.resolve())
        point = {"step": step, "label": entry.label, "run_dir": shown, "scores": scores}
        self.data["points"] = sorted([*self.data["points"], point], key=lambda p: p["step"])
        ckpt.write_json(self.path, self.data)
        if self.trackers is not None:
            self.trackers.log_scores(scores, step)
        summary = ", ".join(
            f"{name.rsplit('/', 1)[-1]} {score['value']:.3f}" if score else f"{name.rsplit('/', 1)[-1]} failed"
            for name, score in scores.items()
        )
        self.say(f"step {step}: {summary}")


def attach(trainer: Any, evaluator: LoopEvaluator) -> None:
    """Evaluate the base now and ``trainer``'s model at every due step (before its own ``on_step``)."""
    previous = trainer.on_step
    tokenizer = trainer.tokenizer

    def on_step(step: int) -> None:
        if evaluator.due(step) and step < trainer.total:
            evaluator.checkpoint(step, trainer.accelerator.unwrap_model(trainer.model), tokenizer)
        if previous is not None:
            previous(step)

    evaluator.base()
    trainer.on_step = on_step
