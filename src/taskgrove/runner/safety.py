"""The executor's guards: who owns the run, what a resume may change, which stored samples an
evaluate accepts, what each record carries, and how often run.json shows progress.

Mixed into :class:`taskgrove.runner.executor.Executor` (which sets ``config``, ``store``,
``task_names``, ``outcomes`` and ``model_name``); kept apart so the executor stays about running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgrove.core import Task
from taskgrove.errors import ConfigError, TaskgroveError
from taskgrove.names import task_path_parts
from taskgrove.redact import add_secret, redact
from taskgrove.runs.lock import RunBusyError, RunLock
from taskgrove.runs.resume import check_resume, check_spec_hash
from taskgrove.runs.store import RUN_FILE, RunStore, TaskStore

if TYPE_CHECKING:
    from taskgrove.config import RunConfig
    from taskgrove.registry import TaskRegistry
    from taskgrove.runner.outcome import TaskOutcome

STATUS_SECONDS = 2.0
"""While a run goes, run.json is rewritten (atomically) at most this often, after a sample completes."""


class DuplicateScenarioIds(TaskgroveError):
    """A task's dataset gives two scenarios the same id: one of them would silently replace the other."""


def raise_duplicates(ids: list[str]) -> None:
    """Refuse a dataset with repeated scenario ids, naming them (the first ten)."""
    unique = list(dict.fromkeys(ids))
    shown = ", ".join(unique[:10]) + (f", ... ({len(unique)} ids)" if len(unique) > 10 else "")
    raise DuplicateScenarioIds(
        f"{len(ids)} scenario(s) repeat an id already used in this dataset: {shown}; "
        "each scenario needs its own id (samples are stored and resumed by id)"
    )


def spec_hash_of(task: Task) -> str | None:
    """The hash of a task's spec when the task exposes one (``task.spec_hash``, a value or a method)."""
    value = getattr(task, "spec_hash", None)
    if callable(value):
        value = value()
    return str(value) if value else None


def stored_spec_hash(task_store: TaskStore) -> str | None:
    """The spec hash a task's stored samples were produced under (task.json, else metrics.json)."""
    import orjson

    for path in (task_store.directory / "task.json", task_store.metrics_path):
        try:
            value = orjson.loads(path.read_bytes()).get("spec_hash")
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return str(value)
    return None


def _conversation(messages: Any) -> list[tuple[Any, Any]]:
    return [(m.get("role"), m.get("content")) for m in messages or () if isinstance(m, Mapping)]


class SafetyMixin:
    """Locks, resume checks, evaluate-source checks, record stamping and periodic status."""

    config: RunConfig
    registry: TaskRegistry
    store: RunStore
    task_names: list[str]
    outcomes: dict[str, TaskOutcome]
    _resume_changes: tuple[str, ...] = ()
    _stamp_model = False
    _stored_model: str | None = None
    _source_lock: RunLock | None = None
    _last_status = 0.0
    _started = 0.0

    @property
    def model_name(self) -> str | None:  # provided by the executor
        raise NotImplementedError

    def _write_status(self, status: str, started: float) -> None:  # provided by the executor
        raise NotImplementedError

    # --- before anything is created ---------------------------------------------------------------
    def _check_names(self) -> None:
        """Every task name must map to folders inside the run folder (usage error otherwise)."""
        for name in self.task_names:
            task_path_parts(name)

    def _hold_source(self, run: RunStore) -> None:
        """Evaluate reads a run only while no process writes it (shared lock, held while evaluating)."""
        lock = RunLock(run.root, shared=True)
        try:
            lock.acquire()
        except RunBusyError as exc:
            raise RunBusyError(f"cannot evaluate a run that is still being written: {exc}") from None
        self._source_lock = lock

    def _hold_source_around(self, directory: Path) -> None:
        """A task folder (or samples file) given to evaluate: hold the run folder it lies in, if any."""
        for folder in [directory, *directory.parents][:8]:
            if (folder / RUN_FILE).is_file():
                self._hold_source(RunStore(folder))
                return

    def _check_resume(self, store: RunStore) -> None:
        stored = store.read_config()
        self._resume_changes = tuple(
            check_resume(
                stored,
                self.config.to_yaml_dict(),
                allow_changed=self.config.allow_changed_resume,
                where=str(store.root),
            )
        )
        self._stamp_model = bool(self._resume_changes)
        self._stored_model = store.read_status().get("model") or stored.get("model")
        for name in self.task_names:  # before any task starts (and rewrites its files)
            stored_hash = stored_spec_hash(store.task(name))
            if stored_hash is not None:
                current = spec_hash_of(self.registry.create(name))
                allow = self.config.allow_changed_resume
                if check_spec_hash(name, stored_hash, current, allow_changed=allow):
                    self._stamp_model = True
                    self._resume_changes += (f"{name} spec_hash: {stored_hash} -> {current}",)

    # --- while running ----------------------------------------------------------------------------
    def _register_secrets(self) -> None:
        """The API key the run reads from the environment is masked wherever it could be written."""
        add_secret(os.environ.get(self.config.api_key_env or "OPENAI_API_KEY"))

    def _resumed_records(self, task_store: TaskStore) -> list[dict[str, Any]]:
        """The completed records a resume keeps (the file rewritten without errored ones); after a
        changed resume they are stamped with the model that produced them."""
        defaults = {"model": self._stored_model} if self._stamp_model else None
        return task_store.prepare_resume(defaults)

    def _checked_source_records(self, task: Task, name: str, source: TaskStore) -> list[dict[str, Any]]:
        """The stored records evaluate re-scores; records of another task, another spec or with prompts
        this task would not have built are refused (:class:`ConfigError`), never scored."""
        metrics = source.metrics() or {}
        if metrics.get("task") not in (None, name):
            raise ConfigError(f"{source.samples_path} holds samples of task {metrics['task']}, not {name}")
        records = source.records()
        # a spec change is the spec-hash check's to refuse (or allow, with --rescore-changed)
        render = None if getattr(self.config, "rescore_changed", False) else getattr(task, "messages", None)
        for record in records:
            if record.get("task", name) != name:
                raise ConfigError(
                    f"{source.samples_path}: sample {record.get('id')!r} belongs to task {record['task']}, not {name}"
                )
            if callable(render) and record.get("input") and isinstance(record.get("scenario"), Mapping):
                try:
                    expected = render(record["scenario"])
                except Exception as exc:
                    raise ConfigError(
                        f"{source.samples_path}: sample {record.get('id')!r} is not a scenario of {name} "
                        f"({type(exc).__name__}: {exc})"
                    ) from None
                if _conversation(expected) != _conversation(record["input"]):
                    raise ConfigError(
                        f"{source.samples_path}: the prompt of sample {record.get('id')!r} is not the one {name} "
                        "builds for it (samples of another task or prompt version)"
                    )
        return records

    def _finish_record(self, name: str, record: dict[str, Any]) -> None:
        """Stamp a completed record with its task (and model after a changed resume); mask secrets in errors."""
        record["task"] = name
        if self._stamp_model:
            record["model"] = self.model_name
        if record.get("error"):
            record["error"] = redact(record["error"])
        if record.get("rollout_errors"):
            record["rollout_errors"] = redact(record["rollout_errors"])

    def _status_tick(self) -> None:
        """Rewrite run.json with per-task progress if the last write is older than STATUS_SECONDS."""
        if time.monotonic() - self._last_status >= STATUS_SECONDS:
            self._write_status("running", self._started)

    def _status_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"pid": os.getpid()}
        if self._resume_changes:
            extra["changed_on_resume"] = self._resume_changes
        return extra

    def _release(self) -> None:
        """Give up the run folder and the evaluate source (the process may go on to other runs)."""
        self.store.unlock()
        if self._source_lock is not None:
            self._source_lock.release()
            self._source_lock = None
