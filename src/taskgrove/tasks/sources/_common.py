"""What every data-source scheme shares: the error type, the row type and the local readers.

Scheme modules import this one; it imports none of them.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from taskgrove.errors import TaskgroveError

Row = dict[str, Any]

LOCAL_FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "parquet")
OPENAI_EVALS_ENV = "TASKGROVE_OPENAI_EVALS_DIR"
_LFS_PREFIX = "version https://git-lfs.github.com/spec/"


class SourceError(TaskgroveError, ValueError):
    """A data source cannot be read; the message names the source, the file and a fix."""


def suffix_list() -> str:
    """The local file suffixes a bare path may end in, for error messages."""
    return ", ".join(f".{f}" for f in LOCAL_FORMATS) + " (or .jsonl.gz/.json.gz/.csv.gz)"


def format_of(path: str) -> str | None:
    """The local format a path's suffix names (``.gz`` allowed except for parquet), else None."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(".parquet"):
            return None
    for fmt in LOCAL_FORMATS:
        if name.endswith("." + fmt):
            return fmt
    return None


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """``path`` with ``~`` expanded, relative to ``base_dir`` (else the current directory)."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = (Path(base_dir) if base_dir is not None else Path.cwd()) / p
    return p


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text handle on ``path``, gunzipped when it ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _lfs_error(source: str, path: Path) -> SourceError:
    return SourceError(
        f"{source}: {path} is a Git LFS pointer, not the data itself. Fetch the real file "
        f"(`git lfs pull` in that checkout), install a distribution that ships the data "
        f"(e.g. `pip install --no-deps evals` from PyPI), or point the source at a folder with "
        f"the real files (option root / ${OPENAI_EVALS_ENV})."
    )


def iter_jsonl(source: str, path: Path) -> Iterator[tuple[int, Row]]:
    """``(line index, object)`` for each non-blank line; errors name the file and line."""
    try:
        handle = open_text(path)
    except OSError as exc:
        raise SourceError(f"{source}: cannot open {path}: {exc}") from exc
    with handle, utf8_errors(source, path):
        for index, line in enumerate(handle):
            if index == 0 and line.startswith(_LFS_PREFIX):
                raise _lfs_error(source, path)
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:  # orjson is fast; the standard library says where a bad line breaks
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(
                        f"{source}: malformed JSON in {path} at line {index + 1}, column "
                        f"{exc.colno}: {exc.msg}. Fix or remove that line."
                    ) from exc
            if not isinstance(value, dict):
                raise SourceError(
                    f"{source}: {path} line {index + 1} is a JSON {type(value).__name__}, "
                    f"not an object; each line must be one JSON object."
                )
            yield index, value


@contextmanager
def utf8_errors(source: str, path: Path) -> Iterator[None]:
    """Turn a UnicodeDecodeError inside the block into a :class:`SourceError` naming ``path``."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise SourceError(f"{source}: {path} is not UTF-8 text ({exc}); re-save it as UTF-8.") from exc


def load_json(source: str, path: Path) -> Any:
    """The whole JSON document in ``path`` (optionally ``.gz``); errors name the file."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
        if raw.startswith(_LFS_PREFIX.encode()):
            raise _lfs_error(source, path)
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{source}: {path} is not UTF-8 text ({exc}); re-save it as UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{source}: malformed JSON in {path} at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    except OSError as exc:
        raise SourceError(f"{source}: cannot read {path}: {exc}") from exc
