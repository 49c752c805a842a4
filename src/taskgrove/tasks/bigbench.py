"""The ``bigbench/`` subtree: BIG-bench's JSON tasks as declarative tasks, grouped by keyword.

Data
    ``<task>/task.json`` and ``<task>/<subtask>/task.json`` files under ``$TASKGROVE_BIGBENCH_DIR``
    or ``~/.cache/taskgrove/bigbench`` (fill it with ``python scripts/fetch_bigbench.py``). The tree
    is built from the folder's task index (``.taskgrove-index.json``, written by the fetch script
    or by ``python -m taskgrove.tasks.bigbench``), never from the task files themselves (1.7 GB),
    so listing the tree stays fast. Without the folder nothing is registered. With the folder but
    no index nothing is registered either, and a :class:`BigBenchIndexMissing` warning says how to
    build the index (the tree never scans the files at start-up). The index is used as it is:
    rebuild it after adding or changing task files.

Layout and the keyword rule
    ``bigbench/<keyword>/<task>``, and ``bigbench/<keyword>/<task>/<subtask>`` for each subtask of a
    task that has subtasks. ``<keyword>`` is the task's *primary keyword*: the first entry of the
    ``keywords`` list in the task's own ``task.json`` that names a topic rather than a format or
    setting (the entries of :data:`FORMAT_KEYWORDS` are skipped: "multiple choice", "zero-shot",
    "one-shot", "many-shot", "json", "numerical response", ...), slugified: lower case, every run of
    other characters than letters and digits becomes ``_`` ("logical reasoning" ->
    ``logical_reasoning``, "context-free question answering" ->
    ``context_free_question_answering``). A task without such a keyword goes to ``other``.
    Subtasks take their parent task's keyword, so a task's subtasks stay together (the task is
    then a group: ``bigbench/mathematics/arithmetic`` runs all its subtasks). Authors list their
    main keyword first, hence "first", e.g. ``bigbench/logical_reasoning/navigate``.

Running a task (a :class:`~taskgrove.tasks.declarative.DeclarativeTask` built from a spec)
    The user turn is BIG-bench's example text, ``example_input_prefix + input
    [+ choice_prefix + choice ...] + example_output_prefix``, stripped; the task's
    ``task_prefix`` is the system message. Choices are shown in sorted order (BIG-bench shows a
    permutation of the sorted choices; either way the gold answer's position says nothing).
    Few-shot demonstrations (``--prompt_format few_shot``) come from the deterministic train split
    of the ``bigbench:`` source (a seeded 20% of each task's distinct inputs; the test split is the
    rest), one user/assistant pair each.

    * Multiple choice (every example has ``target_scores``): ``output: multiple_choice`` with the
      example's own choices (``choices_field``). A model that scores continuations picks the
      choice of highest log-likelihood; any other model generates and the reply is read as the
      first choice it mentions. Metric ``accuracy`` against the highest-scoring choice (BIG-bench's
      ``multiple_choice_grade`` when scores are 0/1, as in nearly every task).
    * Generative: the reply is post-processed as BIG-bench does (cut after the first
      ``stop_string``, then the first match of ``output_regex``; its default regex takes the text
      up to the first ``.?!;`` or newline) and scored with ``exact_match`` against the target (or
      any of a list of targets); ``bleu`` and ``rouge1/rouge2/rougeLsum`` are added when the task
      lists them in ``metrics`` or ``preferred_score``, which also picks the primary metric.

A task's ``task.json`` is read once when the task is created (for its prefixes, post-processing
and metrics), then again for its rows.
"""

from __future__ import annotations

import functools
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgrove.errors import ConfigError
from taskgrove.registry import TaskEntry, TaskRegistry

if TYPE_CHECKING:
    from taskgrove.tasks.declarative import DeclarativeTask
    from taskgrove.tasks.sources import BigBenchTaskInfo

GROUP = "bigbench"
OTHER = "other"
#: Keywords that describe a task's format or setting rather than its topic; never a group.
FORMAT_KEYWORDS = frozenset(
    {
        "multiple choice",
        "free response",
        "zero-shot",
        "one-shot",
        "many-shot",
        "json",
        "programmatic",
        "numerical response",
        "context length",
        "example task",
        "out of distribution",
    }
)
INDEX_HINT = "python -m taskgrove.tasks.bigbench"

#: BIG-bench's example text: input prefix, input, the choices (when appended), output prefix.
INPUT_TEMPLATE = (
    "{% filter trim %}{{ example_input_prefix }}{{ input }}"
    "{% if choices is defined and append_choices_to_input %}"
    "{% for choice in choices | sort %}{{ choice_prefix }}{{ choice }}{% endfor %}{% endif %}"
    "{{ example_output_prefix }}{% endfilter %}"
)
#: A demonstration's answer: the target (the first one when there are several).
TARGET_TEMPLATE = "{{ reference if reference is string else reference[0] }}"
#: BIG-bench ``preferred_score`` -> the primary metric here (others: exact_match).
PRIMARY_METRICS = {"exact_str_match": "exact_match", "bleu": "bleu", "rouge": "rougeLsum", "rougeLsum": "rougeLsum"}
ROUGE_METRICS = ("rouge1", "rouge2", "rougeLsum")


FETCH_HINT = "`python scripts/fetch_bigbench.py` (all tasks) or `... --tasks NAME ...`, from the bigbench sdist on PyPI"


class BigBenchIndexMissing(UserWarning):
    """The BIG-bench folder exists but has no task index, so its tasks are not in the tree."""


# --- the tree ------------------------------------------------------------------------------------


def slugify(keyword: str) -> str:
    """``"logical reasoning"`` -> ``"logical_reasoning"`` (lower case; other characters -> ``_``)."""
    return re.sub(r"[^a-z0-9]+", "_", keyword.lower()).strip("_")


def primary_keyword(keywords: Iterable[str]) -> str:
    """The slug of the first topical keyword (see the module docstring), else ``"other"``."""
    for keyword in keywords:
        if keyword.strip().lower() not in FORMAT_KEYWORDS and slugify(keyword):
            return slugify(keyword)
    return OTHER


@dataclass(frozen=True)
class BigBenchLeaf:
    """One task of the subtree: its tree name and what to build it from."""

    name: str
    source: str
    kind: str
    description: str


def plan_tree(infos: Sequence[BigBenchTaskInfo]) -> list[BigBenchLeaf]:
    """The leaves for the index entries of :func:`~taskgrove.tasks.sources.read_bigbench_index`
    (one per task.json file; a task's own entry gives the keywords of its subtasks)."""
    tasks = {info.name: info for info in infos if info.subtask is None}
    groups = {name: f"{GROUP}/{primary_keyword(info.keywords)}/{name}" for name, info in tasks.items()}
    with_subtasks = {info.name for info in infos if info.subtask is not None}
    leaves = []
    for info in infos:
        parent = tasks.get(info.name)
        if parent is None:
            raise ConfigError(
                f"BIG-bench index lists subtask {info.full_name} without its task {info.name}; rebuild it with `{INDEX_HINT}`"
            )
        group = groups[info.name]
        if info.subtask is None:
            if info.name in with_subtasks:
                if info.n_examples:
                    raise ConfigError(
                        f"BIG-bench task {info.name} has examples of its own beside its subtasks; that layout is not supported"
                    )
                continue
            leaves.append(BigBenchLeaf(group, info.source, info.kind, _describe(info, None)))
        else:
            leaves.append(BigBenchLeaf(f"{group}/{info.subtask}", info.source, info.kind, _describe(info, parent)))
    return leaves


def _describe(info: BigBenchTaskInfo, parent: BigBenchTaskInfo | None) -> str:
    text = " ".join((info.description or (parent.description if parent else "")).split())
    kind = "multiple choice" if info.kind == "multiple_choice" else "generative"
    return f"{text.rstrip('.') or 'BIG-bench ' + info.full_name}. BIG-bench {info.full_name}, {kind}, {info.n_examples} examples."


def register(registry: TaskRegistry, root: str | Path | None = None) -> list[str]:
    """Add the ``bigbench/`` subtree for the task folder ``root`` (default: the BIG-bench cache
    folder); returns the names added. Reads only the folder's task index."""
    from taskgrove.tasks.sources import default_bigbench_root, read_bigbench_index

    base = Path(root).expanduser() if root is not None else default_bigbench_root()
    if not base.is_dir() or next(base.glob("*/task.json"), None) is None:
        registry.mark_absent("bigbench", f"BIG-bench is not fetched into {base}: run {FETCH_HINT}")
        return []
    infos = read_bigbench_index(base)
    if infos is None:
        registry.mark_absent("bigbench", f"the BIG-bench folder {base} has no task index: run `{INDEX_HINT} {base}`")
        warnings.warn(
            f"BIG-bench tasks in {base} are not in the task tree: the folder has no task index. "
            f"Build it once with `{INDEX_HINT} {base}` (scripts/fetch_bigbench.py also builds it after fetching).",
            BigBenchIndexMissing,
            stacklevel=2,
        )
        return []
    names = []
    for leaf in plan_tree(infos):
        factory = _LeafFactory(leaf, str(base))
        registry.add(TaskEntry(leaf.name, factory, leaf.description, f"builtin:bigbench:{leaf.source}"), replace=False)
        names.append(leaf.name)
    return names


@dataclass(frozen=True)
class _LeafFactory:
    leaf: BigBenchLeaf
    root: str

    def __call__(self) -> DeclarativeTask:
        return build_task(self.leaf, self.root)


# --- one task ------------------------------------------------------------------------------------


def build_task(leaf: BigBenchLeaf, root: str | Path) -> DeclarativeTask:
    """The task of ``leaf``: reads its task.json once for the prefixes, post-processing and metrics."""
    from taskgrove.tasks.sources import load_rows
    from taskgrove.tasks.spec import parse_spec

    first = next(iter(load_rows(leaf.source, "all", root=str(root))), None)
    if first is None:
        raise ConfigError(f"{leaf.name}: {leaf.source} has no examples")
    multiple_choice = leaf.kind == "multiple_choice"
    if multiple_choice and "choices" not in first:
        raise ConfigError(
            f"{leaf.name}: the index says multiple choice but {leaf.source} has no target_scores; rebuild it with `{INDEX_HINT}`"
        )
    spec = parse_spec(spec_data(leaf, first, root), origin=f"bigbench:{leaf.source}")
    return task_class()(spec, stop_string=first.get("stop_string"), output_regex=first.get("output_regex"))


def spec_data(leaf: BigBenchLeaf, first: dict[str, Any], root: str | Path) -> dict[str, Any]:
    """The declarative spec (as plain data) of a BIG-bench task whose first row is ``first``."""
    data: dict[str, Any] = {
        "name": leaf.name,
        "description": leaf.description,
        "source": {"uri": leaf.source, "options": {"root": str(root)}},
        "id_field": "id",
        "input": INPUT_TEMPLATE,
        "fewshot": {"split": "train", "target": TARGET_TEMPLATE},
    }
    prefix = str(first.get("task_prefix") or "").strip()
    if prefix:
        if "endraw" in prefix:
            raise ConfigError(
                f"{leaf.name}: its task_prefix contains 'endraw', which the system-message template cannot quote"
            )
        data["system"] = "{% raw %}" + prefix + "{% endraw %}"  # the system message is a template: keep braces literal
    if leaf.kind == "multiple_choice":
        return {
            **data,
            "reference": "label",
            "output": "multiple_choice",
            "choices_field": "choices",
            "parser": "label",
            "metrics": ["accuracy"],
            "primary_metric": "accuracy",
        }
    preferred = first.get("preferred_score")
    wanted = {str(m) for m in first.get("metrics") or ()} | ({str(preferred)} if preferred else set())
    metrics = ["exact_match"]
    if "bleu" in wanted:
        metrics.append("bleu")
    if wanted & {"rouge", *ROUGE_METRICS}:
        metrics.extend(ROUGE_METRICS)
    return {
        **data,
        "reference": "target",
        "metrics": metrics,
        "reward": "exact_match",
        "primary_metric": PRIMARY_METRICS.get(str(preferred), "exact_match"),
    }


def postprocess(text: str | None, stop_string: str | None, output_regex: str | None) -> str | None:
    """BIG-bench's post-processing of a generation: keep the text up to and including the first
    ``stop_string`` (unless it starts the text), then take the first match of ``output_regex``
    (``""`` when none matches; the group's text when the regex has one group)."""
    if text is None:
        return None
    if stop_string:
        index = text.find(stop_string)
        if index > 0:
            text = text[: index + len(stop_string)]
    if output_regex:
        found = re.findall(output_regex, text)
        text = found[0] if found else ""
        if isinstance(text, tuple):  # several groups: BIG-bench rejects such a regex
            text = text[0]
    return text


@functools.cache
def task_class() -> Callable[..., DeclarativeTask]:
    """:class:`BigBenchTask`, defined on first use so that listing the tree does not import the
    declarative machinery (pydantic, Jinja)."""
    from taskgrove.tasks.declarative import DeclarativeTask

    class BigBenchTask(DeclarativeTask):
        """A BIG-bench task: a declarative task whose generations are post-processed as BIG-bench does."""

        def __init__(self, spec: Any, *, stop_string: str | None, output_regex: str | None) -> None:
            super().__init__(spec)
            self.stop_string = stop_string
            self.output_regex = output_regex
            if output_regex:
                try:
                    re.compile(output_regex)
                except re.error as exc:
                    raise ConfigError(f"task {self.name}: output_regex {output_regex!r}: {exc}") from None

        def predict(self, text: str | None, choices: Sequence[str] | None = None) -> Any:
            """Multiple choice: the choice the reply names; generative: BIG-bench's post-processing."""
            if self.spec.output == "multiple_choice":
                return super().predict(text, choices)
            return postprocess(text, self.stop_string, self.output_regex)

    BigBenchTask.__module__ = __name__
    BigBenchTask.__qualname__ = "BigBenchTask"
    return BigBenchTask


def __getattr__(name: str) -> Any:
    if name == "BigBenchTask":
        return task_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- building the index --------------------------------------------------------------------------


def build_index(root: str | Path | None = None) -> dict[str, int]:
    """Scan the task files of ``root`` (default: the BIG-bench cache folder) once and write the
    index the tree is read from; returns the number of tasks per keyword group."""
    from taskgrove.tasks.sources import list_bigbench_tasks, read_bigbench_index

    list_bigbench_tasks(root)  # parses what changed and writes <root>/.taskgrove-index.json
    indexed = read_bigbench_index(root)
    if indexed is None:
        raise ConfigError(
            f"the BIG-bench task index under {root or 'the cache folder'} was not written (is the folder writable?)"
        )
    counts: dict[str, int] = {}
    for leaf in plan_tree(indexed):
        group = leaf.name.split("/")[1]
        counts[group] = counts.get(group, 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m taskgrove.tasks.bigbench [BIGBENCH_DIR]``: (re)build the task index."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(
            "usage: python -m taskgrove.tasks.bigbench [BIGBENCH_DIR]  (re)builds the BIG-bench task index",
            file=sys.stderr,
        )
        return 2
    counts = build_index(args[0] if args else None)
    for group, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{GROUP}/{group}: {n}")
    print(f"{sum(counts.values())} BIG-bench tasks in {len(counts)} keyword groups")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
