"""Run directories and crash-safe sample logs.

``results/<run_id>/`` holds ``config.yaml``, ``run.json`` and per task ``<task>/samples.jsonl``
(one line per scenario, written and flushed as each completes) and ``<task>/metrics.json``
(written atomically). A killed run loses at most the sample being written; resume drops a torn
last line and re-runs only missing or errored samples.
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
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SampleWriter:
    """Appends one JSON line per completed sample; each line reaches the OS before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

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

    def prepare_resume(self) -> list[dict[str, Any]]:
        """Keep only completed records (the file is rewritten atomically) and return them."""
        kept = [r for r in self.records() if not r.get("error")]
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

    @classmethod
    def create(cls, output_dir: str | Path, run_id: str | None = None) -> RunStore:
        root = Path(output_dir) / (run_id or new_run_id())
        if root.exists() and any(root.iterdir()):
            raise ConfigError(f"Run directory {root} already exists; use --resume {root.name} to continue it")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @classmethod
    def open(cls, run: str | Path, output_dir: str | Path = "results") -> RunStore:
        """Open an existing run by directory path or by id under ``output_dir``."""
        for candidate in (Path(run), Path(output_dir) / str(run)):
            if (candidate / RUN_FILE).exists() or (candidate / CONFIG_FILE).exists():
                return cls(candidate)
        raise ConfigError(f"No run directory found for {run!r} (looked in {run} and {Path(output_dir) / str(run)})")

    def task(self, name: str) -> TaskStore:
        return TaskStore(self.root.joinpath(*name.split("/")))

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        atomic_write(self.root / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False).encode())

    def read_config(self) -> dict[str, Any]:
        import yaml

        path = self.root / CONFIG_FILE
        if not path.exists():
            raise ConfigError(f"{path} is missing: is {self.root} a taskgrove run directory?")
        return yaml.safe_load(path.read_text()) or {}

    def write_status(self, status: dict[str, Any]) -> None:
        atomic_write(self.root / RUN_FILE, orjson.dumps(status, default=str, option=orjson.OPT_INDENT_2))

    def read_status(self) -> dict[str, Any]:
        path = self.root / RUN_FILE
        return orjson.loads(path.read_bytes()) if path.exists() else {}

    def task_names(self) -> list[str]:
        """Tasks that have a samples file in this run."""
        return sorted(str(p.parent.relative_to(self.root)).replace(os.sep, "/") for p in self.root.rglob(SAMPLES_FILE))
