"""Runs many tasks: validate everything first, isolate each task's failure, raise one MultiTaskError.

How tasks and their samples are scheduled onto the model (one task after another with a window
of ``concurrency`` samples, or the whole run at once for a local model) is
:mod:`taskgrove.runner.scheduling`; each completed sample is appended to the task's
``samples.jsonl`` before it counts as done.
"""

from __future__ import annotations

import asyncio
import gc
import platform
import time
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from taskgrove._version import __version__
from taskgrove.config import RunConfig, TaskOverrides
from taskgrove.core import Model, Task
from taskgrove.errors import ConfigError, MultiTaskError
from taskgrove.registry import TaskRegistry
from taskgrove.runner.jobs import Job, sampling_of
from taskgrove.runner.model import ConfiguredModel, check_model_spec, default_model_factory
from taskgrove.runner.outcome import RunResult, TaskOutcome
from taskgrove.runner.progress import Progress, make_progress
from taskgrove.runner.results import inherited_settings, metrics_document, source_identities, write_task_file
from taskgrove.runner.safety import SafetyMixin, raise_duplicates
from taskgrove.runner.scheduling import SchedulingMixin, whole_run_model
from taskgrove.runs.flame_csv import FlameCsv
from taskgrove.runs.store import RunStore, TaskStore, bulk_loading
from taskgrove.tasks.builtin import build_registry

ModelFactory = Callable[[RunConfig], Model]


def task_config_targets(registry: TaskRegistry, task_names: list[str], keys: Iterable[str]) -> dict[str, str]:
    """Full task name -> ``task_config`` key; each key must name exactly one of ``task_names``."""
    targets: dict[str, str] = {}
    for key in keys:
        names = registry.resolve([key])
        if len(names) != 1:
            raise ConfigError(f"task_config key '{key}' names {len(names)} tasks; use one task's name")
        if names[0] not in task_names:
            raise ConfigError(f"task_config key '{key}' is not among the tasks of this run")
        targets[names[0]] = key
    return targets


class Executor(SchedulingMixin, SafetyMixin):
    """Executes a validated RunConfig over a task registry.

    In evaluate mode a task with a ``rescore(record)`` method (declarative tasks) scores stored
    replies directly; other tasks, and records it declines, are re-run against a replay model.
    ``fast_rescoring = False`` forces the replay path (tests compare the two).
    """

    fast_rescoring = True

    def __init__(
        self,
        config: RunConfig,
        registry: TaskRegistry | None = None,
        *,
        model: Model | None = None,
        model_factory: ModelFactory | None = None,
        progress: Progress | None = None,
        store: RunStore | None = None,
    ) -> None:
        if config.mode is None:
            raise ConfigError("mode is required: inference, evaluate or run")
        if not config.tasks:
            raise ConfigError("tasks is required: name at least one task, group or glob")
        self.config = config
        self.registry = registry if registry is not None else build_registry(config.include_path)
        self.task_names = self.registry.resolve(config.tasks)
        self._check_task_config()
        self._check_names()
        if config.mode != "evaluate" and model is None and model_factory is None:
            check_model_spec(config)  # a usage error, before any folder exists
        self._source_model: str | None = None  # evaluate: the model of the run being re-scored
        self.source = self._evaluation_source() if config.mode == "evaluate" else None
        self._source_tasks = source_identities(self.registry, self.source or {}, self.config.rescore_changed)
        self._model = model
        self._loaded_model: Model | None = None
        self._model_error: Exception | None = None
        self._model_factory = model_factory or default_model_factory
        self.progress = progress
        self.outcomes = {name: TaskOutcome(name) for name in self.task_names}
        self.store = store or self._open_store()

    # --- validation -----------------------------------------------------------------------------
    def _check_task_config(self) -> None:
        self._aliases = task_config_targets(self.registry, self.task_names, self.config.task_config)

    def _evaluation_source(self) -> dict[str, TaskStore | FlameCsv]:
        """For evaluate mode: the stored samples of each task, from a run dir or a samples file."""
        assert self.config.file_name or self.config.resume
        path = Path(self.config.file_name or self.config.resume or "")
        if path.is_file():
            if len(self.task_names) != 1:
                raise ConfigError(f"{path} holds one task's samples; name exactly one task, not {len(self.task_names)}")
            if path.suffix == ".csv":  # a FLaME inference result file
                return {self.task_names[0]: FlameCsv(path, self.task_names[0])}
            if path.suffix != ".jsonl":
                raise ConfigError(
                    f"{path}: evaluate reads taskgrove samples files (.jsonl), run directories or FLaME result CSVs"
                )
            store = TaskStore(path.parent)
            store.samples_path = path
            self._hold_source_around(path.parent)
            return {self.task_names[0]: store}
        if (path / "samples.jsonl").is_file() and len(self.task_names) == 1:
            self._hold_source_around(path)
            return {self.task_names[0]: TaskStore(path)}
        run = RunStore.open(path, self.config.output_dir)
        self._hold_source(run)
        self._source_model = run.read_status().get("model")
        sources: dict[str, TaskStore | FlameCsv] = {}
        missing = []
        for name in self.task_names:
            task_store = run.task(name)
            if task_store.samples_path.exists():
                sources[name] = task_store
            else:
                missing.append(name)
        if missing:
            raise ConfigError(f"{run.root} has no stored samples for: {', '.join(missing)}")
        return sources

    def _open_store(self) -> RunStore:
        if self.config.resume and self.config.mode != "evaluate":
            store = RunStore.open(self.config.resume, self.config.output_dir)
            store.lock()  # before anything is read for the resume: one process owns the run
            self._check_resume(store)
            return store
        return RunStore.create(self.config.output_dir, self.config.run_id)  # created atomically, locked

    # --- running --------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every task; raise :class:`MultiTaskError` at the end if any failed. The run folder
        stays locked until the final status is written."""
        try:
            return self._run_locked()
        finally:
            self._release()

    def _run_locked(self) -> RunResult:
        self.progress = self.progress or make_progress(self.config.progress)
        self._register_secrets()
        if self._resume_changes:
            self.progress.message(f"resuming with changed settings ({'; '.join(self._resume_changes)})")
        self.store.write_config(self.config.to_yaml_dict())
        started = self._started = time.time()
        self._write_status("running", started)
        # Everything alive now (modules, the task tree, models) lives as long as the run: keep the
        # cyclic GC from rescanning it while completed records pile up (about 20% of harness time).
        gc.freeze()
        try:
            asyncio.run(self._run_all())
        except KeyboardInterrupt:
            for outcome in self.outcomes.values():
                if outcome.status in ("pending", "running"):
                    outcome.status = "interrupted"
            self._write_status("interrupted", started)
            raise
        finally:
            gc.unfreeze()
            self.progress.stop()
        result = RunResult(self.store, self.outcomes)
        self._write_status("failed" if result.errors else "completed", started)
        if result.errors:
            raise MultiTaskError(result.errors)
        return result

    async def _run_all(self) -> None:
        whole_run = whole_run_model(self.config, self._model)
        if whole_run is None:  # a py: factory's model (usually cheap to build) tells once built
            try:
                whole_run = bool(getattr(self._get_model(), "schedules_whole_run", False))
            except Exception:  # kept in _model_error: each task that needs the model reports it
                whole_run = False
        self._whole_run = whole_run
        try:
            await self._schedule_tasks()
        finally:
            closer = getattr(self._loaded_model, "aclose", None) if self._model is None else None
            if closer is not None:
                await closer()

    @property
    def model_name(self) -> str | None:
        """The model the outputs come from: the loaded model's name (the embedded default has one
        too), else for evaluate the source run's model, else the ``--model`` value."""
        model = self._model or self._loaded_model
        if model is not None:
            return model.name
        return self._source_model or self.config.model

    def _get_model(self) -> Model:
        """The run's model, created on first use (after the first task's data loaded fine; a
        ``py:`` factory's before the tasks start, to learn how to schedule them)."""
        if self._model is not None:
            return self._model
        if self._model_error is not None:
            raise self._model_error  # a model that failed to load is not loaded again for each task
        if self._loaded_model is None:
            try:
                # the model and the libraries it imports (torch, transformers: ~400k objects) live
                # as long as the run: unfrozen, the cyclic GC rescans them while they pile up (7
                # full passes for the embedded model, ~1 s of its ~4 s load); the run's end unfreezes
                with bulk_loading(freeze=True):
                    self._loaded_model = self._model_factory(self.config)
                bind = getattr(self._loaded_model, "bind_run_folder", None)  # e.g. --batch: ids for --resume
                if bind is not None:
                    bind(self.store.root)
            except Exception as exc:
                self._model_error = exc
                raise
        return self._loaded_model

    async def _run_task(self, name: str, outcome: TaskOutcome) -> None:
        settings = self.config.for_task(name, self._aliases.get(name))
        source_info = self._source_tasks.get(name)
        settings = inherited_settings(settings, source_info)  # evaluate: those of the source run
        task = self.registry.create(name)
        options = dict(settings.options)
        if settings.invalid is not None and hasattr(type(task), "invalid"):  # tasks that parse replies
            options.setdefault("invalid", settings.invalid)
        if settings.prompt_style == "completion" and getattr(task, "prompt_style", None) is None:
            raise ConfigError(f"task {name} has no completion-style prompts (prompt_style is for declarative tasks)")
        task.configure(
            prompt_format=settings.prompt_format,
            num_fewshot=settings.num_fewshot,
            seed=settings.seed,
            split=settings.split,
            **({"prompt_style": settings.prompt_style} if settings.prompt_style is not None else {}),
            **options,
        )
        task_store = self.store.task(name)
        write_task_file(task_store, task, settings)
        kept: list[dict[str, Any]] = []
        with bulk_loading(freeze=True):  # scenarios and stored records live through the task
            if self.config.mode == "evaluate":
                assert self.source is not None
                jobs = self._rescoring_jobs(task, name, self.source[name], settings)
            else:
                kept = self._resumed_records(task_store) if self.config.resume else []
                done_ids = {record["id"] for record in kept}
                jobs = self._inference_jobs(task, settings, done_ids)
        if jobs and self.config.mode != "evaluate":
            model = ConfiguredModel(self._get_model(), sampling_of(settings))
            for job in jobs:
                job.model = model
        outcome.skipped_samples = len(kept)
        failed: list[dict[str, Any]] = []
        completed = await self._run_jobs(name, jobs, task, task_store, settings, outcome, failed)
        if self.config.mode in ("run", "evaluate"):
            document = metrics_document(
                task,
                name,
                run_id=self.store.run_id,
                model=self.model_name,
                config=self.config,
                settings=settings,
                records=kept + completed,
                failed=failed,
                source=source_info,
            )
            outcome.metrics = document["metrics"]
            outcome.primary_metric = task.primary_metric
            task_store.write_metrics(document)

    def _inference_jobs(self, task: Task, settings: TaskOverrides, done: set[str]) -> list[Job]:
        scenarios = task.get_dataset(settings.split or "test")
        if settings.limit is not None:
            scenarios = islice(scenarios, settings.limit)
        jobs = []
        num_samples = settings.num_samples or 1
        seen: set[str] = set()
        duplicates: list[str] = []
        for index, scenario in enumerate(scenarios):
            sample_id = task.scenario_id(scenario, index)
            if sample_id in seen:
                duplicates.append(sample_id)
            seen.add(sample_id)
            if sample_id not in done:
                jobs.append(Job(sample_id, index, scenario, None, num_samples))
        if duplicates:
            raise_duplicates(duplicates)
        return jobs

    def _rescoring_jobs(
        self, task: Task, name: str, source: TaskStore | FlameCsv, settings: TaskOverrides
    ) -> list[Job]:
        """One job per stored record (of this task: see ``_checked_source_records``; a FLaME CSV's
        rows are scored as this task's); its replay model is built when the job runs."""
        if isinstance(source, FlameCsv):
            records = source.records(task)
        else:
            records = self._checked_source_records(task, name, source)
        if settings.limit is not None:
            records = records[: settings.limit]
        return [
            Job(r["id"], r.get("index", 0), r.get("scenario"), None, len(r.get("outputs") or ()), stored=r)
            for r in records
        ]

    def _batching(self) -> dict[str, Any]:
        """``{"batching": ...}`` when the run's model batches on this machine and reports how."""
        report = getattr(self._model or self._loaded_model, "batch_report", None)
        value = report() if callable(report) else None
        return {"batching": value} if isinstance(value, dict) else {}

    def _write_status(self, status: str, started: float) -> None:
        self._last_status = time.monotonic()
        self.store.write_status(
            {
                **self._status_extra(),
                "run_id": self.store.run_id,
                "mode": self.config.mode,
                "status": status,
                "model": self.model_name,
                "started": started,
                "seconds": round(time.time() - started, 3),
                "tasks": {name: o.to_json() for name, o in self.outcomes.items()},
                "versions": {"taskgrove": __version__, "python": platform.python_version()},
                **self._batching(),
            }
        )


def run(
    config: RunConfig,
    registry: TaskRegistry | None = None,
    *,
    model: Model | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Validate and run ``config``; raises :class:`MultiTaskError` if any task failed."""
    return Executor(config, registry, model=model, progress=progress).run()
