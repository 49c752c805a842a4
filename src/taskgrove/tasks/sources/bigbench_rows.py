"""The ``bigbench:`` data source: examples of BIG-bench ``task.json`` files.

``bigbench:<task>[/<subtask>]``
    BIG-bench ``task.json`` files under the ``root`` option, else ``$TASKGROVE_BIGBENCH_DIR``,
    else ``~/.cache/taskgrove/bigbench`` (fill it with ``scripts/fetch_bigbench.py``). A task
    with subtasks and no examples of its own yields all its subtasks in name order. Exact
    duplicate examples are dropped, as BIG-bench does. A task.json is parsed whole (the largest,
    78 MB, takes ~0.7 s and ~170 MB).

    Splits: BIG-bench has none, so the distinct inputs of each task.json are shuffled by a
    seeded RNG (option ``seed``, default 0; the seed string also names the task) and the first
    ``train_fraction`` of them (default 0.2, floored, at least one when there are two or more)
    form ``train`` (the few-shot pool), the rest ``test``: a 20/80 split, disjoint by input and
    identical on every machine. ``all`` is every example.

    Rows: ``id`` (``"<task>[/<subtask>]:<index>"``), ``task``, ``subtask``, ``idx``, ``input``,
    ``target`` (str or list, when present), ``target_scores``, ``choices`` (in file order),
    ``label`` (the highest-scoring choice, first on ties) and ``label_index`` (when the example
    is multiple choice), any other example field (``comment`` ...), and the task's ``keywords``,
    ``description``, ``preferred_score``, ``metrics``, ``output_regex``, ``stop_string`` and
    prompt fields (``task_prefix``, ``example_input_prefix``, ``example_output_prefix``,
    ``choice_prefix``, ``append_choices_to_input``, ``few_shot_example_separator``), filled with
    BIG-bench's own defaults (:data:`BIGBENCH_PROMPT_DEFAULTS`) when the file leaves them out.

Listing the tasks on disk is :mod:`taskgrove.tasks.sources.bigbench_index`'s job; building
taskgrove tasks from them is :mod:`taskgrove.tasks.bigbench`'s.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskgrove.tasks.sources._common import Row, SourceError, load_json, resolve_path

BIGBENCH_ENV = "TASKGROVE_BIGBENCH_DIR"
BIGBENCH_SPLITS: tuple[str, ...] = ("train", "test", "all")

#: The values BIG-bench's own JSON task uses when a task.json leaves a prompt field out
#: (``bigbench/api/json_task.py``); rows carry the resolved value of each.
BIGBENCH_PROMPT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "task_prefix": "",
        "example_input_prefix": "\nQ: ",
        "example_output_prefix": "\nA: ",
        "choice_prefix": "\n  choice: ",
        "append_choices_to_input": True,
        "few_shot_example_separator": "\n",
    }
)
#: BIG-bench's post-processing regex for generations when a task sets neither
#: ``output_regex`` nor ``stop_string``.
BIGBENCH_DEFAULT_OUTPUT_REGEX = r"[^\.\?\!\;\n]+"


def default_bigbench_root() -> Path:
    """``$TASKGROVE_BIGBENCH_DIR`` or ``~/.cache/taskgrove/bigbench``."""
    env = os.environ.get(BIGBENCH_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "taskgrove" / "bigbench"


def bigbench_root(source: str, root: str | os.PathLike[str] | None, base_dir: Path | None = None) -> Path:
    """The BIG-bench folder: ``root`` (relative to ``base_dir``), else the default; must exist."""
    if root is not None:
        path = resolve_path(os.fspath(root), base_dir)
    else:
        path = default_bigbench_root()
    if not path.is_dir():
        raise SourceError(
            f"{source}: the BIG-bench folder {path} does not exist. Fill it with "
            f"`python scripts/fetch_bigbench.py [--tasks NAME ...]`, or set option root / "
            f"${BIGBENCH_ENV} to a folder of <task>/task.json files."
        )
    return path


def _bigbench_files(
    source: str, rest: str, root: str | os.PathLike[str] | None, base_dir: Path | None
) -> list[tuple[str, str | None, Path]]:
    """``(task, subtask, task.json path)`` for every file a ``bigbench:`` source reads."""
    parts = [p for p in rest.split("/") if p]
    if not 1 <= len(parts) <= 2 or any(p in (".", "..") for p in parts):
        raise SourceError(f"{source}: expected bigbench:<task> or bigbench:<task>/<subtask>.")
    base = bigbench_root(source, root, base_dir)
    task = parts[0]
    task_dir = base / task
    if not (task_dir / "task.json").is_file():
        names = sorted(p.name for p in base.iterdir() if (p / "task.json").is_file())
        close = difflib.get_close_matches(task, names, n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SourceError(
            f"{source}: no BIG-bench task {task!r} in {base} ({len(names)} tasks there).{hint} "
            f"Fetch it with `python scripts/fetch_bigbench.py --tasks {task}`."
        )
    subtasks = bigbench_subtasks(task_dir)
    if len(parts) == 2:
        if parts[1] not in subtasks:
            raise SourceError(
                f"{source}: task {task!r} has no subtask {parts[1]!r}; subtasks: {', '.join(subtasks) or 'none'}."
            )
        return [(task, parts[1], task_dir / parts[1] / "task.json")]
    if not subtasks:
        return [(task, None, task_dir / "task.json")]
    # A task with subtasks normally has no examples of its own; keep them if it does.
    top = read_bigbench_json(source, task_dir / "task.json")
    files = [(task, None, task_dir / "task.json")] if top.get("examples") else []
    return files + [(task, sub, task_dir / sub / "task.json") for sub in subtasks]


def bigbench_subtasks(task_dir: Path) -> list[str]:
    """Names of the subfolders of ``task_dir`` that hold a ``task.json``, sorted."""
    return sorted(p.name for p in task_dir.iterdir() if (p / "task.json").is_file())


def read_bigbench_json(source: str, path: Path) -> dict[str, Any]:
    """The task object in ``path``, checked to hold a list of example objects."""
    data = load_json(source, path)
    if not isinstance(data, dict):
        raise SourceError(f"{source}: {path} is not a BIG-bench task object.")
    examples = data.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise SourceError(f"{source}: 'examples' in {path} must be a list of objects.")
    return data


def distinct_examples(examples: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, example)`` skipping exact duplicates, as BIG-bench's JSON task does."""
    seen: set[str] = set()
    for index, example in enumerate(examples):
        key = json.dumps(example)  # as BIG-bench does: same key order in one file
        if key in seen:
            continue
        seen.add(key)
        yield index, example


def _train_inputs(inputs: list[str], seed: int, key: str, train_fraction: float) -> set[str]:
    """The distinct inputs assigned to ``train`` by a seeded shuffle (stable across machines)."""
    distinct = list(dict.fromkeys(inputs))
    if len(distinct) < 2 or train_fraction <= 0:
        return set()
    n_train = min(len(distinct) - 1, max(1, math.floor(len(distinct) * train_fraction)))
    random.Random(f"{seed}:{key}").shuffle(distinct)  # str seeds hash with sha512: reproducible
    return set(distinct[:n_train])


def _bigbench_meta(data: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "keywords": list(data.get("keywords", [])),
        "description": data.get("description", ""),
    }
    for key, default in BIGBENCH_PROMPT_DEFAULTS.items():
        meta[key] = data.get(key, default)
    meta["output_regex"] = data.get("output_regex")
    meta["stop_string"] = data.get("stop_string")
    if meta["output_regex"] is None and meta["stop_string"] is None:
        meta["output_regex"] = BIGBENCH_DEFAULT_OUTPUT_REGEX
    meta["preferred_score"] = data.get("preferred_score")
    meta["metrics"] = list(data.get("metrics", []))
    return meta


def _bigbench_example_row(
    task: str, subtask: str | None, index: int, example: dict[str, Any], meta: Mapping[str, Any]
) -> Row:
    name = f"{task}/{subtask}" if subtask else task
    row: Row = {"id": f"{name}:{index}", "task": task, "subtask": subtask, "idx": index}
    row.update(meta)
    row.update(example)  # example-level fields (input, target, comment, task_prefix ...) win
    scores = example.get("target_scores")
    if isinstance(scores, dict) and scores:
        choices = list(scores)
        best = max(range(len(choices)), key=lambda i: (float(scores[choices[i]]), -i))
        row["choices"] = choices
        row["label"] = choices[best]
        row["label_index"] = best
    return row


def bigbench_rows(
    source: str,
    rest: str,
    split: str,
    base_dir: Path | None,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    train_fraction: float = 0.2,
) -> Iterator[Row]:
    """Rows of task ``rest`` for ``split`` (see the module docstring)."""
    if split not in BIGBENCH_SPLITS:
        raise SourceError(
            f"{source}: BIG-bench sources have the splits {', '.join(BIGBENCH_SPLITS)} "
            f"(a seeded {train_fraction:.0%} / {1 - train_fraction:.0%} split of the examples), "
            f"not {split!r}; map the task's split to one of them."
        )
    if not 0.0 <= float(train_fraction) < 1.0:
        raise SourceError(f"{source}: train_fraction must be in [0, 1), got {train_fraction}.")
    files = _bigbench_files(source, rest, root, base_dir)
    return _bigbench_iter(source, files, split, int(seed), float(train_fraction))


def _bigbench_iter(
    source: str,
    files: list[tuple[str, str | None, Path]],
    split: str,
    seed: int,
    train_fraction: float,
) -> Iterator[Row]:
    for task, subtask, path in files:
        data = read_bigbench_json(source, path)
        meta = _bigbench_meta(data)
        examples = list(distinct_examples(data.get("examples", [])))
        key = f"{task}/{subtask}" if subtask else task
        train = (
            _train_inputs([str(e.get("input", "")) for _, e in examples], seed, key, train_fraction)
            if split != "all"
            else set()
        )
        for index, example in examples:
            in_train = str(example.get("input", "")) in train
            if split == "all" or (split == "train") == in_train:
                yield _bigbench_example_row(task, subtask, index, example, meta)


def bigbench_splits(
    source: str,
    rest: str,
    base_dir: Path | None,
    *,
    root: str | os.PathLike[str] | None = None,
    **options: Any,
) -> list[str]:
    """:data:`BIGBENCH_SPLITS`, once the task's files are found (raises if they are missing)."""
    _bigbench_files(source, rest, root, base_dir)
    return list(BIGBENCH_SPLITS)
