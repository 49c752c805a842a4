"""The ``file:`` data source: local JSONL, JSON, CSV and parquet files.

``file:<path>`` or a bare path ending in ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` (each
optionally ``.gz``, except parquet)
    Relative paths are resolved against ``base_dir`` (the task YAML's folder), else the current
    directory. Splits, in this order:

    1. a ``{split}`` placeholder in the path (``data/{split}.jsonl``) picks one file per split;
    2. otherwise, if the file's *first* row has the field ``split_field`` (default ``"split"``),
       only the rows whose value equals the split are kept (none matching is an error);
    3. otherwise the whole file is used for every split (``split_field=None`` forces this).

    Options: ``split_field``, ``format`` (``jsonl``/``json``/``csv``/``parquet``, overriding the
    extension), ``field`` (the key holding the list of rows in a ``.json`` object; an object
    keyed by split names also works), ``delimiter`` (csv). JSONL, CSV and parquet are streamed;
    a ``.json`` file is read whole. CSV values stay strings. ``pyarrow`` is imported only to
    read a parquet file.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskgrove.tasks.sources._common import (
    LOCAL_FORMATS,
    Row,
    SourceError,
    format_of,
    iter_jsonl,
    load_json,
    open_text,
    resolve_path,
    suffix_list,
    utf8_errors,
)


def _iter_json(source: str, path: Path, split: str, field: str | None) -> Iterator[Row]:
    data = load_json(source, path)
    if isinstance(data, dict):
        if field is not None:
            if field not in data:
                raise SourceError(
                    f"{source}: {path} has no key {field!r} (option field); keys: {', '.join(map(str, data))}."
                )
            data = data[field]
        elif isinstance(data.get(split), list):
            data = data[split]
        else:
            raise SourceError(
                f"{source}: {path} holds a JSON object, not a list of rows, and has no key "
                f"{split!r} for the split; keys: {', '.join(map(str, data))}. Set option "
                f"`field` to the key that holds the rows."
            )
    if not isinstance(data, list):
        raise SourceError(f"{source}: expected a list of row objects in {path}.")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise SourceError(f"{source}: row {index} of {path} is a {type(row).__name__}, not an object.")
        yield row


def _iter_csv(source: str, path: Path, delimiter: str) -> Iterator[Row]:
    with open_text(path) as handle, utf8_errors(source, path):
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            if None in row:
                raise SourceError(
                    f"{source}: {path} line {reader.line_num} has more fields than the header "
                    f"({len(reader.fieldnames or [])} columns)."
                )
            yield dict(row)


def _open_parquet(source: str, path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError(
            f"{source}: reading {path} needs pyarrow, which is not installed: "
            f"`pip install pyarrow`, or convert the file to .jsonl/.csv."
        ) from exc
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError types
        raise SourceError(f"{source}: cannot read parquet file {path}: {exc}") from exc


def _iter_parquet(parquet: Any) -> Iterator[Row]:
    for batch in parquet.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _read_local(source: str, path: Path, fmt: str, split: str, field: str | None, delimiter: str) -> Iterator[Row]:
    if fmt == "jsonl":
        return (row for _, row in iter_jsonl(source, path))
    if fmt == "json":
        return _iter_json(source, path, split, field)
    if fmt == "csv":
        return _iter_csv(source, path, delimiter)
    return _iter_parquet(_open_parquet(source, path))


def _local_format(source: str, raw: str, fmt: str | None) -> str:
    if not raw:
        raise SourceError(f"{source}: expected file:<path>.")
    detected = fmt or format_of(raw)
    if detected not in LOCAL_FORMATS:
        raise SourceError(
            f"{source}: cannot tell the file format; use a path ending in {suffix_list()} or "
            f"set option format to one of {', '.join(LOCAL_FORMATS)}."
        )
    return detected


def _placeholder_splits(pattern: Path) -> list[str]:
    """Split names for which a file matching ``pattern`` (with ``{split}``) exists."""
    import glob

    pieces = str(pattern).split("{split}")
    wildcard = "*".join(glob.escape(piece) for piece in pieces)
    escaped = [re.escape(piece) for piece in pieces]
    # the first {split} captures the name, later ones must repeat it
    regex = re.compile(escaped[0] + r"(?P<split>[^/\\]+)" + "(?P=split)".join(escaped[1:]))
    found = set()
    for name in glob.glob(wildcard):
        match = regex.fullmatch(name)
        if match and Path(name).is_file():
            found.add(match.group("split"))
    return sorted(found)


def file_rows(
    source: str,
    rest: str,
    split: str,
    base_dir: Path | None,
    *,
    split_field: str | None = "split",
    format: str | None = None,
    field: str | None = None,
    delimiter: str = ",",
) -> Iterator[Row]:
    """Rows of the ``file:`` source ``rest`` for ``split`` (see the module docstring)."""
    raw = rest
    fmt = _local_format(source, raw, format)
    templated = "{split}" in raw
    path = resolve_path(raw.replace("{split}", split), base_dir)
    if not path.is_file():
        hint = ""
        if templated:
            have = _placeholder_splits(resolve_path(raw, base_dir))
            hint = f" Splits found for this pattern: {', '.join(have) or 'none'}."
        relative = base_dir is not None and not Path(os.path.expanduser(raw)).is_absolute()
        where = f" (relative to {base_dir})" if relative else ""
        raise SourceError(
            f"{source}: data file {path} for split {split!r} does not exist{where}.{hint} "
            f"Create it or fix the task's source path."
        )
    rows = _read_local(source, path, fmt, split, field, delimiter)
    if templated or split_field is None:
        return rows
    return _filter_split(source, path, rows, split, split_field)


def _filter_split(source: str, path: Path, rows: Iterator[Row], split: str, split_field: str) -> Iterator[Row]:
    first = next(rows, None)
    if first is None:
        return
    if split_field not in first:
        yield first
        yield from rows
        return
    seen: set[str] = set()
    matched = False
    for row in _chain_one(first, rows):
        value = row.get(split_field)
        if value == split:
            matched = True
            yield row
        else:
            seen.add(str(value))
    if not matched:
        raise SourceError(
            f"{source}: no row of {path} has {split_field}={split!r}; values present: "
            f"{', '.join(sorted(seen))}. Map the task's split to one of them, or set "
            f"split_field: null to use the whole file for every split."
        )


def _chain_one(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def file_splits(
    source: str,
    rest: str,
    base_dir: Path | None,
    *,
    split_field: str | None = "split",
    format: str | None = None,
    field: str | None = None,
    delimiter: str = ",",
) -> list[str]:
    """Split names of the ``file:`` source ``rest``; empty when every split reads the same rows."""
    raw = rest
    fmt = _local_format(source, raw, format)
    if "{split}" in raw:
        return _placeholder_splits(resolve_path(raw, base_dir))
    path = resolve_path(raw, base_dir)
    if not path.is_file():
        raise SourceError(f"{source}: data file {path} does not exist.")
    if fmt == "json":
        data = load_json(source, path)
        if isinstance(data, dict) and field is None:
            return [key for key, value in data.items() if isinstance(value, list)]
    if split_field is None:
        return []
    if fmt == "parquet":
        return _parquet_split_values(source, path, split_field)
    rows = _read_local(source, path, fmt, "", field, delimiter)
    first = next(rows, None)
    if first is None or split_field not in first:
        return []
    values = {str(first.get(split_field)): None}
    for row in rows:
        values.setdefault(str(row.get(split_field)), None)
    return list(values)


def _parquet_split_values(source: str, path: Path, split_field: str) -> list[str]:
    parquet = _open_parquet(source, path)
    if split_field not in parquet.schema_arrow.names:
        return []
    values: dict[str, None] = {}
    for batch in parquet.iter_batches(columns=[split_field]):
        for value in batch.column(0).to_pylist():
            values.setdefault(str(value), None)
    return list(values)
