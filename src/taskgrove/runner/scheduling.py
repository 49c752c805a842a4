"""How the executor schedules tasks and their samples onto the model.

Two ways, chosen once per run (:func:`whole_run_model`):

- **windowed** (remote APIs, user models, evaluate): tasks run one after another; inside a task
  up to ``concurrency`` samples are in flight.
- **whole run** (models that batch on this machine and say so with ``schedules_whole_run``, e.g.
  the local transformers backend): every task of the run starts at once and every pending sample
  of every task is in flight (at most :data:`WHOLE_RUN_WINDOW` across the run; what waits is a
  prompt, not a model output), so the model's batcher sorts the whole run's requests by length and
  a task that finishes early never leaves the model idle. A task's explicit ``concurrency`` in
  ``task_config`` still bounds that task.

Either way each completed sample is appended to its task's ``samples.jsonl`` before it counts, a
task's failure never stops another, and a task that stops early (too many failed samples, or a
cause every sample would repeat) withdraws its samples still waiting for the model.

Mixed into :class:`taskgrove.runner.executor.Executor` (which provides ``_run_task``,
``_finish_record``, ``_status_tick``, ``progress`` and the model).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from taskgrove.core import Model, Task
from taskgrove.errors import TaskFailed
from taskgrove.redact import redact_text
from taskgrove.runner.jobs import Job, complete

if TYPE_CHECKING:
    from taskgrove.config import RunConfig, TaskOverrides
    from taskgrove.runner.outcome import TaskOutcome
    from taskgrove.runner.progress import Progress
    from taskgrove.runs.store import TaskStore

WHOLE_RUN_WINDOW = 50_000
"""Samples in flight across a whole-run-scheduled run (each holds its scenario and prompt)."""


def whole_run_model(config: RunConfig, model: Model | None) -> bool | None:
    """Whether this run's samples all go to one model that batches the whole run itself: the
    given model's ``schedules_whole_run`` flag, else a ``local`` spec (not ``--batch``); ``None``
    for a ``py:`` factory, whose model must be built to tell."""
    if config.mode == "evaluate":
        return False  # each record is re-scored on its own replay model
    if model is not None:
        return bool(getattr(model, "schedules_whole_run", False))
    if (config.model or "").startswith("py:"):
        return None
    if config.batch:
        return False
    from taskgrove.models.spec import parse_spec

    return parse_spec(config.model).kind == "local"


class SchedulingMixin:
    """Runs the tasks (windowed or whole run) and each task's samples."""

    config: RunConfig
    task_names: list[str]
    outcomes: dict[str, TaskOutcome]
    progress: Progress | None
    _aliases: dict[str, str]
    _whole_run = False
    _window: asyncio.Semaphore | None = None  # set for a whole run only
    fast_rescoring: bool

    if TYPE_CHECKING:  # provided by the executor and SafetyMixin (later in its bases)

        async def _run_task(self, name: str, outcome: TaskOutcome) -> None: ...

        def _finish_record(self, name: str, record: dict[str, Any]) -> None: ...

        def _status_tick(self) -> None: ...

    async def _schedule_tasks(self) -> None:
        """Every task, sequentially or (whole run) all at once; returns when all have ended."""
        if not self._whole_run:
            for name in self.task_names:
                await self._run_one(name)
            return
        self._window = asyncio.Semaphore(WHOLE_RUN_WINDOW)
        runs = [asyncio.create_task(self._run_one(name), name=f"taskgrove-task-{name}") for name in self.task_names]
        try:
            await asyncio.gather(*runs)  # _run_one keeps each task's failure to itself
        except BaseException:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise

    async def _run_one(self, name: str) -> None:
        outcome = self.outcomes[name]
        outcome.status = "running"
        began = time.perf_counter()
        try:
            await self._run_task(name, outcome)
            outcome.status = "completed"
        except (asyncio.CancelledError, KeyboardInterrupt):
            outcome.status = "interrupted"
            raise
        except Exception as exc:  # one task's failure never stops the others
            outcome.status = "failed"
            outcome.error = exc
            assert self.progress is not None
            self.progress.message(redact_text(f"[{name}] failed: {type(exc).__name__}: {exc}"))
        finally:
            outcome.seconds = time.perf_counter() - began

    def _samples_in_flight(self, name: str, settings: TaskOverrides, total: int) -> int:
        """How many of a task's samples run at once: its window, or all of them for a whole run
        (unless ``task_config`` gives this task its own ``concurrency``)."""
        if self._whole_run:
            own = self.config.own_overrides(name, self._aliases.get(name))
            if own is None or own.concurrency is None:
                return min(total, WHOLE_RUN_WINDOW)
        return min(settings.concurrency or 1, total)

    async def _run_jobs(
        self,
        name: str,
        jobs: list[Job],
        task: Task,
        task_store: TaskStore,
        settings: TaskOverrides,
        outcome: TaskOutcome,
        failed_records: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Run the jobs concurrently; return the records that completed without error (the
        others are appended to ``failed_records``)."""
        assert self.progress is not None
        total = len(jobs)
        max_failed = self.config.max_failed_samples(total + outcome.skipped_samples, settings)
        bar = self.progress.task(name, total)
        pending = iter(jobs)
        rescore = task.rescore if self.config.mode == "evaluate" and self.fast_rescoring else None
        failures: list[dict[str, Any]] = []
        completed: list[dict[str, Any]] = []
        stopping = False
        usage = outcome.usage
        window = self._window
        workers: list[asyncio.Task[None]] = []

        async def worker(writer: Any) -> None:
            nonlocal stopping
            for job in pending:
                if stopping:
                    return
                async with window or contextlib.nullcontext():
                    record = await complete(task, job, rescore)
                self._finish_record(name, record)
                writer.append(record)
                for key, value in record["usage"].items():
                    usage[key] = usage.get(key, 0) + value
                outcome.samples += 1
                failed = record["error"] is not None
                bar.advance(record["reward"], failed)
                self._status_tick()
                if not failed:
                    completed.append(record)
                else:
                    failures.append(record["error"])
                    failed_records.append(record)
                    if len(failures) > max_failed or (record["error"].get("fatal") and not completed):
                        stopping = True  # past the budget, or a cause every sample would repeat
                        if window is not None:  # withdraw this task's samples waiting for the model
                            current = asyncio.current_task()
                            for other in workers:
                                if other is not current:
                                    other.cancel()
                        return

        writer = task_store.writer()
        try:
            workers += [
                asyncio.create_task(worker(writer))
                for _ in range(max(self._samples_in_flight(name, settings, total), 1))
            ]
            try:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                crashed = next((w.exception() for w in done if not w.cancelled() and w.exception() is not None), None)
                if crashed is not None:  # a bug or a failed write, not a sample's failure
                    raise crashed
            except BaseException:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            writer.close()
            bar.close()
        outcome.failed_samples = len(failures)
        fatal = next((f for f in failures if f.get("fatal")), None)
        if fatal is not None and not completed:
            raise TaskFailed(
                f"{fatal['type']}: {fatal['message']} (every request to this model would fail the same way; "
                f"stopped after {outcome.samples} of {total} samples)"
            )
        if len(failures) > max_failed:
            first = failures[0]
            raise TaskFailed(
                f"{len(failures)} of {outcome.samples} samples failed (max_sample_errors allows {max_failed}); "
                f"first: {first['type']}: {first['message']}"
            )
        return completed
