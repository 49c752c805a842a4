"""Experiment trackers for training: ``--report-to tensorboard|wandb|mlflow``.

The SFT curve (loss, learning rate, tokens/s per logged step), the RL curve (mean reward, KL,
loss, share of clipped tokens per step) and the in-loop evaluations (each task's score and each
group's mean at every evaluated step; the base model is step 0) go to every chosen tracker. All
work offline:

* ``tensorboard``: ``torch.utils.tensorboard.SummaryWriter`` writing ``<run dir>/tensorboard/``;
* ``wandb``: a run in ``<run dir>/wandb/``, mode ``$WANDB_MODE`` or ``offline`` (``wandb sync``
  uploads it later), project ``$WANDB_PROJECT`` or ``taskgrove``;
* ``mlflow``: a run of experiment ``$MLFLOW_EXPERIMENT_NAME`` or ``taskgrove`` in
  ``$MLFLOW_TRACKING_URI`` or else the file store ``<output dir>/mlruns`` (``mlflow-skinny`` has no
  database store; ``MLFLOW_ALLOW_FILE_STORE=true`` is set for it).

Scalar names: ``train/loss``, ``train/learning_rate``, ``train/tokens_per_s``; ``rl/mean_reward``,
``rl/kl``, ``rl/loss``, ``rl/clipped``; ``eval/<task>`` and ``eval_group/<group>``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from taskgrove.errors import ConfigError

# tracker -> (module it needs, what installs it)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "pip install tensorboard (in taskgrove[train])"),
    "wandb": ("wandb", "pip install wandb (or taskgrove[trackers])"),
    "mlflow": ("mlflow", "pip install mlflow-skinny (or taskgrove[trackers])"),
}
DEFAULT_PROJECT = "taskgrove"


def parse_report_to(value: str | Iterable[str] | None) -> list[str]:
    """``tensorboard,wandb`` / ``["tensorboard", "wandb"]`` / ``none`` -> the tracker names, checked."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        for part in str(item).split(","):
            name = part.strip().lower()
            if not name or name == "none":
                continue
            if name not in TRACKERS:
                raise ValueError(f"unknown tracker {name!r} (choose from {', '.join(TRACKERS)} or none)")
            if name not in names:
                names.append(name)
    return names


ReportTo = Annotated[list[str], BeforeValidator(parse_report_to)]
"""The ``report_to`` field of the training configs: names, a comma list or ``none``."""


def require(names: Iterable[str]) -> None:
    """A :class:`ConfigError` (one line, usage) when a chosen tracker's package is not installed."""
    for name in names:
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"--report-to {name}: the {module!r} package is not installed; {install}")


def _tag(name: str) -> str:
    """A scalar name every tracker accepts (mlflow allows letters, digits, ``_-./`` and spaces)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


def _flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar configuration values (lists and dicts as JSON) for the trackers' parameters."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat[key] = value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return flat


def score_scalars(scores: Mapping[str, Mapping[str, Any] | None]) -> dict[str, float]:
    """``eval/<task>`` for every scored task and ``eval_group/<group>`` (the mean of its tasks) for
    every group of the tree with two or more tasks, all of them scored (the deepest of groups with
    the same tasks)."""
    from taskgrove.report.groups import ALL, distinct_groups, members_of

    values = {
        task: float(score["value"])
        for task, score in scores.items()
        if score and isinstance(score.get("value"), (int, float))
    }
    out = {f"eval/{task}": value for task, value in values.items()}
    tasks = list(scores)
    for group in distinct_groups(tasks, min_members=2):
        members = members_of(group, tasks)
        if all(m in values for m in members):
            label = "all" if group == ALL else group
            out[f"eval_group/{label}"] = sum(values[m] for m in members) / len(members)
    return out


class Trackers:
    """The chosen trackers of one run; ``log`` sends scalars at a step to each of them."""

    def __init__(self, names: Iterable[str], run_dir: Path, run_name: str, config: Mapping[str, Any]) -> None:
        self.names = list(names)
        require(self.names)
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        params = _flat(config)
        self._writer: Any = None
        self._wandb: Any = None
        self._mlflow: tuple[Any, str] | None = None
        if "tensorboard" in self.names:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            self._writer.add_text("config", json.dumps(params, indent=1))
        if "wandb" in self.names:
            import wandb

            mode: Any = os.environ.get("WANDB_MODE") or "offline"
            self._wandb = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
                name=run_name,
                dir=str(self.run_dir),
                mode=mode,
                config=params,
                reinit="create_new",
                settings=wandb.Settings(silent=True),
            )
        if "mlflow" in self.names:
            self._mlflow = _mlflow_run(self.run_dir, run_name, params)

    def log(self, values: Mapping[str, float | int | None], step: int) -> None:
        """Scalars at ``step`` (``None`` values are left out)."""
        scalars = {_tag(k): float(v) for k, v in values.items() if v is not None}
        if not scalars:
            return
        if self._writer is not None:
            for key, value in scalars.items():
                self._writer.add_scalar(key, value, global_step=step)
            self._writer.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)
        if self._mlflow is not None:
            from mlflow.entities import Metric

            client, run_id = self._mlflow
            now = int(time.time() * 1000)
            finite = {k: v for k, v in scalars.items() if math.isfinite(v)}
            client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in finite.items()])

    def log_scores(self, scores: Mapping[str, Mapping[str, Any] | None], step: int) -> None:
        """An evaluation's task and group scores at ``step``."""
        self.log(score_scalars(scores), step)

    def close(self) -> None:
        """Flush and end every tracker's run."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._mlflow is not None:
            client, run_id = self._mlflow
            client.set_terminated(run_id)
            self._mlflow = None


def _mlflow_run(run_dir: Path, run_name: str, params: Mapping[str, Any]) -> tuple[Any, str]:
    """(client, run id) of a new mlflow run; the file store under the output dir unless
    ``$MLFLOW_TRACKING_URI`` names another."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # mlflow 3 keeps its file store in maintenance and asks for this opt-in
        uri = (run_dir.parent / "mlruns").resolve().as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):  # mlflow takes at most 100 parameters a call
        client.log_batch(run_id, params=items[start : start + 100])
    return client, run_id


def open_trackers(names: Iterable[str], run_dir: Path, run_name: str, config: Mapping[str, Any]) -> Trackers | None:
    """The run's trackers, or ``None`` when none was chosen."""
    chosen = list(names)
    return Trackers(chosen, run_dir, run_name, config) if chosen else None


def log_comparison(names: Iterable[str], comparison: Mapping[str, Any]) -> None:
    """``train-eval``: in each trained model's run, the base model's scores at step 0 and the
    model's at its last training step (``train_result.json``)."""
    from taskgrove.train import checkpoint as ckpt

    chosen = list(names)
    models = list(comparison.get("models") or [])
    base = next((m for m in models if m.get("kind") == "base"), None)
    for model in models:
        if model is base or not model.get("path"):
            continue
        run_dir = Path(model["path"])
        result = run_dir / ckpt.RESULT_FILE
        if not result.is_file():
            raise ConfigError(f"--report-to: {run_dir} has no {ckpt.RESULT_FILE} (an unfinished run has no last step)")
        trackers = Trackers(chosen, run_dir, model["label"], ckpt.read_json(run_dir / ckpt.CONFIG_FILE))
        try:
            if base is not None:
                trackers.log_scores(base["scores"], 0)
            trackers.log_scores(model["scores"], int(ckpt.read_json(result).get("steps") or 0))
        finally:
            trackers.close()
