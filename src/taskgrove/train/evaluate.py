"""Evaluating trained models against the base model on every task, through the real executor.

Each model (the base, single-task and multi-task checkpoints) runs on every task with the local
backend (``local:<checkpoint dir>``: an adapter on its base, or full weights). Its run directory
is kept under ``<model dir>/eval-<key>`` (the base's under ``<output_dir>/base-eval-<key>``),
where ``key`` hashes the evaluation settings and the weights, so a later comparison reuses it.

``comparison.json``::

    {"tasks": [...],
     "models": [{"label": "base" | "single_<task>_<cfg>" | "<type>_<cfg>",
                 "kind": "base" | "single" | "multi", "path": ..., "config": "FullFT" | "LoRA_<r>" | null,
                 "trained_on": [...],
                 "scores": {task: {"value", "ci_low", "ci_high", "metric", "n"} | null}}],
     "settings": {...}}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgrove.errors import MultiTaskError
from taskgrove.registry import TaskRegistry
from taskgrove.train import checkpoint as ckpt
from taskgrove.train.taskconfig import evaluation_task_config

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"


@dataclass(frozen=True)
class EvalSettings:
    """How every model is evaluated (the same for all, so scores compare)."""

    split: str = "test"
    limit: int | None = None
    max_tokens: int | None = None
    batch_size: int = 16
    prompt_format: str = "zero_shot"
    num_fewshot: int = 3
    seed: int = 0
    task_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def key(self, tasks: Sequence[str], weights: str) -> str:
        settings = {k: v for k, v in self.__dict__.items() if k != "task_config"}
        own = evaluation_task_config(self.task_config, tasks)
        if own:  # only the part that changes these tasks' evaluation (no part: the same key as before)
            settings["task_config"] = own
        data = json.dumps({"settings": settings, "tasks": sorted(tasks), "weights": weights}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:10]


@dataclass
class ModelEntry:
    """A model of the comparison; ``path`` is ``None`` for the base model."""

    label: str
    kind: str
    path: Path | None = None
    base_model: str = "default"
    config: str | None = None
    trained_on: list[str] = field(default_factory=list)

    @property
    def spec(self) -> str:
        """The model spec the executor loads."""
        if self.path is not None:
            return f"local:{self.path}"
        return "local" if self.base_model == "default" else f"local:{self.base_model}"

    @classmethod
    def from_run(cls, run_dir: Path) -> ModelEntry:
        """The entry of a finished training run directory (reads its ``train_config.json``)."""
        saved = ckpt.read_json(run_dir / ckpt.CONFIG_FILE)
        method, rank = saved.get("method"), saved.get("lora_rank")
        return cls(
            label=saved.get("name") or run_dir.name,
            kind=saved.get("kind") or ("single" if len(saved.get("tasks") or []) == 1 else "multi"),
            path=run_dir,
            base_model=saved.get("base_model", "default"),
            config="FullFT" if method == "full" else f"LoRA_{rank}",
            trained_on=list(saved.get("tasks") or []),
        )


def weights_identity(entry: ModelEntry) -> str:
    """Names and sizes/mtimes of the weight files (changes when a model is retrained)."""
    if entry.path is None:
        return f"base:{entry.base_model}"
    from taskgrove.models.loading import fingerprint

    weights = ("adapter_config.json", "config.json")
    files = [p for p in entry.path.iterdir() if p.is_file() and (p.suffix == ".safetensors" or p.name in weights)]
    return ";".join(f"{p.name}:{fingerprint(p)}" for p in sorted(files))


def eval_dir(entry: ModelEntry, tasks: Sequence[str], settings: EvalSettings, output_dir: Path) -> Path:
    key = settings.key(tasks, weights_identity(entry))
    return (entry.path / f"eval-{key}") if entry.path is not None else (output_dir / f"base-eval-{key}")


def evaluate_model(
    entry: ModelEntry, tasks: Sequence[str], registry: TaskRegistry, settings: EvalSettings, output_dir: Path
) -> dict[str, dict[str, Any] | None]:
    """Scores of ``entry`` on ``tasks`` (primary metric with its CI; ``None`` for a failed task)."""
    from taskgrove.config import build_config
    from taskgrove.runner.executor import Executor
    from taskgrove.runs.store import RunStore

    directory = eval_dir(entry, tasks, settings, output_dir)
    store = RunStore(directory)
    if store.read_status().get("status") == "completed":
        return read_scores(store, tasks)
    shutil.rmtree(directory, ignore_errors=True)
    values: dict[str, Any] = {
        "mode": "run",
        "tasks": list(tasks),
        "model": entry.spec,
        "split": settings.split,
        "limit": settings.limit,
        "batch_size": settings.batch_size,
        "prompt_format": settings.prompt_format,
        "num_fewshot": settings.num_fewshot,
        "seed": settings.seed,
        "output_dir": str(directory.parent),
        "run_id": directory.name,
        "progress": False,
    }
    if settings.max_tokens is not None:
        values["max_tokens"] = settings.max_tokens
    own = evaluation_task_config(settings.task_config, tasks)
    if own:
        values["task_config"] = own
    config = build_config(values)
    executor = Executor(config, registry)
    with contextlib.suppress(MultiTaskError):  # failed tasks get no score; the others still count
        executor.run()
    return read_scores(executor.store, tasks)


def read_scores(store: Any, tasks: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """The primary metric of each task from a run directory's ``metrics.json`` files."""
    scores: dict[str, dict[str, Any] | None] = {}
    for name in tasks:
        stored = store.task(name).metrics()
        if not stored:
            scores[name] = None
            continue
        metrics = stored.get("metrics") or {}
        primary = stored.get("primary_metric") or "reward"
        metric = primary if primary in metrics else "reward"
        value = metrics.get(metric)
        scores[name] = (
            None
            if value is None
            else {
                "value": value.get("value"),
                "ci_low": value.get("ci_low"),
                "ci_high": value.get("ci_high"),
                "metric": metric,
                "n": value.get("n", stored.get("n")),
            }
        )
    return scores


def compare(
    entries: Sequence[ModelEntry],
    tasks: Sequence[str],
    registry: TaskRegistry,
    settings: EvalSettings,
    output_dir: Path,
    *,
    log: Any = None,
) -> dict[str, Any]:
    """Evaluate every entry on every task and return the ``comparison.json`` data."""
    models: list[dict[str, Any]] = []
    for entry in entries:
        if log is not None:
            log(f"evaluating {entry.label} ({entry.spec}) on {len(tasks)} task(s)")
        scores = evaluate_model(entry, tasks, registry, settings, output_dir)
        models.append(
            {
                "label": entry.label,
                "kind": entry.kind,
                "path": str(entry.path) if entry.path is not None else entry.base_model,
                "config": entry.config,
                "trained_on": entry.trained_on,
                "scores": scores,
                "run_dir": str(eval_dir(entry, tasks, settings, output_dir).resolve()),
            }
        )
    base = next((m for m in models if m["kind"] == "base"), None)
    if base is not None:
        from taskgrove.train.deltas import paired_deltas

        for model in models:
            if model is not base:
                model["vs_base"] = paired_deltas(Path(base["run_dir"]), Path(model["run_dir"]), list(tasks))
    return {"tasks": list(tasks), "models": models, "settings": dict(settings.__dict__)}


def write_comparison(directory: Path, comparison: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``comparison.json`` and ``comparison.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / COMPARISON_JSON
    models = [  # evaluation runs relative to the file (the folder may move)
        {**m, "run_dir": os.path.relpath(m["run_dir"], directory.resolve())}
        if m.get("run_dir") and Path(m["run_dir"]).is_absolute()
        else m
        for m in comparison["models"]
    ]
    ckpt.write_json(json_path, {**comparison, "models": models})
    md_path = directory / COMPARISON_MD
    md_path.write_text(comparison_markdown(comparison), encoding="utf-8")
    return json_path, md_path


def _cell(score: dict[str, Any] | None) -> str:
    if not score or score.get("value") is None or (isinstance(score["value"], float) and math.isnan(score["value"])):
        return "failed"
    low, high = score.get("ci_low"), score.get("ci_high")
    interval = (
        f" [{low:.2f}, {high:.2f}]"
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not math.isnan(low)
        else ""
    )
    return f"{score['value']:.3f}{interval}"


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """One row per task, one column per model (value [95% CI]), plus the mean of each column."""
    models = comparison["models"]
    header = "| task | metric | " + " | ".join(f"{m['label']} ({m['kind']})" for m in models) + " |"
    lines = [header, "|" + "---|" * (len(models) + 2)]
    for task in comparison["tasks"]:
        metric = next((m["scores"][task]["metric"] for m in models if m["scores"].get(task)), "")
        lines.append(f"| {task} | {metric} | " + " | ".join(_cell(m["scores"].get(task)) for m in models) + " |")
    means = []
    for m in models:
        values = [s["value"] for s in m["scores"].values() if s and isinstance(s.get("value"), (int, float))]
        means.append(f"{sum(values) / len(values):.3f}" if values and len(values) == len(comparison["tasks"]) else "-")
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    lines.extend(_improvement_lines(comparison))
    settings = comparison.get("settings") or {}
    note = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    return "\n".join(lines) + (f"\n\nEvaluation settings: {note}\n" if note else "\n")


def _improvement_lines(comparison: dict[str, Any]) -> list[str]:
    """The table of paired differences against the base model (empty without a base model)."""
    from taskgrove.report.training import delta_cell

    trained = [m for m in comparison["models"] if "vs_base" in m]
    if not trained:
        return []
    lines = [
        "",
        "Improvement over the base model: the mean paired difference on the same items "
        "[95% paired-bootstrap interval]; * = p < 0.05 (McNemar exact for 0/1 scores)",
        "",
        "| task | " + " | ".join(f"{m['label']} - base" for m in trained) + " |",
        "|" + "---|" * (len(trained) + 1),
    ]
    for task in comparison["tasks"]:
        lines.append(f"| {task} | " + " | ".join(delta_cell(m["vs_base"].get(task)) for m in trained) + " |")
    return lines


def related_runs(output_dir: Path, config_label: str, tasks: Sequence[str]) -> list[ModelEntry]:
    """Finished runs in ``output_dir`` with the same config whose tasks lie within ``tasks``
    (single-task runs of those tasks and multi-task runs on them), sorted singles first."""
    found = []
    if output_dir.is_dir():
        for child in sorted(output_dir.iterdir()):
            if (child / ckpt.RESULT_FILE).is_file() and (child / ckpt.CONFIG_FILE).is_file():
                entry = ModelEntry.from_run(child)
                if entry.config == config_label and entry.trained_on and set(entry.trained_on) <= set(tasks):
                    found.append(entry)
    return sorted(
        found, key=lambda e: (e.kind != "single", tasks.index(e.trained_on[0]) if e.kind == "single" else 0, e.label)
    )
