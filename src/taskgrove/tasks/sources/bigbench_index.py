"""The BIG-bench tasks on disk: :func:`list_bigbench_tasks` scans them and keeps an index,
:func:`read_bigbench_index` reads that index back cheaply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from taskgrove.tasks.sources._common import SourceError
from taskgrove.tasks.sources.bigbench_rows import (
    bigbench_root,
    bigbench_subtasks,
    default_bigbench_root,
    distinct_examples,
    read_bigbench_json,
)

Kind = Literal["multiple_choice", "generative", "mixed"]


@dataclass(frozen=True)
class BigBenchTaskInfo:
    """One BIG-bench task (or subtask) found on disk."""

    name: str
    subtask: str | None
    keywords: tuple[str, ...]
    kind: Kind
    n_examples: int
    description: str = ""

    @property
    def full_name(self) -> str:
        """``task`` or ``task/subtask``."""
        return f"{self.name}/{self.subtask}" if self.subtask else self.name

    @property
    def source(self) -> str:
        """The source string that loads this task's rows."""
        return f"bigbench:{self.full_name}"


_INDEX_NAME = ".taskgrove-index.json"
_INDEX_VERSION = 2


def _scan_bigbench_file(source: str, path: Path) -> dict[str, Any]:
    data = read_bigbench_json(source, path)
    examples = [e for _, e in distinct_examples(data.get("examples", []))]
    scored = bool(examples) and all(isinstance(e.get("target_scores"), dict) for e in examples)
    with_target = bool(examples) and all("target" in e for e in examples)
    # Some tasks give both; their preferred score says how BIG-bench grades them (arithmetic:
    # exact_str_match -> generative; color: multiple_choice_grade -> multiple choice).
    mc = scored and not (with_target and data.get("preferred_score", "") != "multiple_choice_grade")
    return {
        "name": str(data.get("name", path.parent.name)),
        "keywords": [str(k) for k in data.get("keywords", [])],
        "description": str(data.get("description", "")),
        "kind": "multiple_choice" if mc else "generative",
        "n_examples": len(examples),
    }


def _load_index(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _save_index(path: Path, files: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"version": _INDEX_VERSION, "files": files}), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only folder only costs a rescan next time
        tmp.unlink(missing_ok=True)


def list_bigbench_tasks(
    root: str | os.PathLike[str] | None = None, *, subtasks: bool = True, use_index: bool = True
) -> list[BigBenchTaskInfo]:
    """The BIG-bench tasks under ``root`` (default: :func:`default_bigbench_root`), by name.

    With ``subtasks=True`` a task with subtasks gives one entry per subtask (with the
    subtask's own keywords); with ``False`` one entry per task, summing examples, whose kind is
    ``"mixed"`` when its subtasks differ. ``kind`` is ``multiple_choice`` when every example has
    ``target_scores``, unless every example also has a ``target`` and the task's
    ``preferred_score`` is not ``multiple_choice_grade`` (then ``generative``). Counting
    examples means parsing every file (20-30 s for the full 1.7 GB set), so the results are
    kept in ``<root>/.taskgrove-index.json`` keyed by file size and mtime (skipped silently if
    the folder is read-only); later calls only stat the files (~50 ms).
    """
    source = "bigbench"
    base = bigbench_root(source, root)
    index_path = base / _INDEX_NAME
    cached = _load_index(index_path) if use_index else {}
    fresh: dict[str, Any] = {}

    def scan(path: Path) -> dict[str, Any]:
        rel = path.relative_to(base).as_posix()
        stat = path.stat()
        entry = cached.get(rel)
        if not (
            isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns
        ):
            entry = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                **_scan_bigbench_file(source, path),
            }
        fresh[rel] = entry
        return entry

    def info(task: str, subtask: str | None, entry: Mapping[str, Any]) -> BigBenchTaskInfo:
        return BigBenchTaskInfo(
            name=task,
            subtask=subtask,
            keywords=tuple(entry["keywords"]),
            kind=entry["kind"],
            n_examples=int(entry["n_examples"]),
            description=entry["description"],
        )

    result: list[BigBenchTaskInfo] = []
    for task_dir in sorted(p for p in base.iterdir() if (p / "task.json").is_file()):
        task = task_dir.name
        top = scan(task_dir / "task.json")
        subs = [(sub, scan(task_dir / sub / "task.json")) for sub in bigbench_subtasks(task_dir)]
        if not subs:
            result.append(info(task, None, top))
        elif subtasks:
            if top["n_examples"]:
                result.append(info(task, None, top))
            result.extend(info(task, sub, entry) for sub, entry in subs)
        else:
            parts = ([top] if top["n_examples"] else []) + [entry for _, entry in subs]
            kinds = {entry["kind"] for entry in parts}
            kind: Kind = kinds.pop() if len(kinds) == 1 else "mixed"
            merged = {**top, "kind": kind, "n_examples": sum(e["n_examples"] for e in parts)}
            result.append(info(task, None, merged))
    if use_index and fresh != cached:
        _save_index(index_path, fresh)
    return result


def read_bigbench_index(
    root: str | os.PathLike[str] | None = None,
) -> list[BigBenchTaskInfo] | None:
    """The task files recorded in the index of ``root`` (default: :func:`default_bigbench_root`),
    read without opening or even stat-ing a task file, so it is cheap enough for start-up.

    One entry per ``task.json``, sorted by name: a task with subtasks gives its own entry
    (``subtask=None``, usually with no examples; its keywords are the task's) and one per subtask.
    The entries are as of the last :func:`list_bigbench_tasks` call, which writes the index (so
    does ``scripts/fetch_bigbench.py``); files added or changed since are not seen. ``None`` when
    there is no index of the current version (or no folder).
    """
    base = Path(root).expanduser() if root is not None else default_bigbench_root()
    index_path = base / _INDEX_NAME
    files = _load_index(index_path)
    if not files:
        return None
    result: list[BigBenchTaskInfo] = []
    for rel, entry in files.items():
        parts = rel.split("/")
        if len(parts) not in (2, 3) or parts[-1] != "task.json":
            raise SourceError(f"{index_path}: unexpected entry {rel!r}; delete the index to rebuild it.")
        try:
            result.append(
                BigBenchTaskInfo(
                    name=parts[0],
                    subtask=parts[1] if len(parts) == 3 else None,
                    keywords=tuple(entry["keywords"]),
                    kind=entry["kind"],
                    n_examples=int(entry["n_examples"]),
                    description=entry["description"],
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                f"{index_path}: malformed entry {rel!r} ({exc!r}); delete the index to rebuild it."
            ) from exc
    return sorted(result, key=lambda info: (info.name, info.subtask or ""))
