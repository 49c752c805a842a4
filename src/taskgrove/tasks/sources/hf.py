"""The ``hf:`` data source: a Hugging Face dataset through ``datasets.load_dataset``.

``hf:<path>[:<config>]``
    ``datasets.load_dataset(path, config, split=split, revision=...)``. Options: ``revision``,
    ``data_dir``, ``data_files``, ``streaming``, ``cache_dir``. Rows are the dataset's rows.
    The split name is passed through unchanged: mapping task splits to dataset splits is the
    caller's job. Without the hub and without a cached copy this fails with a :class:`SourceError`
    that says how to work offline. ``datasets`` is imported only when rows are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskgrove.tasks.sources._common import Row, SourceError


def hf_rows(
    source: str,
    rest: str,
    split: str,
    base_dir: Path | None,
    *,
    revision: str | None = None,
    data_dir: str | None = None,
    data_files: Any = None,
    streaming: bool = False,
    cache_dir: str | None = None,
) -> Iterator[Row]:
    """Rows of dataset ``rest`` (``<path>[:<config>]``) for ``split`` (see the module docstring)."""
    path, _, config = rest.partition(":")
    if not path:
        raise SourceError(f"{source}: expected hf:<dataset id>[:<config>], e.g. hf:nyu-mll/glue:sst2.")
    try:
        import datasets
    except ImportError as exc:
        raise SourceError(
            f"{source}: the `datasets` package is not installed (`pip install datasets`); "
            f"or point the task at local files, e.g. source: file:data/{{split}}.jsonl."
        ) from exc
    kwargs = {
        key: value
        for key, value in {
            "revision": revision,
            "data_dir": data_dir,
            "data_files": data_files,
            "cache_dir": cache_dir,
        }.items()
        if value is not None
    }
    if streaming:
        kwargs["streaming"] = True
    what = f"dataset {path!r}" + (f" (config {config!r})" if config else "") + f" split {split!r}"
    try:
        dataset = datasets.load_dataset(path, config or None, split=split, **kwargs)
    except OSError as exc:  # ConnectionError, and DatasetNotFoundError (a FileNotFoundError)
        offline = os.environ.get("HF_DATASETS_OFFLINE") or os.environ.get("HF_HUB_OFFLINE")
        state = "offline mode is on" if offline else "the Hugging Face Hub was unreachable"
        raise SourceError(
            f"{source}: cannot load {what}: {state} or the dataset is not on the hub, and it is "
            f"not in the local datasets cache ({type(exc).__name__}: {exc}). To run offline, "
            f"load it once where the hub is reachable (it is cached under ~/.cache/huggingface, "
            f"or $HF_DATASETS_CACHE) and set HF_DATASETS_OFFLINE=1, which also skips slow "
            f"retries; or export it to files and point the task at them, e.g. "
            f"source: file:data/{{split}}.jsonl (relative to the task YAML's folder)."
        ) from exc
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise SourceError(
                f"{source}: {what} does not exist: {exc}. Map the task's split to one of the dataset's splits."
            ) from exc
        raise SourceError(f"{source}: datasets.load_dataset failed for {what}: {exc}") from exc
    except Exception as exc:
        raise SourceError(f"{source}: datasets.load_dataset failed for {what}: {type(exc).__name__}: {exc}") from exc
    return (dict(row) for row in dataset)


def hf_splits(source: str, rest: str, base_dir: Path | None, **options: Any) -> list[str]:
    """Always empty: a hub dataset's splits are not known without loading it."""
    return []
