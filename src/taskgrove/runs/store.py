"""Run directories and crash-safe sample logs.

``results/<run_id>/`` holds ``config.yaml``, ``run.json`` and per task ``<task>/samples.jsonl``
(one line per scenario, written and flushed as each completes) and ``<task>/metrics.json``
(written atomically). A killed run loses at most the sample being written; resume drops a torn
last line and re-runs only missing or errored samples.

One process at a time owns a run folder (:mod:`taskgrove.runs.lock`); run ids and task names
are checked to be plain names, and every path written stays under the run folder. Files are
created 0600: they may hold prompts, outputs and (redacted) endpoints.
"""

from __future__ import annotations

import gc
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from taskgrove.errors import ConfigError
from taskgrove.names import check_run_id, task_path_parts
from taskgrove.redact import redact
from taskgrove.runs.lock import LOCK_FILE, RunLock

SAMPLES_FILE = "samples.jsonl"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261122-103419-3fa2``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def dumps(obj: Any) -> bytes:
    """JSON bytes (orjson); objects JSON cannot hold are written as their ``str``."""
    return orjson.dumps(obj, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SampleWriter:
    """Appends one JSON line per completed sample; each line reaches the OS before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)

    def append(self, record: dict[str, Any]) -> None:
        os.write(self._fd, dumps(record) + b"\n")

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def bulk_loading(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while many long-lived objects are created at once
    (loading samples or a dataset): it would rescan them again and again, finding nothing.
    Collection is only deferred. With ``freeze``, everything alive at the end is moved out of
    the collector's view (``gc.freeze``) so the deferred pass does not rescan it either; the
    caller unfreezes when those objects' work is over (the executor does, at the end of a run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a samples file; a torn last line (killed mid-write) is skipped."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            if number == len(lines):  # the torn tail of a killed run
                continue
            raise ConfigError(f"{path}: line {number} is not valid JSON") from None


class TaskStore:
    """The files of one task inside a run directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.samples_path = directory / SAMPLES_FILE
        self.metrics_path = directory / METRICS_FILE

    def records(self) -> list[dict[str, Any]]:
        """Stored records, one per scenario id (the last line of an id wins)."""
        if not self.samples_path.exists():
            return []
        by_id: dict[str, dict[str, Any]] = {}
        with bulk_loading():
            for record in read_records(self.samples_path):
                by_id[record["id"]] = record
        return list(by_id.values())

    def prepare_resume(self, defaults: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Keep only completed records (the file is rewritten atomically) and return them; keys of
        ``defaults`` are added to records that lack them (e.g. the model of an earlier session)."""
        kept = [r for r in self.records() if not r.get("error")]
        for record in kept if defaults else ():
            for key, value in defaults.items():  # type: ignore[union-attr]
                record.setdefault(key, value)
        if self.samples_path.exists():
            atomic_write(self.samples_path, b"".join(dumps(r) + b"\n" for r in kept))
        return kept

    def writer(self) -> SampleWriter:
        return SampleWriter(self.samples_path)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        atomic_write(self.metrics_path, orjson.dumps(metrics, default=str, option=orjson.OPT_INDENT_2))

    def metrics(self) -> dict[str, Any] | None:
        if not self.metrics_path.exists():
            return None
        return orjson.loads(self.metrics_path.read_bytes())


class RunStore:
    """A run directory: its config, its status file and its tasks' stores."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_id = root.name
        self._lock = RunLock(root)

    @classmethod
    def create(cls, output_dir: str | Path, run_id: str | None = None) -> RunStore:
        """A new run folder, created atomically and locked: of several processes creating the
        same ``run_id`` at once exactly one succeeds (the others get a :class:`ConfigError`)."""
        parent = Path(output_dir)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the output folder {parent}: {exc.strerror or exc}") from None
        for _ in range(100):
            root = parent / (check_run_id(run_id) if run_id else new_run_id())
            try:
                root.mkdir()
            except FileExistsError:
                if run_id is None:
                    continue  # a generated id that happens to be taken: draw another
                return cls._claim_existing(root)
            except OSError as exc:
                raise ConfigError(f"cannot create the run folder {root}: {exc.strerror or exc}") from None
            store = cls(root)
            store.lock()
            return store
        raise ConfigError(f"could not find a free run id under {parent}")

    @classmethod
    def _claim_existing(cls, root: Path) -> RunStore:
        """An existing folder becomes the run only if it is empty (and nobody holds it)."""
        if not root.is_dir():
            raise ConfigError(f"{root} exists and is not a folder; choose another --run_id")
        store = cls(root)
        store.lock()
        if any(p.name != LOCK_FILE for p in root.iterdir()):
            store.unlock()
            raise ConfigError(f"Run directory {root} already exists; use --resume {root.name} to continue it")
        return store

    def lock(self) -> None:
        """Own the run folder until :meth:`unlock` or the process ends; raise
        :class:`~taskgrove.runs.lock.RunBusyError` naming the holder if another process owns it."""
        self._lock.acquire()

    def unlock(self) -> None:
        self._lock.release()

    def inside(self, path: Path) -> Path:
        """``path`` if it resolves to a place under the run folder; else :class:`ConfigError`."""
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved != root and root not in resolved.parents:
            raise ConfigError(f"refusing to write {path}: it is outside the run folder {self.root}")
        return path

    @classmethod
    def open(cls, run: str | Path, output_dir: str | Path = "results") -> RunStore:
        """Open an existing run by directory path or by id under ``output_dir``."""
        for candidate in (Path(run), Path(output_dir) / str(run)):
            if (candidate / RUN_FILE).exists() or (candidate / CONFIG_FILE).exists():
                return cls(candidate)
        raise ConfigError(f"No run directory found for {run!r} (looked in {run} and {Path(output_dir) / str(run)})")

    def task(self, name: str) -> TaskStore:
        """The store of task ``name`` (``group/leaf`` -> ``<run>/group/leaf/``); names that could
        leave the run folder raise :class:`ConfigError`."""
        return TaskStore(self.inside(self.root.joinpath(*task_path_parts(name))))

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        atomic_write(self.root / CONFIG_FILE, yaml.safe_dump(redact(config), sort_keys=False).encode())

    def read_config(self) -> dict[str, Any]:
        import yaml

        path = self.root / CONFIG_FILE
        if not path.exists():
            raise ConfigError(f"{path} is missing: is {self.root} a taskgrove run directory?")
        return yaml.safe_load(path.read_text()) or {}

    def write_status(self, status: dict[str, Any]) -> None:
        atomic_write(self.root / RUN_FILE, orjson.dumps(redact(status), default=str, option=orjson.OPT_INDENT_2))

    def read_status(self) -> dict[str, Any]:
        path = self.root / RUN_FILE
        return orjson.loads(path.read_bytes()) if path.exists() else {}

    def task_names(self) -> list[str]:
        """Tasks that have a samples file in this run."""
        return sorted(str(p.parent.relative_to(self.root)).replace(os.sep, "/") for p in self.root.rglob(SAMPLES_FILE))
